import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MysqlServer, startMariadb } from '../../test/harness/mariadb.ts';
import { type PgServer, startPostgres } from '../../test/harness/postgres.ts';
import { type PipelineConfig, pipelineConfig } from '../config/schema.ts';
import { verifyPipeline } from './verify.ts';

let pg: PgServer;
let my: MysqlServer;
let pgUrl: string;
let myUrl: string;

function pipeline(
  source: 'postgres' | 'mysql',
  tables: string[],
  extra: { rangeRows?: number } = {},
): { config: PipelineConfig; rangeRows?: number } {
  const pgSide = { type: 'postgres', url: pgUrl };
  const mySide = { type: 'mysql', url: myUrl };
  return {
    config: pipelineConfig.parse({
      name: 'x',
      source: { ...(source === 'postgres' ? pgSide : mySide), tables },
      target: source === 'postgres' ? mySide : pgSide,
    }),
    ...extra,
  };
}

const ROWS: string[] = [
  `(1, 42, 12.5000, 'plain', '2024-01-01 10:00:00.123456', '2024-01-01 10:00:00', 'deadbeef', true, '2024-02-29', 1.5, '{"a": 1, "b": [1, 2]}', 1234.5678)`,
  `(2, -7, -0.0001, 'emoji 🎉🚀 and ''quotes'' \\ back', '2038-01-19 03:14:07.999999', '1999-12-31 23:59:59.5', '00ff', false, '1970-01-01', -123456789012.123456, '[]', 0.1)`,
  `(3, null, null, null, null, null, null, null, null, null, null, null)`,
  `(9007199254740993, 2147483647, 99999999.9999, '', '2000-01-01 00:00:00', '2000-01-01 00:00:00.000001', '', true, '2000-01-01', 0, '{}', -3.4e38)`,
];

async function load(rowsSql: string[]) {
  await pg.query(
    'xe',
    `create schema if not exists shop; drop table if exists shop.items;
     create table shop.items (id bigint primary key, qty int, price numeric(12,4), label text, at timestamptz,
       ts timestamp, bin bytea, flag boolean, d date, f float8, j jsonb, r real)`,
  );
  await my.query('drop table if exists shop.items');
  await my.query(`create table shop.items (id bigint primary key, qty int, price decimal(12,4), label varchar(200),
    at timestamp(6) null, ts datetime(6), bin varbinary(100), flag tinyint(1), d date, f double, j json, r float)`);
  for (const r of rowsSql) {
    const pgRow = r.replace(/'([0-9a-f]*)', (true|false|null)/, (_m, hex, rest) => `'\\x${hex}', ${rest}`);
    await pg.query('xe', `insert into shop.items values ${pgRow}`);
    const myRow = r.replace(/'([0-9a-f]*)', (true|false|null)/, (_m, hex, rest) => `X'${hex}', ${rest}`);
    await my.query(`insert into shop.items values ${myRow.replaceAll('\\', '\\\\')}`);
  }
}

beforeAll(async () => {
  [pg, my] = await Promise.all([startPostgres(), startMariadb()]);
  pgUrl = await pg.createDatabase('xe');
  await my.createDatabase('shop');
  myUrl = my.url();
});

afterAll(async () => {
  await Promise.all([pg?.stop(), my?.stop()]);
});

