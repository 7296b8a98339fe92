import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChangeBatch, changeCount } from '../../../src/core/change-batch.ts';
import { type ChangeEvent, type Row, UNCHANGED } from '../../../src/core/change-event.ts';
import { type Checkpoint, parseLsn } from '../../../src/core/checkpoint.ts';
import type { ConnectorContext } from '../../../src/core/connector-context.ts';
import { ConnectionError, SourceSetupError, TributaryError } from '../../../src/errors.ts';
import { testContext } from '../../../test/fixtures/change-events.ts';
import { TYPE_ROWS, TYPES_DDL } from '../../../test/fixtures/postgres-types.ts';
import { type PgServer, startPostgres } from '../../../test/harness/postgres.ts';
import { CANONICAL_SESSION_OPTIONS, ensurePublications } from './catalog.ts';
import { type PostgresSourceConfigInput, postgresSourceConfig } from './config.ts';
import { preflightPostgresSource } from './preflight.ts';
import { replicationNames } from './replication-names.ts';
import { PostgresSource, SCHEMA_CHANGE_PREFIX } from './source.ts';
import { teardownPostgresSource } from './teardown.ts';

const logger = pino({ level: 'silent' });
const ctx = (pipeline: string): ConnectorContext => ({ pipeline, logger });
const FAST_BATCH = { max_events: 1000, max_bytes: 4 * 1024 * 1024, max_wait_ms: 20 };

/** A batch with a checkpoint that is not one of an initial snapshot still running (those follow each chunk). */
function snapshotDone(b: ChangeBatch): boolean {
  return b.checkpoint !== null && !(b.checkpoint.state?.snapshot as { initial?: boolean } | undefined)?.initial;
}

/** Pulls batches one by one (without ending the iteration like a for-await break would). */
class Reader {
  readonly it: AsyncIterator<ChangeBatch>;
  readonly batches: ChangeBatch[] = [];
  constructor(readonly source: PostgresSource) {
    this.it = source.batches()[Symbol.asyncIterator]();
  }
  async next(): Promise<ChangeBatch> {
    const r = await this.it.next();
    if (r.done) throw new Error('batches() ended');
    this.batches.push(r.value);
    return r.value;
  }
  /** Reads until `done(events so far)` holds; commits every checkpoint when `commit` is set. */
  async until(done: (events: ChangeEvent[], batch: ChangeBatch) => boolean, commit = true): Promise<ChangeEvent[]> {
    const events: ChangeEvent[] = [];
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`timed out after ${events.length} events`);
      const b = await this.next();
      // Every snapshot empties each table first; the tests of those truncates read `batches`.
      events.push(...b.events.filter((e) => !(e.op === 'truncate' && e.source.snapshot)));
      if (commit && b.checkpoint) await this.source.commit(b.checkpoint);
      if (done(events, b)) return events;
    }
  }
}

/** Text output exactly as the server sends it, with the canonical session settings. */
async function rawRows(server: PgServer, db: string, sql: string): Promise<Row[]> {
  const u = new URL(server.url(db));
  u.searchParams.set('options', CANONICAL_SESSION_OPTIONS);
  const client = new pg.Client({
    connectionString: u.toString(),
    types: { getTypeParser: () => (v: string) => v },
  } as pg.ClientConfig);
  await client.connect();
  try {
    return (await client.query<Row>(sql)).rows;
  } finally {
    await client.end();
  }
}

async function slotFlush(server: PgServer, db: string, slot: string): Promise<bigint | null> {
  const rows = await server.query<{ lsn: string | null }>(
    db,
    'select confirmed_flush_lsn::text as lsn from pg_replication_slots where slot_name = $1',
    [slot],
  );
  return rows[0]?.lsn ? parseLsn(rows[0].lsn) : null;
}

async function currentLsn(server: PgServer, db: string): Promise<bigint> {
  const rows = await server.query<{ lsn: string }>(db, 'select pg_current_wal_lsn()::text as lsn');
  return parseLsn(rows[0]!.lsn);
}

const cpLsn = (cp: Checkpoint): bigint => parseLsn((cp.position as { lsn: string }).lsn);

/** Applies events to a key -> row map, failing on duplicates or gaps. */
function replay(events: ChangeEvent[], state = new Map<string, Row>()): Map<string, Row> {
  for (const e of events) {
    const id = e.key ? JSON.stringify(e.key) : '';
    switch (e.op) {
      case 'truncate':
        state.clear();
        break;
      case 'read':
      case 'insert':
        if (state.has(id)) throw new Error(`duplicate ${e.op} of ${id}`);
        state.set(id, e.after!);
        break;
      case 'update': {
        if (!state.has(id)) throw new Error(`update of missing row ${id}`);
        const merged: Row = { ...state.get(id)! };
        for (const [k, v] of Object.entries(e.after!)) if (v !== UNCHANGED) merged[k] = v;
        state.set(id, merged);
        break;
      }
      case 'delete':
        if (!state.delete(id)) throw new Error(`delete of missing row ${id}`);
        break;
      default:
        break;
    }
  }
  return state;
}

const FLAVORS = [
  ['system', undefined],
  ['embedded', 'embedded'],
] as const;

