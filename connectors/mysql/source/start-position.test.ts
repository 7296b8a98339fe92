import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testContext } from '../../../test/fixtures/change-events.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { startPostgres } from '../../../test/harness/postgres.ts';
import { mysqlRowDigest, pgRowDigest } from '../../../test/harness/table-digest.ts';
import { postgresTargetConfig } from '../../postgres/sink/config.ts';
import { PostgresTarget } from '../../postgres/sink/target.ts';
import type { MysqlSourceConfigInput } from './config.ts';
import { mysqlSourcePipeline } from './source.test-support.ts';

/**
 * A MySQL/MariaDB pipeline whose start position exists nowhere but in its checkpoint: stopped before its first change,
 * or in the middle of its snapshot, it must resume where it was, so what changed while it was stopped arrives. Judged
 * by row digests each table's server computes, source against target (a MySQL target on the same server, which keeps
 * the checkpoint in the target database; a PostgreSQL target, which keeps it there, for the first case too).
 */
describe.each(mysqlFlavors())('MySQL source: the start position is durable ($name)', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const started: { stop(): Promise<void> }[] = [];
  /** Every pipeline a test started is stopped, also when the test failed. */
  async function stopAll(): Promise<void> {
    await Promise.all(started.splice(0).map((p) => p.stop()));
  }

  function start(db: string, extra: Partial<MysqlSourceConfigInput>, pgTargetUrl?: string) {
    const ctx = testContext(db);
    const pipeline = mysqlSourcePipeline(server, db, ctx, {
      source: extra,
      target: pgTargetUrl
        ? () => new PostgresTarget(postgresTargetConfig.parse({ type: 'postgres', url: pgTargetUrl }), ctx)
        : undefined,
    });
    let failure: unknown = null;
    const running = pipeline.run().catch((err) => {
      failure = err;
    });
    let stopped = false;
    const handle = {
      pipeline,
      logs: ctx.logs,
      failure: () => failure,
      async stop() {
        if (stopped) return;
        stopped = true;
        pipeline.stop();
        await running;
      },
    };
    started.push(handle);
    return handle;
  }

  const digest = (db: string, table: string, columns: string[]) =>
    mysqlRowDigest((sql) => server.query(sql, [], db), `\`${table}\``, columns);

  async function targetRows(db: string, table: string): Promise<number> {
    const rows = await server
      .query<{ n: number }>(`SELECT COUNT(*) AS n FROM \`${table}\``, [], `${db}_dst`)
      .catch(() => [{ n: 0 }]);
    return Number(rows[0]!.n);
  }

  /** Waits until the target's digest of each table equals the source's; returns both sides. */
  async function settle(db: string, tables: Record<string, string[]>, timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const sides = await Promise.all(
        Object.entries(tables).map(async ([table, cols]) => ({
          table,
          source: await digest(db, table, cols),
          target: await digest(`${db}_dst`, table, cols).catch(() => null),
        })),
      );
      if (sides.every((s) => s.target && s.target.sum === s.source.sum && s.target.rows === s.source.rows))
        return sides;
      if (Date.now() > deadline) return sides;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('snapshot never: started on a quiet database and stopped before any change, the restart delivers what was written while stopped', {
    timeout: 120_000,
  }, async () => {
    const db = 'quiet_start';
    await server.createDatabase(db);
    await server.createDatabase(`${db}_dst`);
    await server.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)', [], db);
    await server.query('CREATE TABLE ledger (v INT)', [], db);
    try {
      const first = start(db, { snapshot: 'never' });
      await waitFor('the pipeline to run', () => first.pipeline.state.status === 'running');
      await first.stop();
      expect(first.failure()).toBeNull();
      // Written while no pipeline runs: only the saved start position can bring these to the target.
      await server.query('INSERT INTO t VALUES (1, 1), (2, 2), (3, 3)', [], db);
      await server.query('INSERT INTO ledger VALUES (7), (7), (8)', [], db);
      await server.query('UPDATE t SET v = 20 WHERE id = 2', [], db);
      const second = start(db, { snapshot: 'never' });
      await waitFor('the pipeline to run again', () => second.pipeline.state.status === 'running');
      await server.query('INSERT INTO t VALUES (4, 4)', [], db);
      const sides = await settle(db, { t: ['id', 'v'], ledger: ['v'] });
      expect(second.failure()).toBeNull();
      for (const side of sides) expect(side.target, side.table).toEqual(side.source);
      expect(sides.find((s) => s.table === 't')!.source.rows).toBe(4);
      expect(sides.find((s) => s.table === 'ledger')!.source.rows).toBe(3);
    } finally {
      await stopAll();
    }
  });

  it('a stop in the middle of the snapshot: the restart resumes after the durable chunks and ends equal, rows deleted meanwhile gone and keyless rows not doubled', {
    timeout: 120_000,
  }, async () => {
    const db = 'stop_in_snapshot';
    await server.createDatabase(db);
    await server.createDatabase(`${db}_dst`);
    const rows = 200_000;
    await server.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)', [], db);
    await server.query('CREATE TABLE ledger (v INT)', [], db);
    await server.query(`INSERT INTO ledger SELECT seq % 100 FROM ${server.series(1, 2000)}`, [], db);
    await server.query(`INSERT INTO t SELECT seq, seq FROM ${server.series(1, rows)}`, [], db);
    try {
      const first = start(db, { snapshot: 'initial', snapshot_chunk_rows: 1000 });
      const copied = () =>
        (
          first.pipeline.state.checkpoint?.state?.snapshot as
            | { pending?: { table: string; rows: number; lastKey: unknown }[] }
            | undefined
        )?.pending?.find((p) => p.table === `${db}.t` && p.lastKey !== null);
      // Stopped once chunks of the large table are durable.
      await waitFor('chunks of t durable', () => (copied()?.rows ?? 0) >= 5000);
      await first.stop();
      expect(first.failure()).toBeNull();
      // The stop landed inside the snapshot: it never finished, and the durable chunks are at the target.
      expect(first.logs.filter((l) => l.event === 'snapshot_finished')).toEqual([]);
      const durable = copied()!;
      expect(first.pipeline.state.checkpoint?.state?.snapshot).toMatchObject({ initial: true });
      expect(durable.rows).toBeLessThan(rows);
      expect(await targetRows(db, 't')).toBe(durable.rows);
      // While stopped: rows deleted, updated and added, keyless rows added.
      await server.query('DELETE FROM t WHERE id <= 500 OR id > 199000', [], db);
      await server.query('UPDATE t SET v = -v WHERE id BETWEEN 501 AND 600', [], db);
      await server.query(`INSERT INTO t SELECT seq, seq FROM ${server.series(rows + 1, rows + 100)}`, [], db);
      await server.query('INSERT INTO ledger VALUES (1), (1)', [], db);
      const second = start(db, { snapshot: 'initial', snapshot_chunk_rows: 1000 });
      await waitFor('the copy to end', () =>
        second.logs.some((l) => l.event === 'incremental_snapshot_table_done' && l.table === `${db}.t`),
      );
      // It went on after the durable rows instead of copying t again.
      expect(
        second.logs.find((l) => l.event === 'incremental_snapshot_table_started' && l.table === `${db}.t`),
      ).toMatchObject({ rows_done: durable.rows });
      await server.query('INSERT INTO ledger VALUES (3)', [], db);
      const sides = await settle(db, { t: ['id', 'v'], ledger: ['v'] });
      expect(second.failure()).toBeNull();
      for (const side of sides) expect(side.target, side.table).toEqual(side.source);
      expect(sides.find((s) => s.table === 'ledger')!.source.rows).toBe(2003);
    } finally {
      await stopAll();
    }
  });

  it('snapshot never into a PostgreSQL target (which keeps the checkpoint): stopped before any change, the restart delivers what was written while stopped', {
    timeout: 120_000,
  }, async () => {
    const db = 'quiet_pg';
    const pg = await startPostgres();
    try {
      const targetUrl = await pg.createDatabase('quiet_pg_dst');
      await server.createDatabase(db);
      await server.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)', [], db);
      await server.query('CREATE TABLE ledger (v INT)', [], db);
      const first = start(db, { snapshot: 'never' }, targetUrl);
      await waitFor('the pipeline to run', () => first.pipeline.state.status === 'running');
      await first.stop();
      expect(first.failure()).toBeNull();
      await server.query('INSERT INTO t VALUES (1, 1), (2, 2), (3, 3)', [], db);
      await server.query('INSERT INTO ledger VALUES (7), (7), (8)', [], db);
      await server.query('UPDATE t SET v = 20 WHERE id = 2', [], db);
      const second = start(db, { snapshot: 'never' }, targetUrl);
      await waitFor('the pipeline to run again', () => second.pipeline.state.status === 'running');
      await server.query('INSERT INTO t VALUES (4, 4)', [], db);
      const tables: [string, string[]][] = [
        ['t', ['id', 'v']],
        ['ledger', ['v']],
      ];
      const compare = () =>
        Promise.all(
          tables.map(async ([table, cols]) => ({
            table,
            source: await digest(db, table, cols),
            target: await pgRowDigest(targetUrl, `"${db}"."${table}"`, cols).catch(() => null),
          })),
        );
      let sides = await compare();
      const deadline = Date.now() + 60_000;
      while (!sides.every((x) => JSON.stringify(x.source) === JSON.stringify(x.target)) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        sides = await compare();
      }
      expect(second.failure()).toBeNull();
      for (const side of sides) expect(side.target, side.table).toEqual(side.source);
      expect(sides.map((x) => x.source.rows)).toEqual([4, 3]);
    } finally {
      await stopAll();
      await pg.stop();
    }
  });
});
