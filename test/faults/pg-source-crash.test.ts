import { describe, expect, it } from 'vitest';
import { pgTableDigest, waitForEqualTables } from '../harness/table-digest.ts';
import {
  LONG,
  PGBENCH_TABLES,
  PgOutage,
  pgbenchRun,
  pgPairScenario,
  runVerify,
  seededRandom,
  sleep,
  startStreaming,
} from './fault-kit.ts';

/**
 * The SOURCE PostgreSQL server crashes (`pg_ctl -m immediate`: no shutdown checkpoint, crash recovery on the next
 * start) while pgbench writes and the replicator streams. The replicator is never restarted: the pipeline retries by
 * itself until the server is back, resumes from its checkpoint (the slot's own position may have gone back to the
 * last server checkpoint), and the tables end equal, pgbench_history (no key) included: no change lost or doubled.
 */
describe('fault: source PostgreSQL crashes (immediate stop) under pgbench', () => {
  const scenario = pgPairScenario('srccrash', 'fc_src', 'fc_dst');

  it('the pipeline retries by itself and ends equal', { timeout: 300_000 }, async () => {
    const started = Date.now();
    const { source, sourceUrl, targetUrl } = scenario;
    const { configFile, replicator } = await startStreaming(scenario, {
      name: 'srccrash',
      retry: { initial_backoff_ms: 200, max_backoff_ms: 2000 },
    });
    const random = seededRandom('pg source crash schedule');
    const outage = new PgOutage(source);
    const crashes = LONG ? 4 : 2;
    const schedule: string[] = [];
    for (let i = 0; i < crashes; i++) {
      const loadMs = 3000 + Math.floor(random.next() * 5000);
      const downMs = 500 + Math.floor(random.next() * 3000);
      schedule.push(`${loadMs} ms load, crash, ${downMs} ms down`);
      // pgbench's clients are cut off by the crash: its failure is expected here.
      const load = pgbenchRun(source, 'fc_src', 60);
      await sleep(loadMs);
      const before = (await pgTableDigest(sourceUrl, 'public.pgbench_history')).rows;
      await outage.stop('immediate');
      await load;
      await sleep(downMs);
      await outage.start();
      console.info(`[faults] pg source crash ${i + 1}: ${before}+ pgbench transactions when the server was killed`);
      expect(replicator.running, replicator.log().slice(-4000)).toBe(true);
    }
    console.info(`[faults] pg source crash schedule: ${schedule.join('; ')}`);
    // Load after the last crash: streaming resumed.
    const after = await pgbenchRun(source, 'fc_src', 5);
    expect(after.ok, after.output).toBe(true);

    const comparison = await waitForEqualTables(sourceUrl, targetUrl, PGBENCH_TABLES, 180_000);
    expect(replicator.running, replicator.log().slice(-4000)).toBe(true);
    const exitCode = await replicator.stop();
    if (!comparison.equal) console.error(replicator.log().slice(-8000));
    expect(comparison.equal, JSON.stringify(comparison.tables, null, 2)).toBe(true);
    expect(exitCode).toBe(0);
    const retries = replicator.events('pipeline_retrying');
    expect(replicator.starts).toBe(1);
    expect(retries.length).toBeGreaterThanOrEqual(crashes);
    expect(replicator.events('pipeline_failed')).toEqual([]);
    const verify = await runVerify(configFile);
    expect(verify.code, verify.output).toBe(0);
    const history = comparison.tables.find((t) => t.table === 'public.pgbench_history')!.source as { rows: number };
    console.info(
      `[faults] pg source crash: ${crashes} crashes, ${retries.length} pipeline retries (one process), ${history.rows} pgbench transactions, digests equal, verify exit ${verify.code}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  });
});
