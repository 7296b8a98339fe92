import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlSourceConfig } from '../../connectors/mysql/source/config.ts';
import { MysqlSource } from '../../connectors/mysql/source/source.ts';
import { postgresTargetConfig } from '../../connectors/postgres/sink/config.ts';
import { PostgresTarget } from '../../connectors/postgres/sink/target.ts';
import { CANONICAL_SESSION_OPTIONS } from '../../connectors/postgres/source/catalog.ts';
import { pipelineConfig } from '../../src/config/schema.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { verifyPipeline } from '../../src/verify/verify.ts';
import { testContext } from '../fixtures/change-events.ts';
import { MYSQL_TYPES_COLUMNS, MYSQL_TYPES_DDL, MYSQL_TYPES_VALUES } from '../fixtures/mysql-types.ts';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';

/**
 * MariaDB -> PostgreSQL through the real source, pipeline and target: every type of
 * connectors/mysql/source/types.test.ts (same columns and values), snapshot and streamed rows, an update and a delete,
 * checked value by value against the mapping of docs/type-mapping.md ("From MySQL / MariaDB to PostgreSQL").
 */

/** column -> [PostgreSQL type (format_type), value as PostgreSQL prints it (UTC, ISO, postgres interval style)]. */
const AT_POSTGRES: Record<string, [string, string | null]> = {
  ti: ['smallint', '-128'],
  tiu: ['smallint', '255'],
  si: ['smallint', '-32768'],
  siu: ['integer', '65535'],
  mi: ['integer', '-8388608'],
  miu: ['integer', '16777215'],
  i: ['integer', '-2147483648'],
  iu: ['bigint', '4294967295'],
  bi: ['bigint', '-9223372036854775808'],
  biu: ['numeric(20,0)', '18446744073709551615'],
  d: ['numeric(65,30)', '12345678901234567890123456789012345.123456789012345678901234567890'],
  d2: ['numeric(10,2)', '-12.50'],
  f: ['real', '3.14'],
  db: ['double precision', '0.30000000000000004'],
  b1: ['bit(1)', '1'],
  b10: ['bit(10)', '0101010101'],
  b64: ['bit(64)', '1000000000000000000000000000000000000000000000000000000000000001'],
  bo: ['smallint', '1'],
  dt: ['date', '2024-02-29'],
  dtm0: ['timestamp(0) without time zone', '9999-12-31 23:59:59'],
  dtm3: ['timestamp(3) without time zone', '2024-01-02 03:04:05.678'],
  dtm6: ['timestamp(6) without time zone', '2024-01-02 03:04:05.123456'],
  ts0: ['timestamp(0) with time zone', '2038-01-19 03:14:07+00'],
  ts6: ['timestamp(6) with time zone', '2024-06-01 12:00:00.000001+00'],
  tm: ['interval(0)', '-838:59:59'],
  tm6: ['interval(6)', '12:34:56.789012'],
  tmn: ['interval(3)', '-01:02:03.4'],
  yr: ['smallint', '2155'],
  yr0: ['smallint', '0'],
  c: ['character varying(5)', 'ab'],
  vc: ['character varying(50)', 'héllo 😀 ✓'],
  tx: ['text', 'long\ttext\nline2'],
  l1: ['character varying(20)', 'café'],
  bn: ['bytea', '\\xdeadbe00'],
  vb: ['bytea', '\\x00ff'],
  bl: ['bytea', '\\x0102'],
  en: ['text', 'b'],
  st: ['text', 'x,z'],
  js: ['json', '{"a": 1, "b": [true, null]}'],
  g: ['text', 'LINESTRING(0 0,1 1.5)'],
  pt: ['text', 'POINT(1 -2.25)'],
  mp: ['text', 'MULTIPOINT(1 2,3 4)'],
  zd: ['date', null],
  zdt: ['timestamp(0) without time zone', null],
  zts: ['timestamp(0) with time zone', null],
};
const EXPECTED = Object.fromEntries(Object.entries(AT_POSTGRES).map(([k, [, v]]) => [k, v]));
const ALL_NULL = Object.fromEntries(Object.keys(AT_POSTGRES).map((k) => [k, null]));

