import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkReadsAtOnce } from '../../connectors/mysql/source/source.test-support.ts';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { mysqlRowDigest } from '../harness/table-digest.ts';
import {
  execFileAsync,
  killResumedCopies,
  Replicator,
  seededRandom,
  sleep,
  waitUntil,
  writePipelineConfig,
} from './fault-kit.ts';

const SYSBENCH = '/usr/bin/sysbench';
const TABLE_SIZE = 60_000;
const CHUNK = 2000;
const PARALLELISM = 4;
const READ_AHEAD_EVENTS = 4000;
const BATCH_EVENTS = 2000;
const IN_FLIGHT = 2;
/**
 * Most chunks a kill may cost: one read and waiting for room per reader, one more per reader pushed at once when room
 * comes (a chunk goes out whole), the read-ahead queue, and the batches in flight to the target.
 */
const MAX_CHUNKS_REREAD = 2 * PARALLELISM + (READ_AHEAD_EVENTS + IN_FLIGHT * BATCH_EVENTS) / CHUNK;
const WATCHED = 'sbpar.sbtest1';
const TABLES: Record<string, string[]> = {
  sbtest1: ['id', 'k', 'c', 'pad'],
  sbtest2: ['id', 'k', 'c', 'pad'],
  nokey: ['n', 'note'],
};

interface DurableSnapshot {
  initial: boolean;
  /** Rows of the watched table the checkpoint counts as copied (all of them once the table is done). */
  rows: number;
  done: boolean;
  pending: number;
}

/** Samples the process list from this process until stopped: the most chunk reads of `db` running at one moment. */
function watchReads(server: MysqlServer, db: string): { stop: () => Promise<number> } {
  let running = true;
  let most = 0;
  const needle = `FROM \`${db}\`.`;
  const sampling = (async () => {
    const conn = await mysql.createConnection({ uri: server.url() });
    try {
      while (running) {
        const [rows] = await conn.query('SHOW FULL PROCESSLIST');
        const reading = (rows as { Info: string | null }[]).filter(
          (r) => r.Info?.startsWith('SELECT') && r.Info.includes(needle) && !r.Info.includes('OFFSET'),
        ).length;
        most = Math.max(most, reading);
      }
    } finally {
      await conn.end();
    }
  })();
  return {
    stop: async () => {
      running = false;
      await sampling.catch(() => undefined);
      return most;
    },
  };
}

/**
 * The initial snapshot of two sysbench tables and a keyless table, read on several connections at one consistent
 * position (snapshot_parallelism), runs while sysbench writes, and the replicator is SIGKILLed in the middle of it
 * and again during the resumed copy (seeded schedule, printed): each start resumes each table after the last chunk
 * the target's checkpoint holds, the rows read again are bounded by the chunks that were in flight, and source and
 * target end equal by row digests each server computes.
 */
