import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { waitForEqualTables } from '../harness/table-digest.ts';
import {
  PGBENCH_TABLES,
  pgbenchInit,
  pgbenchRun,
  Replicator,
  seededRandom,
  sleep,
  waitUntil,
  writePipelineConfig,
} from './fault-kit.ts';

/**
 * A table added to a running pipeline's `tables` is copied by an incremental snapshot while pgbench writes to it,
 * and the replicator is SIGKILLed several times in the middle of that copy: each start resumes after the last chunk
 * in the checkpoint, and source and target end equal.
 */
describe('fault: SIGKILL during an incremental snapshot under pgbench', () => {
  let server: PgServer;
  let dir: string;
  let sourceUrl: string;
  let targetUrl: string;

  beforeAll(async () => {
    server = await startPostgres();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-fault-incremental-'));
    sourceUrl = await server.createDatabase('fi_src');
    targetUrl = await server.createDatabase('fi_dst');
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Rows of the incremental snapshot the target's checkpoint says are durable (0 when none). */
  const durableRows = async (): Promise<number> => {
    const client = new pg.Client({ connectionString: targetUrl });
    try {
      await client.connect();
      const r = await client.query<{ state: { snapshot?: { pending?: { rows?: number }[] } } | null }>(
        "select state from tributary.checkpoints where pipeline = 'fi'",
      );
      return Number(r.rows[0]?.state?.snapshot?.pending?.[0]?.rows ?? 0);
    } catch {
      return 0;
    } finally {
      await client.end().catch(() => undefined);
    }
  };

  it('resumes from the last durable chunk after each kill and ends equal', async () => {
    await pgbenchInit(server, 'fi_src', 1);
    const configFile = path.join(dir, 'pipeline.yaml');
    const config = (tables: string[]) =>
      writePipelineConfig(configFile, {
        name: 'fi',
        source: { type: 'postgres', url: sourceUrl, tables, snapshot_chunk_rows: 100 },
        target: { type: 'postgres', url: targetUrl },
        batch: { max_wait_ms: 20 },
        retry: { initial_backoff_ms: 100, max_backoff_ms: 1000 },
      });
    // First without pgbench_accounts.
    config(PGBENCH_TABLES.filter((t) => t !== 'public.pgbench_accounts'));
    const replicator = new Replicator(configFile, path.join(dir, 'replicator.log'));
    replicator.start();
    expect(await waitUntil(() => replicator.events('streaming_started').length > 0, 60_000)).toBe(true);
    expect(await replicator.stop()).toBe(0);

    config(PGBENCH_TABLES);
    const load = pgbenchRun(server, 'fi_src', 25, 2);
    const random = seededRandom('incremental-sigkill');
    let kills = 0;
    try {
      replicator.start();
      for (let i = 0; i < 6 && replicator.events('incremental_snapshot_table_done').length === 0; i++) {
        // Kill once the copy has started and a chunk more than at this start is durable, 0 to 0.7 s later.
        await waitUntil(() => replicator.events('incremental_snapshot_table_started').length > i, 60_000);
        const started = Number(replicator.events('incremental_snapshot_table_started')[i]?.rows_done ?? 0);
        await waitUntil(async () => (await durableRows()) > started, 60_000, 50);
        await sleep(Math.floor(random.next() * 700));
        if (replicator.events('incremental_snapshot_table_done').length > 0) break;
        await replicator.kill9();
        kills++;
        replicator.start();
      }
      expect(await waitUntil(() => replicator.events('incremental_snapshot_table_done').length > 0, 180_000)).toBe(
        true,
      );
      const starts = replicator.events('incremental_snapshot_table_started');
      // Every start after a kill resumed from the checkpoint's progress (not from the beginning) once a chunk was durable.
      const resumed = starts.filter((s) => Number(s.rows_done) > 0);
      expect(kills).toBeGreaterThanOrEqual(2);
      expect(resumed.length, JSON.stringify(starts)).toBeGreaterThanOrEqual(1);
      expect((await load).ok).toBe(true);
      const result = await waitForEqualTables(sourceUrl, targetUrl, PGBENCH_TABLES, 120_000);
      expect(result).toMatchObject({ equal: true });
      console.log(
        `[faults] incremental snapshot: ${kills} kills; starts resumed after rows: ${starts.map((s) => s.rows_done).join(', ')}`,
      );
    } finally {
      await replicator.kill9();
      await load;
    }
  }, 400_000);
});
