import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
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
  waitUntil,
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
      source: { type: 'postgres', url: sourceUrl, tables: PGBENCH_TABLES, snapshot_chunk_rows: 1000 },
      target: { type: 'postgres', url: targetUrl },
      batch: { max_wait_ms: 20 },
      retry: { initial_backoff_ms: 100, max_backoff_ms: 1000 },
    });
    const replicator = new Replicator(configFile, path.join(dir, 'replicator.log'));
    const random = seededRandom('sigkill schedule');

    // Run lengths before each kill: four short runs die in startup or in the initial snapshot (which resumes after
    // its durable chunks; small chunks keep it going over several runs). Once a run got to stream, random runs of
    // 0.2-4 s: the short ones die while starting up again, the others while streaming.
    const kills = LONG ? 30 : 12;
    const early = [300, 700, 1500, 2500];
    const later: number[] = [];
    while (early.length + later.length < kills) {
      const r = random.next();
      later.push(r < 0.25 ? 200 + Math.floor(random.next() * 800) : 1200 + Math.floor(random.next() * 2800));
    }
    console.info(`[faults] sigkill run lengths (ms): ${early.join(', ')}, (streaming) ${later.join(', ')}`);

    // The load: short pgbench runs back to back from the first kill until the last.
    let loading = true;
    let loadFailure = '';
    let load: Promise<void> = Promise.resolve();
    const startLoad = () => {
      load = (async () => {
        while (loading) {
          const r = await pgbenchRun(server, 'fk_src', 4);
          if (!r.ok) loadFailure ||= r.output;
        }
      })();
    };

    // Where each kill landed, from the target's own checkpoint table (what the next run resumes from).
    const landed: string[] = [];
    const kill = async (runMs: number) => {
      await sleep(runMs);
      await replicator.kill9();
      landed.push(await whereKilled(targetUrl));
      await sleep(50 + Math.floor(random.next() * 300));
      replicator.start();
    };
    replicator.start();
    for (const [i, runMs] of early.entries()) {
      await kill(runMs);
      if (i === 0) startLoad();
    }
    const streaming = await waitUntil(async () => (await whereKilled(targetUrl)) === 'stream', 90_000, 250);
    expect(streaming, replicator.log().slice(-4000)).toBe(true);
    for (const runMs of later) await kill(runMs);
    loading = false;
    await load;
    expect(loadFailure).toBe('');

    const comparison = await waitForEqualTables(sourceUrl, targetUrl, PGBENCH_TABLES, 120_000);
    const exitCode = await replicator.stop();
    if (!comparison.equal) console.error(replicator.log().slice(-8000));
    expect(comparison.equal, JSON.stringify(comparison.tables, null, 2)).toBe(true);
    expect(exitCode).toBe(0);
    expect(replicator.starts).toBe(kills + 1);
    const history = comparison.tables.find((t) => t.table === 'public.pgbench_history')!.source as { rows: number };
    expect(history.rows).toBeGreaterThan(1000);

    console.info(`[faults] sigkill: checkpoint phase at each kill: ${landed.join(', ')}`);
    expect(landed.filter((p) => p === 'stream').length).toBeGreaterThanOrEqual(kills - early.length);
    expect(landed.filter((p) => p !== 'stream').length).toBeGreaterThanOrEqual(2);

    const verify = await runVerify(configFile);
    console.info(`[faults] sigkill: tributary verify exit ${verify.code}`);
    expect(verify.code, verify.output).toBe(0);
    console.info(
      `[faults] sigkill: ${kills} kills, ${history.rows} pgbench transactions, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  });
});

/**
 * The phase the next run resumes from (the target's checkpoint row). Without one the run died in startup or before
 * the snapshot's first chunk was durable; rows already visible would show a partial copy.
 */
async function whereKilled(targetUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: targetUrl });
  await client.connect();
  try {
    const cp = await client
      .query<{ phase: string; initial: boolean | null; pending: number | null }>(
        `select phase, (state->'snapshot'->>'initial')::boolean as initial,
                jsonb_array_length(state->'snapshot'->'pending') as pending
           from tributary.checkpoints where pipeline = 'kills'`,
      )
      .catch(() => ({ rows: [] as { phase: string; initial: boolean | null; pending: number | null }[] }));
    const row = cp.rows[0];
    // A resumable initial snapshot checkpoints its durable chunks while it runs: the phase says stream, the state
    // says which snapshot is still going.
    if (row?.initial) return `snapshot(${row.pending ?? 0} tables partly copied)`;
    if (row) return row.phase;
    const rows = await client
      .query<{ n: string }>('select count(*) as n from public.pgbench_accounts')
      .catch(() => ({ rows: [{ n: '0' }] }));
    return Number(rows.rows[0]!.n) > 0 ? `snapshot(${rows.rows[0]!.n} rows)` : 'none';
  } finally {
    await client.end();
  }
}
