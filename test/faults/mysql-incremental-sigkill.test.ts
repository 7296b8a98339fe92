import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { mysqlRowDigest } from '../harness/table-digest.ts';
import { execFileAsync, Replicator, seededRandom, sleep, waitUntil, writePipelineConfig } from './fault-kit.ts';

const SYSBENCH = '/usr/bin/sysbench';
const TABLE_SIZE = 40_000;
const CHUNK = 200;
const COLUMNS = ['id', 'k', 'c', 'pad'];

/**
 * A table added to a MySQL/MariaDB pipeline's `tables` is copied by the incremental snapshot while sysbench writes
 * to it, and the replicator is SIGKILLed several times in the middle of that copy (seeded schedule, printed): each
 * start resumes after the last chunk the target's checkpoint holds, the rows read again are bounded by the chunks
 * in flight, and source and target end equal by row digests each server computes.
 */
describe.skipIf(!fs.existsSync(SYSBENCH)).each(mysqlFlavors())(
  'fault: SIGKILL during a MySQL incremental snapshot under sysbench ($name)',
  (flavor) => {
    let server: MysqlServer;
    let dir: string;

    beforeAll(async () => {
      server = await flavor.start({ throwaway: true });
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-fault-myinc-'));
      await server.createDatabase('sbinc');
      await server.createDatabase('sbinc_dst');
    });
    afterAll(async () => {
      await server?.stop();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    const sysbench = (command: 'prepare' | 'run', extra: string[] = []) =>
      execFileAsync(SYSBENCH, [
        'oltp_write_only',
        '--db-driver=mysql',
        `--mysql-host=${server.host}`,
        `--mysql-port=${server.port}`,
        '--mysql-user=root',
        '--mysql-password=',
        '--mysql-db=sbinc',
        '--tables=2',
        `--table-size=${TABLE_SIZE}`,
        ...extra,
        command,
      ]);

    /** The incremental snapshot's progress the target's checkpoint holds (what a restart resumes from). */
    const durable = async (): Promise<{ rows: number; chunks: number; lastKey: string[] | null } | null> => {
      const [row] = await server
        .query<{ state: string | null }>(
          "SELECT state FROM sbinc_dst.tributary_checkpoints WHERE pipeline = 'myinc'",
          [],
          'sbinc_dst',
        )
        .catch(() => []);
      const state = row?.state ? JSON.parse(row.state) : null;
      const p = state?.snapshot?.pending?.find((x: { table: string }) => x.table === 'sbinc.sbtest2');
      return p ? { rows: Number(p.rows), chunks: Number(p.chunks ?? 0), lastKey: p.lastKey } : null;
    };

    /** The replicator's sessions: it connects without a default database (the load and these queries name one). */
    const replicatorSessions = async (): Promise<number> => {
      const [row] = await server.query<{ n: number | string }>(
        "SELECT COUNT(*) AS n FROM information_schema.processlist WHERE db IS NULL AND command <> 'Daemon' AND id <> CONNECTION_ID()",
        [],
        'sbinc_dst',
      );
      return Number(row?.n ?? 0);
    };

    it('resumes from the last durable chunk after each kill and ends equal', { timeout: 400_000 }, async () => {
      await sysbench('prepare');
      const configFile = path.join(dir, 'pipeline.yaml');
      const config = (tables: string[]) =>
        writePipelineConfig(configFile, {
          name: 'myinc',
          source: { type: 'mysql', url: server.url(), tables, server_id: 4244, snapshot_chunk_rows: CHUNK },
          target: { type: 'mysql', url: server.url(), database: 'sbinc_dst' },
          batch: { max_wait_ms: 20 },
          retry: { initial_backoff_ms: 100, max_backoff_ms: 1000 },
        });
      config(['sbinc.sbtest1']);
      const replicator = new Replicator(configFile, path.join(dir, 'replicator.log'));
      replicator.start();
      // sbtest1's initial snapshot must be whole before sbtest2 is added (on a loaded machine it takes more than a few
      // seconds; cut short, the next start would copy the rest of sbtest1 first, incrementally).
      expect(await waitUntil(() => replicator.events('snapshot_finished').length > 0, 120_000)).toBe(true);
      expect(await replicator.stop()).toBe(0);

      config(['sbinc.sbtest1', 'sbinc.sbtest2']);
      const load = sysbench('run', ['--time=60', '--threads=2', '--rate=300', '--report-interval=0']);
      const random = seededRandom('mysql incremental sigkill schedule');
      const landed: { rows: number; chunks: number }[] = [];
      let kills = 0;
      const copied = () =>
        replicator.events('incremental_snapshot_table_done').filter((e) => e.table === 'sbinc.sbtest2');
      try {
        replicator.start();
        for (let i = 0; i < 5 && copied().length === 0; i++) {
          // Kill once a chunk more than at this start is durable, 0 to 0.5 s later: inside the copy.
          const before = (await durable())?.rows ?? 0;
          await waitUntil(async () => ((await durable())?.rows ?? 0) > before, 60_000, 20);
          await sleep(Math.floor(random.next() * 500));
          if (copied().length > 0) break;
          await replicator.kill9();
          kills++;
          // A COMMIT the process sent just before it died may still be running on the server: read the durable
          // progress only once the killed process's sessions are gone.
          await waitUntil(async () => (await replicatorSessions()) === 0, 30_000, 20);
          const at = await durable();
          if (at) landed.push({ rows: at.rows, chunks: at.chunks });
          replicator.start();
        }
        expect(await waitUntil(() => copied().length > 0, 180_000)).toBe(true);
        const starts = replicator
          .events('incremental_snapshot_table_started')
          .filter((e) => e.table === 'sbinc.sbtest2');
        const done = copied()[0]!;
        // Each start after a kill went on from the durable progress at that kill, not from the beginning.
        expect(kills).toBeGreaterThanOrEqual(2);
        expect(landed.length).toBe(kills);
        expect(landed.every((l) => l.rows > 0)).toBe(true);
        for (const l of landed) {
          const resumed = starts.map((s) => Number(s.rows_done));
          expect(resumed, `durable rows at a kill: ${l.rows}`).toContain(l.rows);
        }
        // Rows read again are bounded by the chunks in flight at each kill: the chunks counted in the end are at most
        // the table's chunks plus what the load added.
        expect(Number(done.chunks)).toBeLessThanOrEqual(Math.ceil((TABLE_SIZE * 1.05) / CHUNK) + 1);
        const output = (await load).stdout;
        const transactions = Number(/transactions:\s+(\d+)/.exec(output)?.[1] ?? 0);
        expect(transactions).toBeGreaterThan(500);
        let last: unknown = null;
        const equal = await waitUntil(
          async () => {
            const results = [];
            for (const table of ['sbtest1', 'sbtest2']) {
              const source = await mysqlRowDigest((sql) => server.query(sql, [], 'sbinc'), table, COLUMNS);
              const target = await mysqlRowDigest((sql) => server.query(sql, [], 'sbinc_dst'), table, COLUMNS).catch(
                () => null,
              );
              results.push({ table, source, target });
            }
            last = results;
            return results.every((r) => r.target && r.source.rows === r.target.rows && r.source.sum === r.target.sum);
          },
          120_000,
          1000,
        );
        if (!equal) console.error(replicator.log().slice(-6000));
        expect(equal, JSON.stringify(last)).toBe(true);
        console.info(
          `[faults] mysql incremental sigkill (${flavor.name}): ${kills} kills at durable rows ${landed.map((l) => l.rows).join(', ')}; starts resumed after rows ${starts.map((s) => s.rows_done).join(', ')}; ${done.chunks} chunks for ${TABLE_SIZE} rows; ${transactions} sysbench transactions`,
        );
      } finally {
        await replicator.kill9();
        await load.catch(() => undefined);
      }
    });
  },
);