describe('verify across engines', () => {
  it('PostgreSQL -> MariaDB: ints, decimals, emoji text, timestamps, bytes, booleans, json are equal', async () => {
    await load(ROWS);
    const { config } = pipeline('postgres', ['shop.items']);
    const report = await verifyPipeline(config, { maxDiffs: 20 });
    expect(report.error).toBeUndefined();
    expect(report.tables[0]).toMatchObject({ status: 'equal', source_rows: 4, target_rows: 4, differences: [] });
    expect(report.tables[0]!.loose_columns).toEqual(['f', 'j', 'r']);
  });

  it('MariaDB -> PostgreSQL: equal, then one changed value of each kind is found', async () => {
    await load(ROWS);
    const { config } = pipeline('mysql', ['shop.items']);
    expect((await verifyPipeline(config, { maxDiffs: 20 })).tables[0]!.status).toBe('equal');
    await my.query(`update shop.items set label = 'emoji 🎉🚀' where id = 2`);
    await my.query(`update shop.items set at = '2024-01-01 10:00:00.123457', flag = 0 where id = 1`);
    await my.query('update shop.items set price = 99999999.9998 where id = 9007199254740993');
    await my.query('delete from shop.items where id = 3');
    const report = await verifyPipeline(config, { maxDiffs: 20 });
    const t = report.tables[0]!;
    expect(t.status).toBe('different');
    expect(t.differences).toEqual([
      {
        kind: 'different',
        key: { id: '1' },
        columns: ['at', 'flag'],
        source: { at: '2024-01-01 10:00:00.123457', flag: 'f' },
        target: { at: '2024-01-01 10:00:00.123456', flag: 't' },
      },
      {
        kind: 'different',
        key: { id: '2' },
        columns: ['label'],
        source: { label: 'emoji 🎉🚀' },
        target: { label: "emoji 🎉🚀 and 'quotes' \\ back" },
      },
      { kind: 'extra_at_target', key: { id: '3' } },
      {
        kind: 'different',
        key: { id: '9007199254740993' },
        columns: ['price'],
        source: { price: '99999999.9998' },
        target: { price: '99999999.9999' },
      },
    ]);
  });

  it('text primary keys across collations compare in byte order, over many ranges', async () => {
    await pg.query(
      'xe',
      `drop table if exists shop.words; create table shop.words (w text collate "C" primary key, n int);
       insert into shop.words select 'w' || g || case when g % 3 = 0 then 'Ä' when g % 3 = 1 then 'a' else 'Z' end, g
         from generate_series(1, 3000) g; insert into shop.words values ('🎉', 0), ('Zebra', -1), ('apple', -2)`,
    );
    await my.query('drop table if exists shop.words');
    await my.query(
      'create table shop.words (w varchar(100) character set utf8mb4 collate utf8mb4_general_ci primary key, n int)',
    );
    const rows = await pg.query<{ w: string; n: string }>('xe', 'select w, n::text from shop.words');
    for (let i = 0; i < rows.length; i += 500) {
      const chunk = rows.slice(i, i + 500);
      await my.query(
        `insert into shop.words values ${chunk.map(() => '(?, ?)').join(', ')}`,
        chunk.flatMap((r) => [r.w, r.n]),
      );
    }
    const { config } = pipeline('postgres', ['shop.words']);
    const equal = await verifyPipeline(config, { maxDiffs: 20, rangeRows: 250 });
    expect(equal.tables[0]).toMatchObject({ status: 'equal', source_rows: 3003 });
    expect(equal.tables[0]!.ranges).toBeGreaterThan(10);
    await my.query(`delete from shop.words where w = 'w1500Ä'`);
    await my.query(`update shop.words set n = 7 where w = '🎉'`);
    const diff = await verifyPipeline(config, { maxDiffs: 20, rangeRows: 250 });
    expect(diff.tables[0]!.differences.map((d) => [d.kind, d.key?.w]).sort()).toEqual([
      ['different', '🎉'],
      ['missing_at_target', 'w1500Ä'],
    ]);
  });
});

