import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeBatch } from '../../../src/core/change-batch.ts';
import { type Checkpoint, parseLsn } from '../../../src/core/checkpoint.ts';
import { TributaryError } from '../../../src/errors.ts';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import { type PgServer, startPostgres } from '../../../test/harness/postgres.ts';
import { postgresTargetConfig } from '../sink/config.ts';
import { PostgresTarget } from '../sink/target.ts';
import { PostgresSource } from './source.ts';

const logger = pino({ level: 'silent' });
const BATCH = { max_events: 1000, max_bytes: 4 * 1024 * 1024, max_wait_ms: 20 };
const lsnOf = (cp: Checkpoint): bigint => parseLsn((cp.position as { lsn: string }).lsn);

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('PostgreSQL source: nothing lost, nothing wrong, quiet when idle', () => {
  let server: PgServer;
  beforeAll(async () => {
    server = await startPostgres({ throwaway: true });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('an idle pipeline whose target is on the source server saves at most one checkpoint per heartbeat interval', async () => {
    const sourceUrl = await server.createDatabase('idle_src');
    const targetUrl = await server.createDatabase('idle_dst');
    await server.query('idle_src', 'create table t (id int primary key, v text)');
    const heartbeatMs = 1000;
    const target = new PostgresTarget(postgresTargetConfig.parse({ type: 'postgres', url: targetUrl }), {
      pipeline: 'idle',
      logger,
    });
    const pipeline = new Pipeline({
      name: 'idle',
      createParts: () => ({
        source: new PostgresSource(
          {
            type: 'postgres',
            url: sourceUrl,
            tables: ['public.t'],
            snapshot: 'never',
            heartbeat_interval_ms: heartbeatMs,
            status_interval_ms: 200,
          },
          { pipeline: 'idle', logger },
          { batch: BATCH },
        ),
        target,
      }),
      maxInFlight: 4,
      maxInFlightBytes: 1 << 26,
      initialBackoffMs: 50,
      maxBackoffMs: 200,
      logger,
    });
    const running = pipeline.run();
    try {
      await waitFor('the pipeline to run', () => pipeline.state.status === 'running');
      await server.query('idle_src', "insert into t values (1, 'a')");
      await waitFor(
        'the first row at the target',
        async () =>
          (await server.query('idle_dst', "select 1 from pg_tables where schemaname = 'public' and tablename = 't'"))
            .length > 0 && (await server.query('idle_dst', 'select 1 from public.t')).length === 1,
      );
      // Count checkpoint writes inside the target database itself.
      await server.query(
        'idle_dst',
        `create table public.checkpoint_writes (at timestamptz default clock_timestamp());
         create function public.count_checkpoint_write() returns trigger language plpgsql as
           $$ begin insert into public.checkpoint_writes default values; return null; end $$;
         create trigger count_writes after insert or update on tributary.checkpoints
           for each row execute function public.count_checkpoint_write();`,
      );
      const idleSeconds = 4;
      await new Promise((r) => setTimeout(r, idleSeconds * 1000));
      const counted = await server.query<{ n: string }>(
        'idle_dst',
        'select count(*)::text as n from checkpoint_writes',
      );
      const n = counted[0]!.n;
      // At most one heartbeat checkpoint per interval (one more for a heartbeat already under way).
      expect(Number(n)).toBeLessThanOrEqual(Math.ceil((idleSeconds * 1000) / heartbeatMs) + 1);
      // The slot still advances while idle.
      const before = pipeline.state.checkpoint!;
      await waitFor('an idle checkpoint', () => lsnOf(pipeline.state.checkpoint!) > lsnOf(before), 5000);
    } finally {
      pipeline.stop();
      await running;
    }
  });

  it('snapshot never: changes made while a pipeline that saw none was stopped are delivered on restart', async () => {
    const sourceUrl = await server.createDatabase('quiet_src');
    const targetUrl = await server.createDatabase('quiet_dst');
    await server.query('quiet_src', 'create table t (id int primary key)');
    const pipelineOf = () => {
      const target = new PostgresTarget(postgresTargetConfig.parse({ type: 'postgres', url: targetUrl }), {
        pipeline: 'quiet',
        logger,
      });
      return new Pipeline({
        name: 'quiet',
        createParts: () => ({
          source: new PostgresSource(
            { type: 'postgres', url: sourceUrl, tables: ['public.t'], snapshot: 'never' },
            { pipeline: 'quiet', logger },
            { batch: BATCH },
          ),
          target,
        }),
        maxInFlight: 4,
        maxInFlightBytes: 1 << 26,
        initialBackoffMs: 50,
        maxBackoffMs: 200,
        logger,
      });
    };
    const first = pipelineOf();
    const running = first.run();
    await waitFor('the pipeline to run', () => first.state.status === 'running');
    first.stop();
    await running;
    await server.query('quiet_src', 'insert into t values (1), (2), (3)');
    const second = pipelineOf();
    const again = second.run();
    const ids = async (db: string) =>
      (await server.query<{ id: number }>(db, 'select id from t order by id').catch(() => [])).map((r) => r.id);
    try {
      await waitFor('the pipeline to run', () => second.state.status === 'running');
      await server.query('quiet_src', 'insert into t values (4)');
      await waitFor('row 4 at the target', async () => (await ids('quiet_dst')).includes(4)).catch(() => undefined);
      expect(await ids('quiet_dst')).toEqual(await ids('quiet_src'));
    } finally {
      second.stop();
      await again;
    }
  });

  it('an unchanged TOAST primary-key value keeps each row its own key', async () => {
    const url = await server.createDatabase('toast_key');
    await server.query(
      'toast_key',
      `create table t (id text primary key, v int);
       alter table t alter column id set storage external;`,
    );
    const source = new PostgresSource(
      { type: 'postgres', url, tables: ['public.t'], snapshot: 'never', heartbeat_interval_ms: 300 },
      { pipeline: 'toast_key', logger },
      { batch: BATCH },
    );
    await source.open(null);
    const it = source.batches()[Symbol.asyncIterator]();
    try {
      // Keys long enough to be stored out of line, short enough for the index.
      await server.query(
        'toast_key',
        `insert into t select string_agg(md5(g::text || ':' || k::text), '') , k
           from generate_series(1, 2) k, generate_series(1, 70) g group by k`,
      );
      await server.query('toast_key', 'update t set v = v + 10');
      const expected = await server.query<{ id: string }>('toast_key', 'select id from t order by id');
      expect(expected.map((r) => r.id.length)).toEqual([2240, 2240]);
      const updates: ChangeBatch['events'] = [];
      while (updates.length < 2) {
        const b = (await it.next()).value as ChangeBatch;
        updates.push(...b.events.filter((e) => e.op === 'update'));
      }
      expect(updates.map((e) => e.key!.id).sort()).toEqual(expected.map((r) => r.id));
    } finally {
      await source.close();
      await it.return?.();
    }
  });

  it('a decode error inside a transaction ends the batches: no checkpoint of that transaction or a later one', async () => {
    const url = await server.createDatabase('decode_error');
    await server.query('decode_error', 'create table t (id int primary key, v text)');
    const source = new PostgresSource(
      { type: 'postgres', url, tables: ['public.t'], snapshot: 'never', heartbeat_interval_ms: 300 },
      { pipeline: 'decode_error', logger },
      { batch: BATCH },
    );
    await source.open(null);
    // A change the decoder cannot follow, in the middle of a transaction larger than a batch.
    const decoder = (source as unknown as { decoder: { decode: (...args: unknown[]) => unknown } }).decoder;
    const decode = decoder.decode.bind(decoder);
    decoder.decode = (...args: unknown[]) => {
      const out = decode(...args) as { op?: string; after?: { id?: string } };
      if (out.op === 'insert' && out.after?.id === '2500') throw new TributaryError('fatal', 'pgoutput: cannot decode');
      return out;
    };
    const batches: ChangeBatch[] = [];
    let error: unknown = null;
    try {
      await server.query('decode_error', 'insert into t select i, md5(i::text) from generate_series(1, 4000) i');
      const [after] = await server.query<{ lsn: string }>('decode_error', 'select pg_current_wal_lsn()::text as lsn');
      const lsn = after!.lsn;
      await server.query('decode_error', 'insert into t select i, md5(i::text) from generate_series(5001, 5100) i');
      try {
        for await (const b of source.batches()) batches.push(b);
      } catch (err) {
        error = err;
      }
      // Only changes before the one that failed, in order: nothing after the gap.
      const ids = batches.flatMap((b) => b.events).map((e) => Number(e.key?.id));
      expect(ids).toEqual(ids.map((_, i) => i + 1));
      expect(ids.length).toBeLessThan(2500);
      // The transaction's commit is at or before `lsn`: no checkpoint may reach it.
      for (const b of batches) if (b.checkpoint) expect(lsnOf(b.checkpoint)).toBeLessThan(parseLsn(lsn));
      expect(batches.flatMap((b) => b.events).some((e) => Number(e.key?.id) > 5000)).toBe(false);
      expect((error as Error | null)?.message).toContain('cannot decode');
      expect((error as Error).message).toMatch(/WAL position [0-9A-F]+\/[0-9A-F]+/);
    } finally {
      await source.close();
    }
  });
});
