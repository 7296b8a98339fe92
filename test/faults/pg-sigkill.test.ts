import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { waitForEqualTables } from '../harness/table-digest.ts';
import {
  LONG,
  PGBENCH_TABLES,
  pgbenchInit,
  pgbenchRun,
  Replicator,
  runVerify,
  seededRandom,
  sleep,
  writePipelineConfig,
} from './fault-kit.ts';

/**
 * Fault 1: the replicator is SIGKILLed at random moments, at least ten times, during a pgbench load
 * (PostgreSQL -> PostgreSQL). Some runs are killed a few hundred milliseconds after start (during startup or the
 * initial snapshot), others after seconds of streaming. Afterwards source and target are equal.
 */
describe('fault: SIGKILL the replicator at random moments under pgbench', () => {
  let server: PgServer;
  let dir: string;
  let sourceUrl: string;
  let targetUrl: string;

  beforeAll(async () => {
    server = await startPostgres();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-fault-kill-'));
    sourceUrl = await server.createDatabase('fk_src');
    targetUrl = await server.createDatabase('fk_dst');
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('ends equal after 10+ kills, some during startup and snapshot', { timeout: 240_000 }, async () => {
    const started = Date.now();
    await pgbenchInit(server, 'fk_src', LONG ? 5 : 1);
    const configFile = path.join(dir, 'pipeline.yaml');
    writePipelineConfig(configFile, {
      name: 'kills',
      source: { type: 'postgres', url: sourceUrl, tables: PGBENCH_TABLES, snapshot_chunk_rows: 5000 },
      target: { type: 'postgres', url: targetUrl },
      batch: { max_wait_ms: 20 },
      retry: { initial_backoff_ms: 100, max_backoff_ms: 1000 },
    });
    const replicator = new Replicator(configFile, path.join(dir, 'replicator.log'));
    const random = seededRandom('sigkill schedule');

    // Run lengths before each kill: the first ones are short (startup, snapshot), then a random mix.
    const kills = LONG ? 30 : 12;
    const schedule = [300, 700, 1200];
    while (schedule.length < kills) {
      const r = random.next();
      schedule.push(r < 0.3 ? 200 + Math.floor(random.next() * 600) : 800 + Math.floor(random.next() * 2700));
    }
    const loadSeconds = Math.ceil(schedule.reduce((a, b) => a + b + 250, 0) / 1000) + 2;
    console.info(`[faults] sigkill schedule (ms): ${schedule.join(', ')}; pgbench ${loadSeconds} s`);

    replicator.start();
    // The first kills hit the initial snapshot: the load starts once the replicator was killed there at least once.
    let load: Promise<{ ok: boolean; output: string }> | undefined;
    for (const [i, runMs] of schedule.entries()) {
      await sleep(runMs);
      await replicator.kill9();
      if (i === 0) load = pgbenchRun(server, 'fk_src', loadSeconds);
      await sleep(50 + Math.floor(random.next() * 300));
      replicator.start();
    }
    const loadResult = await load!;
    expect(loadResult.ok, loadResult.output).toBe(true);

    const comparison = await waitForEqualTables(sourceUrl, targetUrl, PGBENCH_TABLES, 120_000);
    const exitCode = await replicator.stop();
    if (!comparison.equal) console.error(replicator.log().slice(-8000));
    expect(comparison.equal, JSON.stringify(comparison.tables, null, 2)).toBe(true);
    expect(exitCode).toBe(0);
    expect(replicator.starts).toBe(kills + 1);
    const history = comparison.tables.find((t) => t.table === 'public.pgbench_history')!.source as { rows: number };
    expect(history.rows).toBeGreaterThan(1000);

    // How many runs began before a streaming checkpoint existed (killed in startup or snapshot).
    const phases = replicator.events('pipeline_starting').map((e) => String(e.phase));
    console.info(`[faults] sigkill: phase at each start: ${phases.join(', ')}`);
    expect(phases.filter((p) => p !== 'stream').length).toBeGreaterThanOrEqual(2);

    const verify = await runVerify(configFile);
    console.info(`[faults] sigkill: tributary verify exit ${verify.code}`);
    expect(verify.code, verify.output).not.toBe(1);
    console.info(
      `[faults] sigkill: ${kills} kills, ${history.rows} pgbench transactions, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  });
});
