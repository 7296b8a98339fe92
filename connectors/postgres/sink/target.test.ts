import { describe, expect, it, vi } from 'vitest';
import { blockBatch } from '../../../src/core/change-batch.ts';
import { type Row, UNCHANGED } from '../../../src/core/change-event.ts';
import { errorKind, SchemaMismatchError } from '../../../src/errors.ts';
import { col, tableSchema, testContext } from '../../../test/fixtures/change-events.ts';
import { CopyTextBlock } from '../source/copy-text-block.ts';
import { postgresTargetConfig } from './config.ts';
import { copyValue } from './copy-writer.ts';
import { postgresTargetSuite } from './target.test-support.ts';

const suite = postgresTargetSuite();
const { setup } = suite;

const accounts = tableSchema('public.accounts', [
  col('id', 'bigint', 'int', true),
  col('name', 'text'),
  col('balance', 'numeric(12,2)', 'decimal'),
]);

function acct(id: number, name: string, balance = '0.00'): Row {
  return { id: String(id), name, balance };
}

/** Rows as a PostgreSQL source's snapshot hands them on: the CopyData messages of its COPY TO, one row each. */
function copyBlock(rows: Row[], source: CopyTextBlock['source']): CopyTextBlock {
  const names = accounts.columns.map((c) => c.name);
  const data = Buffer.concat(
    rows.map((r) => {
      const line = Buffer.from(`${names.map((n) => copyValue(r[n])).join('\t')}\n`);
      const header = Buffer.from([0x64, 0, 0, 0, 0]);
      header.writeUInt32BE(line.length + 4, 1);
      return Buffer.concat([header, line]);
    }),
  );
  return new CopyTextBlock(accounts, data, rows.length, source);
}

