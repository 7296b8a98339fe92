import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransactionalTarget } from '../../../src/core/target.ts';
import { PipelineMetrics } from '../../../src/observability/metrics.ts';
import { SnapshotProgress } from '../../../src/observability/snapshot-progress.ts';
import { formatReport, reportOf } from '../../../src/observability/status-report.ts';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import { testContext } from '../../../test/fixtures/change-events.ts';
import { tributary } from '../../../test/harness/cli.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { startMariadb } from '../../../test/harness/mariadb.ts';
import { type PgServer, startPostgres } from '../../../test/harness/postgres.ts';
import { waitForEqualTables } from '../../../test/harness/table-digest.ts';
import { mysqlTargetConfig } from '../../mysql/sink/config.ts';
import { MysqlTarget } from '../../mysql/sink/target.ts';
import { PostgresCheckpointStore } from '../sink/checkpoint-store.ts';
import { postgresTargetConfig } from '../sink/config.ts';
import { PostgresTarget } from '../sink/target.ts';
import { requestPostgresSnapshot } from './snapshot-request.ts';
import { PostgresSource } from './source.ts';

/**
 * A table added to `tables` of an existing pipeline gets its existing rows on the next start, copied chunk by chunk
 * while the stream runs and a write load changes the table; judged by sorted-row hashes computed in each database.
 */

const BATCH = { max_events: 500, max_bytes: 4 * 1024 * 1024, max_wait_ms: 20 };
const ROWS = 20_000;

/** A pgbench-like load on `accounts`: updates, inserts and deletes of random keys, in small transactions. */
function startLoad(url: string, clients: number): { stop: () => Promise<number> } {
  let running = true;
  let count = 0;
  const worker = async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      while (running) {
        const id = 1 + Math.floor(Math.random() * ROWS * 1.2);
        const r = Math.random();
        await client.query('begin');
        if (r < 0.6) {
          await client.query('update accounts set balance = balance + $2, note = md5(random()::text) where id = $1', [
            id,
            Math.floor(Math.random() * 100),
          ]);
        } else if (r < 0.8) {
          await client.query(
            'insert into accounts (id, balance, note) values ($1, 0, $2) on conflict (id) do update set balance = 0',
            [id, 'new'],
          );
        } else {
          await client.query('delete from accounts where id = $1', [id]);
        }
        await client.query('insert into history (aid, delta) values ($1, 1)', [id]);
        await client.query('commit');
        count++;
      }
    } finally {
      await client.end();
    }
  };
  const workers = Array.from({ length: clients }, worker);
  return {
    stop: async () => {
      running = false;
      await Promise.all(workers);
      return count;
    },
  };
}

