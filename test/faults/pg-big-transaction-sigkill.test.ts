import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { freePort } from '../harness/free-port.ts';
import { waitForEqualTables } from '../harness/table-digest.ts';
import {
  lsnValue,
  pgPairScenario,
  Replicator,
  ReplicatorEndpoint,
  runVerify,
  seededRandom,
  sleep,
  waitUntil,
  writePipelineConfig,
} from './fault-kit.ts';

const SNAPSHOT_ROWS = 100_000;
const BIG_ROWS = 24_000;
const BIG_LEDGER_ROWS = 6_000;
const MAX_EVENTS = 1_000;
const TABLES = ['public.big', 'public.ledger', 'public.marker'];

/**
 * SIGKILLs that are shown to land where they are meant to (PostgreSQL -> PostgreSQL, separate servers):
 *
 * 1. in the initial snapshot: the replicator's /status reports the copy of public.big running with part of its rows
 *    copied, and no checkpoint;
 * 2. inside one source transaction of 30 000 changes (30 batches of 1000): /metrics shows batches of it handed to
 *    the target and written there, /status shows the checkpoint before its commit, and the target shows the
 *    replicator's open transaction. A row lock the test holds in the target on the transaction's last row keeps
 *    the commit from being reached before the kill (it is released once the process is dead).
 *
 * A small write loop runs throughout; public.ledger has no key (REPLICA IDENTITY FULL), so a change applied twice
 * or lost shows in its digest. Source and target end equal by row digests each server computes.
 */