describe.skipIf(!fs.existsSync(SYSBENCH)).each(mysqlFlavors())(
  'fault: SIGKILL during a MySQL parallel initial snapshot under sysbench ($name)',
  (flavor) => {
    let server: MysqlServer;
    let dir: string;

    beforeAll(async () => {
      server = await flavor.start({ throwaway: true });
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-fault-mypar-'));
      await server.createDatabase('sbpar');
      await server.createDatabase('sbpar_dst');
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
        '--mysql-db=sbpar',
        '--tables=2',
        `--table-size=${TABLE_SIZE}`,
        ...extra,
        command,
      ]);

    /** What the checkpoint stored with the target's data says about the copy (null: no checkpoint yet). */
    const durable = async (): Promise<DurableSnapshot | null> => {
      const [row] = await server
        .query<{ state: string | null }>(
          "SELECT state FROM sbpar_dst.tributary_checkpoints WHERE pipeline = 'mypar'",
          [],
          'sbpar_dst',
        )
        .catch(() => []);
      const snapshot = row?.state ? JSON.parse(row.state)?.snapshot : null;
      if (!snapshot) return null;
      const done = (snapshot.tables as string[]).includes(WATCHED);
      const pending = snapshot.pending as { table: string; rows: number }[];
      return {
        initial: snapshot.initial === true,
        done,
        rows: done ? Number.POSITIVE_INFINITY : Number(pending.find((p) => p.table === WATCHED)?.rows ?? 0),
        pending: pending.length,
      };
    };

    it('resumes each table after its last durable chunk, re-reads only the chunks in flight, and ends equal', {
      timeout: 500_000,
    }, async () => {
      await sysbench('prepare');
      await server.query('CREATE TABLE nokey (n INT, note VARCHAR(64))', [], 'sbpar');
      await server.query(
        `INSERT INTO nokey VALUES ${Array.from({ length: 3000 }, (_, i) => `(${i % 11}, 'k${i}')`).join(', ')}`,
        [],
        'sbpar',
      );
      const configFile = path.join(dir, 'pipeline.yaml');
      writePipelineConfig(configFile, {
        name: 'mypar',
        source: {
          type: 'mysql',
          url: server.url(),
          databases: ['sbpar'],
          server_id: 4245,
          snapshot_chunk_rows: CHUNK,
          snapshot_parallelism: PARALLELISM,
          read_ahead_events: READ_AHEAD_EVENTS,
        },
        target: { type: 'mysql', url: server.url(), database: 'sbpar_dst' },
        batch: { max_wait_ms: 20, max_events: BATCH_EVENTS, max_in_flight: IN_FLIGHT },
        retry: { initial_backoff_ms: 100, max_backoff_ms: 1000 },
      });
      // Debug level for the per-chunk log lines (no row values in them).
      const replicator = new Replicator(configFile, path.join(dir, 'replicator.log'), {
        TRIBUTARY_LOG_LEVEL: 'debug',
      });
      const random = seededRandom('mysql parallel snapshot sigkill schedule');
      const load = sysbench('run', ['--time=60', '--threads=2', '--rate=300', '--report-interval=0']);
      const schedule: string[] = [];
      try {
        // Kill 1: in the parallel initial snapshot, once checkpoints cover a seeded number of chunks (2 to 8) of the
        // watched table (the durable progress moves chunk by chunk while the snapshot runs).
        const reads = watchReads(server, 'sbpar');
        replicator.start();
        const chunksBeforeKill = 2 + Math.floor(random.next() * 7);
        const reached = await waitUntil(
          async () => ((await durable())?.rows ?? 0) >= chunksBeforeKill * CHUNK,
          120_000,
          20,
        );
        if (!reached) console.error(replicator.log().slice(-6000));
        expect(reached, `a checkpoint of the initial snapshot covering ${chunksBeforeKill} chunks of ${WATCHED}`).toBe(
          true,
        );
        const delay1 = Math.floor(random.next() * 300);
        await sleep(delay1);
        const chunkLines = () =>
          replicator.events('snapshot_chunk_read').filter((e) => e.table === WATCHED && e.pipeline === 'mypar');
        const readBeforeKill = chunkLines().reduce((sum, e) => sum + Number(e.rows), 0);
        const finishedBeforeKill = replicator.events('snapshot_finished').length;
        await replicator.kill9();
        const mostReads = await reads.stop();
        const atKill = (await durable())!;
        const started = replicator.events('snapshot_started')[0]!;
        const chunkReads = replicator.events('snapshot_chunk_read');
        const connections = new Set(chunkReads.map((e) => e.connection)).size;
        const atOnce = chunkReadsAtOnce(chunkReads);
        schedule.push(
          `kill 1 at ${delay1} ms after ${chunksBeforeKill} chunks of ${WATCHED} were durable: initial snapshot ${finishedBeforeKill ? 'done' : 'running'} with ${started.parallelism} readers (locking: ${started.locking}) on ${connections} connections, ${atOnce} chunk reads outstanding at once by the log (at most ${mostReads} running at once in a sampled process list), ${readBeforeKill} rows of ${WATCHED} read in whole chunks, ${atKill.rows} durable`,
        );
        // It landed mid-snapshot: the snapshot had not finished, and the checkpoint is one of the running snapshot.
        expect(finishedBeforeKill).toBe(0);
        expect(atKill.initial).toBe(true);
        expect(atKill.done).toBe(false);
        expect(started.parallelism).toBe(PARALLELISM);
        expect(connections).toBe(PARALLELISM);
        // The server answers a chunk in milliseconds (the process list rarely shows two running): the reads are
        // outstanding at once on distinct connections, by the log.
        expect(atOnce).toBeGreaterThanOrEqual(2);
        const reRead = readBeforeKill - atKill.rows;
        expect(reRead).toBeGreaterThanOrEqual(0);
        expect(reRead).toBeLessThanOrEqual(MAX_CHUNKS_REREAD * CHUNK);

        // The restart resumes the watched table exactly after the durable chunks; kill it again during that copy.
        schedule.push(
          ...(await killResumedCopies({
            replicator,
            table: WATCHED,
            durable,
            durableRows: atKill.rows,
            random,
            maxDelayMs: 300,
            pollMs: 20,
          })),
        );
        if (!replicator.running) replicator.start();
        console.info(`[faults] mysql parallel snapshot (${flavor.name}) schedule:\n  ${schedule.join('\n  ')}`);
        console.info(
          `[faults] mysql parallel snapshot (${flavor.name}): kill 1 re-read ${reRead} rows of ${WATCHED} (${(reRead / CHUNK).toFixed(1)} chunks of ${CHUNK}; bound ${MAX_CHUNKS_REREAD} chunks, table ${TABLE_SIZE} rows)`,
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
        const output = (await load).stdout;
        const transactions = Number(/transactions:\s+(\d+)/.exec(output)?.[1] ?? 0);
        let last: unknown = null;
        const equal = await waitUntil(
          async () => {
            const results = [];
            for (const [table, columns] of Object.entries(TABLES)) {
              const source = await mysqlRowDigest((sql) => server.query(sql, [], 'sbpar'), table, columns);
              const target = await mysqlRowDigest((sql) => server.query(sql, [], 'sbpar_dst'), table, columns).catch(
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
          `[faults] mysql parallel snapshot (${flavor.name}): equal by digests after ${transactions} sysbench transactions: ${(last as { table: string; source: { rows: number } }[]).map((r) => `${r.table} ${r.source.rows} rows`).join(', ')}`,
        );
      } finally {
        await replicator.kill9();
        await load.catch(() => undefined);
      }
    });
  },
);
