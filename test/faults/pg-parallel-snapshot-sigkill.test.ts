import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { waitForEqualTables } from '../harness/table-digest.ts';
import {
  killResumedCopies,
  PGBENCH_TABLES,
  pgbenchInit,
  pgbenchRun,
  Replicator,
  seededRandom,
  sleep,
  waitUntil,
  writePipelineConfig,
} from './fault-kit.ts';

const ACCOUNTS = 'public.pgbench_accounts';
const SCALE = 3; // 300,000 accounts
const CHUNK_ROWS = 5000;
const PARALLELISM = 4;
/** Batches handed to the target and not yet durable (set, as the bound below depends on it). */
const IN_FLIGHT = 4;
/**
 * Snapshot batches in flight are bounded by bytes alone: about 4 of them (a batch of 5,000 accounts rows counts about
 * 1.5 MB, the size of its rows as events).
 */
const IN_FLIGHT_BYTES = 6 * 1024 * 1024;
/** Most chunks a kill may cost: being read, read but not durable yet (read-ahead queue, batches in flight). */
const MAX_CHUNKS_REREAD = 12;

interface DurableSnapshot {
  initial: boolean;
  /** Rows of pgbench_accounts the checkpoint counts as copied (all of them once the table is done). */
  accountsRows: number;
  accountsDone: boolean;
  pending: number;
}

/**
 * The initial snapshot of pgbench tables (pgbench_accounts in many key-range chunks, read on several connections
 * under one exported snapshot; pgbench_history without a key) runs while pgbench writes, and the replicator is
 * SIGKILLed in the middle of it and again during the resumed copy: each start resumes each table after the last chunk
 * the target's checkpoint holds, the rows read again are bounded by the chunks that were in flight, and source and
 * target end equal by digests computed in each database.
 */
