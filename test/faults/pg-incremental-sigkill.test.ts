import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
        // Kill once the copy has started and some time passed (0.3 to 1 s of copying).
        await waitUntil(() => replicator.events('incremental_snapshot_table_started').length > i, 60_000);
        await sleep(300 + Math.floor(random.next() * 700));
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
      expect(resumed.length).toBeGreaterThanOrEqual(1);
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
