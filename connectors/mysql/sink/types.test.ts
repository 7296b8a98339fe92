import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Row } from '../../../src/core/change-event.ts';
import { errorKind, SchemaMismatchError } from '../../../src/errors.ts';
import { col, EventSource, tableSchema, testContext } from '../../../test/fixtures/change-events.ts';
import { mariadbColumnType } from '../../../test/fixtures/mysql-types.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { mysqlTargetConfig } from './config.ts';
import { MysqlTarget } from './target.ts';
import { columnType, parsePgType, tableColumnTypes, timestamptzToUtc, timetzToUtc } from './type-mapping.ts';

const OPTIONS = { numericOverflow: 'error', floatNonfinite: 'error', dateOutOfRange: 'error' } as const;

describe('type mapping (no server)', () => {
  it('parses PostgreSQL type names', () => {
    expect(parsePgType('timestamp(3) with time zone')).toEqual({
      base: 'timestamp with time zone',
      args: [3],
      array: false,
    });
    expect(parsePgType('numeric(10,2)')).toEqual({ base: 'numeric', args: [10, 2], array: false });
    expect(parsePgType('integer[]')).toEqual({ base: 'integer', args: [], array: true });
    expect(parsePgType('character varying(20)[]')).toEqual({ base: 'character varying', args: [20], array: true });
  });

  it('picks MySQL types for PostgreSQL columns', () => {
    const t = (type: string, kind: Parameters<typeof col>[2], isKey = false) =>
      columnType(col('c', type, kind, isKey), 'postgresql', OPTIONS).sql;
    expect(t('bigint', 'int')).toBe('BIGINT');
    expect(t('numeric(10,2)', 'decimal')).toBe('DECIMAL(10,2)');
    expect(t('numeric', 'decimal')).toBe('DECIMAL(65,30)');
    expect(t('numeric(70,2)', 'decimal')).toBe('DECIMAL(65,2)');
    expect(columnType(col('c', 'numeric', 'decimal'), 'postgresql', { ...OPTIONS, numericOverflow: 'text' }).sql).toBe(
      'LONGTEXT',
    );
    expect(t('real', 'float')).toBe('DOUBLE');
    expect(t('double precision', 'float')).toBe('DOUBLE');
    expect(t('boolean', 'bool')).toBe('TINYINT(1)');
    expect(t('text', 'text')).toBe('LONGTEXT');
    expect(t('text', 'text', true)).toBe('VARCHAR(768)');
    expect(t('character varying(20)', 'text')).toBe('VARCHAR(20)');
    expect(t('character varying(20000)', 'text')).toBe('LONGTEXT');
    expect(t('character(5)', 'text')).toBe('CHAR(5)');
    expect(t('bytea', 'bytes')).toBe('LONGBLOB');
    expect(t('uuid', 'uuid')).toBe('CHAR(36)');
    expect(t('jsonb', 'json')).toBe('JSON');
    expect(t('integer[]', 'array')).toBe('JSON');
    expect(t('mood', 'enum')).toBe('VARCHAR(255)');
    expect(t('timestamp(3) with time zone', 'timestamptz')).toBe('DATETIME(3)');
    expect(t('timestamp without time zone', 'timestamp')).toBe('DATETIME(6)');
    expect(t('date', 'date')).toBe('DATE');
    expect(t('time without time zone', 'time')).toBe('TIME(6)');
    expect(t('time with time zone', 'timetz')).toBe('TIME(6)');
    expect(t('interval', 'interval')).toBe('VARCHAR(255)');
    expect(t('bit(5)', 'bits')).toBe('BIT(5)');
    expect(t('bit varying(5)', 'bits')).toBe('VARCHAR(5)');
    expect(t('point', 'geometry')).toBe('POINT');
    expect(t('polygon', 'geometry')).toBe('LONGTEXT');
    expect(t('inet', 'other')).toBe('LONGTEXT');
  });

  it('keeps MySQL source types, shares the key length and moves wide VARCHARs to LONGTEXT', () => {
    expect(columnType(col('c', 'bigint unsigned', 'int'), 'mysql', OPTIONS).sql).toBe('bigint unsigned');
    expect(columnType(col('c', "enum('a','b')", 'enum'), 'mysql', OPTIONS).sql).toBe("enum('a','b')");
    expect(columnType(col('c', 'longtext', 'json'), 'mysql', OPTIONS).sql).toBe('JSON');
    const keys = tableColumnTypes(
      [col('a', 'integer', 'int', true), col('b', 'text', 'text', true)],
      'postgresql',
      OPTIONS,
    );
    expect(keys.map((k) => k.sql)).toEqual(['INT', 'VARCHAR(766)']);
    const wide = tableColumnTypes(
      [col('id', 'integer', 'int', true), col('a', 'character varying(10000)'), col('b', 'character varying(10000)')],
      'postgresql',
      OPTIONS,
    );
    expect(wide.map((k) => k.sql)).toEqual(['INT', 'LONGTEXT', 'VARCHAR(10000)']);
  });

  it('converts zoned values to UTC', () => {
    expect(timestamptzToUtc('2024-02-29 23:59:59.123456+00')).toBe('2024-02-29 23:59:59.123456');
    expect(timestamptzToUtc('2024-01-01 01:00:00.5+02')).toBe('2023-12-31 23:00:00.5');
    expect(timestamptzToUtc('2024-01-01 23:30:00-05:30')).toBe('2024-01-02 05:00:00');
    expect(timetzToUtc('12:00:00+02')).toBe('10:00:00');
    expect(timetzToUtc('01:00:00.25+02')).toBe('23:00:00.25');
    expect(timetzToUtc('23:00:00-03')).toBe('02:00:00');
  });
});

