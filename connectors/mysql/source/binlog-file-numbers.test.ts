import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testContext } from '../../../test/fixtures/change-events.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { mysqlRowDigest } from '../../../test/harness/table-digest.ts';
import { mysqlSourcePipeline } from './source.test-support.ts';

/**
 * Binlog files are numbered: binlog.1000000 follows binlog.999999, though it sorts before it as text. A server whose
 * binlog numbering starts at 999999 rotates there while a pipeline runs (resumed by file and offset; MySQL without
 * GTIDs, where only the file names order positions), and after a stop and a restart every change is at the target
 * once. Judged by row digests each server computes.
 */
describe.each(mysqlFlavors())('MySQL source across binlog.999999 -> binlog.1000000 ($name)', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start(
      flavor.name === 'mysql'
        ? { options: { 'gtid-mode': 'OFF', 'enforce-gtid-consistency': 'OFF' } }
        : { throwaway: true },
    );
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a rotation past binlog.999999 loses and repeats nothing, across a restart', { timeout: 120_000 }, async () => {
    await server.query(flavor.name === 'mysql' ? 'RESET BINARY LOGS AND GTIDS TO 999999' : 'RESET MASTER TO 999999');
    const db = 'numbers';
    await server.createDatabase(db);
    await server.createDatabase(`${db}_dst`);
    await server.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)', [], db);
    await server.query('CREATE TABLE ledger (v INT)', [], db);
    const fileNow = async () => {
      const [status] = await server.query<{ File: string }>(
        flavor.name === 'mysql' ? 'SHOW BINARY LOG STATUS' : 'SHOW MASTER STATUS',
      );
      return status!.File;
    };
    expect(await fileNow()).toMatch(/\.999999$/);

    const start = () => {
      const ctx = testContext(db);
      const pipeline = mysqlSourcePipeline(server, db, ctx, { source: { snapshot: 'never', resume_by_gtid: false } });
      let failure: unknown = null;
      const running = pipeline.run().catch((err) => {
        failure = err;
      });
      return {
        pipeline,
        failure: () => failure,
        stop: async () => {
          pipeline.stop();
          await running;
        },
      };
    };
    const waitFor = async (cond: () => boolean | Promise<boolean>) => {
      const deadline = Date.now() + 30_000;
      while (!(await cond()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    };
    const tables: [string, string[]][] = [
      ['t', ['id', 'v']],
      ['ledger', ['v']],
    ];
    const sides = async () =>
      Promise.all(
        tables.map(async ([table, cols]) => ({
          table,
          source: await mysqlRowDigest((sql) => server.query(sql, [], db), table, cols),
          target: await mysqlRowDigest((sql) => server.query(sql, [], `${db}_dst`), table, cols).catch(() => null),
        })),
      );
    const equal = async () => (await sides()).every((s) => JSON.stringify(s.source) === JSON.stringify(s.target));

    const first = start();
    try {
      await waitFor(() => first.pipeline.state.status === 'running');
      await server.query('INSERT INTO t VALUES (1, 1), (2, 2)', [], db);
      await server.query('INSERT INTO ledger VALUES (1), (1)', [], db);
      await server.query('FLUSH BINARY LOGS');
      expect(await fileNow()).toMatch(/\.1000000$/);
      await server.query('INSERT INTO t VALUES (3, 3)', [], db);
      await server.query('UPDATE t SET v = 20 WHERE id = 2', [], db);
      await server.query('INSERT INTO ledger VALUES (2)', [], db);
      await waitFor(equal);
      expect(first.failure()).toBeNull();
      for (const side of await sides()) expect(side.target, side.table).toEqual(side.source);
    } finally {
      await first.stop();
    }
    // The checkpoint is in the new file now; changes made while stopped follow it there.
    const [saved] = await server.query<{ p: string }>(
      'SELECT position AS p FROM tributary_checkpoints',
      [],
      `${db}_dst`,
    );
    expect(String(saved?.p)).toContain('.1000000');
    await server.query('INSERT INTO t VALUES (4, 4)', [], db);
    await server.query('DELETE FROM t WHERE id = 1', [], db);
    await server.query('INSERT INTO ledger VALUES (3), (1)', [], db);
    const second = start();
    try {
      await waitFor(() => second.pipeline.state.status === 'running');
      await server.query('INSERT INTO t VALUES (5, 5)', [], db);
      await waitFor(equal);
      expect(second.failure()).toBeNull();
      for (const side of await sides()) expect(side.target, side.table).toEqual(side.source);
      expect((await sides()).map((s) => s.source.rows)).toEqual([4, 5]);
    } finally {
      await second.stop();
    }
  });
});