describe('fault: SIGKILL during a parallel initial snapshot under pgbench', () => {
  let server: PgServer;
  let dir: string;
  let sourceUrl: string;
  let targetUrl: string;

  beforeAll(async () => {
    server = await startPostgres();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-fault-parallel-'));
    sourceUrl = await server.createDatabase('fp_src');
    targetUrl = await server.createDatabase('fp_dst');
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** What the checkpoint stored with the target's data says about the snapshot (null: no checkpoint yet). */
  async function durable(): Promise<DurableSnapshot | null> {
    const rows = await server
      .query<{
        state: { snapshot?: { tables: string[]; pending: { table: string; rows: number }[]; initial?: boolean } };
      }>('fp_dst', "select state from tributary.checkpoints where pipeline = 'fp'")
      .catch(() => []);
    const snapshot = rows[0]?.state?.snapshot;
    if (!snapshot) return null;
    const done = snapshot.tables.includes(ACCOUNTS);
    return {
      initial: snapshot.initial === true,
      accountsDone: done,
      accountsRows: done ? SCALE * 100_000 : (snapshot.pending.find((p) => p.table === ACCOUNTS)?.rows ?? 0),
      pending: snapshot.pending.length,
    };
  }

  it('resumes each table after its last durable chunk, re-reads only the chunks in flight, and ends equal', async () => {
    await pgbenchInit(server, 'fp_src', SCALE);
    // The keyless table holds rows before the copy too (pgbench adds more during it).
    await server.query(
      'fp_src',
      "insert into pgbench_history select 1 + g % 3, 1 + g % 30, g, g % 1000, now(), 'x' from generate_series(1, 30000) g",
    );
    const configFile = path.join(dir, 'pipeline.yaml');
    writePipelineConfig(configFile, {
      name: 'fp',
      source: {
        type: 'postgres',
        url: sourceUrl,
        tables: PGBENCH_TABLES,
        snapshot_chunk_rows: CHUNK_ROWS,
        snapshot_parallelism: PARALLELISM,
      },
      target: { type: 'postgres', url: targetUrl },
      batch: { max_wait_ms: 20, max_in_flight: IN_FLIGHT, max_in_flight_bytes: IN_FLIGHT_BYTES },
      retry: { initial_backoff_ms: 100, max_backoff_ms: 1000 },
    });
    // Debug level for the per-chunk log lines (no row values in them).
    const replicator = new Replicator(configFile, path.join(dir, 'replicator.log'), { TRIBUTARY_LOG_LEVEL: 'debug' });
    const random = seededRandom('parallel-snapshot-sigkill');
    const load = pgbenchRun(server, 'fp_src', 60, 2);
    const schedule: string[] = [];
    try {
      // Kill 1: in the parallel initial snapshot, once checkpoints cover a seeded number of its chunks (2 to 8) of
      // pgbench_accounts (the durable progress moves chunk by chunk while the snapshot runs).
      replicator.start();
      const chunksBeforeKill = 2 + Math.floor(random.next() * 7);
      expect(
        await waitUntil(
          async () => ((await durable())?.accountsRows ?? 0) >= chunksBeforeKill * CHUNK_ROWS,
          120_000,
          20,
        ),
        `a checkpoint of the initial snapshot covering ${chunksBeforeKill} chunks of pgbench_accounts`,
      ).toBe(true);
      const delay1 = Math.floor(random.next() * 300);
      await sleep(delay1);
      const chunkLines = () =>
        replicator.events('snapshot_chunk_read').filter((e) => e.table === ACCOUNTS && e.pipeline === 'fp');
      const readBeforeKill = chunkLines().reduce((sum, e) => sum + Number(e.rows), 0);
      const snapshotDoneBeforeKill = replicator.events('snapshot_done').length;
      await replicator.kill9();
      const atKill = (await durable())!;
      const parallelism = Number(replicator.events('snapshot_started')[0]?.parallelism);
      schedule.push(
        `kill 1 at ${delay1} ms after ${chunksBeforeKill} chunks of ${ACCOUNTS} were durable: initial snapshot ${snapshotDoneBeforeKill ? 'done' : 'running'} with ${parallelism} readers, ${readBeforeKill} rows of ${ACCOUNTS} read in whole chunks, ${atKill.accountsRows} durable`,
      );
      // It landed mid-snapshot: the snapshot had not finished, and the checkpoint is one of the running snapshot.
      expect(snapshotDoneBeforeKill).toBe(0);
      expect(atKill.initial).toBe(true);
      expect(atKill.accountsDone).toBe(false);
      expect(parallelism).toBe(PARALLELISM);
      const reRead = readBeforeKill - atKill.accountsRows;
      expect(reRead).toBeGreaterThanOrEqual(0);
      expect(reRead).toBeLessThanOrEqual(MAX_CHUNKS_REREAD * CHUNK_ROWS);

      // The restart resumes pgbench_accounts exactly after the durable chunks; kill it again during that copy.
      schedule.push(
        ...(await killResumedCopies({
          replicator,
          table: ACCOUNTS,
          durable: async () => {
            const d = await durable();
            return d && { rows: d.accountsRows, done: d.accountsDone };
          },
          durableRows: atKill.accountsRows,
          random,
          maxDelayMs: 500,
          pollMs: 50,
        })),
      );
      if (!replicator.running) replicator.start();
      console.log(`[faults] parallel snapshot schedule:\n  ${schedule.join('\n  ')}`);
      console.log(
        `[faults] parallel snapshot: kill 1 re-read ${reRead} rows of ${ACCOUNTS} (${(reRead / CHUNK_ROWS).toFixed(1)} chunks of ${CHUNK_ROWS}; bound ${MAX_CHUNKS_REREAD} chunks, table ${SCALE * 100_000} rows)`,
      );
      expect(
        await waitUntil(
          async () => {
            const s = await durable();
            return s !== null && !s.initial && s.pending === 0;
          },
          240_000,
          500,
        ),
        'every table copied',
      ).toBe(true);
      await load;
      const result = await waitForEqualTables(sourceUrl, targetUrl, PGBENCH_TABLES, 120_000);
      expect(result).toMatchObject({ equal: true });
      console.log(
        `[faults] parallel snapshot: equal by digests: ${result.tables.map((t) => `${t.table} ${(t.source as { rows: number }).rows} rows`).join(', ')}`,
      );
    } finally {
      await replicator.kill9();
      await load;
    }
  }, 600_000);
});
