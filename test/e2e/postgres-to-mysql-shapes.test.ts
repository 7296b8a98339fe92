import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { Daemon } from '../../src/daemon.ts';
import { createLogger } from '../../src/observability/logger.ts';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';

/**
 * PostgreSQL -> MySQL target shapes that once landed wrong or stopped for good: keyless rows told apart only by a
 * FLOAT/DOUBLE column, TRUNCATE of tables a foreign key links at the target, and a REPLICA IDENTITY USING INDEX on a
 * table that also has a primary key. Each side's rows are read by its own server (values rounded there), then
 * compared as sorted lists.
 */

interface Run {
  daemon: Daemon;
  ended: Promise<unknown>;
}

describe.each(mysqlFlavors())('PostgreSQL -> MySQL target shapes ($name)', (flavor) => {
  let pgServer: PgServer;
  let myServer: MysqlServer;
  const runs: Run[] = [];
  beforeAll(async () => {
    [pgServer, myServer] = await Promise.all([startPostgres(), flavor.start()]);
  });
  afterEach(async () => {
    // Every pipeline a test started stops, also when the test failed.
    await Promise.all(runs.splice(0).map((r) => stop(r)));
  });
  afterAll(async () => {
    await Promise.all([pgServer?.stop(), myServer?.stop()]);
  });

  function start(name: string, sourceUrl: string, tables: string[], targetDb: string, targetExtra = ''): Run {
    const loaded = parseConfig(
      `pipelines:
  - name: ${name}
    source: { type: postgres, url: "${sourceUrl}", tables: [${tables.join(', ')}] }
    target: { type: mysql, url: "${myServer.url()}", database: ${targetDb}${targetExtra} }
`,
      `${name}.yaml`,
    );
    const daemon = new Daemon(loaded, createLogger({ level: 'error', pretty: false }));
    const ended = daemon.run().then(
      () => null,
      (err: unknown) => err ?? new Error('failed'),
    );
    const run = { daemon, ended };
    runs.push(run);
    return run;
  }

  async function stop(run: Run): Promise<unknown> {
    run.daemon.stop();
    return run.ended;
  }

  /** Waits until both servers return the same rows for their query, failing early when the pipeline stops. */
  async function expectEqual(run: Run, db: string, pgSql: string, targetDb: string, mySql: string) {
    const deadline = Date.now() + 40_000;
    for (;;) {
      const source = (await pgServer.query(db, pgSql)).map((r) => Object.values(r).map(String).join('|')).sort();
      const target = (await myServer.query(mySql, [], targetDb).catch(() => []))
        .map((r) =>
          Object.values(r as object)
            .map(String)
            .join('|'),
        )
        .sort();
      if (JSON.stringify(source) === JSON.stringify(target)) return source;
      const failed = await Promise.race([run.ended, new Promise((r) => setTimeout(() => r(undefined), 300))]);
      if (failed !== undefined && failed !== null) throw failed;
      if (Date.now() > deadline)
        throw new Error(`not equal: source ${JSON.stringify(source)}, target ${JSON.stringify(target)}`);
    }
  }

  it('keyless rows that differ only in a real or double precision column: the row changed is the one the source changed', {
    timeout: 90_000,
  }, async () => {
    const sourceUrl = await pgServer.createDatabase('fl_src');
    await myServer.createDatabase('fl_dst');
    await pgServer.query(
      'fl_src',
      `create table fl (n integer, r real, d double precision);
       alter table fl replica identity full;
       insert into fl values (1, 0.1, 0.5), (1, 0.2, 0.5), (1, 0.1, 0.7), (1, 1.0/3, 2.0/3), (1, 1.0/3, 1.0/7)`,
    );
    const pgRows = 'select n, round(r::numeric, 4) as r, round(d::numeric, 6) as d from fl';
    const myRows = 'select n, cast(round(r, 4) as decimal(10,4)) as r, cast(round(d, 6) as decimal(10,6)) as d from fl';
    const run = start('fl', sourceUrl, ['public.fl'], 'fl_dst');
    await expectEqual(run, 'fl_src', pgRows, 'fl_dst', myRows);
    // Each statement touches one row that another row matches in every column but one float column.
    await pgServer.query('fl_src', 'delete from fl where r = 0.2::real');
    await pgServer.query('fl_src', 'update fl set n = 2 where r = 0.1::real and d = 0.7');
    await pgServer.query('fl_src', 'update fl set n = 3 where d = 1.0/7');
    const rows = await expectEqual(run, 'fl_src', pgRows, 'fl_dst', myRows);
    expect(rows).toEqual(['1|0.1000|0.500000', '1|0.3333|0.666667', '2|0.1000|0.700000', '3|0.3333|0.142857']);
    expect(await stop(run)).toBeNull();
  });

  it('TRUNCATE of two tables a foreign key links at the target empties both', { timeout: 90_000 }, async () => {
    const sourceUrl = await pgServer.createDatabase('fk_src');
    await myServer.createDatabase('fk_dst');
    await pgServer.query(
      'fk_src',
      `create table parent (id integer primary key, v text);
       create table child (id integer primary key, parent_id integer references parent (id), v text);
       insert into parent select g, 'p' || g from generate_series(1, 5) g;
       insert into child select g, g, 'c' || g from generate_series(1, 5) g`,
    );
    const tables = ['public.parent', 'public.child'];
    const pgRows = `select 'p' as t, id, v from parent union all select 'c', id, parent_id || v from child`;
    const myRows = `select 'p' as t, id, v from parent union all select 'c', id, concat(parent_id, v) from child`;
    const first = start('fk', sourceUrl, tables, 'fk_dst');
    await expectEqual(first, 'fk_src', pgRows, 'fk_dst', myRows);
    expect(await stop(first)).toBeNull();
    // The target gets the foreign key while no pipeline holds its tables (a short lock wait: never a hang).
    const conn = await mysql.createConnection({ uri: myServer.url('fk_dst') });
    try {
      await conn.query('SET SESSION lock_wait_timeout = 10');
      await conn.query('ALTER TABLE child ADD CONSTRAINT child_parent FOREIGN KEY (parent_id) REFERENCES parent (id)');
    } finally {
      await conn.end();
    }
    const second = start('fk', sourceUrl, tables, 'fk_dst');
    await pgServer.query(
      'fk_src',
      `truncate parent, child; insert into parent values (7, 'after'); insert into child values (7, 7, 'after')`,
    );
    const rows = await expectEqual(second, 'fk_src', pgRows, 'fk_dst', myRows);
    expect(rows).toEqual(['c|7|7after', 'p|7|after']);
    expect(await stop(second)).toBeNull();
  });

  it('a table keyed by REPLICA IDENTITY USING INDEX that also has a primary key: snapshot and stream agree on the key', {
    timeout: 90_000,
  }, async () => {
    const sourceUrl = await pgServer.createDatabase('ri_src');
    await myServer.createDatabase('ri_dst');
    await pgServer.query(
      'ri_src',
      `create table ri (id integer primary key, code varchar(20) not null, v integer);
       create unique index ri_code on ri (code);
       alter table ri replica identity using index ri_code;
       insert into ri select g, 'c' || g, g from generate_series(1, 20) g`,
    );
    const rowsSql = 'select id, code, v from ri';
    const run = start('ri', sourceUrl, ['public.ri'], 'ri_dst');
    await expectEqual(run, 'ri_src', rowsSql, 'ri_dst', rowsSql);
    await pgServer.query(
      'ri_src',
      "update ri set v = v + 100 where id <= 5; update ri set code = 'x' || code where id = 7",
    );
    await pgServer.query('ri_src', 'delete from ri where id = 9');
    const rows = await expectEqual(run, 'ri_src', rowsSql, 'ri_dst', rowsSql);
    expect(rows).toHaveLength(19);
    expect(rows).toContain('7|xc7|7');
    expect(await stop(run)).toBeNull();
  });

  it('NaN inside a float or numeric array stops naming table and column with the quoted fix; float_nonfinite: "null" stores NULL', {
    timeout: 90_000,
  }, async () => {
    const sourceUrl = await pgServer.createDatabase('nan_src');
    await myServer.createDatabase('nan_dst');
    await myServer.createDatabase('nan_dst2');
    await pgServer.query(
      'nan_src',
      `create table arr (id integer primary key, fa double precision[], na numeric[]);
       insert into arr values (1, '{1.5,2.5}', '{1.25}'), (2, '{1.5,NaN}', '{1.25}'), (3, '{2.5}', '{NaN}')`,
    );
    const strict = start('nan', sourceUrl, ['public.arr'], 'nan_dst');
    const err = await Promise.race([strict.ended, new Promise((r) => setTimeout(() => r('still running'), 40_000))]);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain('inside an array');
    expect((err as Error).message).toContain('table public.arr column fa');
    expect((err as { hint?: string }).hint).toContain('float_nonfinite: "null"');
    // Nothing of the snapshot is at the target: no row holds the text "NaN".
    const stored = await myServer.query('SELECT COUNT(*) AS n FROM arr', [], 'nan_dst').catch(() => [{ n: 0 }]);
    expect(Number(stored[0]!.n)).toBe(0);
    // The fix as the hint writes it, read from YAML: the arrays with NaN become NULL, the others arrive whole.
    const lenient = start('nan2', sourceUrl, ['public.arr'], 'nan_dst2', ', float_nonfinite: "null"');
    const rowsSql = 'select id, fa, na from arr';
    const deadline = Date.now() + 40_000;
    let rows: unknown[] = [];
    while (Date.now() < deadline) {
      rows = await myServer.query(`${rowsSql} order by id`, [], 'nan_dst2').catch(() => []);
      if (rows.length === 3) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(rows).toEqual([
      { id: 1, fa: [1.5, 2.5], na: [1.25] },
      { id: 2, fa: null, na: [1.25] },
      { id: 3, fa: [2.5], na: null },
    ]);
    expect(await stop(lenient)).toBeNull();
  });
});
