import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Row, type SourcePosition, UNCHANGED } from '../../../src/core/change-event.ts';
import { errorKind, SchemaMismatchError } from '../../../src/errors.ts';
import { col, EventSource, tableSchema, testContext } from '../../../test/fixtures/change-events.ts';
import { mariadbColumnType } from '../../../test/fixtures/mysql-types.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { mysqlTargetConfig } from './config.ts';
import { MysqlTarget } from './target.ts';

type MysqlEventPosition = Extract<SourcePosition, { kind: 'mysql' }>;

describe.each(mysqlFlavors())('MySQL target on $name', (flavor) => {
  let server: MysqlServer;
  const open: MysqlTarget[] = [];

  beforeAll(async () => {
    server = await flavor.start({ throwaway: true });
  }, 120_000);
  afterAll(async () => {
    for (const t of open) await t.close().catch(() => undefined);
    await server?.stop();
  });

  let pipelines = 0;

  /** A target writing every table into its own database `db`, with its own pipeline name. */
  async function setup(db: string, extra: Record<string, unknown> = {}, engine: 'postgresql' | 'mysql' = 'postgresql') {
    await server.query(`DROP DATABASE IF EXISTS \`${db}\``);
    const pipeline = `p${++pipelines}`;
    const ctx = testContext(pipeline);
    const config = mysqlTargetConfig.parse({ type: 'mysql', url: server.url(), database: db, ...extra });
    const target = new MysqlTarget(config, ctx);
    open.push(target);
    await target.open();
    // biome-ignore lint/suspicious/noExplicitAny: rows of test queries
    const q = <T = any>(sql: string, params?: unknown[]) => server.query<T>(sql, params, db);
    const reopen = async () => {
      const t = new MysqlTarget(config, ctx);
      open.push(t);
      await t.open();
      return t;
    };
    return { ctx, config, target, q, reopen, pipeline, src: new EventSource(pipeline, engine) };
  }

  const accounts = tableSchema('public.accounts', [
    col('id', 'bigint', 'int', true),
    col('name', 'text'),
    col('balance', 'numeric(12,2)', 'decimal'),
  ]);

  function acct(id: number, name: string, balance = '0.00'): Row {
    return { id: String(id), name, balance };
  }

  describe('MysqlTarget', () => {
    it('resolves write only after commit, keeps mid-transaction batches invisible, and ignores replays', async () => {
      const { config, target, q, src, pipeline } = await setup('t_contract');
      const tx1 = src.tx((t) => t.insert(accounts, acct(1, 'ann')).insert(accounts, acct(2, 'bob')));
      const b1 = src.batch(tx1);
      await target.write(b1);
      // Visible from another connection as soon as write resolved.
      expect(await q('select id, name from accounts order by id')).toEqual([
        { id: '1', name: 'ann' },
        { id: '2', name: 'bob' },
      ]);

      // A transaction spanning two batches: the first is applied but not visible until the second commits.
      const big = src.tx((t) => t.insert(accounts, acct(3, 'cy')).update(accounts, acct(2, 'bob', '5.50')));
      await target.write(src.partial(big.events.slice(0, 1)));
      expect(await q('select count(*) as n from accounts')).toEqual([{ n: '2' }]);
      await target.write(src.last(big, big.events.slice(1)));
      expect(await q('select id, name, balance from accounts order by id')).toEqual([
        { id: '1', name: 'ann', balance: '0.00' },
        { id: '2', name: 'bob', balance: '5.50' },
        { id: '3', name: 'cy', balance: '0.00' },
      ]);
      // Kept in the target database itself (the default).
      const stored = await server.query<{ position: string; phase: string }>(
        `select position, phase from \`${config.database}\`.tributary_checkpoints where pipeline = ?`,
        [pipeline],
      );
      expect(stored.map((r) => ({ ...r, position: JSON.parse(r.position) }))).toEqual([
        { position: big.checkpoint.position, phase: 'stream' },
      ]);

      // Later: ann is deleted. Replaying the first batch must not bring her back.
      await target.write(src.batch(src.tx((t) => t.delete(accounts, { id: '1', name: null, balance: null }))));
      const before = await q('select * from accounts order by id');
      await target.write(b1);
      expect(await q('select * from accounts order by id')).toEqual(before);
      // A heartbeat only moves the checkpoint.
      const hb = src.heartbeat();
      await target.write(hb);
      expect(await target.checkpointStore.load(pipeline)).toMatchObject({ position: hb.checkpoint!.position });
      expect(await q('select * from accounts order by id')).toEqual(before);
    });

    it('serializes writes issued before earlier ones resolved', async () => {
      const { target, q, src, pipeline } = await setup('t_serial');
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
      expect((await target.checkpointStore.load(pipeline))?.position).toEqual(last);
    });

    it('applies upserts, deletes, truncates, snapshot reads and key changes', async () => {
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
      // Key changes: 2 -> 20, then 3 -> 2 (the freed key), then 20 -> 21 with an unchanged column.
      await target.write(
        src.batch(
          src.tx((t) =>
            t
              .update(accounts, acct(20, 'b2'), acct(2, 'b2'))
              .update(accounts, acct(2, 'c2'), acct(3, 'c2'))
              .update(accounts, { id: '21', name: 'moved', balance: UNCHANGED }, acct(20, 'b2')),
          ),
        ),
      );
      expect(await q('select id, name from accounts order by id')).toEqual([
        { id: '2', name: 'c2' },
        { id: '4', name: 'd' },
        { id: '7', name: 'g' },
        { id: '21', name: 'moved' },
      ]);
      // Truncate inside a transaction (a DELETE keeps it atomic) and as the first statement (TRUNCATE TABLE).
      await target.write(
        src.batch(src.tx((t) => t.insert(accounts, acct(8, 'h')).truncate(accounts).insert(accounts, acct(9, 'z')))),
      );
      expect(await q('select id, name from accounts order by id')).toEqual([{ id: '9', name: 'z' }]);
      await target.write(src.batch(src.tx((t) => t.truncate(accounts).insert(accounts, acct(10, 'y')))));
      expect(await q('select id, name from accounts order by id')).toEqual([{ id: '10', name: 'y' }]);
      // A composite key.
      const pairs = tableSchema('public.pairs', [col('a', 'integer', 'int'), col('b', 'text'), col('v', 'text')], {
        keys: ['a', 'b'],
      });
      await target.write(
        src.batch(
          src.tx((t) =>
            t
              .insert(pairs, { a: '1', b: 'x', v: 'one' })
              .insert(pairs, { a: '1', b: 'X', v: 'case differs' })
              .insert(pairs, { a: '2', b: 'x', v: 'two' })
              .update(pairs, { a: '2', b: 'x', v: 'two!' })
              .delete(pairs, { a: '1', b: 'x', v: null }),
          ),
        ),
      );
      expect(await q('select a, b, v from pairs order by a, b')).toEqual([
        { a: 1, b: 'X', v: 'case differs' },
        { a: 2, b: 'x', v: 'two!' },
      ]);
    });

    it('updates and deletes exactly one of two identical rows of a keyless full-image table', async () => {
      const { target, q, src, ctx } = await setup('t_keyless');
      const log = tableSchema(
        'public.log',
        [col('msg', 'text'), col('n', 'integer', 'int'), col('f', 'real', 'float')],
        {
          beforeImage: 'full',
        },
      );
      const row = { msg: 'same', n: null, f: '3.14' };
      await target.write(
        src.batch(
          src.tx((t) =>
            t
              .insert(log, row)
              .insert(log, row)
              .insert(log, { ...row, msg: 'other' }),
          ),
        ),
      );
      await target.write(src.batch(src.tx((t) => t.update(log, { ...row, n: '1' }, row))));
      expect(await q('select msg, n from log order by msg, n')).toEqual([
        { msg: 'other', n: null },
        { msg: 'same', n: null },
        { msg: 'same', n: 1 },
      ]);
      await target.write(src.batch(src.tx((t) => t.delete(log, row))));
      expect(await q('select msg, n from log order by msg, n')).toEqual([
        { msg: 'other', n: null },
        { msg: 'same', n: 1 },
      ]);
      // Neither key nor full image: inserts only, with a warning.
      const bare = tableSchema('public.bare', [col('msg', 'text')]);
      await target.write(
        src.batch(src.tx((t) => t.insert(bare, { msg: 'a' }).update(bare, { msg: 'b' }).delete(bare, { msg: 'a' }))),
      );
      expect(await q('select msg from bare')).toEqual([{ msg: 'a' }]);
      expect(ctx.logs.some((l) => l.event === 'target_keyless_change_skipped' && l.table === 'public.bare')).toBe(true);
    });

    it('matches keyless rows on FLOAT and DOUBLE columns too, so the row changed is the one the source changed', async () => {
      const { target, q, src } = await setup('t_keyless_float', {}, 'mysql');
      const m = tableSchema(
        'src.m',
        [col('n', 'int', 'int'), col('f', 'float', 'float'), col('d', 'double', 'float')],
        {
          beforeImage: 'full',
        },
      );
      const r = (f: string, d: string) => ({ n: '1', f, d });
      await target.write(
        src.batch(src.tx((t) => t.insert(m, r('0.1', '0.5')).insert(m, r('0.2', '0.5')).insert(m, r('0.1', '0.7')))),
      );
      // Rows differing only in the FLOAT column, then only in the DOUBLE column: the second of each is meant.
      await target.write(src.batch(src.tx((t) => t.delete(m, r('0.2', '0.5')))));
      await target.write(src.batch(src.tx((t) => t.update(m, { n: '2', f: '0.1', d: '0.7' }, r('0.1', '0.7')))));
      expect(await q('select n, round(f, 3) as f, d from m order by n, f, d')).toEqual([
        { n: 1, f: 0.1, d: 0.5 },
        { n: 2, f: 0.1, d: 0.7 },
      ]);
    });

    it('applies TRUNCATE of tables linked by a foreign key on the target', async () => {
      const { target, q, src, reopen } = await setup('t_fk_truncate');
      const parent = tableSchema('public.parent', [col('id', 'integer', 'int', true), col('v', 'text')]);
      const child = tableSchema('public.child', [
        col('id', 'integer', 'int', true),
        col('parent_id', 'integer', 'int'),
        col('v', 'text'),
      ]);
      await target.write(
        src.batch(
          src.tx((t) => t.insert(parent, { id: '1', v: 'p' }).insert(child, { id: '1', parent_id: '1', v: 'c' })),
        ),
      );
      await target.close();
      await q('alter table child add foreign key (parent_id) references parent (id)');
      const again = await reopen();
      await again.write(
        src.batch(src.tx((t) => t.truncate(parent).truncate(child).insert(parent, { id: '2', v: 'after' }))),
      );
      expect(await q('select id, v from parent')).toEqual([{ id: 2, v: 'after' }]);
      expect(await q('select count(*) as n from child')).toEqual([{ n: '0' }]);
    });

    it('keeps unchanged TOAST columns and reports a missing row', async () => {
      const { target, q, src, ctx } = await setup('t_toast');
      const docs = tableSchema('public.docs', [
        col('id', 'integer', 'int', true),
        col('title', 'text'),
        col('body', 'text'),
      ]);
      const body = 'x'.repeat(100_000);
      await target.write(src.batch(src.tx((t) => t.insert(docs, { id: '1', title: 'a', body }))));
      await target.write(
        src.batch(
          src.tx((t) =>
            t
              .update(docs, { id: '1', title: 'b', body: UNCHANGED })
              .update(docs, { id: '2', title: 'ghost', body: UNCHANGED }),
          ),
        ),
      );
      expect(await q('select id, title, cast(length(body) as char) as len from docs')).toEqual([
        { id: 1, title: 'b', len: '100000' },
      ]);
      expect(ctx.logs.some((l) => l.event === 'target_row_missing' && l.rows === 1)).toBe(true);
      // An insert then an update with an unchanged column in the same run: merged.
      await target.write(
        src.batch(
          src.tx((t) =>
            t
              .insert(docs, { id: '3', title: 'c', body: 'long' })
              .update(docs, { id: '3', title: 'c2', body: UNCHANGED }),
          ),
        ),
      );
      expect(await q('select id, title, body from docs where id = 3')).toEqual([{ id: 3, title: 'c2', body: 'long' }]);
    });

    it('creates databases and tables, adds and widens columns, and maps names', async () => {
      const { target, q, src, ctx } = await setup('t_schema', {
        tables: { 'public.renamed': 't_schema_other.target_name' },
      });
      await server.query('DROP DATABASE IF EXISTS t_schema_other');
      const v1 = tableSchema('public.items', [col('id', 'integer', 'int', true), col('name', 'character varying(10)')]);
      await target.write(src.batch(src.tx((t) => t.insert(v1, { id: '1', name: 'one' }))));
      const v2 = tableSchema('public.items', [
        col('id', 'integer', 'int', true),
        col('name', 'character varying(40)'),
        col('price', 'numeric(8,2)', 'decimal'),
      ]);
      await target.write(
        src.batch(src.tx((t) => t.insert(v2, { id: '2', name: 'a much longer name than ten', price: '9.99' }))),
      );
      expect(await q('select id, name, price from items order by id')).toEqual([
        { id: 1, name: 'one', price: null },
        { id: 2, name: 'a much longer name than ten', price: '9.99' },
      ]);
      const cols = await q<{ c: string; t: string }>(
        "select column_name as c, column_type as t from information_schema.columns where table_schema = 't_schema' and table_name = 'items' order by ordinal_position",
      );
      expect(cols.map((c) => ({ ...c, t: mariadbColumnType(c.t) }))).toEqual([
        { c: 'id', t: 'int(11)' },
        { c: 'name', t: 'varchar(40)' },
        { c: 'price', t: 'decimal(8,2)' },
      ]);
      expect(ctx.logs.some((l) => l.event === 'target_table_altered')).toBe(true);
      const renamed = tableSchema('public.renamed', [col('id', 'integer', 'int', true)]);
      await target.write(src.batch(src.tx((t) => t.insert(renamed, { id: '5' }))));
      expect(await server.query('select id from t_schema_other.target_name')).toEqual([{ id: 5 }]);
      // A DDL inside a transaction that already wrote other tables does not commit them early.
      const fresh = tableSchema('public.fresh', [col('id', 'integer', 'int', true)]);
      const tx = src.tx((t) => t.insert(v2, { id: '3', name: 'three', price: null }).insert(fresh, { id: '1' }));
      await target.write(src.partial(tx.events));
      expect(await q('select count(*) as n from items')).toEqual([{ n: '2' }]);
      await target.write(src.last(tx, []));
      expect(await q('select count(*) as n from items')).toEqual([{ n: '3' }]);
      // A column added to a table the open transaction already wrote: MySQL commits that part early (logged).
      const v3 = tableSchema('public.items', [...v2.columns, col('note', 'text')]);
      const tx2 = src.tx((t) =>
        t
          .insert(v2, { id: '4', name: 'four', price: null })
          .insert(v3, { id: '5', name: 'five', price: null, note: 'n' }),
      );
      await target.write(src.partial(tx2.events));
      await target.write(src.last(tx2, []));
      expect(await q('select id, note from items where id >= 4 order by id')).toEqual([
        { id: 4, note: null },
        { id: 5, note: 'n' },
      ]);
      expect(ctx.logs.some((l) => l.event === 'target_ddl_commits_early')).toBe(true);
    });

    it('stops with SchemaMismatchError when the target cannot follow', async () => {
      const { target, q, src } = await setup('t_mismatch');
      await server.query('CREATE DATABASE IF NOT EXISTS t_mismatch');
      await q('CREATE TABLE t_mismatch.k (id INT PRIMARY KEY, d DATE)');
      // A row: a target table with another key and no rows would be created again with the source key.
      await q("INSERT INTO t_mismatch.k VALUES (9, '2020-01-01')");
      const k = tableSchema('public.k', [col('id', 'integer', 'int', true), col('d', 'integer', 'int')]);
      const err = await target.write(src.batch(src.tx((t) => t.insert(k, { id: '1', d: '5' })))).catch((e) => e);
      expect(err).toBeInstanceOf(SchemaMismatchError);
      expect(errorKind(err)).toBe('operator');
      expect((err as Error).message).toMatch(/column d is integer at the source but date on the target/);
      await target.reset();
      const other = tableSchema('public.k', [col('id', 'integer', 'int'), col('d', 'date', 'date')], { keys: ['d'] });
      const err2 = await target
        .write(src.batch(src.tx((t) => t.insert(other, { id: '1', d: '2024-01-01' }))))
        .catch((e) => e);
      expect((err2 as Error).message).toMatch(/source key \(d\) differs from the target primary key \(id\)/);
      await target.reset();
      // A value the column cannot hold names the table, column and key.
      const nums = tableSchema('public.nums', [
        col('id', 'integer', 'int', true),
        col('x', 'double precision', 'float'),
      ]);
      const err3 = await target.write(src.batch(src.tx((t) => t.insert(nums, { id: '7', x: 'NaN' })))).catch((e) => e);
      expect(err3).toBeInstanceOf(SchemaMismatchError);
      expect((err3 as Error).message).toMatch(/table public\.nums column x \(key \{"id":"7"\}\): NaN cannot be stored/);
    });

    it('writes the checkpoint atomically with the data and skips replayed transactions', async () => {
      const { target, q, src, reopen, pipeline } = await setup('t_exactly_once');
      const log = tableSchema('public.events', [col('msg', 'text')], { beforeImage: 'full' });
      const tx1 = src.tx((t) => t.insert(log, { msg: 'one' }));
      const b1 = src.batch(tx1);
      await target.write(b1);
      // Crash after commit, before the source heard about it: a new target gets the same batch again.
      await target.close();
      const t2 = await reopen();
      expect(await t2.checkpointStore.load(pipeline)).toMatchObject({
        phase: 'stream',
        position: tx1.checkpoint.position,
      });
      await t2.write(b1);
      const tx2 = src.tx((t) => t.insert(log, { msg: 'two' }).insert(log, { msg: 'three' }));
      // A transaction across three batches, replayed whole after a crash: skipped through its events' commit LSN...
      const parts = [src.partial(tx2.events.slice(0, 1)), src.partial(tx2.events.slice(1, 2)), src.last(tx2, [])];
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
      expect(await q('select msg from events order by msg')).toEqual([
        { msg: 'one' },
        { msg: 'three' },
        { msg: 'two' },
      ]);

      // A batch that fails leaves neither its data nor its checkpoint.
      const nums = tableSchema('public.nums', [col('id', 'integer', 'int', true), col('s', 'character varying(3)')]);
      await t2.write(src.batch(src.tx((t) => t.insert(nums, { id: '1', s: 'ok' }))));
      const cpBefore = await t2.checkpointStore.load(pipeline);
      const bad = src.tx((t) => t.insert(nums, { id: '2', s: 'ok' }).insert(nums, { id: '3', s: 'too long' }));
      const err = await t2.write(src.batch(bad)).catch((e) => e);
      expect(errorKind(err)).toBe('operator');
      expect((err as Error).message).toMatch(/Data too long/);
      expect(await q('select id from nums')).toEqual([{ id: 1 }]);
      expect(await t2.checkpointStore.load(pipeline)).toEqual(cpBefore);
      await t2.reset();
      await t2.write(src.batch(src.tx((t) => t.insert(nums, { id: '4', s: 'new' }))));
      expect(await q('select id from nums order by id')).toEqual([{ id: 1 }, { id: 4 }]);
    });

    it('skips replayed MySQL-sourced transactions by binlog position', async () => {
      const { target, q, src, reopen, pipeline } = await setup('t_mysql_replay', {}, 'mysql');
      const t1 = tableSchema('src.t1', [col('id', 'int', 'int', true), col('v', 'varchar(20)')], {
        beforeImage: 'full',
      });
      const log = tableSchema('src.log', [col('msg', 'varchar(20)')], { beforeImage: 'full' });
      const a = src.tx((t) => t.insert(t1, { id: '1', v: 'a' }).insert(log, { msg: 'a' }));
      const b = src.tx((t) => t.update(t1, { id: '1', v: 'b' }, { id: '1', v: 'a' }).insert(log, { msg: 'b' }));
      await target.write(src.batch(a, b));
      await target.close();
      const t2 = await reopen();
      expect((await t2.checkpointStore.load(pipeline))?.position).toEqual(b.checkpoint.position);
      // The source resends both (e.g. resumed from an older position), then a new one.
      const c = src.tx((t) => t.insert(log, { msg: 'c' }));
      await t2.write(src.batch(a));
      await t2.write(src.batch(b, c));
      expect(await q('select msg from log order by msg')).toEqual([{ msg: 'a' }, { msg: 'b' }, { msg: 'c' }]);
      expect(await q('select id, v from t1')).toEqual([{ id: 1, v: 'b' }]);
    });

    it('after a failover, skips by GTID what the stored checkpoint of another server covers and applies the rest', async () => {
      const { target, q, src, reopen, pipeline } = await setup('t_gtid_failover', {}, 'mysql');
      const log = tableSchema('src.log', [col('msg', 'varchar(20)')], { beforeImage: 'full' });
      const A = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
      const B = '4f22ab58-82db-22f2-af44-d91bb0530673';
      const C = '5a33bc69-93ec-33a3-b055-ea2cc1641784';
      /** One transaction inserting `msg`, as server `file` logs it: from `pos`, with its GTID, ending at `gtidSet`. */
      const logged = (msg: string, file: string, pos: number, gtid: string, gtidSet: string) => {
        const tx = src.tx((t) => t.insert(log, { msg }));
        for (const e of tx.events)
          e.source.position = { ...(e.source.position as MysqlEventPosition), file, pos, gtid };
        tx.checkpoint.position = { kind: 'mysql', file, pos: pos + 100, gtidSet };
        return tx;
      };
      // Server A (binlog files m-bin.*) commits a1 and a2.
      await target.write(
        src.batch(
          logged('a1', 'm-bin.000005', 400, `${A}:10`, `${A}:1-10`),
          logged('a2', 'm-bin.000005', 600, `${A}:11`, `${A}:1-11`),
        ),
      );
      await target.close();
      const t2 = await reopen();

      // Failover to B, whose own files (a-bin.*) sort before A's. It resends a2 (the resume started a little early),
      // then its first own transaction: by file+offset both would be "before" the checkpoint and b1 would be lost.
      await t2.write(
        src.batch(
          logged('a2', 'a-bin.000001', 200, `${A}:11`, `${A}:1-11`),
          logged('b1', 'a-bin.000001', 350, `${B}:1`, `${A}:1-11,${B}:1`),
        ),
      );
      expect(await q('select msg from log order by msg')).toEqual([{ msg: 'a1' }, { msg: 'a2' }, { msg: 'b1' }]);
      expect((await t2.checkpointStore.load(pipeline))?.position).toMatchObject({
        file: 'a-bin.000001',
        gtidSet: `${A}:1-11,${B}:1`,
      });
      // A late checkpoint of A's is covered, though its file sorts after: the store keeps B's.
      await t2.checkpointStore.save({
        pipeline,
        phase: 'stream',
        position: { kind: 'mysql', file: 'm-bin.000006', pos: 4, gtidSet: `${A}:1-11` },
      });
      expect((await t2.checkpointStore.load(pipeline))?.position).toMatchObject({ file: 'a-bin.000001' });
      await t2.close();
      const t3 = await reopen();

      // Failover to C, whose files (z-bin.*) sort after: by file+offset the replayed b1 would be applied twice.
      await t3.write(
        src.batch(
          logged('b1', 'z-bin.000001', 200, `${B}:1`, `${A}:1-11,${B}:1`),
          logged('c1', 'z-bin.000001', 350, `${C}:1`, `${A}:1-11,${B}:1,${C}:1`),
        ),
      );
      // A whole batch C resends is skipped as one.
      await t3.write(src.batch(logged('c1', 'z-bin.000001', 350, `${C}:1`, `${A}:1-11,${B}:1,${C}:1`)));
      expect(await q('select msg from log order by msg')).toEqual([
        { msg: 'a1' },
        { msg: 'a2' },
        { msg: 'b1' },
        { msg: 'c1' },
      ]);
      expect((await t3.checkpointStore.load(pipeline))?.position).toMatchObject({
        file: 'z-bin.000001',
        gtidSet: `${A}:1-11,${B}:1,${C}:1`,
      });
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
      expect(await q('select count(*) as n, sum(b) as s, sum(c) as c, min(d) as d from wide')).toEqual([
        { n: '20000', s: '9990000', c: '200000000.000000000000000000000000000000', d: '2024-05-06 07:08:09.123456' },
      ]);
    });

    it('fails retryably when the target restarts, and a reopened target continues', async () => {
      const { target, q, src, pipeline } = await setup('t_restart');
      await target.write(src.batch(src.tx((t) => t.insert(accounts, acct(1, 'a')))));
      const mid = src.tx((t) => t.insert(accounts, acct(2, 'b')).insert(accounts, acct(3, 'c')));
      await target.write(src.partial(mid.events.slice(0, 1)));
      await server.restart!();
      const err = await target.write(src.last(mid, mid.events.slice(1))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(errorKind(err)).toBe('retryable');
      expect((err as { hint?: string }).hint).toMatch(/retries/);
      await target.reset();
      await target.open();
      // The pipeline restarts from the stored checkpoint: the whole transaction comes again.
      await target.write(src.partial(mid.events.slice(0, 1)));
      await target.write(src.last(mid, mid.events.slice(1)));
      expect(await q('select id from accounts order by id')).toEqual([{ id: '1' }, { id: '2' }, { id: '3' }]);
      expect((await target.checkpointStore.load(pipeline))?.position).toEqual(mid.checkpoint.position);

      // A restart between committed writes: nothing is lost; the next write reconnects or fails retryably.
      await server.restart!();
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
    }, 120_000);

    it('rejects retryably while the server is down, and close works after a broken connection', async () => {
      const { config, ctx } = await setup('t_down');
      const down = new MysqlTarget({ ...config, url: 'mysql://root@127.0.0.1:1/', connect_timeout_ms: 1000 }, ctx);
      const err = await down.open().catch((e: unknown) => e);
      expect(errorKind(err)).toBe('retryable');
      expect((err as { hint?: string }).hint).toMatch(/server is running/);
      await down.reset();
      await down.close();
      // A connection killed from the server side.
      const { target, src } = await setup('t_killed');
      await target.write(src.batch(src.tx((t) => t.insert(accounts, acct(1, 'a')))));
      const admin = await mysql.createConnection({ uri: server.url() });
      const [procs] = await admin.query(
        "select id from information_schema.processlist where db is null and command = 'Sleep'",
      );
      for (const p of procs as { id: number }[]) await admin.query(`KILL ${p.id}`).catch(() => undefined);
      await admin.end();
      const mid = src.tx((t) => t.insert(accounts, acct(2, 'b')));
      const e = await target.write(mid && src.batch(mid)).then(
        () => undefined,
        (x: unknown) => x,
      );
      if (e) expect(errorKind(e)).toBe('retryable');
      await target.reset();
      await target.close();
    });
  });
});
