import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testContext } from '../../../test/fixtures/change-events.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { mysqlSourcePipeline } from './source.test-support.ts';

/** Transactions the server has logged: the sum of its GTID sequence numbers (MariaDB) or GTID intervals (MySQL). */
async function loggedTransactions(server: MysqlServer): Promise<number> {
  if (server.flavor === 'mariadb') {
    const [r] = await server.query<{ g: string }>('SELECT @@GLOBAL.gtid_binlog_pos AS g');
    return String(r!.g)
      .split(',')
      .filter((p) => p.trim() !== '')
      .reduce((n, p) => n + Number(p.trim().split('-')[2]), 0);
  }
  const [r] = await server.query<{ g: string }>('SELECT @@GLOBAL.gtid_executed AS g');
  let n = 0;
  for (const m of String(r!.g).matchAll(/:(\d+)(?:-(\d+))?/g)) n += Number(m[2] ?? m[1]) - Number(m[1]) + 1;
  return n;
}

/**
 * With the target on the source's server, every checkpoint the target commits is a transaction the binlog reader
 * reads back: idle, that must not become a loop. At most one heartbeat checkpoint per heartbeat interval, counted by
 * the transactions the server logs.
 */
describe.each(mysqlFlavors())('MySQL source idle beside its own target ($name)', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('an idle pipeline commits at most one checkpoint per heartbeat interval on the server it reads', {
    timeout: 60_000,
  }, async () => {
    const db = 'idle_src';
    await server.createDatabase(db);
    await server.createDatabase(`${db}_dst`);
    await server.query('CREATE TABLE t (id INT PRIMARY KEY)', [], db);
    await server.query('INSERT INTO t VALUES (1)', [], db);
    const ctx = testContext(db);
    const intervalMs = 500;
    const pipeline = mysqlSourcePipeline(server, db, ctx, {
      source: { heartbeat_interval_ms: intervalMs },
      batch: { max_wait_ms: 20 },
    });
    let failure: unknown = null;
    const running = pipeline.run().catch((err) => {
      failure = err;
    });
    try {
      const deadline = Date.now() + 30_000;
      while (pipeline.state.phase !== 'stream' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(pipeline.state.phase).toBe('stream');
      await new Promise((r) => setTimeout(r, 1000));
      const before = await loggedTransactions(server);
      const idleMs = 5000;
      await new Promise((r) => setTimeout(r, idleMs));
      const logged = (await loggedTransactions(server)) - before;
      // One heartbeat checkpoint per interval, and a little slack for timers.
      expect(logged).toBeLessThanOrEqual(idleMs / intervalMs + 2);
      expect(failure).toBeNull();
    } finally {
      pipeline.stop();
      await running;
    }
  });
});
