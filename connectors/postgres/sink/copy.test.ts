/**
 * The COPY path of the PostgreSQL target: large runs of new rows are loaded with COPY (inside a savepoint for keyed
 * tables) and must end exactly as the INSERT path would.
 */
import { describe, expect, it } from 'vitest';
import type { Row } from '../../../src/core/change-event.ts';
import { col, tableSchema, testContext } from '../../../test/fixtures/change-events.ts';
import { postgresTargetConfig } from './config.ts';
import { postgresTargetSuite } from './target.test-support.ts';

const suite = postgresTargetSuite();
const { setup } = suite;

const odd = tableSchema('public.odd', [
  col('id', 'bigint', 'int', true),
  col('t', 'text'),
  col('v', 'character varying(20)'),
  col('b', 'bytea', 'bytes'),
  col('a', 'text[]', 'array'),
  col('j', 'jsonb', 'json'),
  col('n', 'numeric(12,2)', 'decimal'),
  col('ts', 'timestamp with time zone', 'timestamptz'),
]);

/** Values that need every escape of the COPY text format, and some that must not be touched. */
const tricky: Row[] = [
  { t: 'tab\there', v: 'a\tb', b: '\\x00090a0d5c', a: '{"with \\"quote\\"","x,y",NULL}', j: '{"k": "a\\\\b\\n"}' },
  { t: 'line\nbreak\r\nwin', v: 'nl\nx', b: '\\x', a: '{}', j: '[1, "\\t"]' },
  { t: 'back\\slash \\N \\.', v: '\\', b: '\\xdeadbeef', a: '{"back\\\\slash"}', j: '"\\\\N"' },
  { t: '', v: '', b: '\\x00', a: '{""}', j: '""' },
  { t: null, v: null, b: null, a: null, j: null },
  { t: 'żółw 🐢 日本語', v: 'ünï', b: '\\xc3bc', a: '{żółw,🐢}', j: '{"ü": "🐢"}' },
].map((r, i) => ({ id: String(i + 1), n: `${i}.25`, ts: '2024-05-06 07:08:09.123456+00', ...r }));

function rows(from: number, count: number, name = (i: number) => `row ${i}`): Row[] {
  return Array.from({ length: count }, (_, k) => ({
    id: String(from + k),
    t: name(from + k),
    v: null,
    b: null,
    a: null,
    j: null,
    n: '1.00',
    ts: null,
  }));
}

const SELECT = 'select id, t, v, b::text as b, a::text as a, j::text as j, n::text as n, ts::text as ts from odd';