let server: MysqlServer;
const open: MysqlTarget[] = [];

describe.each(mysqlFlavors())('MysqlTarget types (MariaDB) ($name)', (flavor) => {
  beforeAll(async () => {
    server = await flavor.start();
  }, 120_000);
  afterAll(async () => {
    for (const t of open) await t.close().catch(() => undefined);
    await server?.stop();
  });

  let n = 0;
  async function setup(db: string, extra: Record<string, unknown> = {}, engine: 'postgresql' | 'mysql' = 'postgresql') {
    await server.query(`DROP DATABASE IF EXISTS \`${db}\``);
    const ctx = testContext(`types${++n}`);
    const target = new MysqlTarget(
      mysqlTargetConfig.parse({ type: 'mysql', url: server.url(), database: db, ...extra }),
      ctx,
    );
    open.push(target);
    await target.open();
    // biome-ignore lint/suspicious/noExplicitAny: rows of test queries
    const q = <T = any>(sql: string) => server.query<T>(sql, [], db);
    const columnTypes = async (table: string) =>
      Object.fromEntries(
        (
          await q<{ c: string; t: string }>(
            `select column_name as c, column_type as t from information_schema.columns where table_schema = '${db}' and table_name = '${table}' order by ordinal_position`,
          )
        ).map((r) => [r.c, mariadbColumnType(r.t)]),
      );
    return { target, q, ctx, columnTypes, src: new EventSource(ctx.pipeline, engine) };
  }

  it('maps PostgreSQL-typed events and stores what the mapping table says', async () => {
    const { target, q, columnTypes, src, ctx } = await setup('pg_types');
    const all = tableSchema('public.all_types', [
      col('id', 'bigint', 'int', true),
      col('n', 'numeric(10,2)', 'decimal'),
      col('nu', 'numeric', 'decimal'),
      col('i8', 'bigint', 'int'),
      col('t', 'text'),
      col('vc', 'character varying(20)'),
      col('ch', 'character(5)'),
      col('b', 'bytea', 'bytes'),
      col('u', 'uuid', 'uuid'),
      col('j', 'jsonb', 'json'),
      col('ts', 'timestamp(6) with time zone', 'timestamptz'),
      col('tsn', 'timestamp without time zone', 'timestamp'),
      col('bo', 'boolean', 'bool'),
      col('arr', 'integer[]', 'array', false, 'int'),
      col('tarr', 'text[]', 'array', false, 'text'),
      col('e', 'mood', 'enum'),
      col('d', 'date', 'date'),
      col('tm', 'time(3) without time zone', 'time'),
      col('tz', 'time with time zone', 'timetz'),
      col('iv', 'interval', 'interval'),
      col('bt', 'bit(5)', 'bits'),
      col('vb', 'bit varying(8)', 'bits'),
      col('pt', 'point', 'geometry'),
      col('f4', 'real', 'float'),
      col('f8', 'double precision', 'float'),
      col('mo', 'money', 'other'),
    ]);
    const row: Row = {
      id: '1',
      n: '12345678.91',
      nu: '12345678901234567890.123456789012345678901234567890',
      i8: '9223372036854775807',
      t: "emoji 😀 and 💾, quote ' backslash \\ nul-free",
      vc: 'short',
      ch: 'ab   ',
      b: '\\xdeadbeef00ff',
      u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      j: '{"a": [1, 2.5, "x"], "b": null}',
      ts: '2024-02-29 23:59:59.123456+00',
      tsn: '1999-12-31 23:59:59.5',
      bo: 't',
      arr: '{1,NULL,3}',
      tarr: '{"a b","c,d",NULL,"NULL"}',
      e: 'happy',
      d: '2024-01-02',
      tm: '12:34:56.789',
      tz: '12:00:00+02',
      iv: '1 year 2 mons 3 days 04:05:06',
      bt: '10110',
      vb: '101',
      pt: '(1.5,-2)',
      f4: '3.14',
      f8: '0.30000000000000004',
      mo: '$1,234.50',
    };
    await target.write(
      src.batch(
        src.tx((t) => t.insert(all, row).insert(all, { ...row, id: '-9223372036854775808', bo: 'f', n: '-0.01' })),
      ),
    );
    expect(await columnTypes('all_types')).toEqual({
      id: 'bigint(20)',
      n: 'decimal(10,2)',
      nu: 'decimal(65,30)',
      i8: 'bigint(20)',
      t: 'longtext',
      vc: 'varchar(20)',
      ch: 'char(5)',
      b: 'longblob',
      u: 'char(36)',
      j: 'longtext', // MariaDB's JSON: LONGTEXT with a json_valid() check
      ts: 'datetime(6)',
      tsn: 'datetime(6)',
      bo: 'tinyint(1)',
      arr: 'longtext',
      tarr: 'longtext',
      e: 'varchar(255)',
      d: 'date',
      tm: 'time(3)',
      tz: 'time(6)',
      iv: 'varchar(255)',
      bt: 'bit(5)',
      vb: 'varchar(8)',
      pt: 'point',
      f4: 'double',
      f8: 'double',
      mo: 'longtext',
    });
    const rows = await q(
      `select id, n, nu, i8, t, vc, ch, hex(b) as b, u, concat(j) as j, ts, tsn, bo, concat(arr) as arr, concat(tarr) as tarr, e, d, tm, tz, iv, bin(bt) as bt, vb,
              st_astext(pt) as pt, f4, f8, mo, json_valid(j) as jv
       from all_types order by id`,
    );
    expect(rows[1]).toEqual({
      id: '1',
      n: '12345678.91',
      nu: '12345678901234567890.123456789012345678901234567890',
      i8: '9223372036854775807',
      t: row.t,
      vc: 'short',
      ch: 'ab', // CHAR drops trailing spaces when read
      b: 'DEADBEEF00FF',
      u: row.u,
      j: row.j,
      ts: '2024-02-29 23:59:59.123456',
      tsn: '1999-12-31 23:59:59.500000',
      bo: 1,
      arr: '[1,null,3]',
      tarr: '["a b","c,d",null,"NULL"]',
      e: 'happy',
      d: '2024-01-02',
      tm: '12:34:56.789',
      tz: '10:00:00.000000',
      iv: row.iv,
      bt: '10110',
      vb: '101',
      pt: 'POINT(1.5 -2)',
      f4: 3.14,
      f8: 0.30000000000000004,
      mo: '$1,234.50',
      jv: 1,
      // MySQL stores JSON in its binary form and prints it with a space after each separator.
      ...(server.flavor === 'mysql' ? { arr: '[1, null, 3]', tarr: '["a b", "c,d", null, "NULL"]', jv: '1' } : {}),
    });
    expect(rows[0]).toMatchObject({ id: '-9223372036854775808', bo: 0, n: '-0.01' });
    expect(ctx.logs.some((l) => l.event === 'target_column_mapped_lossy' && l.column === 'tz')).toBe(true);
  });

  it('refuses values MySQL cannot hold, or stores NULL when configured', async () => {
    const nums = tableSchema('public.vals', [
      col('id', 'integer', 'int', true),
      col('nu', 'numeric', 'decimal'),
      col('f', 'double precision', 'float'),
      col('d', 'date', 'date'),
    ]);
    const strict = await setup('pg_strict');
    const cases: [Row, RegExp][] = [
      [
        { id: '1', nu: '1'.repeat(36), f: null, d: null },
        /column nu \(key \{"id":"1"\}\).*does not fit DECIMAL\(65,30\)/,
      ],
      [{ id: '2', nu: '0.0000000000000000000000000000001', f: null, d: null }, /does not fit/],
      [{ id: '3', nu: 'NaN', f: null, d: null }, /NaN cannot be stored/],
      [{ id: '4', nu: null, f: '-Infinity', d: null }, /column f .*-Infinity cannot be stored/],
      [{ id: '5', nu: null, f: null, d: 'infinity' }, /column d .*infinity is outside/],
      [{ id: '6', nu: null, f: null, d: '0044-03-15 BC' }, /BC is outside/],
    ];
    for (const [row, message] of cases) {
      const err = await strict.target
        .write(strict.src.batch(strict.src.tx((t) => t.insert(nums, row))))
        .catch((e) => e);
      expect(err).toBeInstanceOf(SchemaMismatchError);
      expect(errorKind(err)).toBe('operator');
      expect((err as Error).message).toMatch(message);
      await strict.target.reset();
    }
    expect(await strict.q('select count(*) as n from vals')).toEqual([{ n: '0' }]);
    // Trailing zeros beyond the scale are not a loss.
    await strict.target.write(
      strict.src.batch(
        strict.src.tx((t) =>
          t.insert(nums, { id: '7', nu: '1.50000000000000000000000000000000000', f: null, d: null }),
        ),
      ),
    );

    const lenient = await setup('pg_lenient', {
      numeric_overflow: 'text',
      float_nonfinite: 'null',
      date_out_of_range: 'null',
    });
    await lenient.target.write(
      lenient.src.batch(
        lenient.src.tx((t) =>
          t
            .insert(nums, { id: '1', nu: `${'9'.repeat(40)}.${'1'.repeat(40)}`, f: 'NaN', d: 'infinity' })
            .insert(nums, { id: '2', nu: 'NaN', f: '1.5', d: '2024-05-06' }),
        ),
      ),
    );
    expect(await lenient.q('select id, nu, f, d from vals order by id')).toEqual([
      { id: 1, nu: `${'9'.repeat(40)}.${'1'.repeat(40)}`, f: null, d: null },
      { id: 2, nu: 'NaN', f: 1.5, d: '2024-05-06' },
    ]);
    const nulled = lenient.ctx.logs.filter((l) => l.event === 'target_value_nulled').map((l) => l.column);
    expect(nulled.sort()).toEqual(['d', 'f']);
  });

  it('NaN and infinities inside float and numeric arrays stop like scalar NaN, or store NULL when configured', async () => {
    const arrays = tableSchema('public.arrs', [
      col('id', 'integer', 'int', true),
      col('fa', 'double precision[]', 'array', false, 'float'),
      col('na', 'numeric[]', 'array', false, 'decimal'),
    ]);
    const strict = await setup('arr_strict');
    for (const row of [
      { id: '1', fa: '{1.5,NaN}', na: null },
      { id: '2', fa: '{-Infinity}', na: null },
      { id: '3', fa: null, na: '{1.25,NaN}' },
    ]) {
      const err = await strict.target
        .write(strict.src.batch(strict.src.tx((t) => t.insert(arrays, row))))
        .catch((e) => e);
      expect(err).toBeInstanceOf(SchemaMismatchError);
      expect((err as Error).message).toMatch(/inside an array cannot be stored/);
      expect((err as SchemaMismatchError).hint).toContain('float_nonfinite: "null"');
      await strict.target.reset();
    }
    const lenient = await setup('arr_lenient', { float_nonfinite: 'null' });
    await lenient.target.write(
      lenient.src.batch(
        lenient.src.tx((t) =>
          t
            .insert(arrays, { id: '1', fa: '{1.5,NaN}', na: '{1.25}' })
            .insert(arrays, { id: '2', fa: '{2.5}', na: '{NaN}' }),
        ),
      ),
    );
    expect(await lenient.q('select id, fa, na from arrs order by id')).toEqual([
      { id: 1, fa: null, na: [1.25] },
      { id: 2, fa: [2.5], na: null },
    ]);
    expect(
      lenient.ctx.logs
        .filter((l) => l.event === 'target_value_nulled')
        .map((l) => l.column)
        .sort(),
    ).toEqual(['fa', 'na']);
  });

  it('creates MySQL-sourced columns with the source types and stores the values unchanged', async () => {
    const { target, q, columnTypes, src } = await setup('my_types', {}, 'mysql');
    const t = tableSchema('shop.things', [
      col('id', 'bigint unsigned', 'int', true),
      col('dec', 'decimal(65,30)', 'decimal'),
      col('vc', 'varchar(50)'),
      col('en', "enum('a','b c','it''s')", 'enum'),
      col('st', "set('x','y')", 'set'),
      col('bt', 'bit(10)', 'bits'),
      col('dt', 'datetime(6)', 'timestamp'),
      col('tsp', 'timestamp(3)', 'timestamptz'),
      col('tm', 'time(3)', 'time'),
      col('yr', 'year', 'int'),
      col('js', 'json', 'json'),
      col('geo', 'geometry', 'geometry'),
      col('bin', 'binary(4)', 'bytes'),
      col('zd', 'date', 'date'),
      col('tiny', 'tinyint', 'int'),
    ]);
    await target.write(
      src.batch(
        src.tx((x) =>
          x.insert(t, {
            id: '18446744073709551615',
            dec: '-12345678901234567890123456789012345.123456789012345678901234567890',
            vc: 'héllo',
            en: "it's",
            st: 'x,y',
            bt: '1000000001',
            dt: '2024-01-02 03:04:05.000006',
            tsp: '2024-01-02 03:04:05.123+00',
            tm: '-838:59:59.000',
            yr: '2024',
            js: '{"k": [1, 2]}',
            geo: 'POINT(1 -2.25)',
            bin: '\\x01020000',
            zd: '0000-00-00',
            tiny: '-128',
          }),
        ),
      ),
    );
    expect(await columnTypes('things')).toMatchObject({
      id: 'bigint(20) unsigned',
      dec: 'decimal(65,30)',
      en: "enum('a','b c','it''s')",
      st: "set('x','y')",
      bt: 'bit(10)',
      tsp: 'timestamp(3)',
      tm: 'time(3)',
      yr: 'year(4)',
      geo: 'geometry',
      bin: 'binary(4)',
    });
    expect(
      await q(
        'select id, `dec`, vc, en, st, bin(bt) as bt, dt, tsp, tm, yr, concat(js) as js, st_astext(geo) as geo, hex(bin) as bin, zd, tiny from things',
      ),
    ).toEqual([
      {
        id: '18446744073709551615',
        dec: '-12345678901234567890123456789012345.123456789012345678901234567890',
        vc: 'héllo',
        en: "it's",
        st: 'x,y',
        bt: '1000000001',
        dt: '2024-01-02 03:04:05.000006',
        tsp: '2024-01-02 03:04:05.123',
        tm: '-838:59:59.000',
        yr: 2024,
        js: '{"k": [1, 2]}',
        geo: 'POINT(1 -2.25)',
        bin: '01020000',
        zd: '0000-00-00',
        tiny: -128,
      },
    ]);
  });
});
