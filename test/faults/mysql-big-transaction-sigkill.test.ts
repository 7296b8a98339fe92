import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../harness/free-port.ts';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { mysqlRowDigest, pgRowDigest } from '../harness/table-digest.ts';
import {
  Replicator,
  ReplicatorEndpoint,
  runVerify,
  seededRandom,
  sleep,
  waitUntil,
  writePipelineConfig,
} from './fault-kit.ts';

const SNAPSHOT_ROWS = 60_000;
const BIG_ROWS = 24_000;
const BIG_LEDGER_ROWS = 6_000;
const MAX_EVENTS = 1_000;
/** Each table with the columns its digest covers (they print alike in both engines). */
const TABLES: [string, string[]][] = [
  ['big', ['id', 'payload']],
  ['ledger', ['run', 'n', 'note']],
  ['marker', ['id', 'n']],
];

/**
 * SIGKILLs shown to land where they are meant to, MySQL/MariaDB -> PostgreSQL:
 *
 * 1. in the initial snapshot: /metrics shows part of bt.big's rows handed to the target; the target holds exactly the
 *    rows of the chunks its checkpoint (a snapshot-progress one, `initial: true`) says are durable, and the restart
 *    goes on after them;
 * 2. inside one source transaction of 30 000 row changes (30 batches of 1000): /metrics shows batches of it handed
 *    to the target and written there, /status shows the checkpoint before the transaction's binlog position, and the
 *    target shows the replicator's open transaction. A row lock the test holds in the target on the transaction's
 *    last row keeps the commit from being reached before the kill (released once the process is dead).
 *
 * A small write loop runs throughout; bt.ledger has no key, so a change applied twice or lost shows in its digest.
 * Source and target end equal by row digests each server computes.
 */
