import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlSourceConfig } from '../../connectors/mysql/source/config.ts';
import { MysqlSource } from '../../connectors/mysql/source/source.ts';
import { postgresTargetConfig } from '../../connectors/postgres/sink/config.ts';
import { PostgresTarget } from '../../connectors/postgres/sink/target.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { testContext } from '../fixtures/change-events.ts';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';

/**
 * Failover: a pipeline reads the primary, stops; the primary goes away after its replica caught up; the pipeline
 * resumes on the replica from its checkpoint's GTIDs (the replica's binlog files and offsets are its own). The
 * target ends equal to the replica, judged by SQL run in each database (row count and a sum of per-row SHA-256
 * slices).
 */
describe.each(mysqlFlavors())('GTID resume on a replica after failover ($name)', (flavor) => {
  let primary: MysqlServer;
  let replica: MysqlServer;
  let target: PgServer;
  beforeAll(async () => {
    [primary, replica, target] = await Promise.all([
      flavor.start({ throwaway: true }),
      // The replica logs what it applies (MySQL does by default), so a reader can resume there by GTID.
      flavor.start({ options: { 'server-id': 2, ...(flavor.name === 'mysql' ? {} : { 'log-slave-updates': '' }) } }),
      startPostgres(),
    ]);
    await replica.replicateFrom(primary);
  });
  afterAll(async () => {
    await Promise.all([primary?.stop(), replica?.stop(), target?.stop()]);
  });

  function run(server: MysqlServer, targetUrl: string) {
    const ctx = testContext('failover');
    const pipeline = new Pipeline({
      name: 'failover',
      createParts: () => {
        const t = new PostgresTarget(postgresTargetConfig.parse({ type: 'postgres', url: targetUrl }), ctx);
        const source = new MysqlSource(
          mysqlSourceConfig.parse({ type: 'mysql', url: server.url(), databases: ['fo'], heartbeat_interval_ms: 200 }),
          ctx,
          { batch: { max_events: 500, max_bytes: 4 * 1024 * 1024, max_wait_ms: 20 } },
        );
        return { source, target: t };
      },
      maxInFlight: 4,
      maxInFlightBytes: 64 * 1024 * 1024,
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
      logger: ctx.logger,
    });
    const running = pipeline.run().catch(() => undefined);
    return {
      ctx,
      pipeline,
      stop: async () => {
        pipeline.stop();
        await running;
      },
    };
  }

  const ROW = "CONCAT(id, ':', COALESCE(v, '~'))";
  async function sourceDigest(server: MysqlServer): Promise<string> {
    const [r] = await server.query<{ n: string; s: string }>(
      `SELECT CAST(COUNT(*) AS CHAR) AS n, CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(SHA2(${ROW}, 256), 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) AS s FROM fo.t`,
    );
    return `${r!.n}/${r!.s}`;
  }
  async function targetDigest(url: string): Promise<string> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query(
        `SELECT count(*)::text AS n, coalesce(sum(('x' || substr(encode(sha256(convert_to(id || ':' || coalesce(v, '~'), 'UTF8')), 'hex'), 1, 15))::bit(60)::bigint), 0)::text AS s FROM fo.t`,
      );
      return `${rows[0].n}/${rows[0].s}`;
    } catch {
      return 'none';
    } finally {
      await client.end();
    }
  }
  async function until(what: string, check: () => Promise<boolean>, logs: Record<string, unknown>[]) {
    const deadline = Date.now() + 60_000;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) {
        const problems = logs.filter((l) => Number(l.level) >= 40);
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(problems.slice(-3))}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('resumes on the replica from the GTIDs the primary gave and ends equal', async () => {
    await primary.query('CREATE DATABASE fo');
    await primary.query('CREATE TABLE fo.t (id INT PRIMARY KEY, v VARCHAR(40))');
    await primary.query(`INSERT INTO fo.t SELECT seq, CONCAT('snap ', seq) FROM ${primary.series(1, 100)}`, [], 'fo');
    const targetUrl = await target.createDatabase('fo_dst');

    let p = run(primary, targetUrl);
    try {
      await until(
        'the snapshot',
        async () => (await targetDigest(targetUrl)) === (await sourceDigest(primary)),
        p.ctx.logs,
      );
      await primary.query(
        `INSERT INTO fo.t SELECT seq, CONCAT('stream ', seq) FROM ${primary.series(101, 200)}`,
        [],
        'fo',
      );
      await primary.query("UPDATE fo.t SET v = 'updated' WHERE id <= 10");
      await until(
        'the stream',
        async () => (await targetDigest(targetUrl)) === (await sourceDigest(primary)),
        p.ctx.logs,
      );
    } finally {
      await p.stop();
    }
    const checkpoint = p.pipeline.state.checkpoint;
    expect(checkpoint?.position.kind === 'mysql' && checkpoint.position.gtidSet).toBeTruthy();

    // While the pipeline is down: more on the primary, which the replica receives; then the primary is gone.
    await primary.query(
      `INSERT INTO fo.t SELECT seq, CONCAT('while down ', seq) FROM ${primary.series(201, 300)}`,
      [],
      'fo',
    );
    await primary.query('DELETE FROM fo.t WHERE id BETWEEN 50 AND 59');
    await replica.caughtUpWith(primary);
    await primary.stop();

    p = run(replica, targetUrl);
    try {
      // The replica takes writes of its own after the failover.
      await replica.query(
        `INSERT INTO fo.t SELECT seq, CONCAT('on the replica ', seq) FROM ${replica.series(301, 350)}`,
        [],
        'fo',
      );
      await until(
        'the target to equal the replica',
        async () => (await targetDigest(targetUrl)) === (await sourceDigest(replica)),
        p.ctx.logs,
      );
      const opened = p.ctx.logs.find((l) => l.event === 'mysql_source_opened');
      expect(opened?.gtid).toBeTruthy(); // resumed by GTIDs, not by the primary's file and offset
      expect(await sourceDigest(replica)).toMatch(/^340\//);
    } finally {
      await p.stop();
    }
  });
});