describe('PostgresTarget', () => {
  it('snapshot rows in COPY blocks: sent as they are into an empty table, as upserts into one with rows', async () => {
    const { target, q, src } = await setup('t_blocks');
    const blocks = (rows: Row[]) => {
      const b = src.batch(src.tx((t) => rows.reduce((tx, r) => tx.read(accounts, r), t)));
      const block = copyBlock(rows, b.events[0]!.source);
      return { batch: blockBatch(b.seq, [block], b.checkpoint, 0), decoded: vi.spyOn(block, 'events') };
    };
    const first = blocks([acct(1, 'a\tb'), acct(2, 'b', '2.50'), { id: '3', name: null, balance: '-1.00' }]);
    expect(await target.write(first.batch)).toBe('durable');
    // The empty table took the messages by COPY: no row was decoded.
    expect(first.decoded).not.toHaveBeenCalled();
    expect(await q('select id, name, balance from accounts order by id')).toEqual([
      { id: '1', name: 'a\tb', balance: '0.00' },
      { id: '2', name: 'b', balance: '2.50' },
      { id: '3', name: null, balance: '-1.00' },
    ]);
    // A chunk read again after a restart finds rows: decoded and upserted, nothing duplicated.
    const again = blocks([acct(3, 'c'), acct(4, 'd')]);
    expect(await target.write(again.batch)).toBe('durable');
    expect(again.decoded).toHaveBeenCalled();
    expect(await q('select id, name from accounts order by id')).toEqual([
      { id: '1', name: 'a\tb' },
      { id: '2', name: 'b' },
      { id: '3', name: 'c' },
      { id: '4', name: 'd' },
    ]);
  });

  it('a COPY block with a value the target type refuses fails the write with the table named', async () => {
    const { target, q, src } = await setup('t_blocks_bad');
    const b = src.batch(src.tx((t) => t.read(accounts, acct(1, 'a'))));
    const block = copyBlock([acct(1, 'a'), acct(2, 'b', 'not a number')], b.events[0]!.source);
    const err = await target.write(blockBatch(b.seq, [block], b.checkpoint, 0)).catch((e: unknown) => e);
    expect(errorKind(err)).toBe('operator');
    expect(String((err as Error).message)).toMatch(/public\.accounts.*not a number|not a number.*public\.accounts/s);
    await target.reset();
    // Nothing of it stays: the table was created in the same transaction, which was rolled back.
    expect(await q("select count(*)::int as n from pg_tables where tablename = 'accounts'")).toEqual([{ n: 0 }]);
  });

  it('resolves write only after commit, keeps mid-transaction batches invisible, and ignores replays', async () => {
    const { target, q, src } = await setup('t_contract');
    const tx1 = src.tx((t) => t.insert(accounts, acct(1, 'ann')).insert(accounts, acct(2, 'bob')));
    const b1 = src.batch(tx1);
    await target.write(b1);
    expect(await q('select id, name from accounts order by id')).toEqual([
      { id: '1', name: 'ann' },
      { id: '2', name: 'bob' },
    ]);

    // A transaction spanning two batches: the first is applied but not visible until the second commits.
    const big = src.tx((t) => t.insert(accounts, acct(3, 'cy')).update(accounts, acct(2, 'bob', '5.50')));
    await target.write(src.partial(big.events.slice(0, 1)));
    expect(await q('select count(*)::int as n from accounts')).toEqual([{ n: 2 }]);
    const last = { ...src.partial(big.events.slice(1)), checkpoint: big.checkpoint };
    await target.write(last);
    expect(await q('select id, name, balance from accounts order by id')).toEqual([
      { id: '1', name: 'ann', balance: '0.00' },
      { id: '2', name: 'bob', balance: '5.50' },
      { id: '3', name: 'cy', balance: '0.00' },
    ]);
    const stored = await q<{ position: unknown; phase: string }>(
      "select position, phase from tributary.checkpoints where pipeline = 'test'",
    );
    expect(stored).toEqual([{ position: big.checkpoint.position, phase: 'stream' }]);

    // Later: ann is deleted. Replaying the first batch must not bring her back.
    await target.write(src.batch(src.tx((t) => t.delete(accounts, { id: '1', name: null, balance: null }))));
    const before = await q('select * from accounts order by id');
    await target.write(b1);
    expect(await q('select * from accounts order by id')).toEqual(before);
    // A heartbeat only moves the checkpoint.
    const hb = src.heartbeat();
    await target.write(hb);
    expect(await target.checkpointStore.load('test')).toMatchObject({ position: hb.checkpoint!.position });
    expect(await q('select * from accounts order by id')).toEqual(before);
  });

  it('serializes writes issued before earlier ones resolved', async () => {
    const { target, q, src } = await setup('t_serial');
    const writes: Promise<unknown>[] = [];
    let last = null as unknown;
    for (let i = 0; i < 30; i++) {
      const tx = src.tx((t) => {
        t.insert(accounts, acct(i, `n${i}`));
        if (i > 0) t.update(accounts, acct(i - 1, `m${i - 1}`));
      });
      last = tx.checkpoint.position;
      writes.push(target.write(src.batch(tx)));
    }
    await Promise.all(writes);
    const rows = await q<{ id: string; name: string }>('select id, name from accounts order by id');
    expect(rows.length).toBe(30);
    expect(rows.slice(0, 29).every((r) => r.name === `m${r.id}`)).toBe(true);
    expect(rows[29]!.name).toBe('n29');
    expect((await target.checkpointStore.load('test'))?.position).toEqual(last);
  });

  it('applies upserts, deletes, truncates and snapshot reads with per-key order', async () => {
    const { target, q, src } = await setup('t_ops');
    const k = (id: number) => ({ id: String(id), name: null, balance: null });
    await target.write(
      src.batch(
        src.tx((t) =>
          t
            .insert(accounts, acct(1, 'a'))
            .insert(accounts, acct(2, 'b'))
            .update(accounts, acct(2, 'b2'))
            .delete(accounts, k(1))
            .insert(accounts, acct(3, 'c'))
            .delete(accounts, k(3))
            .insert(accounts, acct(3, 'c2'))
            .insert(accounts, acct(6, 'f'))
            .delete(accounts, k(6))
            .update(accounts, acct(4, 'd')) // missing on the target: upserted
            .delete(accounts, k(5)) // missing: no error
            .read(accounts, acct(7, 'g')),
        ),
      ),
    );
    expect(await q('select id, name from accounts order by id')).toEqual([
      { id: '2', name: 'b2' },
      { id: '3', name: 'c2' },
      { id: '4', name: 'd' },
      { id: '7', name: 'g' },
    ]);
    await target.write(src.batch(src.tx((t) => t.truncate(accounts).insert(accounts, acct(9, 'z')))));
    expect(await q('select id, name from accounts order by id')).toEqual([{ id: '9', name: 'z' }]);
  });

  it('keeps the order between tables linked by a foreign key on the target', async () => {
    const { target, q, src } = await setup('t_fk');
    await q('create table parent (id integer primary key, v text)');
    await q('create table child (id integer primary key, parent_id integer references parent, v text)');
    const parent = tableSchema('public.parent', [col('id', 'integer', 'int', true), col('v', 'text')]);
    const child = tableSchema('public.child', [
      col('id', 'integer', 'int', true),
      col('parent_id', 'integer', 'int'),
      col('v', 'text'),
    ]);
    const other = tableSchema('public.other', [col('id', 'integer', 'int', true)]);
    await target.write(
      src.batch(
        src.tx((t) =>
          t
            .insert(parent, { id: '1', v: 'p' })
            .insert(child, { id: '1', parent_id: '1', v: 'c' })
            .insert(parent, { id: '2', v: 'p2' })
            .insert(child, { id: '2', parent_id: '2', v: 'c2' }),
        ),
        src.tx((t) =>
          t
            .delete(child, { id: '1', parent_id: null, v: null })
            .delete(parent, { id: '1', v: null })
            .insert(other, { id: '1' })
            .insert(other, { id: '2' }),
        ),
      ),
    );
    expect(await q('select id, parent_id from child')).toEqual([{ id: 2, parent_id: 2 }]);
    expect(await q('select id from parent')).toEqual([{ id: 2 }]);
    expect(await q('select count(*)::int as n from other')).toEqual([{ n: 2 }]);
  });

  it('follows key changes', async () => {
    const { target, q, src } = await setup('t_keychange');
    const pair = tableSchema('public.pair', [
      col('a', 'integer', 'int', true),
      col('b', 'text', 'text', true),
      col('v', 'text'),
    ]);
    await target.write(
      src.batch(src.tx((t) => t.insert(pair, { a: '1', b: 'x', v: 'one' }).insert(pair, { a: '2', b: 'x', v: 'two' }))),
    );
    await target.write(
      src.batch(
        src.tx((t) =>
          t
            .update(pair, { a: '10', b: 'y', v: 'one' }, { a: '1', b: 'x', v: null })
            .insert(pair, { a: '1', b: 'x', v: 'new one' })
            .update(pair, { a: '20', b: 'x', v: 'two' }, { a: '2', b: 'x', v: null }),
        ),
      ),
    );
    expect(await q('select a, b, v from pair order by a')).toEqual([
      { a: 1, b: 'x', v: 'new one' },
      { a: 10, b: 'y', v: 'one' },
      { a: 20, b: 'x', v: 'two' },
    ]);
    // A key change that leaves a TOAST column out moves the row and keeps the column.
    await target.write(
      src.batch(src.tx((t) => t.update(pair, { a: '11', b: 'y', v: UNCHANGED }, { a: '10', b: 'y', v: null }))),
    );
    expect(await q('select a, b, v from pair where a >= 10 order by a')).toEqual([
      { a: 11, b: 'y', v: 'one' },
      { a: 20, b: 'x', v: 'two' },
    ]);
  });

  it('updates and deletes exactly one of two identical rows of a keyless full-identity table', async () => {
    const { target, q, src, ctx } = await setup('t_keyless');
    const log = tableSchema(
      'public.log',
      [col('tag', 'text'), col('n', 'integer', 'int'), col('doc', 'json', 'json')],
      {
        beforeImage: 'full',
      },
    );
    const row = (tag: string, n: string | null): Row => ({ tag, n, doc: '{"k": [1, 2]}' });
    await target.write(
      src.batch(src.tx((t) => t.insert(log, row('a', '1')).insert(log, row('a', '1')).insert(log, row('b', null)))),
    );
    await target.write(src.batch(src.tx((t) => t.update(log, row('a', '2'), row('a', '1')))));
    expect(await q('select tag, n from log order by tag, n')).toEqual([
      { tag: 'a', n: 1 },
      { tag: 'a', n: 2 },
      { tag: 'b', n: null },
    ]);
    await target.write(src.batch(src.tx((t) => t.delete(log, row('a', '1')).delete(log, row('b', null)))));
    expect(await q('select tag, n from log order by tag, n')).toEqual([{ tag: 'a', n: 2 }]);

    // Neither key nor full identity: inserts only, and one warning.
    const bare = tableSchema('public.bare', [col('tag', 'text')]);
    await target.write(
      src.batch(
        src.tx((t) =>
          t.insert(bare, { tag: 'x' }).update(bare, { tag: 'y' }).delete(bare, { tag: 'x' }).insert(bare, { tag: 'z' }),
        ),
      ),
    );
    expect(await q('select tag from bare order by tag')).toEqual([{ tag: 'x' }, { tag: 'z' }]);
    expect(ctx.logs.filter((l) => l.event === 'target_keyless_change_skipped')).toHaveLength(1);
  });

  it('keeps unchanged TOAST columns and reports a missing row', async () => {
    const { target, q, src, ctx } = await setup('t_toast');
    const docs = tableSchema('public.docs', [
      col('id', 'integer', 'int', true),
      col('body', 'text'),
      col('n', 'integer', 'int'),
    ]);
    const big = 'x'.repeat(200_000);
    await target.write(src.batch(src.tx((t) => t.insert(docs, { id: '1', body: big, n: '1' }))));
    await target.write(src.batch(src.tx((t) => t.update(docs, { id: '1', body: UNCHANGED, n: '2' }))));
    expect(await q('select length(body) as len, n from docs')).toEqual([{ len: 200_000, n: 2 }]);
    // Insert and partial update in one batch merge into one image.
    await target.write(
      src.batch(
        src.tx((t) =>
          t.insert(docs, { id: '2', body: 'short', n: '1' }).update(docs, { id: '2', body: UNCHANGED, n: '3' }),
        ),
      ),
    );
    expect(await q('select id, body, n from docs where id = 2')).toEqual([{ id: 2, body: 'short', n: 3 }]);
    await target.write(src.batch(src.tx((t) => t.update(docs, { id: '99', body: UNCHANGED, n: '1' }))));
    expect(await q('select count(*)::int as n from docs')).toEqual([{ n: 2 }]);
    expect(ctx.logs.some((l) => l.event === 'target_row_missing')).toBe(true);
  });

  it('creates schemas and tables, adds columns, widens types, and maps names', async () => {
    const { target, q, src } = await setup('t_schema', {
      schema: 'replica',
      tables: { 'sales.orders': 'archive.orders_copy' },
    });
    const v1 = tableSchema('sales.items', [
      col('id', 'integer', 'int', true),
      col('price', 'numeric(10,2)', 'decimal'),
      col('code', 'character varying(20)'),
      col('at', 'timestamp(3) with time zone', 'timestamptz'),
      col('tags', 'integer[]', 'array'),
    ]);
    await target.write(
      src.batch(
        src.tx((t) =>
          t.insert(v1, { id: '1', price: '9.99', code: 'A', at: '2024-01-02 03:04:05.123+00', tags: '{1,2}' }),
        ),
      ),
    );
    const types = await q(
      `select column_name, format_type(atttypid, atttypmod) as type from information_schema.columns c
       join pg_attribute a on a.attrelid = 'replica.items'::regclass and a.attname = c.column_name
       where table_schema = 'replica' and table_name = 'items' order by ordinal_position`,
    );
    expect(types).toEqual([
      { column_name: 'id', type: 'integer' },
      { column_name: 'price', type: 'numeric(10,2)' },
      { column_name: 'code', type: 'character varying(20)' },
      { column_name: 'at', type: 'timestamp(3) with time zone' },
      { column_name: 'tags', type: 'integer[]' },
    ]);
    // The source adds a column and widens two.
    const v2 = tableSchema('sales.items', [
      col('id', 'bigint', 'int', true),
      col('price', 'numeric(10,2)', 'decimal'),
      col('code', 'character varying(40)'),
      col('at', 'timestamp(3) with time zone', 'timestamptz'),
      col('tags', 'integer[]', 'array'),
      col('note', 'text'),
    ]);
    await target.write(
      src.batch(
        src.tx((t) =>
          t.insert(v2, {
            id: '9000000000',
            price: '1.00',
            code: 'B'.repeat(40),
            at: '2024-01-02 03:04:05+00',
            tags: '{}',
            note: 'new',
          }),
        ),
      ),
    );
    expect(await q('select id, note, length(code) as len from replica.items order by id')).toEqual([
      { id: '1', note: null, len: 1 },
      { id: '9000000000', note: 'new', len: 40 },
    ]);
    const orders = tableSchema('sales.orders', [col('id', 'integer', 'int', true)]);
    await target.write(src.batch(src.tx((t) => t.insert(orders, { id: '5' }))));
    expect(await q('select id from archive.orders_copy')).toEqual([{ id: 5 }]);
  });

  it('stops with SchemaMismatchError when the target cannot follow', async () => {
    const { target, q, src, reopen } = await setup('t_mismatch');
    const v1 = tableSchema('public.m', [
      col('id', 'integer', 'int', true),
      col('k2', 'integer', 'int', true),
      col('a', 'integer', 'int'),
    ]);
    await target.write(src.batch(src.tx((t) => t.insert(v1, { id: '1', k2: '1', a: '1' }))));

    const retyped = tableSchema('public.m', [
      col('id', 'integer', 'int', true),
      col('k2', 'integer', 'int', true),
      col('a', 'boolean', 'bool'),
    ]);
    const err = await target
      .write(src.batch(src.tx((t) => t.insert(retyped, { id: '2', k2: '1', a: 't' }))))
      .catch((e) => e);
    expect(err).toBeInstanceOf(SchemaMismatchError);
    expect(errorKind(err)).toBe('operator');
    expect(err.message).toMatch(/column a is boolean at the source but integer on the target/);
    // Later writes fail too until the pipeline resets.
    await expect(target.write(src.heartbeat())).rejects.toBe(err);
    await target.reset();

    const keyDropped = tableSchema('public.m', [col('id', 'integer', 'int', true), col('a', 'integer', 'int')]);
    const err2 = await target
      .write(src.batch(src.tx((t) => t.insert(keyDropped, { id: '3', a: '1' }))))
      .catch((e) => e);
    expect(err2).toBeInstanceOf(SchemaMismatchError);
    expect(err2.message).toMatch(/source key \(id\) differs from the target primary key \(id, k2\)/);
    await target.reset();
    expect(await q('select id from m')).toEqual([{ id: 1 }]);

    // A user enum missing on the target: a clear error; once created, rows flow.
    const moods = tableSchema('public.moods', [col('id', 'integer', 'int', true), col('m', 'public.mood', 'enum')]);
    const err3 = await target.write(src.batch(src.tx((t) => t.insert(moods, { id: '1', m: 'happy' })))).catch((e) => e);
    expect(err3).toBeInstanceOf(SchemaMismatchError);
    expect(err3.message).toMatch(/public\.mood .*do not exist/);
    await target.reset();
    await q("create type public.mood as enum ('sad', 'happy')");
    await target.write(src.batch(src.tx((t) => t.insert(moods, { id: '1', m: 'happy' }))));
    expect(await q('select m::text from moods')).toEqual([{ m: 'happy' }]);

    // create_tables: false and a missing table.
    const strict = await suite.openTarget(
      postgresTargetConfig.parse({ type: 'postgres', url: suite.server.url('t_mismatch'), create_tables: false }),
      testContext('strict'),
    );
    const other = tableSchema('public.nothere', [col('id', 'integer', 'int', true)]);
    await expect(strict.write(src.batch(src.tx((t) => t.insert(other, { id: '1' }))))).rejects.toThrow(
      /target table does not exist/,
    );
    void reopen;
  });

  it('writes the checkpoint atomically with the data and skips replayed transactions', async () => {
    const { target, q, src, reopen } = await setup('t_exactly_once');
    const log = tableSchema('public.events', [col('msg', 'text')], { beforeImage: 'full' });
    const tx1 = src.tx((t) => t.insert(log, { msg: 'one' }));
    const b1 = src.batch(tx1);
    await target.write(b1);
    // Crash after commit, before the source heard about it: a new target gets the same batch again.
    await target.close();
    const t2 = await reopen();
    expect(await t2.checkpointStore.load('test')).toMatchObject({ phase: 'stream', position: tx1.checkpoint.position });
    await t2.write(b1);
    const tx2 = src.tx((t) => t.insert(log, { msg: 'two' }).insert(log, { msg: 'three' }));
    // A transaction across three batches, replayed whole after a crash: skipped through its events' commit LSN...
    const parts = [
      src.partial(tx2.events.slice(0, 1)),
      src.partial(tx2.events.slice(1, 2)),
      { ...src.partial([]), checkpoint: tx2.checkpoint },
    ];
    for (const b of parts) await t2.write(b);
    for (const b of parts) await t2.write(b);
    // ...and, for a source that does not tell commit LSNs, by rolling back once the covered checkpoint shows up.
    const bare = parts.map((b) => ({
      ...b,
      events: b.events.map((e) => ({
        ...e,
        source: {
          ...e.source,
          position: { kind: 'postgres' as const, lsn: (e.source.position as { lsn: string }).lsn },
        },
      })),
    }));
    for (const b of bare) await t2.write(b);
    expect(await q('select msg from events order by msg')).toEqual([{ msg: 'one' }, { msg: 'three' }, { msg: 'two' }]);

    // A batch that fails leaves neither its data nor its checkpoint.
    const nums = tableSchema('public.nums', [col('id', 'integer', 'int', true)]);
    await t2.write(src.batch(src.tx((t) => t.insert(nums, { id: '1' }))));
    const cpBefore = await t2.checkpointStore.load('test');
    const bad = src.tx((t) => t.insert(nums, { id: '2' }).insert(nums, { id: 'not a number' }));
    await expect(t2.write(src.batch(bad))).rejects.toThrow(/invalid input syntax/);
    expect(await q('select id from nums')).toEqual([{ id: 1 }]);
    expect(await t2.checkpointStore.load('test')).toEqual(cpBefore);
    await t2.reset();
    await t2.write(src.batch(src.tx((t) => t.insert(nums, { id: '3' }))));
    expect(await q('select id from nums order by id')).toEqual([{ id: 1 }, { id: 3 }]);
  });

  it('applies a batch of 20,000 rows x 5 columns (100,000 values)', async () => {
    const { target, q, src } = await setup('t_bulk');
    const wide = tableSchema('public.wide', [
      col('id', 'bigint', 'int', true),
      col('a', 'text'),
      col('b', 'integer', 'int'),
      col('c', 'numeric', 'decimal'),
      col('d', 'timestamp with time zone', 'timestamptz'),
    ]);
    const tx = src.tx((t) => {
      for (let i = 0; i < 20_000; i++) {
        t.insert(wide, {
          id: String(i),
          a: `row ${i}`,
          b: String(i % 1000),
          c: `${i}.5`,
          d: '2024-05-06 07:08:09.123456+00',
        });
      }
    });
    await target.write(src.batch(tx));
    expect(await q('select count(*)::int as n, sum(b)::int as s, sum(c)::text as c from wide')).toEqual([
      { n: 20_000, s: 9_990_000, c: '200000000.0' },
    ]);
  });

  it('fails retryably when the target restarts, and a reopened target continues', async () => {
    const { target, q, src } = await setup('t_restart');
    await target.write(src.batch(src.tx((t) => t.insert(accounts, acct(1, 'a')))));
    const mid = src.tx((t) => t.insert(accounts, acct(2, 'b')).insert(accounts, acct(3, 'c')));
    await target.write(src.partial(mid.events.slice(0, 1)));
    await suite.server.restart!();
    const err = await target
      .write({ ...src.partial(mid.events.slice(1)), checkpoint: mid.checkpoint })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(errorKind(err)).toBe('retryable');
    await target.reset();
    await target.open();
    // The pipeline restarts from the stored checkpoint: the whole transaction comes again.
    await target.write(src.partial(mid.events.slice(0, 1)));
    await target.write({ ...src.partial(mid.events.slice(1)), checkpoint: mid.checkpoint });
    expect(await q('select id from accounts order by id')).toEqual([{ id: '1' }, { id: '2' }, { id: '3' }]);
    expect((await target.checkpointStore.load('test'))?.position).toEqual(mid.checkpoint.position);

    // A restart between committed writes: nothing is lost; the next write reconnects or fails retryably.
    await suite.server.restart!();
    const next = src.batch(src.tx((t) => t.insert(accounts, acct(4, 'd'))));
    const err2 = await target.write(next).then(
      () => null,
      (e: unknown) => e,
    );
    if (err2) {
      expect(errorKind(err2)).toBe('retryable');
      await target.reset();
      await target.open();
      await target.write(next);
    }
    expect(await q('select id from accounts order by id')).toEqual([
      { id: '1' },
      { id: '2' },
      { id: '3' },
      { id: '4' },
    ]);
  });
});