describe.each(mysqlFlavors())('$name -> PostgreSQL', (flavor) => {
  let pgServer: PgServer;
  let myServer: MysqlServer;

  beforeAll(async () => {
    [pgServer, myServer] = await Promise.all([startPostgres(), flavor.start()]);
  });
  afterAll(async () => {
    await Promise.all([pgServer?.stop(), myServer?.stop()]);
  });

  async function mysqlSession(database: string): Promise<mysql.Connection> {
    const conn = await mysql.createConnection({ uri: myServer.url(database), multipleStatements: true });
    await conn.query("SET time_zone = '+00:00', sql_mode = ''");
    return conn;
  }

  async function textRows(url: string, sql: string): Promise<Record<string, string | null>[]> {
    const u = new URL(url);
    u.searchParams.set('options', CANONICAL_SESSION_OPTIONS);
    const client = new pg.Client({
      connectionString: u.toString(),
      types: { getTypeParser: () => (v: string) => v },
    } as pg.ClientConfig);
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  }

  async function waitFor(what: string, check: () => Promise<boolean>, ctx: ReturnType<typeof testContext>) {
    const deadline = Date.now() + 60_000;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) {
        const problems = ctx.logs.filter((l) => Number(l.level) >= 40);
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(problems.slice(-3))}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  function startPipeline(name: string, database: string, targetUrl: string, target: Record<string, unknown>) {
    const ctx = testContext(name);
    const pipeline = new Pipeline({
      name,
      createParts: () => {
        const t = new PostgresTarget(postgresTargetConfig.parse({ type: 'postgres', url: targetUrl, ...target }), ctx);
        const source = new MysqlSource(
          mysqlSourceConfig.parse({
            type: 'mysql',
            url: myServer.url(),
            databases: [database],
            heartbeat_interval_ms: 500,
          }),
          ctx,
          { batch: { max_events: 1000, max_bytes: 4 * 1024 * 1024, max_wait_ms: 20 } },
        );
        return { source, target: t };
      },
      maxInFlight: 4,
      maxInFlightBytes: 64 * 1024 * 1024,
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
      logger: ctx.logger,
    });
    // An operator error ends run() with it; the tests read it from pipeline.state.
    const running = pipeline.run().catch(() => undefined);
    const stop = async () => {
      pipeline.stop();
      await running;
    };
    return { ctx, pipeline, stop };
  }

  it('JSON numbers MySQL writes in exponent form arrive equal, and verify calls the tables equal', async () => {
    await myServer.createDatabase('m2p_exp');
    const conn = await mysqlSession('m2p_exp');
    await conn.query('CREATE TABLE docs (id INT PRIMARY KEY, j JSON)');
    const doc = `'{"n": 1.5e3, "m": [1E-2, 2.50], "big": 1e100, "tiny": -2.5e-7}'`;
    await conn.query(`INSERT INTO docs VALUES (1, ${doc})`);
    const targetUrl = await pgServer.createDatabase('m2p_exp_dst');
    const { ctx, stop } = startPipeline('m2pexp', 'm2p_exp', targetUrl, {});
    const count = async () => (await textRows(targetUrl, 'select count(*) as n from m2p_exp.docs'))[0]!.n;
    try {
      await waitFor('snapshot', async () => (await count()) === '1', ctx);
      await conn.query(`INSERT INTO docs VALUES (2, ${doc})`);
      await waitFor('stream', async () => (await count()) === '2', ctx);
    } finally {
      await stop();
    }
    // The judge is PostgreSQL's own jsonb equality: the numbers are the same values, however MySQL wrote them.
    const same = await textRows(
      targetUrl,
      `select id, (j::jsonb = '{"n": 1500, "m": [0.01, 2.5], "big": 1e100, "tiny": -0.00000025}'::jsonb)::text as same
       from m2p_exp.docs order by id`,
    );
    expect(same).toEqual([
      { id: '1', same: 'true' },
      { id: '2', same: 'true' },
    ]);
    const [text] = await conn.query<mysql.RowDataPacket[]>('SELECT CAST(j AS CHAR) AS j FROM docs WHERE id = 1');
    if (flavor.name === 'mysql') expect(text[0]!.j).toMatch(/e\+?100/i); // the source prints an exponent
    const config = pipelineConfig.parse({
      name: 'm2pexp',
      source: { type: 'mysql', url: myServer.url(), databases: ['m2p_exp'] },
      target: { type: 'postgres', url: targetUrl },
    });
    const report = await verifyPipeline(config, { maxDiffs: 10 });
    expect(report.tables[0], JSON.stringify(report)).toMatchObject({ source: 'm2p_exp.docs', status: 'equal' });
    // A real difference is still one.
    await conn.query(`UPDATE docs SET j = JSON_SET(j, '$.n', 1.5e4) WHERE id = 2`);
    const changed = await verifyPipeline(config, { maxDiffs: 10 });
    expect(changed.tables[0]!.status).toBe('different');
  });

  describe('MariaDB -> PostgreSQL: every MySQL type', () => {
    it('creates the mapped types and stores every value as the mapping says (snapshot, stream, update, delete)', async () => {
      await myServer.createDatabase('m2p_src');
      const conn = await mysqlSession('m2p_src');
      await conn.query(MYSQL_TYPES_DDL);
      await conn.query(`INSERT INTO types (id, ${MYSQL_TYPES_COLUMNS}) VALUES (1, ${MYSQL_TYPES_VALUES.slice(1)}`);
      await conn.query('INSERT INTO types (id) VALUES (2)');
      const targetUrl = await pgServer.createDatabase('m2p_dst');
      const { ctx, stop } = startPipeline('m2p', 'm2p_src', targetUrl, { mysql_zero_dates: 'null' });
      const all = () => textRows(targetUrl, 'select * from m2p_src.types order by id');
      const byId = async () => new Map((await all()).map(({ id, ...rest }) => [id, rest]));
      try {
        await waitFor('snapshot', async () => (await all()).length === 2, ctx);
        await conn.query(`INSERT INTO types (id, ${MYSQL_TYPES_COLUMNS}) VALUES (3, ${MYSQL_TYPES_VALUES.slice(1)}`);
        await conn.query('INSERT INTO types (id) VALUES (4)');
        await waitFor('stream', async () => (await all()).length === 4, ctx);

        const types = await textRows(
          targetUrl,
          `select attname as name, format_type(atttypid, atttypmod) as type from pg_attribute
          where attrelid = 'm2p_src.types'::regclass and attnum > 0 and not attisdropped order by attnum`,
        );
        expect(Object.fromEntries(types.map((t) => [t.name, t.type]))).toEqual({
          id: 'integer',
          ...Object.fromEntries(Object.entries(AT_POSTGRES).map(([k, [t]]) => [k, t])),
        });
        const rows = await byId();
        expect(rows.get('1')).toEqual(EXPECTED); // snapshot
        expect(rows.get('3')).toEqual(EXPECTED); // streamed
        expect(rows.get('2')).toEqual(ALL_NULL);
        expect(rows.get('4')).toEqual(ALL_NULL);

        // The zero dates were reported: once per column, and counted.
        const nulled = ctx.logs.filter((l) => l.event === 'target_mysql_zero_date_nulled');
        expect(nulled.map((l) => l.column).sort()).toEqual(['zd', 'zdt', 'zts']);
        expect(nulled.every((l) => Number(l.level) === 40)).toBe(true);
        const counted = ctx.logs.filter((l) => l.event === 'target_mysql_zero_dates_nulled');
        expect(counted[0]?.columns).toMatchObject({ 'm2p_src.types.zd': { total: expect.any(Number) } });
        const lossy = ctx.logs.filter((l) => l.event === 'target_column_mapped_lossy').map((l) => l.column);
        expect(lossy).toEqual(expect.arrayContaining(['en', 'st', 'g', 'tm', 'yr', 'zd']));

        await conn.query(
          `UPDATE types SET tm = '100:00:00.5', tmn = '-00:00:00.001', st = 'x,y,z', en = 'c', biu = 0, b10 = b'1111111111',
           dt = '2024-00-10', zd = '2000-01-31', zts = '1970-01-01 00:00:01', js = '[1, "é"]',
           g = ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'), vc = NULL WHERE id = 3`,
        );
        await conn.query('DELETE FROM types WHERE id = 1');
        await waitFor(
          'update and delete',
          async () => (await all()).length === 3 && (await byId()).get('3')!.st === 'x,y,z',
          ctx,
        );
        const after = await byId();
        expect([...after.keys()]).toEqual(['2', '3', '4']);
        expect(after.get('3')).toEqual({
          ...EXPECTED,
          // TIME(0) from '100:00:00.5': MariaDB truncates the fraction, MySQL rounds it.
          tm: myServer.flavor === 'mysql' ? '100:00:01' : '100:00:00',
          tmn: '-00:00:00.001',
          st: 'x,y,z',
          en: 'c',
          biu: '0',
          b10: '1111111111',
          dt: null,
          zd: '2000-01-31',
          zts: '1970-01-01 00:00:01+00',
          js: '[1, "é"]',
          g: 'POLYGON((0 0,1 0,1 1,0 0))',
          vc: null,
        });
        expect(
          ctx.logs
            .filter((l) => l.event === 'target_mysql_zero_date_nulled')
            .map((l) => l.column)
            .sort(),
        ).toEqual(['dt', 'zd', 'zdt', 'zts']);
      } finally {
        await stop();
        await conn.end();
      }
    });

    it('mysql_zero_dates: error (the default) stops the pipeline naming table, column and key', async () => {
      await myServer.createDatabase('m2p_err');
      const conn = await mysqlSession('m2p_err');
      await conn.query('CREATE TABLE z (id INT PRIMARY KEY, d DATE)');
      await conn.query("INSERT INTO z VALUES (1, '2024-01-01'), (2, '0000-00-00')");
      const targetUrl = await pgServer.createDatabase('m2p_err_dst');
      const { ctx, pipeline, stop } = startPipeline('m2p_err', 'm2p_err', targetUrl, {});
      try {
        await waitFor('failure', async () => pipeline.state.status === 'failed', ctx);
        expect(pipeline.state.lastError).toMatchObject({ kind: 'operator' });
        expect(pipeline.state.lastError!.message).toContain(
          'table m2p_err.z column d (key {"id":"2"}): the MySQL date "0000-00-00" does not exist in PostgreSQL',
        );
        // Nothing of the snapshot transaction was committed.
        expect(await textRows(targetUrl, "select count(*) as n from pg_tables where schemaname = 'm2p_err'")).toEqual([
          { n: '0' },
        ]);
      } finally {
        await stop();
        await conn.end();
      }
    });
  });
});
