import { describe, expect, it } from 'vitest';
import { pgTableDigest, waitForEqualTables } from '../harness/table-digest.ts';
import {
  LONG,
  PGBENCH_TABLES,
  PgOutage,
  pgbenchRun,
  pgPairScenario,
  runVerify,
  sleep,
  startStreaming,
} from './fault-kit.ts';

/** Peak RSS allowed during the outage. Node with tsx idles near 150 MiB; a leak or unbounded buffer goes far past. */
const RSS_LIMIT_KB = 400 * 1024;

/**
 * Fault 3: the TARGET PostgreSQL is down for 30 s while pgbench writes to the source. The replicator stays up
 * (retrying with backoff), its memory stays bounded (VmRSS sampled from /proc), it resumes by itself when the
 * target is back, and the tables end equal.
 */
describe('fault: target PostgreSQL down for 30 s under load', () => {
  const scenario = pgPairScenario('tgtdown', 'ft_src', 'ft_dst');

  it('stays up with bounded memory, resumes by itself, ends equal', { timeout: 240_000 }, async () => {
    const started = Date.now();
    const { source, target, sourceUrl, targetUrl } = scenario;
    const { configFile, replicator } = await startStreaming(scenario, {
      name: 'tgtdown',
      target: { connect_timeout_ms: 2000 },
      retry: { initial_backoff_ms: 200, max_backoff_ms: 3000 },
    });

    const outageMs = LONG ? 120_000 : 30_000;
    const load = pgbenchRun(source, 'ft_src', Math.ceil(outageMs / 1000) + 10);
    let samples: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const kb = replicator.rssKb();
        if (kb !== undefined) samples.push(kb);
        await sleep(250);
      }
    })();

    await sleep(4000);
    const beforeOutage = Math.max(...samples);
    samples = [];
    const outage = new PgOutage(target);
    await outage.stop();
    const downAt = Date.now();
    let aliveThroughout = true;
    while (Date.now() - downAt < outageMs) {
      await sleep(500);
      if (!replicator.running) aliveThroughout = false;
    }
    await outage.start();
    const outagePeak = Math.max(...samples);
    const sourceHistoryAtRecovery = (await pgTableDigest(sourceUrl, 'public.pgbench_history')).rows;

    const loadResult = await load;
    expect(loadResult.ok, loadResult.output).toBe(true);
    const comparison = await waitForEqualTables(sourceUrl, targetUrl, PGBENCH_TABLES, 120_000);
    sampling = false;
    await sampler;
    const exitCode = await replicator.stop();
    if (!comparison.equal) console.error(replicator.log().slice(-8000));

    const retries = replicator.events('pipeline_retrying');
    console.info(
      `[faults] target outage: ${outageMs / 1000} s down, RSS before ${(beforeOutage / 1024).toFixed(0)} MiB, peak during outage ${(outagePeak / 1024).toFixed(0)} MiB (limit ${RSS_LIMIT_KB / 1024} MiB), ${retries.length} pipeline retries, ${sourceHistoryAtRecovery} source transactions when the target came back`,
    );
    expect(aliveThroughout, replicator.log().slice(-4000)).toBe(true);
    expect(replicator.starts).toBe(1);
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(outagePeak).toBeLessThan(RSS_LIMIT_KB);
    expect(comparison.equal, JSON.stringify(comparison.tables, null, 2)).toBe(true);
    expect(exitCode).toBe(0);

    const verify = await runVerify(configFile);
    expect(verify.code, verify.output).toBe(0);
    console.info(
      `[faults] target outage: verify exit ${verify.code}, ${((Date.now() - started) / 1000).toFixed(1)} s in all`,
    );
  });
});