describe('PostgresTarget COPY path', () => {
  it('loads values with tabs, newlines, backslashes, NULL vs empty, unicode, bytea and arrays as INSERT does', async () => {
    const viaCopy = await setup('copy_values', { copy_min_rows: 2 });
    const viaInsert = await setup('insert_values', { copy_min_rows: 1_000_000 });
    for (const { target, src } of [viaCopy, viaInsert]) {
      await target.write(
        src.batch(
          src.tx((t) =>
            tricky.forEach((r) => {
              t.insert(odd, r);
            }),
          ),
        ),
      );
    }
    const copied = await viaCopy.q(`${SELECT} order by id`);
    expect(copied).toEqual(await viaInsert.q(`${SELECT} order by id`));
    expect(copied[0]).toMatchObject({ t: 'tab\there', b: '\\x00090a0d5c', a: '{"with \\"quote\\"","x,y",NULL}' });
    expect(copied[1]).toMatchObject({ t: 'line\nbreak\r\nwin' });
    expect(copied[2]).toMatchObject({ t: 'back\\slash \\N \\.', v: '\\' });
    expect(copied[3]).toMatchObject({ t: '', v: '', a: '{""}' });
    expect(copied[4]).toMatchObject({ t: null, v: null, b: null, a: null, j: null });
    expect(copied[5]).toMatchObject({ t: 'żółw 🐢 日本語', a: '{żółw,🐢}', j: '{"ü": "🐢"}' });
    expect(viaCopy.ctx.logs.filter((l) => l.event === 'target_copy_conflict')).toEqual([]);
  });

  it('applies a 100,000-row snapshot batch, then skips its replay', async () => {
    const { target, q, src, ctx } = await setup('copy_snapshot');
    const snapshot = src.tx((t) => {
      for (const r of rows(1, 100_000)) t.read(odd, r);
    });
    const batch = src.batch(snapshot);
    await target.write(batch);
    expect(await q('select count(*)::int as n, min(id)::int as lo, max(id)::int as hi from odd')).toEqual([
      { n: 100_000, lo: 1, hi: 100_000 },
    ]);
    expect(await target.checkpointStore.load('test')).toMatchObject({ position: snapshot.checkpoint.position });
    await target.write(batch);
    expect(ctx.logs.some((l) => l.event === 'target_replay_skipped')).toBe(true);
    expect(await q('select count(*)::int as n from odd')).toEqual([{ n: 100_000 }]);
  });

  it('sends new rows that already exist as upserts (a replayed snapshot) and keeps deletes, updates and partials', async () => {
    const { target, q, src, ctx } = await setup('copy_conflict', { copy_min_rows: 10 });
    await target.write(
      src.batch(
        src.tx((t) =>
          rows(1, 50).forEach((r) => {
            t.read(odd, r);
          }),
        ),
      ),
    );
    // The same keys again with new values, and new keys after them: the COPY meets existing rows.
    await target.write(
      src.batch(
        src.tx((t) => {
          for (const r of rows(1, 100, (i) => `again ${i}`)) t.read(odd, r);
          t.delete(odd, { id: '3' });
          t.update(odd, { ...rows(4, 1, () => 'updated')[0]! });
        }),
      ),
    );
    expect(ctx.logs.filter((l) => l.event === 'target_copy_conflict')).toHaveLength(1);
    const got = await q<{ id: string; t: string }>('select id, t from odd order by id::int');
    expect(got).toHaveLength(99);
    expect(got.find((r) => r.id === '3')).toBeUndefined();
    expect(got.find((r) => r.id === '4')?.t).toBe('updated');
    expect(got.find((r) => r.id === '1')?.t).toBe('again 1');
    expect(got.find((r) => r.id === '100')?.t).toBe('again 100');
  });

  it('a snapshot row that exists in a table thought empty fails the transaction as retryable; the retry upserts', async () => {
    const { target, q, src, ctx, reopen } = await setup('copy_snapshot_overlap', {
      copy_min_rows: 10,
      statement_max_rows: 20,
    });
    // One transaction, two runs: keys 1..20, then 15..34 (the second run meets keys the first one wrote).
    const tx = src.tx((t) => {
      for (const r of rows(1, 20)) t.read(odd, r);
      for (const r of rows(15, 20, (i) => `second ${i}`)) t.read(odd, r);
    });
    const batch = src.batch(tx);
    const err = await target.write(batch).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'retryable' });
    // The table was created by that transaction: it is gone with it.
    expect(await q("select to_regclass('public.odd') as t")).toEqual([{ t: null }]);
    // The retry runs on a new target object, as a pipeline's restart creates one.
    await target.close();
    await (await reopen()).write(batch);
    expect(await q('select count(*)::int as n from odd')).toEqual([{ n: 34 }]);
    expect(await q("select t from odd where id = '15'")).toEqual([{ t: 'second 15' }]);
    expect(ctx.logs.filter((l) => l.event === 'target_copy_conflict')).toHaveLength(1);
  });

  it('a key read twice in one run of snapshot reads (kept unkeyed) fails its COPY as retryable; the retry keeps the later read', async () => {
    const { target, q, src, reopen } = await setup('copy_snapshot_twice', {
      copy_min_rows: 10,
      statement_max_rows: 1000,
    });
    // One run: keys 1..20 read, then key 7 read again with a newer value (a re-snapshot request met the first copy).
    const tx = src.tx((t) => {
      for (const r of rows(1, 20)) t.read(odd, r);
      t.read(odd, rows(7, 1, () => 'read again')[0]!);
    });
    const batch = src.batch(tx);
    expect(await target.write(batch).catch((e: unknown) => e)).toMatchObject({ kind: 'retryable' });
    // The retry runs on a new target object, as a pipeline's restart creates one.
    await target.close();
    await (await reopen()).write(batch);
    expect(await q('select count(*)::int as n from odd')).toEqual([{ n: 20 }]);
    expect(await q("select t from odd where id = '7'")).toEqual([{ t: 'read again' }]);
  });

  it('takes at most 32 COPY savepoints in one transaction, then upserts', async () => {
    const { target, q, src } = await setup('copy_many_runs', { copy_min_rows: 10, statement_max_rows: 10 });
    await target.write(src.batch(src.tx((t) => t.insert(odd, rows(0, 1)[0]!))));
    const big = src.tx((t) => {
      for (const r of rows(1, 500)) t.insert(odd, r);
    });
    await target.write(src.batch(big));
    expect(await q('select count(*)::int as n, count(distinct t)::int as d from odd')).toEqual([{ n: 501, d: 501 }]);
  });

  it('a failure in the middle of a COPY rolls back the whole transaction and its checkpoint', async () => {
    const { target, q, src, reopenStored } = await setupWithStored('copy_failure');
    const first = src.tx((t) =>
      rows(1, 10).forEach((r) => {
        t.insert(odd, r);
      }),
    );
    await target.write(src.batch(first));
    const big = src.tx((t) => {
      const rs = rows(100, 5_000);
      rs[2_500] = { ...rs[2_500]!, n: 'not a number' };
      for (const r of rs) t.insert(odd, r);
    });
    // The transaction spans two batches: the first half is applied, the second fails within its COPY.
    const head = { ...src.partial(big.events.slice(0, 1_000)) };
    const tail = { ...src.partial(big.events.slice(1_000)), checkpoint: big.checkpoint };
    await target.write(head);
    await expect(target.write(tail)).rejects.toThrow(/numeric/);
    expect(await q('select count(*)::int as n from odd')).toEqual([{ n: 10 }]);
    expect((await reopenStored())?.position).toEqual(first.checkpoint.position);
  });

  it('loads large runs into a table without a key with COPY', async () => {
    const { target, q, src } = await setup('copy_keyless', { copy_min_rows: 100 });
    const log = tableSchema('public.log', [col('at', 'bigint', 'int'), col('msg', 'text')]);
    const lines = Array.from({ length: 1_000 }, (_, i) => ({ at: String(i), msg: i % 2 ? `x\t${i}` : null }));
    await target.write(
      src.batch(
        src.tx((t) =>
          lines.forEach((r) => {
            t.insert(log, r);
          }),
        ),
      ),
    );
    expect(await q('select count(*)::int as n, count(msg)::int as m from log')).toEqual([{ n: 1_000, m: 500 }]);
    expect(await q("select msg from log where at = '1'")).toEqual([{ msg: 'x\t1' }]);
  });
});

async function setupWithStored(db: string) {
  const s = await setup(db, { copy_min_rows: 100 });
  const reopenStored = async () => {
    const t = await suite.openTarget(
      postgresTargetConfig.parse({ type: 'postgres', url: suite.server.url(db) }),
      testContext('test'),
    );
    return t.checkpointStore.load('test');
  };
  return { ...s, reopenStored };
}