describe('verify across engines, more shapes', () => {
  it('keyless table, time and uuid-as-text columns (PostgreSQL -> MariaDB)', async () => {
    await pg.query(
      'xe',
      `drop table if exists shop.log; create table shop.log (u uuid, t time(6), note varchar(20));
       insert into shop.log values ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '13:14:15.5', 'x'),
         ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '13:14:15.5', 'x'), (null, '00:00:00', null)`,
    );
    await my.query('drop table if exists shop.log');
    await my.query('create table shop.log (u char(36), t time(6), note varchar(20))');
    await my.query(`insert into shop.log values ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '13:14:15.5', 'x'),
      (null, '00:00:00', null), ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '13:14:15.5', 'x')`);
    const { config } = pipeline('postgres', ['shop.log']);
    const equal = await verifyPipeline(config, { maxDiffs: 20 });
    expect(equal.tables[0]).toMatchObject({ status: 'equal', key: null, source_rows: 3, target_rows: 3 });
    await my.query(`insert into shop.log values (null, '00:00:00', null)`);
    const extra = await verifyPipeline(config, { maxDiffs: 20 });
    expect(extra.tables[0]!.differences).toEqual([
      {
        kind: 'extra_at_target',
        source_count: 1,
        target_count: 2,
        source: { u: null, t: '00:00:00.000000', note: null },
      },
    ]);
  });

  it('MariaDB TIME (negative, above 24 hours, fractions) equals the PostgreSQL interval it replicates into', async () => {
    await my.query('drop table if exists shop.spans');
    await my.query('create table shop.spans (id int primary key, t time(1))');
    await my.query(
      `insert into shop.spans values (1, '-838:59:59.5'), (2, '30:00:00'), (3, '-00:00:00.5'), (4, '13:14:15'), (5, null)`,
    );
    await pg.query(
      'xe',
      `drop table if exists shop.spans; create table shop.spans (id int primary key, t interval(1));
       insert into shop.spans values (1, '-838:59:59.5'), (2, '30:00:00'), (3, '-00:00:00.5'), (4, '13:14:15'), (5, null)`,
    );
    const { config } = pipeline('mysql', ['shop.spans']);
    expect((await verifyPipeline(config, { maxDiffs: 20 })).tables[0]).toMatchObject({ status: 'equal' });
    await pg.query('xe', `update shop.spans set t = '-838:59:59.4' where id = 1`);
    const changed = await verifyPipeline(config, { maxDiffs: 20 });
    expect(changed.tables[0]!.differences).toHaveLength(1);
  });

  it('MariaDB -> MariaDB (same engine: plain text forms) through the plan directly', async () => {
    await my.createDatabase('copy');
    const ddl = `(id int primary key, b varbinary(8), d decimal(6,2), at datetime(3), f float, flag bit(3))`;
    await my.query(`create table shop.same ${ddl}`);
    await my.query(`create table copy.same ${ddl}`);
    for (const db of ['shop', 'copy'])
      await my.query(`insert into ${db}.same values (1, X'00ff', 1.50, '2024-01-01 00:00:00.123', 0.1, b'101'),
        (2, null, null, null, null, null)`);
    await my.query(`update copy.same set flag = b'100' where id = 1`);
    const { connect } = await import('./db.ts');
    const { mysqlDialect } = await import('./mysql-dialect.ts');
    const { planTable } = await import('./plan.ts');
    const { compareKeyed } = await import('./compare-table.ts');
    const [a, b] = await Promise.all([connect('mysql', myUrl, 'source'), connect('mysql', myUrl, 'target')]);
    try {
      const d = mysqlDialect();
      const [sa, sb] = await Promise.all([
        d.describeTable(a, { schema: 'shop', name: 'same' }),
        d.describeTable(b, { schema: 'copy', name: 'same' }),
      ]);
      const plan = planTable({ db: a, dialect: d, def: sa! }, { db: b, dialect: d, def: sb! });
      const result = await compareKeyed(plan, { maxDiffs: 20 });
      expect(result.differences).toEqual([
        { kind: 'different', key: { id: '1' }, columns: ['flag'], source: { flag: '101' }, target: { flag: '100' } },
      ]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('verify across engines never gives a wrong verdict on JSON, arrays and timetz', () => {
  const setUp = async (pgColumns: string, pgRows: string, myColumns: string, myRows: string) => {
    await pg.query(
      'xe',
      `create schema if not exists shop; drop table if exists shop.docs; create table shop.docs (id int primary key, ${pgColumns})`,
    );
    if (pgRows) await pg.query('xe', `insert into shop.docs values ${pgRows}`);
    await my.query('drop table if exists shop.docs');
    await my.query(`create table shop.docs (id int primary key, ${myColumns})`);
    if (myRows) await my.query(`insert into shop.docs values ${myRows}`);
  };

  it('JSON strings that differ only in inner whitespace are different', async () => {
    await setUp('j jsonb', `(1, '{"a": "x y"}')`, 'j json', `(1, '{"a": "xy"}')`);
    const report = await verifyPipeline(pipeline('postgres', ['shop.docs']).config, { maxDiffs: 20 });
    expect(report.tables[0]).toMatchObject({ status: 'different' });
    expect(report.tables[0]!.differences[0]).toMatchObject({ key: { id: '1' }, columns: ['j'] });
  });

  it('json with duplicate keys, escapes and \\u0000, arrays and timetz, replicated as the target holds them, are equal', async () => {
    await setUp(
      'j json, ints int[], words text[], nums numeric[], t timetz',
      `(1, '{"a": 1, "a": 2, "s": "\\u00e9\\n\\u0000"}', '{1,2,3}', '{"a","b c",NULL}', '{1.50,-2}', '01:04:05.5+02'),
       (2, '[1.5e3, {"b": true, "a": null}]', '{}', '{{x,y},{z,w}}', null, '23:59:59-01')`,
      'j json, ints json, words json, nums json, t time(6)',
      `(1, '{"a": 2, "s": "é\\\\n\\\\u0000"}', '[1, 2, 3]', '["a", "b c", null]', '[1.5, -2]', '23:04:05.5'),
       (2, '[1500, {"a": null, "b": true}]', '[]', '[["x","y"],["z","w"]]', null, '00:59:59')`,
    );
    const report = await verifyPipeline(pipeline('postgres', ['shop.docs']).config, { maxDiffs: 20 });
    expect(report.error).toBeUndefined();
    expect(report.tables[0], JSON.stringify(report.tables[0])).toMatchObject({ status: 'equal', differences: [] });
    // And a real difference inside the same shapes is still found.
    await my.query(`update shop.docs set words = '["a", "b  c", null]' where id = 1`);
    const changed = await verifyPipeline(pipeline('postgres', ['shop.docs']).config, { maxDiffs: 20 });
    expect(changed.tables[0]!.differences).toMatchObject([{ key: { id: '1' }, columns: ['words'] }]);
  });

  it('MySQL JSON numbers in exponent form equal the PostgreSQL numbers they replicated into', async () => {
    await my.query('drop table if exists shop.docs');
    await my.query('create table shop.docs (id int primary key, j json)');
    await my.query(`insert into shop.docs values (1, '{"n": 1.5e3, "m": [1E-2, 2.50]}')`);
    await pg.query(
      'xe',
      `drop table if exists shop.docs; create table shop.docs (id int primary key, j json);
       insert into shop.docs values (1, '{"m": [0.01, 2.5], "n": 1500}')`,
    );
    const report = await verifyPipeline(pipeline('mysql', ['shop.docs']).config, { maxDiffs: 20 });
    expect(report.tables[0]).toMatchObject({ status: 'equal' });
  });

  it('a keyless table: rows whose JSON is only written differently are equal, a changed value is not', async () => {
    await pg.query(
      'xe',
      `drop table if exists shop.events; create table shop.events (j json, n int);
       insert into shop.events values ('{"b": 1, "a": [1.50]}', 1), ('{"b": 1, "a": [1.50]}', 1), ('[]', 2)`,
    );
    await my.query('drop table if exists shop.events');
    await my.query('create table shop.events (j json, n int)');
    await my.query(
      `insert into shop.events values ('{"a":[1.5],"b":1}', 1), ('{"a": [15e-1], "b": 1}', 1), ('[ ]', 2)`,
    );
    const config = pipeline('postgres', ['shop.events']).config;
    expect((await verifyPipeline(config, { maxDiffs: 20 })).tables[0]).toMatchObject({ status: 'equal', key: null });
    await my.query(`update shop.events set j = '{"a": [1.5], "b": 2}' where j = '{"a":[1.5],"b":1}'`);
    const changed = await verifyPipeline(config, { maxDiffs: 20 });
    expect(changed.tables[0]!.status).toBe('different');
    // In either order: the order of differences follows the row hashes, not the meaning.
    expect(changed.tables[0]!.differences).toHaveLength(2);
    expect(changed.tables[0]!.differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          kind: 'extra_at_target',
          source_count: 0,
          target_count: 1,
          target: { j: '{"a": [1.5], "b": 2}', n: '1' },
        }),
        expect.objectContaining({ kind: 'missing_at_target', source_count: 2, target_count: 1 }),
      ]),
    );
  });
});