describe.each(FLAVORS)('PostgresSource on %s PostgreSQL', (_name, flavor) => {
  let server: PgServer;
  let dbCount = 0;
  const fresh = async (setup: string) => {
    const db = `src_${++dbCount}`;
    const url = await server.createDatabase(db);
    if (setup) await server.query(db, setup);
    return { db, url };
  };
  const open = async (
    config: PostgresSourceConfigInput,
    pipeline: string,
    from: Checkpoint | null = null,
    batch = FAST_BATCH,
  ): Promise<{ source: PostgresSource; reader: Reader }> => {
    const source = new PostgresSource({ heartbeat_interval_ms: 300, ...config }, ctx(pipeline), { batch });
    await source.open(from);
    return { source, reader: new Reader(source) };
  };

  beforeAll(async () => {
    server = await startPostgres(flavor ? { flavor } : { throwaway: true });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('values of every type equal the server text output, in snapshot reads and streamed inserts', async () => {
    const { db, url } = await fresh(`${TYPES_DDL}${TYPE_ROWS}`);
    const { source, reader } = await open(
      { type: 'postgres', url, tables: ['public.alltypes', 'public.ext'] },
      'types',
    );
    try {
      const all = await reader.until((_ev, b) => snapshotDone(b));
      const reads = all.filter((e) => e.table.name === 'alltypes');
      // Extension types: text output as is; citext (a string category type) is text, hstore other.
      const extReads = all.filter((e) => e.table.name === 'ext');
      expect(extReads.map((e) => e.after)).toEqual(await rawRows(server, db, 'select * from ext order by id'));
      await server.query(db, "insert into ext values (3, 'k=>v', 'Ü', null)");
      const [extInsert] = await reader.until((ev) => ev.length >= 1);
      expect([extInsert!.after]).toEqual(await rawRows(server, db, 'select * from ext where id = 3'));
      expect(extInsert!.schema.columns.map((c) => [c.name, c.type, c.kind, c.elementKind])).toEqual([
        ['id', 'integer', 'int', undefined],
        ['h', 'hstore', 'other', undefined],
        ['ct', 'citext', 'text', undefined],
        ['hs', 'hstore[]', 'array', 'other'],
      ]);
      expect(reads.map((e) => e.op)).toEqual(['read', 'read', 'read', 'read']);
      expect(reads[0]!.source.snapshot).toBe('first');
      expect(extReads[1]!.source.snapshot).toBe('last');
      const expected = await rawRows(server, db, 'select * from alltypes order by id');
      expect(reads.map((e) => e.after)).toEqual(expected);
      // The same rows again, streamed.
      await server.query(db, `${TYPE_ROWS.replace(/^ \(([1-4]),/gm, (_m, d) => ` (${Number(d) + 10},`)}`);
      const inserts = await reader.until((ev) => ev.length >= 4);
      expect(inserts.map((e) => e.op)).toEqual(['insert', 'insert', 'insert', 'insert']);
      const again = await rawRows(server, db, 'select * from alltypes where id > 10 order by id');
      expect(inserts.map((e) => e.after)).toEqual(again);
      for (const [i, e] of inserts.entries())
        expect({ ...e.after, id: null }).toEqual({ ...reads[i]!.after, id: null });

      // Schemas agree between snapshot and stream, with full type names and kinds.
      const streamCols = inserts[0]!.schema.columns;
      const readCols = reads[0]!.schema.columns;
      expect(streamCols.map((c) => [c.name, c.type, c.kind, c.elementKind])).toEqual(
        readCols.map((c) => [c.name, c.type, c.kind, c.elementKind]),
      );
      const col = (name: string) => streamCols.find((c) => c.name === name)!;
      expect(col('n2').type).toBe('numeric(10,2)');
      expect(col('vc').type).toBe('character varying(20)');
      expect(col('ts3').type).toBe('timestamp(3) without time zone');
      expect(col('mood').kind).toBe('enum');
      expect(col('pi')).toMatchObject({ kind: 'int', type: 'posint' });
      expect(col('at')).toMatchObject({ kind: 'array', elementKind: 'text', type: 'text[]' });
      expect(col('ai')).toMatchObject({ kind: 'array', elementKind: 'int' });
      expect(col('fr')).toMatchObject({ kind: 'other', type: 'floatrange' });
      expect(col('pr').kind).toBe('other');
      expect(col('i8').kind).toBe('int');
      expect(col('tstz').kind).toBe('timestamptz');
      expect(col('pt').kind).toBe('geometry');
      expect(inserts[0]!.schema.keyColumns).toEqual(['id']);
      expect(inserts[0]!.key).toEqual({ id: '11' });
      // One schema object per relation, shared between events.
      expect(inserts[1]!.schema).toBe(inserts[0]!.schema);
    } finally {
      await source.close();
    }
  });

  it('snapshot values survive COPY escaping: tabs, newlines, backslashes, \\N text, NULL vs empty, unicode', async () => {
    // Keys with quotes and backslashes, in chunks of 2 rows, exercise the keyset bound of the next chunk too.
    const ddl = `
      create table esc (k text, n int, t text, ba bytea, a text[], j jsonb, c char(3), primary key (k, n));
      create table esc_nokey (t text, ba bytea, a text[]);`;
    const values = `
      ('a''b\\c', 1, E'tab\\there\\nnew line\\r\\\\ back', '\\x00090a5c4e', array['q"uote', 'back\\slash', 'NULL', null, '', E'\\t'], '{"k": "v\\\\n\\u00e9"}', 'x\\y'),
      ('\\N', 2, '\\N', '\\x', '{}', '"\\\\N"', ''),
      ('', 3, '', null, array[''], '[]', null),
      (E'\\\\', 4, null, '\\x5c5c', '{{"a\\\\b","c"},{"d","e\\"f"}}', 'null', ' '),
      ('ünï 😀', 5, E'\\b\\f\\v\\x01 ünïcødé 😀 \\u2028', '\\xc3a9', array['😀', 'é'], '{"😀": ["ü"]}', 'é'),
      (E'\\t', 6, E'\\n', '\\x0d', array[E'\\n'], '{"a": "\\t"}', E'\\t'),
      (E'x\\ny', 7, repeat(E'\\\\', 9), null, null, null, null)`;
    const { db, url } = await fresh(
      `${ddl} insert into esc values ${values}; insert into esc_nokey select t, ba, a from esc;`,
    );
    const { source, reader } = await open(
      {
        type: 'postgres',
        url,
        tables: ['public.esc', 'public.esc_nokey'],
        keyless_tables: 'insert_only',
        snapshot_chunk_rows: 2,
      },
      'escapes',
    );
    try {
      const all = await reader.until((_ev, b) => snapshotDone(b));
      const reads = all.filter((e) => e.table.name === 'esc');
      const expected = await rawRows(server, db, 'select * from esc order by k, n');
      expect(reads).toHaveLength(7);
      // Chunks are read in parallel and go out in key order.
      expect(reads.map((e) => e.after)).toEqual(expected);
      expect(reads.map((e) => e.key)).toEqual(expected.map((r) => ({ k: r.k, n: r.n })));
      expect(reads[0]!.after!.t).toBe('');
      expect(reads.find((e) => e.after!.n === '4')!.after!.t).toBeNull();
      expect(reads.find((e) => e.after!.n === '2')!.after!.k).toBe('\\N');
      const keyless = all.filter((e) => e.table.name === 'esc_nokey');
      expect(keyless.map((e) => e.key)).toEqual(keyless.map(() => null));
      const byText = (rows: Row[]) => rows.map((r) => JSON.stringify(r)).sort();
      expect(byText(keyless.map((e) => e.after!))).toEqual(
        byText(await rawRows(server, db, 'select * from esc_nokey')),
      );
      // The same values streamed.
      await server.query(db, `insert into esc select k, n + 10, t, ba, a, j, c from esc`);
      const inserts = await reader.until((ev) => ev.length >= 7);
      const id = (row: Row, offset: number) => `${String(row.k)}/${Number(row.n) - offset}`;
      const streamed = new Map(inserts.map((e) => [id(e.after!, 10), e.after!]));
      for (const r of reads) expect({ ...streamed.get(id(r.after!, 0)), n: r.after!.n }).toEqual(r.after);
    } finally {
      await source.close();
    }
  });

  it('updates, deletes, truncates, messages and REPLICA IDENTITY FULL keys', async () => {
    const { db, url } = await fresh(`
      create table k (id int primary key, v text);
      create table f (id int primary key, v text); alter table f replica identity full;`);
    const { source, reader } = await open(
      { type: 'postgres', url, tables: ['public.k', 'public.f'], snapshot: 'never' },
      'ops',
    );
    try {
      await reader.until((_e, b) => snapshotDone(b), true).catch(() => []);
      await server.query(
        db,
        `begin; insert into k values (1, 'a'); insert into f values (1, 'a');
         update k set v = 'b' where id = 1; update k set id = 2 where id = 1; update f set v = 'b';
         delete from k; delete from f; select pg_logical_emit_message(true, 'app', 'hello'); commit;
         truncate k;`,
      );
      const ev = await reader.until((e) => e.some((x) => x.op === 'truncate'));
      const got = ev.map((e) => [e.op, e.table.name, e.key, e.before, e.after]);
      expect(got).toEqual([
        ['insert', 'k', { id: '1' }, null, { id: '1', v: 'a' }],
        ['insert', 'f', { id: '1' }, null, { id: '1', v: 'a' }],
        ['update', 'k', { id: '1' }, null, { id: '1', v: 'b' }],
        ['update', 'k', { id: '2' }, { id: '1' }, { id: '2', v: 'b' }],
        ['update', 'f', { id: '1' }, { id: '1', v: 'a' }, { id: '1', v: 'b' }],
        ['delete', 'k', { id: '2' }, { id: '2' }, null],
        ['delete', 'f', { id: '1' }, { id: '1', v: 'b' }, null],
        ['message', '', null, null, null],
        ['truncate', 'k', null, null, null],
      ]);
      const f = ev.find((e) => e.table.name === 'f')!;
      expect(f.schema).toMatchObject({ keyColumns: ['id'], beforeImage: 'full' });
      expect(ev[7]!.message).toEqual({
        prefix: 'app',
        contentBase64: Buffer.from('hello').toString('base64'),
        transactional: true,
      });
      expect(ev[0]!.source.txId).toBe(ev[6]!.source.txId);
      // Events of a transaction that was wholly buffered when its commit arrived carry its commit end LSN (under load
      // the reader may take events before the commit arrives; then they carry none). The checkpoint of the batch
      // that completes the transaction is that LSN.
      const commitLsnOf = (e: (typeof ev)[number]) => (e.source.position as { commitLsn?: string }).commitLsn;
      const commitLsns = new Set(
        ev
          .slice(0, 8)
          .map(commitLsnOf)
          .filter((l) => l !== undefined),
      );
      expect(commitLsns.size).toBeLessThanOrEqual(1);
      const truncateLsn = commitLsnOf(ev[8]!);
      const lastCheckpoint = (reader.batches.at(-1)!.checkpoint!.position as { lsn: string }).lsn;
      if (truncateLsn !== undefined) expect(lastCheckpoint).toBe(truncateLsn);
      for (const commitLsn of commitLsns) expect(parseLsn(commitLsn)).toBeLessThan(parseLsn(lastCheckpoint));
    } finally {
      await source.close();
    }
  });

  it('a schema change applies from the next event, with a new TableSchema object', async () => {
    const { db, url } = await fresh('create table sc (id int primary key, a text)');
    const { source, reader } = await open({ type: 'postgres', url, tables: ['public.sc'] }, 'schema');
    try {
      await reader.until((_e, b) => snapshotDone(b));
      await server.query(
        db,
        `insert into sc values (1, 'x');
         begin; alter table sc add column b numeric(5,1) default 2.5; insert into sc values (2, 'y', 3); commit;
         alter table sc alter column a type varchar; update sc set a = 'z' where id = 1;`,
      );
      const all = await reader.until((e) => e.filter((x) => x.op !== 'message').length >= 3);
      // Each new shape is announced by a schema-change message just before its first change.
      expect(all.map((e) => e.message?.prefix ?? e.op)).toEqual([
        'insert',
        SCHEMA_CHANGE_PREFIX,
        'insert',
        SCHEMA_CHANGE_PREFIX,
        'update',
      ]);
      const ev = all.filter((e) => e.op !== 'message');
      expect(ev.map((e) => e.after)).toEqual([
        { id: '1', a: 'x' },
        { id: '2', a: 'y', b: '3.0' },
        { id: '1', a: 'z', b: '2.5' },
      ]);
      expect(ev[0]!.schema.columns.map((c) => c.type)).toEqual(['integer', 'text']);
      expect(ev[1]!.schema.columns.map((c) => c.type)).toEqual(['integer', 'text', 'numeric(5,1)']);
      // text -> varchar needs no rewrite (a length limit would: docs/schema-changes.md).
      expect(ev[2]!.schema.columns.map((c) => c.type)).toEqual(['integer', 'character varying', 'numeric(5,1)']);
      expect(ev[1]!.schema).not.toBe(ev[0]!.schema);
      expect(ev[0]!.schema.columns).toHaveLength(2);
      const status = await source.status();
      expect(status.retainedBytes).toBeGreaterThanOrEqual(0);
      expect(status.details).toMatchObject({ slot: 'tributary_schema', slotExists: true, active: true });
    } finally {
      await source.close();
    }
  });

  it('marks unchanged TOAST values as UNCHANGED when another column is updated', async () => {
    const { db, url } = await fresh('create table big (id int primary key, n int, doc text)');
    const { source, reader } = await open({ type: 'postgres', url, tables: ['public.big'] }, 'toast');
    try {
      await reader.until((_e, b) => snapshotDone(b));
      await server.query(
        db,
        "insert into big select 1, 0, string_agg(md5(i::text), '') from generate_series(1, 5000) i",
      );
      await server.query(db, 'update big set n = 1');
      const ev = await reader.until((e) => e.length >= 2);
      expect(ev[0]!.after!.doc).toHaveLength(160_000);
      expect(ev[1]!.op).toBe('update');
      expect(ev[1]!.after).toEqual({ id: '1', n: '1', doc: UNCHANGED });
    } finally {
      await source.close();
    }
  });

  it('continuous writes during the snapshot: replayed events equal the final table, no gap or duplicate', async () => {
    const { db, url } = await fresh(`
      create table acc (id int primary key, balance int, note text);
      insert into acc select i, i, 'initial' from generate_series(1, 20000) i;`);
    let stop = false;
    const writer = (async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      let n = 20000;
      try {
        while (!stop) {
          n++;
          await client.query(
            `begin; insert into acc values (${n}, 0, 'new'); update acc set balance = balance + 1 where id = ${(n * 7) % 20000};
             delete from acc where id = ${(n * 13) % 20000}; commit;`,
          );
        }
      } finally {
        await client.end();
      }
      return n;
    })();
    await new Promise((r) => setTimeout(r, 200));
    const { source, reader } = await open(
      { type: 'postgres', url, tables: ['public.acc'], snapshot_chunk_rows: 500 },
      'during',
      null,
      { max_events: 500, max_bytes: 1 << 20, max_wait_ms: 10 },
    );
    try {
      const snap = await reader.until((_e, b) => snapshotDone(b));
      expect(snap.every((e) => e.op === 'read')).toBe(true);
      stop = true;
      const written = await writer;
      expect(written).toBeGreaterThan(20000);
      const end = await currentLsn(server, db);
      const streamed = await reader.until((_e, b) => b.checkpoint !== null && cpLsn(b.checkpoint) >= end);
      const state = replay([...snap, ...streamed]);
      const expected = await rawRows(server, db, 'select * from acc');
      expect(state.size).toBe(expected.length);
      for (const row of expected) expect(state.get(JSON.stringify({ id: row.id }))).toEqual(row);
      // Checkpoints only at commits, batch numbers consecutive.
      expect(reader.batches.map((b) => b.seq)).toEqual(reader.batches.map((_b, i) => i));
    } finally {
      stop = true;
      await source.close();
    }
  });

  it('a listed table dropped between the table listing and ALTER PUBLICATION: the tables are listed again, nothing fails', async () => {
    const { db, url } = await fresh(`
      create table t (id int primary key);
      create table u (id int primary key);
      create publication race_pub for table t;`);
    const config = postgresSourceConfig.parse({
      type: 'postgres',
      url,
      tables: ['public.t', 'public.u'],
      publication_name: 'race_pub',
    });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    // The DROP lands right after the publication's tables were read, as a concurrent DROP TABLE can.
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
    let dropped = false;
    (client as unknown as { query: unknown }).query = async (...args: unknown[]) => {
      const result = await query(...args);
      if (!dropped && String(args[0]).includes('from pg_publication_tables')) {
        dropped = true;
        await server.query(db, 'drop table u');
      }
      return result;
    };
    try {
      const logs: string[] = [];
      const pubs = await ensurePublications(client, config, replicationNames(config, 'race'), (event) => {
        logs.push(event);
      });
      expect(dropped).toBe(true);
      expect(pubs).toEqual(['race_pub']);
      expect(logs).toEqual([]);
      const published = await server.query<{ n: string }>(
        db,
        "select tablename as n from pg_publication_tables where pubname = 'race_pub'",
      );
      expect(published.map((r) => r.n)).toEqual(['t']);
    } finally {
      await client.end();
    }
  });

  it('restarts from a checkpoint: nothing lost, nothing redelivered, slot never ahead of commit()', async () => {
    const { db, url } = await fresh('create table r (id int primary key)');
    // Frequent status updates: the timer must report only what commit() was given.
    const config: PostgresSourceConfigInput = { type: 'postgres', url, tables: ['public.r'], status_interval_ms: 100 };
    const one = { max_events: 1, max_bytes: 1 << 20, max_wait_ms: 0 };
    let { source, reader } = await open(config, 'restart', null, one);
    const slot = 'tributary_restart';
    let committed = 0n;
    const commit = async (cp: Checkpoint) => {
      await source.commit(cp);
      committed = cpLsn(cp);
    };
    let cpA: Checkpoint;
    try {
      let first = await reader.next();
      while (!snapshotDone(first)) first = await reader.next();
      await commit(first.checkpoint!);
      for (let i = 1; i <= 5; i++) await server.query(db, `insert into r values (${i})`);
      const got: string[] = [];
      cpA = first.checkpoint!;
      while (got.length < 5) {
        const b = await reader.next();
        for (const e of b.events) got.push(e.after!.id as string);
        // The commit of a change may come in a batch of its own (it arrived after the change was taken).
        if (b.checkpoint && got.length <= 3 && got.length > 0) cpA = b.checkpoint;
      }
      expect(got).toEqual(['1', '2', '3', '4', '5']);
      await commit(cpA);
      await new Promise((r) => setTimeout(r, 300));
      expect((await slotFlush(server, db, slot))!).toBeLessThanOrEqual(committed);
    } finally {
      await source.close();
    }
    expect((await slotFlush(server, db, slot))!).toBeLessThanOrEqual(cpLsn(cpA));
    // A server restart may make PostgreSQL 15/16 resend committed transactions.
    if (server.restart) await server.restart();
    await server.query(db, 'insert into r values (6)');
    ({ source, reader } = await open(config, 'restart', cpA, one));
    try {
      const ev = await reader.until((e) => e.length >= 3, false);
      expect(ev.map((e) => e.after!.id)).toEqual(['4', '5', '6']);
      expect((await slotFlush(server, db, slot))!).toBeLessThanOrEqual(cpLsn(cpA));
    } finally {
      await source.close();
    }
  });

  it('crash and resume at random checkpoints under continuous writes: the final state is exact', async () => {
    const { db, url } = await fresh(`
      create table acct (id int primary key, balance bigint, note text);
      insert into acct select i, 0, 'seed' from generate_series(1, 2000) i;`);
    let stop = false;
    const writer = (async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      let n = 2000;
      try {
        while (!stop) {
          n += 3;
          await client.query(
            `begin;
             insert into acct values (${n}, ${n}, 'a'), (${n + 1}, 0, 'b'), (${n + 2}, 0, 'c');
             update acct set balance = balance + 1, note = 'u' where id in (${(n % 1999) + 1}, ${((n * 7) % 1999) + 1});
             delete from acct where id = ${((n * 13) % 1999) + 1};
             commit;`,
          );
        }
      } finally {
        await client.end();
      }
    })();
    const config: PostgresSourceConfigInput = { type: 'postgres', url, tables: ['public.acct'] };
    const small = { max_events: 48, max_bytes: 1 << 20, max_wait_ms: 5 };
    const state = new Map<string, Row>();
    let cp: Checkpoint | null = null;
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    try {
      for (let round = 0; round < 4; round++) {
        const { source, reader } = await open(config, 'chaos', cp, small);
        let pending: ChangeEvent[] = [];
        try {
          // Round 0 stops inside the snapshot (2000 rows, 48 per batch); later rounds stop while streaming, after the
          // redone snapshot (longer when the writer was fast) reached its checkpoint.
          for (let i = 0; i < (round === 0 ? 20 : 80) || (round > 0 && cp === null); i++) {
            const b = await reader.next();
            pending.push(...b.events);
            // The target made this batch durable (or not): only durable prefixes are applied and committed.
            if (b.checkpoint && (b.checkpoint.phase === 'stream' || random() < 0.5)) {
              if (cp === null || random() < 0.6) {
                replay(pending, state);
                pending = [];
                cp = b.checkpoint;
                await source.commit(cp);
                const flushed = await slotFlush(server, db, 'tributary_chaos');
                expect(flushed ?? 0n).toBeLessThanOrEqual(cpLsn(cp));
              }
            }
          }
        } finally {
          await source.close(); // "crash": whatever was not committed is lost at the target...
        }
        // ...except the partial snapshot of round 0, which the target did write: the redone snapshot must drop it.
        if (round === 0) replay(pending, state);
        if (round === 0) expect(cp).toBeNull();
        else expect(cp!.phase).toBe('stream');
      }
      stop = true;
      await writer;
      const end = await currentLsn(server, db);
      const { source, reader } = await open(config, 'chaos', cp, FAST_BATCH);
      try {
        const rest = await reader.until((_e, b) => b.checkpoint !== null && cpLsn(b.checkpoint) >= end);
        replay(rest, state);
      } finally {
        await source.close();
      }
      const expected = await rawRows(server, db, 'select * from acct');
      expect(state.size).toBe(expected.length);
      for (const row of expected) expect(state.get(JSON.stringify({ id: row.id }))).toEqual(row);
    } finally {
      stop = true;
      await writer;
    }
  });

  it('advances an idle slot while only unpublished tables are written (heartbeat, non-superuser)', async () => {
    const { db, url } = await fresh(`
      create role hb login replication;
      create table pub (id int primary key); create table other (id int);
      alter table pub owner to hb; alter table other owner to hb;`);
    const denied = await preflightPostgresSource(
      { type: 'postgres', url: url.replace('postgres@', 'hb@'), tables: ['public.pub'] },
      ctx('idle'),
    );
    expect(denied.map((p) => p.hint)).toEqual([expect.stringMatching(/GRANT CREATE ON DATABASE/)]);
    await server.query(db, `grant create on database ${db} to hb`);
    const u = new URL(url);
    u.username = 'hb';
    const { source, reader } = await open({ type: 'postgres', url: u.toString(), tables: ['public.pub'] }, 'idle');
    try {
      await reader.until((_e, b) => snapshotDone(b));
      const before = await currentLsn(server, db);
      for (let i = 0; i < 20; i++) await server.query(db, `insert into other select generate_series(1, 1000)`);
      const events = await reader.until((_e, b) => b.checkpoint !== null && cpLsn(b.checkpoint) > before);
      expect(events).toEqual([]);
      await new Promise((r) => setTimeout(r, 200));
      expect((await slotFlush(server, db, 'tributary_idle'))!).toBeGreaterThan(before);
    } finally {
      await source.close();
    }
  });

  it('a source user that may not write logical messages: the rewrite check turns off with a warning, the stream goes on', async () => {
    const { db, url } = await fresh(`
      create role nomsg login replication;
      create table pub (id int primary key, v int);
      alter table pub owner to nomsg;
      insert into pub values (1, 1);`);
    await server.query(db, `grant create on database ${db} to nomsg`);
    // Every overload (its arguments differ between versions).
    await server.query(
      db,
      `do $$ declare f regprocedure; begin
         for f in select oid::regprocedure from pg_proc where proname = 'pg_logical_emit_message' loop
           execute format('revoke execute on function %s from public', f);
         end loop; end $$`,
    );
    const allowed = await server.query<{ ok: boolean }>(
      db,
      "select bool_or(has_function_privilege('nomsg', oid, 'execute')) as ok from pg_proc where proname = 'pg_logical_emit_message'",
    );
    expect(allowed[0]!.ok).toBe(false);
    const u = new URL(url);
    u.username = 'nomsg';
    const c = testContext('nomsg');
    const source = new PostgresSource(
      {
        type: 'postgres',
        url: u.toString(),
        tables: ['public.pub'],
        heartbeat_interval_ms: 300,
        table_check_interval_ms: 100,
      },
      c,
      { batch: FAST_BATCH },
    );
    await source.open(null);
    const reader = new Reader(source);
    try {
      await reader.until((_e, b) => snapshotDone(b));
      // A new file node with no later change: the check would write a message, which this user may not.
      await server.query(db, 'truncate pub');
      expect((await reader.until((e) => e.length >= 1)).map((e) => e.op)).toEqual(['truncate']);
      for (let i = 0; i < 100 && !c.logs.some((l) => l.event === 'table_rewrite_check_disabled'); i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(c.logs.filter((l) => l.event === 'table_rewrite_check_disabled')).toHaveLength(1);
      await server.query(db, 'insert into pub values (3, 3)');
      expect((await reader.until((e) => e.length >= 1)).map((e) => e.after)).toEqual([{ id: '3', v: '3' }]);
    } finally {
      await source.close();
    }
  });

  it('initial_only copies the tables once and stops, without a slot', async () => {
    const { db, url } = await fresh(
      'create table o (id int primary key); insert into o select generate_series(1, 10);',
    );
    const config: PostgresSourceConfigInput = { type: 'postgres', url, tables: ['public.o'], snapshot: 'initial_only' };
    let { source, reader } = await open(config, 'once');
    let done: Checkpoint;
    try {
      const ev = await reader.until((_e, b) => snapshotDone(b));
      expect(ev).toHaveLength(10);
      done = reader.batches.at(-1)!.checkpoint!;
      expect(done).toMatchObject({ phase: 'snapshot', state: { snapshotComplete: true } });
      expect(await reader.it.next()).toMatchObject({ done: true });
    } finally {
      await source.close();
    }
    expect(await slotFlush(server, db, 'tributary_once')).toBeNull();
    ({ source, reader } = await open(config, 'once', done));
    try {
      expect(await reader.it.next()).toMatchObject({ done: true });
    } finally {
      await source.close();
    }
  });

  it('a server restart while streaming ends batches() with a retryable error', async () => {
    const { db, url } = await fresh('create table rs (id int primary key); create table unpublished (id int)');
    const { source, reader } = await open({ type: 'postgres', url, tables: ['public.rs'] }, 'srvrestart');
    try {
      await reader.until((_e, b) => snapshotDone(b));
      // Batches read from here on are never committed, and WAL past the last commit exists: the server's walsender
      // cannot see its WAL confirmed, so a shutdown waits until the source lets go of its replication connection
      // (it held it until close(), and the server's fast shutdown hung with the pipeline waiting on that shutdown).
      const pending = (async () => {
        for (;;) await reader.next();
      })().catch((e) => e);
      await server.query(db, 'insert into unpublished values (1)');
      await server.restart!();
      const err = await pending;
      expect(err).toBeInstanceOf(TributaryError);
      expect(err.kind).toBe('retryable');
    } finally {
      await source.close();
    }
  });

  it('redoes an interrupted snapshot with truncates first, so deleted rows do not survive', async () => {
    const { db, url } = await fresh(
      'create table s (id int primary key); insert into s select generate_series(1, 3000);',
    );
    const config: PostgresSourceConfigInput = { type: 'postgres', url, tables: ['public.s'], snapshot_chunk_rows: 100 };
    const small = { max_events: 100, max_bytes: 1 << 20, max_wait_ms: 0 };
    let { source, reader } = await open(config, 'redo', null, small);
    const partial = [await reader.next(), await reader.next()].flatMap((b) => b.events);
    expect(reader.batches.some((b) => snapshotDone(b))).toBe(false);
    await source.close();
    await server.query(db, 'delete from s where id <= 50');
    ({ source, reader } = await open(config, 'redo', null, small));
    try {
      await reader.until((_e, b) => snapshotDone(b));
      const ev = reader.batches.flatMap((b) => b.events);
      expect(ev[0]).toMatchObject({ op: 'truncate', source: { snapshot: 'true' } });
      const state = replay([...partial, ...ev]);
      expect(state.size).toBe(2950);
      expect(state.has(JSON.stringify({ id: '1' }))).toBe(false);
    } finally {
      await source.close();
    }
  });

  it('parallel snapshot: each chunk checkpoint covers every row up to its key; a restart from one resumes after it and converges under writes', async () => {
    const { db, url } = await fresh(`
      create table p (id int primary key, v text);
      insert into p select g, md5(g::text) from generate_series(1, 20000) g;
      create table q (id int primary key);
      insert into q select generate_series(1, 3000);`);
    const config: PostgresSourceConfigInput = {
      type: 'postgres',
      url,
      tables: ['public.p', 'public.q'],
      snapshot_chunk_rows: 1000,
      snapshot_parallelism: 3,
    };
    const small = { max_events: 500, max_bytes: 1 << 20, max_wait_ms: 0 };
    // Target rows as upserts (a chunk read again and stream changes before a chunk are both harmless there).
    const target = new Map<string, Row>();
    const apply = (events: ChangeEvent[]) => {
      for (const e of events) {
        const id = `${e.table.name}/${JSON.stringify(e.key)}`;
        if (e.op === 'truncate') {
          for (const k of [...target.keys()]) if (k.startsWith(`${e.table.name}/`)) target.delete(k);
        } else if (e.op === 'delete') target.delete(id);
        else if (e.after) target.set(id, { ...target.get(id), ...e.after });
      }
    };
    let { source, reader } = await open(config, 'par', null, small);
    let mid: Checkpoint | null = null;
    let checked = 0;
    const firstRun: ChangeEvent[] = [];
    try {
      for (;;) {
        const b = await reader.next();
        // The initial snapshot's rows come as COPY blocks of at most a batch (max_events), decoded when read.
        if (b.events.some((e) => e.op === 'read')) {
          expect(b.blocks?.length).toBeGreaterThan(0);
          expect(b.events.length).toBe(changeCount(b));
          expect(b.events.length).toBeLessThanOrEqual(500);
        }
        apply(b.events);
        firstRun.push(...b.events);
        if (!b.checkpoint) continue;
        const snap = b.checkpoint.state?.snapshot as {
          tables: string[];
          pending: { table: string; lastKey: string[]; rows: number }[];
          initial?: boolean;
        };
        if (!snap.initial) break;
        for (const pending of snap.pending) {
          const name = pending.table.split('.')[1]!;
          const last = Number(pending.lastKey[0]);
          expect(pending.rows).toBe(last);
          for (let id = 1; id <= last; id++)
            expect(target.has(`${name}/${JSON.stringify({ id: String(id) })}`)).toBe(true);
          checked++;
          if (!mid && name === 'p' && last >= 5000) mid = b.checkpoint;
        }
      }
    } finally {
      await source.close();
    }
    expect(checked).toBeGreaterThan(3);
    expect(mid).not.toBeNull();
    // Both tables' row counts are multiples of the chunk size: their last rows still carry Debezium's markers.
    const reads = firstRun.filter((e) => e.op === 'read');
    // Read on 3 connections, each table's chunks still go out whole and in key order (a target then appends at the
    // end of the key's index).
    const ids = (name: string) => reads.filter((e) => e.table.name === name).map((e) => Number(e.after!.id));
    const inOrder = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
    expect(ids('p')).toEqual(inOrder(20000));
    expect(ids('q')).toEqual(inOrder(3000));
    expect(reads.filter((e) => e.source.snapshot === 'last').map((e) => [e.table.name, e.after!.id])).toEqual([
      ['q', '3000'],
    ]);
    expect(reads[reads.length - 1]!.source.snapshot).toBe('last');
    expect(
      reads.filter((e) => e.source.snapshot === 'last_in_data_collection').map((e) => [e.table.name, e.after!.id]),
    ).toEqual([['p', '20000']]);
    // Restart from a checkpoint in the middle of p, after writes the snapshot did not see.
    const midState = mid!.state?.snapshot as { pending: { table: string; lastKey: string[] }[] };
    const resumeAfter = Number(midState.pending.find((x) => x.table === 'public.p')!.lastKey[0]);
    await server.query(
      db,
      `update p set v = 'changed' where id % 7 = 0; delete from p where id between 100 and 200 or id > 19500;
       insert into p values (30000, 'new'); delete from q where id < 10; insert into q values (5000)`,
    );
    ({ source, reader } = await open(config, 'par', mid, small));
    try {
      const events: ChangeEvent[] = [];
      for (;;) {
        const b = await reader.next();
        events.push(...b.events);
        if (b.checkpoint) await source.commit(b.checkpoint);
        const snap = b.checkpoint?.state?.snapshot as { pending: unknown[] } | undefined;
        if (snap && snap.pending.length === 0) break;
      }
      apply(events);
      const firstRead = events.find((e) => e.op === 'read' && e.table.name === 'p');
      expect(Number(firstRead!.after!.id)).toBe(resumeAfter + 1);
      const expected = new Map<string, Row>();
      for (const r of await rawRows(server, db, 'select * from p'))
        expected.set(`p/${JSON.stringify({ id: r.id })}`, r);
      for (const r of await rawRows(server, db, 'select * from q'))
        expected.set(`q/${JSON.stringify({ id: r.id })}`, r);
      expect(target.size).toBe(expected.size);
      expect(new Map([...target].sort())).toEqual(new Map([...expected].sort()));
    } finally {
      await source.close();
    }
  });

  it('without a table list: every owned table except the tributary schema', async () => {
    const { db, url } = await fresh(`
      create schema app; create schema tributary;
      create table app.a (id int primary key); create table public.b (id int primary key);
      create table tributary.checkpoints (pipeline text primary key);
      insert into app.a values (1); insert into public.b values (2); insert into tributary.checkpoints values ('x');`);
    const { source, reader } = await open({ type: 'postgres', url }, 'all');
    try {
      const reads = await reader.until((_e, b) => snapshotDone(b));
      expect(reads.map((e) => `${e.table.schema}.${e.table.name}`).sort()).toEqual(['app.a', 'public.b']);
      await server.query(db, "insert into tributary.checkpoints values ('y'); insert into public.b values (3)");
      const ev = await reader.until((e) => e.length >= 1);
      expect(ev.map((e) => [e.table.name, e.after])).toEqual([['b', { id: '3' }]]);
    } finally {
      await source.close();
    }
  });

  it('partitioned tables: snapshot and changes appear under the partitioned table', async () => {
    const { db, url } = await fresh(`
      create table part (id int primary key, v text) partition by range (id);
      create table part_a partition of part for values from (0) to (100);
      create table part_b partition of part for values from (100) to (200);
      insert into part values (1, 'a'), (150, 'b');`);
    const { source, reader } = await open({ type: 'postgres', url, tables: ['public.part'] }, 'part');
    try {
      const reads = await reader.until((_e, b) => snapshotDone(b));
      expect(reads.map((e) => [e.op, e.table.name, e.after])).toEqual([
        ['read', 'part', { id: '1', v: 'a' }],
        ['read', 'part', { id: '150', v: 'b' }],
      ]);
      await server.query(db, "insert into part values (2, 'c'), (151, 'd'); update part set v = 'e' where id = 150");
      const ev = await reader.until((e) => e.length >= 3);
      expect(ev.map((e) => [e.op, e.table.name, e.key])).toEqual([
        ['insert', 'part', { id: '2' }],
        ['insert', 'part', { id: '151' }],
        ['update', 'part', { id: '150' }],
      ]);
    } finally {
      await source.close();
    }
  });

  it('clear errors: keyless table, missing REPLICATION, lost slot, unreachable server', async () => {
    const { db, url } = await fresh(`
      create table nokey (a int, b text); create table keyed (id int primary key);
      create role norepl login; alter table keyed owner to norepl;`);
    const err = await open({ type: 'postgres', url, tables: ['public.nokey'] }, 'keyless').catch((e) => e);
    expect(err).toBeInstanceOf(SourceSetupError);
    expect(err.hint).toMatch(/REPLICA IDENTITY FULL/);
    expect(err.hint).toMatch(/primary key/);

    // insert_only: existing rows are copied through a cursor; the application can still update and delete; inserts
    // stream.
    await server.query(db, "insert into nokey select i, 'old' from generate_series(1, 250) i");
    const io = await open(
      { type: 'postgres', url, tables: ['public.nokey'], keyless_tables: 'insert_only', snapshot_chunk_rows: 100 },
      'keyless2',
    );
    try {
      const reads = await io.reader.until((_e, b) => snapshotDone(b));
      expect(reads).toHaveLength(250);
      expect(reads[0]).toMatchObject({ op: 'read', key: null, after: { a: '1', b: 'old' } });
      expect(reads[0]!.schema).toMatchObject({ keyColumns: [], beforeImage: 'none' });
      await server.query(db, "insert into nokey values (1, 'x'); update nokey set b = 'y'; delete from nokey");
      const ev = await io.reader.until((e) => e.length >= 1);
      expect(ev).toHaveLength(1);
      expect(ev[0]).toMatchObject({ op: 'insert', key: null, after: { a: '1', b: 'x' } });
      await server.query(db, "insert into nokey values (2, 'z')");
      expect(await io.reader.until((e) => e.length >= 1)).toMatchObject([{ op: 'insert', after: { a: '2' } }]);
    } finally {
      await io.source.close();
    }

    const u = new URL(url);
    u.username = 'norepl';
    const noRepl = await open({ type: 'postgres', url: u.toString(), tables: ['public.keyed'] }, 'norepl').catch(
      (e) => e,
    );
    expect(noRepl).toBeInstanceOf(SourceSetupError);
    expect(noRepl.message).toMatch(/REPLICATION/);
    expect(noRepl.hint).toMatch(/ALTER ROLE "norepl" WITH REPLICATION/);
    const problems = await preflightPostgresSource(
      { type: 'postgres', url: u.toString(), tables: ['public.keyed', 'public.nope'] },
      ctx('norepl'),
    );
    expect(problems.map((p) => p.message).join('\n')).toMatch(/REPLICATION[\s\S]*public.nope/);

    const lost: Checkpoint = { pipeline: 'lost', phase: 'stream', position: { kind: 'postgres', lsn: '0/1000000' } };
    const lostErr = await open({ type: 'postgres', url, tables: ['public.keyed'] }, 'lost', lost).catch((e) => e);
    expect(lostErr).toBeInstanceOf(SourceSetupError);
    expect(lostErr.hint).toMatch(/on_slot_lost: resnapshot/);
    await server.query(db, 'insert into keyed values (1), (2)');
    const again = await open(
      { type: 'postgres', url, tables: ['public.keyed'], on_slot_lost: 'resnapshot' },
      'lost',
      lost,
    );
    try {
      await again.reader.until((_e, b) => snapshotDone(b));
      const ev = again.reader.batches.flatMap((b) => b.events);
      expect(ev.map((e) => [e.op, e.source.snapshot])).toEqual([
        ['truncate', 'true'],
        ['read', 'first'],
        ['read', 'last'],
      ]);
    } finally {
      await again.source.close();
    }

    u.username = 'postgres';
    u.port = '1';
    const down = await open({ type: 'postgres', url: u.toString(), connect_timeout_ms: 2000 }, 'down').catch((e) => e);
    expect(down).toBeInstanceOf(ConnectionError);
    expect((down as TributaryError).kind).toBe('retryable');
    expect(down.hint).toMatch(/reachable/);

    // teardown removes the slot and publications
    await teardownPostgresSource({ type: 'postgres', url, tables: ['public.nokey'] }, ctx('keyless2'));
    const left = await server.query(
      db,
      "select (select count(*)::int from pg_replication_slots where slot_name = 'tributary_keyless2') as slots, (select count(*)::int from pg_publication where pubname like 'tributary_keyless2%') as pubs",
    );
    expect(left[0]).toEqual({ slots: 0, pubs: 0 });
  });

  it('refuses a server without wal_level=logical', async () => {
    const replica = await startPostgres({
      ...(flavor ? { flavor } : {}),
      settings: { wal_level: 'replica' },
      throwaway: true,
    });
    try {
      await replica.createDatabase('w');
      await replica.query('w', 'create table t (id int primary key)');
      const err = await new PostgresSource({ type: 'postgres', url: replica.url('w') }, ctx('wal'))
        .open(null)
        .catch((e) => e);
      expect(err).toBeInstanceOf(SourceSetupError);
      expect(err.message).toMatch(/wal_level/);
      expect(err.hint).toMatch(/ALTER SYSTEM SET wal_level = 'logical'/);
    } finally {
      await replica.stop();
    }
  });
});
