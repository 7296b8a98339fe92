import { describe, expect, it } from 'vitest';
import { pgTableDigest, waitForEqualTables } from '../harness/table-digest.ts';
import { LONG, PGBENCH_TABLES, pgbenchRun, pgPairScenario, runVerify, sleep, startStreaming } from './fault-kit.ts';

/**
 * Fault 2: the SOURCE PostgreSQL server restarts (clean shutdown, start) while the replicator streams a pgbench
 * load. The replication connection drops; the pipeline classifies that as retryable and restarts from its
 * checkpoint on its own (no operator, no process restart), and the tables end equal. Source and target are separate
 * throwaway servers so only the source goes down.
 */
describe('fault: source PostgreSQL restarts while streaming under load', () => {
  const scenario = pgPairScenario('srcrestart', 'fs_src', 'fs_dst');

  it('retries by itself and ends equal', { timeout: 240_000 }, async () => {
    const started = Date.now();
    const { source, sourceUrl, targetUrl } = scenario;
    const { configFile, replicator } = await startStreaming(scenario, {
      name: 'srcrestart',
      retry: { initial_backoff_ms: 200, max_backoff_ms: 2000 },
    });

    const restarts = LONG ? 4 : 2;
    const segmentSeconds = LONG ? 20 : 6;
    let transactionsBeforeLast = 0;
    for (let i = 0; i < restarts; i++) {
      // A load whose clients are cut off by the restart: pgbench's failure is expected here.
      const load = pgbenchRun(source, 'fs_src', segmentSeconds * 2);
      await sleep(segmentSeconds * 1000);
      await source.restart!();
      await load;
      expect(replicator.running, replicator.log().slice(-4000)).toBe(true);
      transactionsBeforeLast = (await pgTableDigest(sourceUrl, 'public.pgbench_history')).rows;
    }
    // Load after the last restart: streaming resumed.
    const after = await pgbenchRun(source, 'fs_src', segmentSeconds);
    expect(after.ok, after.output).toBe(true);

    const comparison = await waitForEqualTables(sourceUrl, targetUrl, PGBENCH_TABLES, 120_000);
    expect(replicator.running, replicator.log().slice(-4000)).toBe(true);
    const exitCode = await replicator.stop();
    if (!comparison.equal) console.error(replicator.log().slice(-8000));
    expect(comparison.equal, JSON.stringify(comparison.tables, null, 2)).toBe(true);
    expect(exitCode).toBe(0);

    const history = comparison.tables.find((t) => t.table === 'public.pgbench_history')!.source as { rows: number };
    expect(history.rows).toBeGreaterThan(transactionsBeforeLast);
    // The pipeline itself retried (one process throughout), once or more per restart.
    const retries = replicator.events('pipeline_retrying');
    expect(replicator.starts).toBe(1);
    expect(retries.length).toBeGreaterThanOrEqual(restarts);
    expect(replicator.events('pipeline_failed')).toEqual([]);

    const verify = await runVerify(configFile);
    expect(verify.code, verify.output).toBe(0);
    console.info(
      `[faults] source restart: ${restarts} restarts, ${retries.length} pipeline retries, ${history.rows} pgbench transactions, verify exit ${verify.code}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  });
});