describe.each(mysqlFlavors())(
  'fault: SIGKILL mid-snapshot and inside a multi-batch transaction ($name source)',
  (flavor) => {
    let source: MysqlServer;
    let target: PgServer;
    let dir: string;
    let targetUrl: string;

    beforeAll(async () => {
      [source, target] = await Promise.all([flavor.start({ throwaway: true }), startPostgres()]);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-fault-mybigtx-'));
      await source.createDatabase('bt');
      targetUrl = await target.createDatabase('mbt_dst');
    });
    afterAll(async () => {
      await Promise.all([source?.stop(), target?.stop()]);
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('each kill lands where shown, and the target ends equal without duplicates', { timeout: 300_000 }, async () => {
      const started = Date.now();
      const random = seededRandom(`${flavor.name} big transaction sigkill`);
      await source.query('create table big (id bigint primary key, payload varchar(200) not null)', [], 'bt');
      // No key, but an index on run: the loop's DELETE finds its rows by it instead of scanning (and waiting for) the
      // rows the open big transaction inserted.
      await source.query(
        'create table ledger (run int not null, n int not null, note varchar(100), index by_run (run))',
        [],
        'bt',
      );
      await source.query('create table marker (id int primary key, n int not null)', [], 'bt');
      await source.query('insert into marker values (1, 0)', [], 'bt');
      await source.query(
        `insert into big select seq, sha2(seq, 256) from ${source.series(1, SNAPSHOT_ROWS)}`,
        [],
        'bt',
      );

      const port = await freePort();
      const endpoint = new ReplicatorEndpoint(port);
      const configFile = path.join(dir, 'pipeline.yaml');
      writePipelineConfig(
        configFile,
        {
          name: 'mybigtx',
          source: { type: 'mysql', url: source.url(), databases: ['bt'], server_id: 4343, snapshot_chunk_rows: 5000 },
          target: { type: 'postgres', url: targetUrl },
          batch: { max_wait_ms: 20, max_events: MAX_EVENTS },
          retry: { initial_backoff_ms: 100, max_backoff_ms: 1000 },
        },
        { listen: `127.0.0.1:${port}` },
      );
      const replicator = new Replicator(configFile, path.join(dir, 'replicator.log'));

      // 1. Mid-snapshot: once the copy of bt.big reached a seeded share of its rows.
      const snapshotAt = Math.floor(SNAPSHOT_ROWS * (0.15 + random.next() * 0.5));
      replicator.start();
      let copied = 0;
      let snapshotStatus = '';
      // The MySQL source does not report per-table snapshot progress in /status: the rows it handed to the target
      // (events of op `read` in /metrics) show how far the copy got.
      const inSnapshot = await waitUntil(
        async () => {
          copied = await endpoint.metric('tributary_events_total', { table: 'bt.big', op: 'read' });
          const s = await endpoint.status();
          snapshotStatus = `status ${s?.status}, ${copied} of ${SNAPSHOT_ROWS} rows of bt.big handed to the target as snapshot reads, checkpoint ${JSON.stringify(s?.checkpoint ?? null)}`;
          return copied >= snapshotAt;
        },
        120_000,
        50,
      );
      expect(inSnapshot, replicator.log().slice(-4000)).toBe(true);
      await replicator.kill9();
      const cpAfterSnapshotKill = await storedCheckpoint(targetUrl);
      console.info(
        `[faults] ${flavor.name} kill 1 (snapshot): at ${snapshotStatus}; after the kill the target holds ${await count(targetUrl, 'bt.big')} committed rows of bt.big and checkpoint phase ${cpAfterSnapshotKill?.phase ?? 'none'} (snapshot progress: ${JSON.stringify(cpAfterSnapshotKill?.state?.snapshot?.pending?.find((p) => p.table === 'bt.big') ?? null)})`,
      );
      expect(copied).toBeGreaterThan(0);
      expect(copied).toBeLessThan(SNAPSHOT_ROWS);
      // The kill landed inside the snapshot: the checkpoint, if any, is the copy's progress, and the target holds
      // exactly the rows of bt.big it says are durable.
      const durableBig = cpAfterSnapshotKill
        ? cpAfterSnapshotKill.state?.snapshot?.pending?.find((p) => p.table === 'bt.big')
        : undefined;
      if (cpAfterSnapshotKill) expect(cpAfterSnapshotKill.state?.snapshot?.initial).toBe(true);
      expect(await count(targetUrl, 'bt.big')).toBe(durableBig?.rows ?? 0);

      replicator.start();
      const streaming = await waitUntil(
        async () => {
          const cp = await storedCheckpoint(targetUrl);
          return (
            cp?.phase === 'stream' && cp.state?.snapshot?.initial !== true && cp.state?.snapshot?.pending?.length === 0
          );
        },
        180_000,
        250,
      );
      if (durableBig?.rows) {
        // The restart went on after the durable rows instead of copying bt.big again.
        expect(replicator.events('incremental_snapshot_table_started').find((e) => e.table === 'bt.big')).toMatchObject(
          { rows_done: durableBig.rows },
        );
      }
      expect(streaming, replicator.log().slice(-4000)).toBe(true);
      const load = writeLoop(source.url('bt'));
      try {
        // 2. Inside the big transaction (see above for the row lock).
        const holder = new pg.Client({ connectionString: targetUrl });
        holder.on('error', () => {});
        await holder.connect();
        await holder.query('begin');
        await holder.query('select n from bt.marker where id = 1 for update');
        const events0 = await endpoint.metric('tributary_events_total', { table: 'bt.big', op: 'insert' });
        const batches0 = await endpoint.metric('tributary_batches_total');
        const written0 = await endpoint.metric('tributary_target_write_seconds_count');
        const bigTotal = BIG_ROWS + BIG_LEDGER_ROWS + 1;
        const killAt = 2 * MAX_EVENTS + Math.floor(random.next() * (BIG_ROWS - 2 * MAX_EVENTS));
        const src = await mysql.createConnection({ uri: source.url('bt') });
        await src.query('begin');
        await src.query(
          `insert into big select seq, sha2(seq, 256) from ${source.series(1000001, 1_000_000 + BIG_ROWS)}`,
        );
        await src.query(
          `insert into ledger select -1, seq, 'big transaction' from ${source.series(1, BIG_LEDGER_ROWS)}`,
        );
        await src.query('update marker set n = n + 1 where id = 1');
        // The loop pauses around the commit, so the binlog position read here is where the transaction is written.
        await load.pause();
        const [statusRows] = await src.query(
          source.flavor === 'mysql' ? 'SHOW BINARY LOG STATUS' : 'SHOW MASTER STATUS',
        );
        const at = (statusRows as { File: string; Position: number }[])[0]!;
        const beforeCommit = { file: at.File, pos: Number(at.Position) };
        await src.query('commit');
        load.resume();
        await src.end();

        let evidence = '';
        let written = 0;
        let checkpoint: { file?: string; pos?: number } = {};
        const reached = await waitUntil(
          async () => {
            const handed =
              (await endpoint.metric('tributary_events_total', { table: 'bt.big', op: 'insert' })) - events0;
            written = (await endpoint.metric('tributary_target_write_seconds_count')) - written0;
            const batches = (await endpoint.metric('tributary_batches_total')) - batches0;
            const s = await endpoint.status();
            checkpoint = (s?.checkpoint ?? {}) as { file?: string; pos?: number };
            evidence = `${handed} of ${BIG_ROWS} bt.big inserts handed to the target (kill threshold ${killAt}), ${batches} batches handed and ${written} written since the transaction began (loop transactions included), checkpoint at ${checkpoint.file}:${checkpoint.pos} (the transaction is written from ${beforeCommit.file}:${beforeCommit.pos})`;
            return handed >= killAt;
          },
          120_000,
          50,
        );
        expect(reached, `${evidence}\n${replicator.log().slice(-4000)}`).toBe(true);
        const open = await openTargetTransaction(targetUrl);
        await replicator.kill9();
        await holder.query('rollback');
        await holder.end();
        const cpAfterKill = await storedCheckpoint(targetUrl);
        const committedBig = await count(targetUrl, 'bt.big', 'id > 1000000');
        console.info(
          `[faults] ${flavor.name} kill 2 (inside a transaction of ${bigTotal} changes, ${Math.ceil(bigTotal / MAX_EVENTS)} batches): ${evidence}; target at the kill: ${open}; after the kill the target's checkpoint is ${cpAfterKill?.position.file}:${cpAfterKill?.position.pos} and it holds ${committedBig} rows of the transaction`,
        );
        expect(written).toBeGreaterThanOrEqual(2);
        const notPast = (p: { file?: unknown; pos?: unknown }) =>
          String(p.file) < beforeCommit.file || (p.file === beforeCommit.file && Number(p.pos) <= beforeCommit.pos);
        expect(notPast(checkpoint)).toBe(true);
        expect(notPast(cpAfterKill?.position ?? {})).toBe(true);
        expect(committedBig).toBe(0);

        replicator.start();
        await sleep(3000);
        const loaded = await load.stop();
        let last: { table: string; source: unknown; target: unknown }[] = [];
        const equal = await waitUntil(
          async () => {
            last = await Promise.all(
              TABLES.map(async ([table, columns]) => ({
                table,
                source: await mysqlRowDigest((sql) => source.query(sql), `bt.${table}`, columns),
                target: await pgRowDigest(targetUrl, `bt.${table}`, columns).catch((err: Error) => err.message),
              })),
            );
            return last.every((t) => JSON.stringify(t.source) === JSON.stringify(t.target));
          },
          180_000,
          1000,
        );
        const exitCode = await replicator.stop();
        if (!equal) console.error(replicator.log().slice(-8000));
        expect(equal, JSON.stringify(last, null, 2)).toBe(true);
        expect(exitCode).toBe(0);
        expect(await count(targetUrl, 'bt.ledger', 'run = -1')).toBe(BIG_LEDGER_ROWS);
        const verify = await runVerify(configFile);
        expect(verify.code, verify.output).toBe(0);
        console.info(
          `[faults] ${flavor.name} big transaction: ${loaded} loop transactions, digests equal (${last.map((t) => `${t.table} ${(t.source as { rows: number }).rows} rows`).join(', ')}), verify exit ${verify.code}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      } finally {
        await load.stop();
        await replicator.kill9();
      }
    });
  },
);

async function withClient<T>(url: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await f(client);
  } finally {
    await client.end();
  }
}

async function count(url: string, table: string, where = 'true'): Promise<number> {
  return withClient(url, async (c) => {
    const r = await c.query<{ n: string }>(`select count(*) as n from ${table} where ${where}`).catch(() => undefined);
    return Number(r?.rows[0]?.n ?? 0);
  });
}

async function storedCheckpoint(url: string): Promise<
  | {
      phase: string;
      position: { file?: string; pos?: number };
      state: { snapshot?: { initial?: boolean; pending?: { table: string; rows: number }[] } } | null;
    }
  | undefined
> {
  return withClient(url, async (c) => {
    const r = await c
      .query<{
        phase: string;
        position: { file?: string; pos?: number };
        state: { snapshot?: { initial?: boolean; pending?: { table: string; rows: number }[] } } | null;
      }>("select phase, position, state from tributary.checkpoints where pipeline = 'mybigtx'")
      .catch(() => undefined);
    return r?.rows[0];
  });
}

/** The replicator's write transaction in the target: its xid, state and what it waits for. */
async function openTargetTransaction(url: string): Promise<string> {
  return withClient(url, async (c) => {
    const r = await c.query<{ xid: string; state: string; wait: string | null; age: string }>(
      `select backend_xid::text as xid, state, wait_event_type || ':' || wait_event as wait,
              round(extract(epoch from now() - xact_start)::numeric, 1)::text as age
         from pg_stat_activity
        where application_name = 'tributary-target' and backend_xid is not null`,
    );
    if (r.rows.length === 0) return 'no open write transaction of the replicator';
    return r.rows.map((t) => `transaction ${t.xid} open ${t.age} s, ${t.state}, waiting on ${t.wait}`).join('; ');
  });
}

/**
 * Small transactions on every table (ledger has no key) until stopped; resolves with how many committed. `pause()`
 * resolves once no loop transaction is open, `resume()` lets it go on.
 */
function writeLoop(url: string): { stop: () => Promise<number>; pause: () => Promise<void>; resume: () => void } {
  let running = true;
  let n = 0;
  type Pause = { resolve: () => void; resumed: Promise<void>; resume: () => void };
  let paused = null as Pause | null;
  const done = (async () => {
    const c = await mysql.createConnection({ uri: url });
    c.on('error', () => {});
    // READ COMMITTED (no gap locks): the loop never waits for the open big transaction, which waits for the loop to
    // pause before it commits.
    await c.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
    try {
      while (running) {
        if (paused) {
          paused.resolve();
          await paused.resumed;
        }
        n++;
        await c.query('begin');
        await c.query('insert into ledger values (?, 1, ?), (?, 2, ?)', [n, `loop ${n}`, n, `loop ${n}`]);
        await c.query('update big set payload = ? where id = ?', [`changed ${n}`, 1 + (n % 5000)]);
        if (n % 3 === 0) await c.query('delete from ledger where run = ? and n = 2', [n - 1]);
        await c.query('commit');
        await sleep(5);
      }
    } finally {
      await c.end();
    }
    return n;
  })();
  return {
    stop: async () => {
      running = false;
      paused?.resume();
      return done;
    },
    // A loop that failed rejects here rather than leave the caller waiting.
    pause: () =>
      Promise.race([
        new Promise<void>((resolve) => {
          let resume = () => {};
          const resumed = new Promise<void>((r) => {
            resume = r;
          });
          paused = { resolve, resumed, resume };
        }),
        done.then(() => {
          throw new Error('the write loop ended before it paused');
        }),
      ]),
    resume: () => {
      const p = paused;
      paused = null;
      p?.resume();
    },
  };
}