describe('fault: SIGKILL mid-snapshot and inside a multi-batch transaction (PostgreSQL source)', () => {
  const scenario = pgPairScenario('pgbigtx', 'bt_src', 'bt_dst');

  it('each kill lands where shown, and the target ends equal without duplicates', { timeout: 300_000 }, async () => {
    const started = Date.now();
    const { source, sourceUrl, targetUrl, dir } = scenario;
    const random = seededRandom('pg big transaction sigkill');
    await source.query('bt_src', 'create table big (id bigint primary key, payload text not null)');
    await source.query('bt_src', 'create table ledger (run int not null, n int not null, note text)');
    await source.query('bt_src', 'alter table ledger replica identity full');
    await source.query('bt_src', 'create table marker (id int primary key, n int not null)');
    await source.query('bt_src', 'insert into marker values (1, 0)');
    await source.query(
      'bt_src',
      `insert into big select g, repeat(md5(g::text), 4) from generate_series(1, ${SNAPSHOT_ROWS}) g`,
    );
    await source.query('bt_src', 'analyze big');

    const port = await freePort();
    const endpoint = new ReplicatorEndpoint(port);
    const configFile = path.join(dir, 'pipeline.yaml');
    writePipelineConfig(
      configFile,
      {
        name: 'bigtx',
        source: { type: 'postgres', url: sourceUrl, tables: TABLES, snapshot_chunk_rows: 5000 },
        target: { type: 'postgres', url: targetUrl },
        batch: { max_wait_ms: 20, max_events: MAX_EVENTS },
        retry: { initial_backoff_ms: 100, max_backoff_ms: 1000 },
      },
      { listen: `127.0.0.1:${port}` },
    );
    const replicator = new Replicator(configFile, path.join(dir, 'replicator.log'));

    // 1. Mid-snapshot: once the copy of public.big reached a seeded share of its rows.
    const snapshotAt = Math.floor(SNAPSHOT_ROWS * (0.15 + random.next() * 0.5));
    replicator.start();
    let copied = 0;
    let snapshotStatus = '';
    const inSnapshot = await waitUntil(
      async () => {
        const s = await endpoint.status();
        const big = s?.snapshot_tables?.find((t) => t.table === 'public.big');
        copied = big?.rows_copied ?? 0;
        snapshotStatus = `status ${s?.status}, public.big ${big?.status} with ${copied} of ~${big?.estimated_rows} rows copied, checkpoint ${JSON.stringify(s?.checkpoint ?? null)}`;
        return copied >= snapshotAt;
      },
      120_000,
      50,
    );
    expect(inSnapshot, replicator.log().slice(-4000)).toBe(true);
    await replicator.kill9();
    const targetRowsAfterSnapshotKill = await count(targetUrl, 'public.big');
    const cpAfterSnapshotKill = await storedCheckpoint(targetUrl);
    console.info(
      `[faults] pg kill 1 (snapshot): at ${snapshotStatus}; after the kill the target holds ${targetRowsAfterSnapshotKill} committed rows of public.big and checkpoint ${JSON.stringify(cpAfterSnapshotKill)}`,
    );
    expect(copied).toBeGreaterThan(0);
    expect(copied).toBeLessThan(SNAPSHOT_ROWS);
    // No finished snapshot: none, or one of an initial snapshot still running (a checkpoint per chunk).
    expect(cpAfterSnapshotKill?.phase !== 'stream' || cpAfterSnapshotKill.state?.snapshot?.initial === true).toBe(true);

    // The restart copies again (or resumes the copy) and streams; a write loop runs from here to the end.
    replicator.start();
    const streaming = await waitUntil(
      async () => {
        const cp = await storedCheckpoint(targetUrl);
        // Streaming with every table copied: no initial snapshot running, none left to the incremental one.
        const snapshot = cp?.state?.snapshot as { initial?: boolean; pending?: unknown[] } | undefined;
        if (cp?.phase !== 'stream' || snapshot?.initial === true || (snapshot?.pending ?? []).length > 0) return false;
        return (await count(targetUrl, 'public.marker').catch(() => 0)) === 1;
      },
      180_000,
      250,
    );
    expect(streaming, replicator.log().slice(-4000)).toBe(true);
    const load = writeLoop(sourceUrl);
    try {
      // 2. Inside the big transaction. The test holds the marker row in the target: the transaction's last change
      // waits for it, so the kill lands before the commit however fast the target is.
      const holder = new pg.Client({ connectionString: targetUrl });
      holder.on('error', () => {});
      await holder.connect();
      await holder.query('begin');
      await holder.query('select n from marker where id = 1 for update');
      const events0 = await endpoint.metric('tributary_events_total', { table: 'public.big', op: 'insert' });
      const batches0 = await endpoint.metric('tributary_batches_total');
      const written0 = await endpoint.metric('tributary_target_write_seconds_count');
      const bigTotal = BIG_ROWS + BIG_LEDGER_ROWS + 1;
      const killAt = 2 * MAX_EVENTS + Math.floor(random.next() * (BIG_ROWS - 2 * MAX_EVENTS));
      const src = new pg.Client({ connectionString: sourceUrl });
      await src.connect();
      await src.query('begin');
      await src.query(
        `insert into big select g, repeat(md5(g::text), 4) from generate_series(1000001, ${1_000_000 + BIG_ROWS}) g`,
      );
      await src.query(
        `insert into ledger select -1, g, 'big transaction' from generate_series(1, ${BIG_LEDGER_ROWS}) g`,
      );
      await src.query('update marker set n = n + 1 where id = 1');
      // The loop pauses around the commit, so no other transaction commits between this position and the commit.
      await load.pause();
      const beforeCommit = (await src.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn'))
        .rows[0]!.lsn;
      await src.query('commit');
      load.resume();
      await src.end();

      let evidence = '';
      let handed = 0;
      let written = 0;
      let checkpointLsn = '0/0';
      const reached = await waitUntil(
        async () => {
          handed = (await endpoint.metric('tributary_events_total', { table: 'public.big', op: 'insert' })) - events0;
          written = (await endpoint.metric('tributary_target_write_seconds_count')) - written0;
          const batches = (await endpoint.metric('tributary_batches_total')) - batches0;
          const s = await endpoint.status();
          checkpointLsn = String(s?.checkpoint?.lsn ?? '0/0');
          evidence = `${handed} of ${BIG_ROWS} public.big inserts handed to the target (kill threshold ${killAt}), ${batches} batches handed and ${written} written since the transaction began (loop transactions included), checkpoint at ${checkpointLsn} (the transaction commits after ${beforeCommit})`;
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
      const committedBig = await count(targetUrl, 'public.big', 'id > 1000000');
      console.info(
        `[faults] pg kill 2 (inside a transaction of ${bigTotal} changes, ${Math.ceil(bigTotal / MAX_EVENTS)} batches): ${evidence}; target at the kill: ${open}; after the kill the target's checkpoint is ${JSON.stringify(cpAfterKill?.position)} and it holds ${committedBig} rows of the transaction`,
      );
      expect(written).toBeGreaterThanOrEqual(2);
      // The transaction's commit record is written after `beforeCommit`: a checkpoint at or before it does not cover it.
      expect(lsnValue(checkpointLsn)).toBeLessThanOrEqual(lsnValue(beforeCommit));
      expect(lsnValue(String(cpAfterKill?.position.lsn))).toBeLessThanOrEqual(lsnValue(beforeCommit));
      expect(committedBig).toBe(0);

      // Restart: the transaction comes again from its start, once.
      replicator.start();
      await sleep(3000);
      const loaded = await load.stop();
      const comparison = await waitForEqualTables(sourceUrl, targetUrl, TABLES, 180_000);
      const exitCode = await replicator.stop();
      if (!comparison.equal) console.error(replicator.log().slice(-8000));
      expect(comparison.equal, JSON.stringify(comparison.tables, null, 2)).toBe(true);
      expect(exitCode).toBe(0);
      expect(await count(targetUrl, 'public.ledger', 'run = -1')).toBe(BIG_LEDGER_ROWS);
      const verify = await runVerify(configFile);
      expect(verify.code, verify.output).toBe(0);
      console.info(
        `[faults] pg big transaction: ${loaded} loop transactions, digests equal (${comparison.tables.map((t) => `${t.table} ${(t.source as { rows: number }).rows} rows`).join(', ')}), verify exit ${verify.code}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    } finally {
      await load.stop();
      await replicator.kill9();
    }
  });
});

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

async function storedCheckpoint(
  url: string,
): Promise<
  { phase: string; position: Record<string, unknown>; state: { snapshot?: { initial?: boolean } } | null } | undefined
> {
  return withClient(url, async (c) => {
    const r = await c
      .query<{ phase: string; position: Record<string, unknown>; state: { snapshot?: { initial?: boolean } } | null }>(
        "select phase, position, state from tributary.checkpoints where pipeline = 'bigtx'",
      )
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
 * resolves once no loop transaction is open, `resume()` lets it go on (so a commit position can be read alone).
 */
function writeLoop(url: string): { stop: () => Promise<number>; pause: () => Promise<void>; resume: () => void } {
  let running = true;
  let n = 0;
  type Pause = { resolve: () => void; resumed: Promise<void>; resume: () => void };
  let paused = null as Pause | null;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    try {
      while (running) {
        if (paused) {
          paused.resolve();
          await paused.resumed;
        }
        n++;
        await c.query('begin');
        await c.query('insert into ledger values ($1, 1, $2), ($1, 2, $2)', [n, `loop ${n}`]);
        await c.query('update big set payload = $2 where id = $1', [1 + (n % 5000), `changed ${n}`]);
        if (n % 3 === 0) await c.query('delete from ledger where run = $1 and n = 2', [n - 1]);
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