describe('PostgreSQL incremental snapshot while streaming', () => {
  let server: PgServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  function pipelineFor(
    name: string,
    sourceUrl: string,
    targetUrl: string,
    tables: string[],
    ctx: ReturnType<typeof testContext>,
    chunkRows = 500,
    makeTarget?: () => TransactionalTarget,
  ) {
    const pipeline = new Pipeline({
      name,
      createParts: () => {
        const target =
          makeTarget?.() ?? new PostgresTarget(postgresTargetConfig.parse({ type: 'postgres', url: targetUrl }), ctx);
        const source = new PostgresSource(
          { type: 'postgres', url: sourceUrl, tables, heartbeat_interval_ms: 500, snapshot_chunk_rows: chunkRows },
          ctx,
          { batch: BATCH },
        );
        return { source, target };
      },
      maxInFlight: 4,
      maxInFlightBytes: 64 * 1024 * 1024,
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
      logger: ctx.logger,
    });
    const running = pipeline.run();
    running.catch(() => undefined);
    return {
      pipeline,
      stop: async () => {
        pipeline.stop();
        await running;
      },
    };
  }

  async function until(what: string, check: () => boolean | Promise<boolean>, ctx: ReturnType<typeof testContext>) {
    const deadline = Date.now() + 120_000;
    while (!(await check())) {
      if (Date.now() > deadline) {
        const problems = ctx.logs.filter((l) => Number(l.level) >= 40);
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(problems.slice(-3))}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function setUp(db: string) {
    const sourceUrl = await server.createDatabase(`${db}_src`);
    const targetUrl = await server.createDatabase(`${db}_dst`);
    await server.query(`${db}_src`, 'create table history (id bigserial primary key, aid int, delta int)');
    await server.query(`${db}_src`, 'create table accounts (id int primary key, balance int not null, note text)');
    await server.query(
      `${db}_src`,
      `insert into accounts select g, g % 1000, md5(g::text) from generate_series(1, ${ROWS}) g`,
    );
    return { sourceUrl, targetUrl };
  }

  it('a table added to the pipeline is copied while a write load runs on it; the target ends equal', async () => {
    const { sourceUrl, targetUrl } = await setUp('inc_add');
    const ctx = testContext('inc_add');
    const first = pipelineFor('inc_add', sourceUrl, targetUrl, ['public.history'], ctx);
    await until('first start', () => ctx.logs.some((l) => l.event === 'streaming_started'), ctx);
    await first.stop();

    await server.query('inc_add_src', 'analyze accounts');
    const load = startLoad(sourceUrl, 2);
    const progress = new SnapshotProgress();
    const watched = { ...ctx, snapshotProgress: progress };
    const second = pipelineFor('inc_add', sourceUrl, targetUrl, ['public.history', 'public.accounts'], watched);
    try {
      await until(
        'the incremental snapshot',
        () => ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done'),
        ctx,
      );
      const transactions = await load.stop();
      expect(transactions).toBeGreaterThan(0);
      const result = await waitForEqualTables(sourceUrl, targetUrl, ['accounts', 'history'], 60_000);
      expect(result).toMatchObject({ equal: true });
      const done = ctx.logs.find((l) => l.event === 'incremental_snapshot_table_done')!;
      expect(done.table).toBe('public.accounts');
      // The copy was many chunks, with the load writing in between.
      expect(Number(done.rows)).toBeGreaterThan(ROWS / 2);
      expect(Number(done.chunks)).toBeGreaterThanOrEqual(ROWS / 500);

      // Visible: per table rows copied, the estimate, rate and ETA, in status, /status and /metrics.
      const [table] = progress.report();
      expect(table).toMatchObject({
        table: 'public.accounts',
        status: 'done',
        rows_copied: Number(done.rows),
        estimated_rows: ROWS,
        eta_seconds: 0,
      });
      expect(table!.rows_per_second).toBeGreaterThan(0);
      const state = { ...second.pipeline.state, snapshot: progress };
      expect(formatReport(reportOf(state))).toMatch(/snapshot {5}public\.accounts done: \d+ of ~20000 rows/);
      const metrics = new PipelineMetrics();
      metrics.snapshotTables = () => [{ pipeline: 'inc_add', tables: progress.report() }];
      const text = await metrics.registry.metrics();
      expect(text).toContain(`tributary_snapshot_rows_copied{pipeline="inc_add",table="public.accounts"} ${done.rows}`);
      expect(text).toContain('tributary_snapshot_rows_estimated{pipeline="inc_add",table="public.accounts"} 20000');
      expect(ctx.logs.some((l) => l.event === 'incremental_snapshot_table_started' && l.estimated_rows === ROWS)).toBe(
        true,
      );
    } finally {
      await load.stop();
      await second.stop();
    }
  }, 240_000);

  it('a restart in the middle resumes after the last durable chunk and ends equal', async () => {
    const { sourceUrl, targetUrl } = await setUp('inc_resume');
    const ctx = testContext('inc_resume');
    const first = pipelineFor('inc_resume', sourceUrl, targetUrl, ['public.history'], ctx);
    await until('first start', () => ctx.logs.some((l) => l.event === 'streaming_started'), ctx);
    await first.stop();

    const load = startLoad(sourceUrl, 1);
    const store = new PostgresCheckpointStore(targetUrl);
    const tables = ['public.history', 'public.accounts'];
    // Small chunks: the copy takes many of them, so the stop falls in the middle.
    const second = pipelineFor('inc_resume', sourceUrl, targetUrl, tables, ctx, 20);
    let stored: Awaited<ReturnType<PostgresCheckpointStore['load']>> = null;
    try {
      // Stop once the checkpoint holds some chunks of progress (and not all of it).
      await until(
        'a checkpoint in the middle of the copy',
        async () => {
          stored = await store.load('inc_resume');
          const pending = (stored?.state?.snapshot as { pending?: { lastKey: unknown }[] } | undefined)?.pending;
          return pending?.[0]?.lastKey != null;
        },
        ctx,
      );
      await second.stop();
      const resumeKey = (stored!.state!.snapshot as { pending: { lastKey: string[] }[] }).pending[0]!.lastKey;
      const third = pipelineFor('inc_resume', sourceUrl, targetUrl, tables, ctx);
      try {
        await until(
          'the incremental snapshot',
          () => ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done'),
          ctx,
        );
        const resumed = ctx.logs.filter((l) => l.event === 'incremental_snapshot_table_started');
        expect(resumed).toHaveLength(2);
        // The second start resumed after a key at least as far as the checkpoint seen before the stop.
        expect(Number((resumed[1]!.resume_after as string[])[0])).toBeGreaterThanOrEqual(Number(resumeKey[0]));
        await load.stop();
        const result = await waitForEqualTables(sourceUrl, targetUrl, ['accounts', 'history'], 60_000);
        expect(result).toMatchObject({ equal: true });
        const final = await store.load('inc_resume');
        expect(final?.state?.snapshot).toMatchObject({ pending: [] });
        expect((final!.state!.snapshot as { tables: string[] }).tables.sort()).toEqual(tables.sort());
      } finally {
        await third.stop();
      }
    } finally {
      await load.stop();
      await second.stop().catch(() => undefined);
      await store.close();
    }
  }, 240_000);

  it('a table part-way copied, then dropped and created again while stopped: the copy starts over and ends equal', async () => {
    const { sourceUrl, targetUrl } = await setUp('inc_recreate');
    const ctx = testContext('inc_recreate');
    const first = pipelineFor('inc_recreate', sourceUrl, targetUrl, ['public.history'], ctx);
    await until('first start', () => ctx.logs.some((l) => l.event === 'streaming_started'), ctx);
    await first.stop();
    const store = new PostgresCheckpointStore(targetUrl);
    const tables = ['public.history', 'public.accounts'];
    const second = pipelineFor('inc_recreate', sourceUrl, targetUrl, tables, ctx, 20);
    try {
      await until(
        'a checkpoint in the middle of the copy',
        async () => {
          const stored = await store.load('inc_recreate');
          const pending = (stored?.state?.snapshot as { pending?: { lastKey: unknown }[] } | undefined)?.pending;
          return pending?.[0]?.lastKey != null;
        },
        ctx,
      );
      await second.stop();
      // The same name and key, other rows: the resumed copy must not go on after the old table's last durable key.
      await server.query('inc_recreate_src', 'drop table accounts');
      await server.query(
        'inc_recreate_src',
        'create table accounts (id int primary key, balance int not null, note text)',
      );
      await server.query(
        'inc_recreate_src',
        "insert into accounts select g, -g, 'new ' || g from generate_series(1, 3000) g",
      );
      const third = pipelineFor('inc_recreate', sourceUrl, targetUrl, tables, ctx);
      try {
        await until(
          'the copy of the new table',
          () => ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done' && l.table === 'public.accounts'),
          ctx,
        );
        const result = await waitForEqualTables(sourceUrl, targetUrl, ['accounts', 'history'], 60_000);
        expect(result).toMatchObject({ equal: true });
        expect(
          ctx.logs.some(
            (l) =>
              l.event === 'incremental_snapshot_requested' &&
              l.table === 'public.accounts' &&
              l.reason === 'table created again at the source',
          ),
        ).toBe(true);
      } finally {
        await third.stop();
      }
    } finally {
      await second.stop().catch(() => undefined);
      await store.close();
    }
  }, 240_000);

  it('tributary snapshot re-copies a table of a running pipeline: stale target rows go, a --where range is repaired', async () => {
    const { sourceUrl, targetUrl } = await setUp('inc_req');
    const ctx = testContext('inc_req');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'inc-req-'));
    const file = path.join(dir, 'tributary.yaml');
    writeFileSync(
      file,
      `pipelines:\n  - name: inc_req\n    source: { type: postgres, url: "${sourceUrl}", tables: [public.history, public.accounts] }\n    target: { type: postgres, url: "${targetUrl}" }\n`,
    );
    const running = pipelineFor('inc_req', sourceUrl, targetUrl, ['public.history', 'public.accounts'], ctx);
    let load = { stop: async () => 0 };
    const target = new pg.Client({ connectionString: targetUrl });
    await target.connect();
    try {
      await until(
        'the initial snapshot at the target',
        async () => (await waitForEqualTables(sourceUrl, targetUrl, ['accounts'], 0)).equal,
        ctx,
      );
      load = startLoad(sourceUrl, 1);
      // The target drifts: rows the source does not have (deleted there while they were not followed) and wrong values.
      await target.query('set session_replication_role = replica');
      await target.query(
        `insert into accounts select g, 0, 'stale' from generate_series(${ROWS * 2}, ${ROWS * 2 + 99}) g`,
      );
      await target.query(`update accounts set note = 'drift' where id between 100 and 300`);

      // A partial re-snapshot repairs the range it covers and empties nothing.
      const partial = await tributary([
        'snapshot',
        '-c',
        file,
        '--pipeline',
        'inc_req',
        '--table',
        'public.accounts',
        '--where',
        'id between 100 and 300',
      ]);
      expect(partial.stdout).toMatch(/re-snapshot of public\.accounts where id between 100 and 300 requested/);
      expect(partial.code).toBe(0);
      await until('the partial copy', () => ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done'), ctx);
      // The stale rows stay (nothing was emptied), the drifted range is repaired.
      const drifted = async () =>
        (await target.query("select count(*)::int as n from accounts where note in ('drift', 'stale')")).rows[0].n;
      await until('the partial copy at the target', async () => (await drifted()) === 100, ctx);
      expect((await target.query("select count(*)::int as n from accounts where note = 'stale'")).rows[0].n).toBe(100);

      // A whole-table re-snapshot leaves no stale row.
      const whole = await tributary(['snapshot', '-c', file, '--pipeline', 'inc_req', '--table', 'accounts']);
      expect(whole.code).toBe(0);
      await until(
        'the whole copy',
        () => ctx.logs.filter((l) => l.event === 'incremental_snapshot_table_done').length === 2,
        ctx,
      );
      await load.stop();
      const result = await waitForEqualTables(sourceUrl, targetUrl, ['accounts', 'history'], 60_000);
      expect(result).toMatchObject({ equal: true });

      // Bad requests say what to fix.
      const unknown = await tributary(['snapshot', '-c', file, '--pipeline', 'inc_req', '--table', 'public.nope']);
      expect(unknown.code).not.toBe(0);
      expect(unknown.stderr).toMatch(/does not replicate public\.nope/);
      const badWhere = await tributary([
        'snapshot',
        '-c',
        file,
        '--pipeline',
        'inc_req',
        '--table',
        'accounts',
        '--where',
        'nosuch > 1',
      ]);
      expect(badWhere.code).not.toBe(0);
      expect(badWhere.stderr).toMatch(/--where does not run on public\.accounts/);
    } finally {
      await load.stop();
      await target.end();
      await running.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);

  it('a keyless table added to the pipeline is copied whole at a fence; duplicates neither lost nor doubled under a load', async () => {
    const { sourceUrl, targetUrl } = await setUp('inc_keyless');
    const db = 'inc_keyless_src';
    await server.query(db, 'create table tally (v int, note text)');
    await server.query(db, 'alter table tally replica identity full');
    // Every value three times: identical rows.
    await server.query(db, 'insert into tally select g % 2000, md5((g % 2000)::text) from generate_series(1, 6000) g');
    const ctx = testContext('inc_keyless');
    const first = pipelineFor('inc_keyless', sourceUrl, targetUrl, ['public.history'], ctx);
    await until('first start', () => ctx.logs.some((l) => l.event === 'streaming_started'), ctx);
    await first.stop();

    let running = true;
    let writes = 0;
    const writer = (async () => {
      const client = new pg.Client({ connectionString: sourceUrl });
      await client.connect();
      try {
        while (running) {
          const v = Math.floor(Math.random() * 2000);
          const r = Math.random();
          if (r < 0.4) await client.query('insert into tally values ($1::int, md5($1::int::text))', [v]);
          else if (r < 0.7)
            await client.query('delete from tally where ctid = (select ctid from tally where v = $1 limit 1)', [v]);
          else
            await client.query(
              "update tally set note = 'changed' where ctid = (select ctid from tally where v = $1 limit 1)",
              [v],
            );
          writes++;
        }
      } finally {
        await client.end();
      }
    })();
    const second = pipelineFor('inc_keyless', sourceUrl, targetUrl, ['public.history', 'public.tally'], ctx);
    try {
      await until('the copy', () => ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done'), ctx);
      // Writes go on after the copy, then stop.
      const after = writes;
      await until('writes after the copy', () => writes > after + 20, ctx);
      running = false;
      await writer;
      const result = await waitForEqualTables(sourceUrl, targetUrl, ['tally'], 60_000);
      expect(result).toMatchObject({ equal: true });
      expect(ctx.logs.find((l) => l.event === 'incremental_snapshot_table_done')).toMatchObject({
        table: 'public.tally',
        chunks: 1,
      });
    } finally {
      running = false;
      await writer;
      await second.stop();
    }
  }, 240_000);

  it('a transaction committed but not yet visible (waiting for a synchronous standby) does not leave an old row', async () => {
    const { sourceUrl, targetUrl } = await setUp('inc_sync');
    // Only the stalled session waits for the (missing) standby.
    await server.query('postgres', 'alter database inc_sync_src set synchronous_commit = local');
    await server.query('postgres', 'alter database inc_sync_dst set synchronous_commit = local');
    const ctx = testContext('inc_sync');
    const tables = ['public.history', 'public.accounts'];
    const running = pipelineFor('inc_sync', sourceUrl, targetUrl, tables, ctx);
    const stalled = new pg.Client({ connectionString: sourceUrl });
    await stalled.connect();
    let release = async () => {};
    try {
      await until(
        'the initial copy',
        async () => (await waitForEqualTables(sourceUrl, targetUrl, tables, 0)).equal,
        ctx,
      );
      await server.query('postgres', "alter system set synchronous_standby_names = 'nobody'");
      await server.query('postgres', 'select pg_reload_conf()');
      release = async () => {
        await server.query('postgres', 'alter system reset synchronous_standby_names');
        await server.query('postgres', 'select pg_reload_conf()');
      };
      // The reload reaches each session asynchronously: wait until the stalled one has it.
      await until(
        'the standby setting to reach the session',
        async () =>
          (await stalled.query<{ s: string }>("select current_setting('synchronous_standby_names') as s")).rows[0]!
            .s === 'nobody',
        ctx,
      );
      await stalled.query('set synchronous_commit = on');
      const pid = (await stalled.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      const update = stalled.query("update accounts set note = 'written while the standby was away' where id = 10");
      update.catch(() => undefined);
      await until(
        'the commit to wait for the standby',
        async () =>
          (
            await server.query<{ n: number }>(
              'postgres',
              "select count(*)::int as n from pg_stat_activity where wait_event = 'SyncRep' and pid = $1",
              [pid],
            )
          )[0]!.n === 1,
        ctx,
      );
      await requestPostgresSnapshot(
        { type: 'postgres', url: sourceUrl, tables },
        { pipeline: 'inc_sync', logger: ctx.logger },
        { table: 'public.accounts' },
      );
      await until(
        'a chunk read again',
        () => ctx.logs.some((l) => l.event === 'incremental_snapshot_chunk_reread'),
        ctx,
      );
      await release();
      await update;
      await until('the copy', () => ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done'), ctx);
      const result = await waitForEqualTables(sourceUrl, targetUrl, tables, 30_000);
      expect(result).toMatchObject({ equal: true });
    } finally {
      await release();
      await stalled.end();
      await running.stop();
    }
  }, 240_000);

  describe('into MariaDB', () => {
    let my: MysqlServer;
    beforeAll(async () => {
      my = await startMariadb();
    });
    afterAll(async () => {
      await my?.stop();
    });

    /** Row count and sorted per-row md5s, computed in each database over the same text form. */
    async function digests(sourceDb: string, targetDb: string) {
      const pgSide = await server.query<{ n: number; d: string }>(
        sourceDb,
        `select count(*)::int as n, md5(string_agg(h, '' order by h)) as d
           from (select md5(concat_ws('|', id, balance, note)) as h from accounts) s`,
      );
      await my.query('SET SESSION group_concat_max_len = 1073741824');
      const mySide = await my
        .query<{ n: number; d: string }>(
          `SELECT COUNT(*) AS n, MD5(GROUP_CONCAT(h ORDER BY h SEPARATOR '')) AS d
           FROM (SELECT MD5(CONCAT_WS('|', id, balance, note)) AS h FROM accounts) s`,
          [],
          targetDb,
        )
        .catch(() => [{ n: -1, d: '' }]);
      return { source: { n: pgSide[0]!.n, d: pgSide[0]!.d }, target: { n: Number(mySide[0]!.n), d: mySide[0]!.d } };
    }

    it('a table added to the pipeline is copied into MariaDB while a write load runs on it; equal by SQL hashes', async () => {
      const { sourceUrl } = await setUp('inc_my');
      await my.query('DROP DATABASE IF EXISTS inc_my');
      const ctx = testContext('inc_my');
      const target = () =>
        new MysqlTarget(mysqlTargetConfig.parse({ type: 'mysql', url: my.url(), database: 'inc_my' }), ctx);
      const first = pipelineFor('inc_my', sourceUrl, '', ['public.history'], ctx, 500, target);
      await until('first start', () => ctx.logs.some((l) => l.event === 'streaming_started'), ctx);
      await first.stop();
      const load = startLoad(sourceUrl, 2);
      const second = pipelineFor('inc_my', sourceUrl, '', ['public.history', 'public.accounts'], ctx, 500, target);
      try {
        await until('the copy', () => ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done'), ctx);
        await load.stop();
        let last: Awaited<ReturnType<typeof digests>> | null = null;
        await until(
          'equal tables',
          async () => {
            last = await digests('inc_my_src', 'inc_my');
            return last.source.n === last.target.n && last.source.d === last.target.d;
          },
          ctx,
        );
        expect(last!.source.n).toBeGreaterThan(ROWS / 2);
      } finally {
        await load.stop();
        await second.stop();
      }
    }, 240_000);
  });
});
