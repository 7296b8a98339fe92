/**
 * Incremental snapshot of PostgreSQL tables while streaming (the watermark algorithm of DBLog and Debezium's
 * incremental snapshots). Per chunk of a table, in key order:
 *
 *   1. a low watermark is written to the WAL (`pg_logical_emit_message`, in its own transaction);
 *   2. the chunk is read (`WHERE key > last ORDER BY key LIMIT n`) on an ordinary connection;
 *   3. a high watermark is written.
 *
 * The stream never stops. Between the two watermarks it notes every key of the table that changes; when it reaches
 * the high watermark it emits the chunk's rows without those keys, as snapshot reads in the high watermark's
 * transaction. Why that is right for each key of the chunk: a key not changed between the watermarks has the same
 * value at the read as at the high watermark, so the read row is correct at the position where it is emitted; a key
 * changed in between gets its value from the stream (updates carry the whole new row and are applied as upserts).
 * The first chunk of a table is preceded, at its low watermark, by a snapshot truncate, so the target drops rows the
 * source no longer has; keys not read yet are either read later or get their value from the stream.
 *
 * Progress (the last key read of the table) moves only when a chunk is emitted, so the checkpoint of the high
 * watermark's commit is the first to cover it: a restart resumes after the last chunk the target holds durably.
 *
 * Tables without a key are read whole under a short lock instead (see runFenced).
 *
 * A chunk is read again (not emitted) when, between its watermarks, an update without all columns arrived for the
 * table (an unchanged TOAST value: the stream alone cannot give that row) or the table's shape changed.
 */
import type pg from 'pg';
import type { ChangeEvent, Row, TableSchema } from '../../../src/core/change-event.ts';
import { UNCHANGED } from '../../../src/core/change-event.ts';
import type { Logger } from '../../../src/observability/logger.ts';
import type { SnapshotProgress } from '../../../src/observability/snapshot-progress.ts';
import { quoteTable } from '../identifiers.ts';
import type { TypeResolver } from '../type-names.ts';
import { type SourceTable, tableSchemaFromCatalog } from './catalog.ts';
import { EVENT_OVERHEAD } from './pgoutput-decoder.ts';
import { type KnownTable, knownTableFromCatalog } from './schema-history.ts';
import { readKeyRange, readTable } from './snapshot-reader.ts';

/** Prefix of the watermark messages; they are consumed by the source that wrote them, never emitted. */
export const WATERMARK_PREFIX = 'tributary.snapshot.watermark';
/**
 * Prefix of a re-snapshot request (`tributary snapshot`): JSON `{slot, table, where?}` written to the WAL, so the
 * request reaches the pipeline through its own stream, in order, even when it is not running at the time.
 */
export const REQUEST_PREFIX = 'tributary.snapshot.request';

/** One table's incremental snapshot, as kept in the checkpoint. */
export interface TableProgress {
  /** `schema.name` */
  table: string;
  /** Key values (canonical text, key column order) of the last row emitted; null: nothing emitted yet. */
  lastKey: string[] | null;
  /** Rows emitted so far. */
  rows: number;
  /** Chunks emitted so far, and rows of them left to the stream (changed between the watermarks). */
  chunks?: number;
  superseded?: number;
  /** An SQL condition limiting the rows read (a partial re-snapshot). */
  where?: string;
  /**
   * Columns retyped with a rewrite the copy follows: the target converts them without keeping old values (the copy
   * empties the table first), as for the `retyped` columns of a Relation message.
   */
  retyped?: string[];
}

/** What the checkpoint carries: tables whose existing rows were copied, and incremental snapshots still running. */
export interface SnapshotState {
  /** Tables the pipeline has copied (or streams since it started with their rows copied). */
  tables: string[];
  pending: TableProgress[];
  /**
   * Written by an initial snapshot still running (at its consistent point): `pending` holds the tables read in part,
   * up to their last chunk with every chunk before it read; a restart copies the rest by incremental snapshot.
   */
  initial?: boolean;
}

interface Chunk {
  id: number;
  progress: TableProgress;
  schema: TableSchema;
  /** The table's columns by attribute number as read with `schema` (for the schema history). */
  known: KnownTable;
  keyCols: string[];
  /** Emit a snapshot truncate at the low watermark (the table's first chunk). */
  truncateFirst: boolean;
  /** Rows read, set before the high watermark is written. */
  rows: Row[] | null;
  /** Transactions in progress for the read's snapshot (32-bit xids), set with `rows`. */
  invisible: Set<number> | null;
  /** `observed` generation when the low watermark was seen. */
  lowGeneration: number;
  /** Keys (see keyText) changed between the watermarks. */
  changed: Set<string>;
  /** The low watermark was seen in the stream. */
  open: boolean;
  /** A keyless table's single read, fenced by a lock (see runFenced). */
  fenced?: boolean;
  /** Read again instead of emitting (see the file comment). */
  redo: boolean;
  /** The table was truncated at the source between the watermarks: every read row is stale. */
  truncated: boolean;
  done: (result: 'emitted' | 'redo') => void;
}

export interface IncrementalSnapshotHost {
  pipeline: string;
  slot: string;
  db: string;
  logger: Logger;
  resolver: TypeResolver;
  chunkRows: number;
  progress?: SnapshotProgress;
  /** Hands a snapshot event to the stream's open transaction (the watermark's). */
  push(event: ChangeEvent, bytes: number): void;
  /** A request arrived through the stream: start copying if not running. */
  requested(): void;
  /**
   * The copy of a table reached the stream (a chunk's low watermark): the table is in the target from here on, so
   * the schema history must know it (a DROP TABLE before any change of it is streamed still empties the target).
   */
  copied(known: KnownTable, schema: TableSchema): void;
}

function keyText(keyCols: readonly string[], row: Row): string {
  return JSON.stringify(keyCols.map((k) => (row[k] === UNCHANGED ? null : row[k])));
}

function hasUnchanged(row: Row | null): boolean {
  if (!row) return false;
  for (const k in row) if (row[k] === UNCHANGED) return true;
  return false;
}

export class IncrementalSnapshot {
  private readonly state: SnapshotState;
  /** A random id per run: watermarks of an earlier run, replayed after a restart, are ignored. */
  private readonly run = Math.random().toString(36).slice(2, 10);
  private nextChunkId = 1;
  /** The last copy handed to a checkpoint; dropped whenever the state changes. */
  private saved: SnapshotState | null = null;
  private chunk: Chunk | null = null;
  private stopped = false;
  /** The table being copied, and the stream transactions (32-bit xid) that changed it, by watermark generation. */
  private copying: { schema: string; name: string } | null = null;
  private readonly changedBy = new Map<number, number>();
  private generation = 0;

  constructor(
    private readonly host: IncrementalSnapshotHost,
    state: SnapshotState,
  ) {
    this.state = { tables: [...state.tables], pending: state.pending.map((p) => ({ ...p })) };
  }

  /** The state for a checkpoint at the current stream position: a copy (checkpoints are immutable), made once per change. */
  snapshotState(): SnapshotState {
    this.saved ??= { tables: [...this.state.tables], pending: this.state.pending.map((p) => ({ ...p })) };
    return this.saved;
  }

  get hasWork(): boolean {
    return this.state.pending.length > 0;
  }

  /** Requests a (re-)snapshot of a table; a running one for the same table is restarted. */
  request(table: string, where?: string, retyped?: string[]): void {
    if (this.chunk?.progress.table === table) this.chunk.redo = true;
    this.saved = null;
    const before = this.state.pending.find((p) => p.table === table);
    this.state.pending = this.state.pending.filter((p) => p.table !== table);
    const p: TableProgress = { table, lastKey: null, rows: 0 };
    if (where) p.where = where;
    // A copy asked again keeps the conversions asked before: its target columns may not be converted yet.
    const columns = [...new Set([...(before?.retyped ?? []), ...(retyped ?? [])])];
    if (columns.length > 0) p.retyped = columns;
    this.state.pending.push(p);
  }

  /** Columns a copy still to run (or running) of `table` converts, when it was asked with some. */
  retypedColumns(table: string): string[] | undefined {
    return this.state.pending.find((p) => p.table === table)?.retyped;
  }

  stop(): void {
    this.stopped = true;
    this.chunk?.done('redo');
  }

  // --- stream side (called synchronously from the decoder, in stream order)

  /** True when `event` is one of our watermarks (consumed); otherwise notes changes between watermarks. */
  observe(event: ChangeEvent): boolean {
    if (event.op === 'message') {
      const prefix = event.message?.prefix;
      if (prefix === WATERMARK_PREFIX) this.onWatermark(event);
      else if (prefix === REQUEST_PREFIX) this.onRequest(event);
      else return false;
      return true;
    }
    const copying = this.copying;
    if (!copying || event.table.schema !== copying.schema || event.table.name !== copying.name) return false;
    if (event.source.txId) this.changedBy.set(Number(event.source.txId), this.generation);
    const c = this.chunk;
    if (!c?.open) return false;
    if (event.op === 'truncate') {
      c.truncated = true;
      return false;
    }
    // The table's shape changed since the chunk's schema was read: read the chunk again with the new one.
    if (event.schema.columns.length !== c.schema.columns.length) c.redo = true;
    if (hasUnchanged(event.after)) c.redo = true;
    for (const row of [event.key, event.before, event.after]) if (row) c.changed.add(keyText(c.keyCols, row));
    return false;
  }

  private onRequest(event: ChangeEvent): void {
    let req: { slot?: string; table?: string; where?: string };
    try {
      req = JSON.parse(Buffer.from(event.message!.contentBase64, 'base64').toString('utf8'));
    } catch {
      return;
    }
    if (req.slot !== this.host.slot || typeof req.table !== 'string') return;
    this.host.logger.info({
      event: 'incremental_snapshot_requested',
      pipeline: this.host.pipeline,
      table: req.table,
      where: req.where ?? null,
      reason: 'snapshot request',
    });
    this.request(req.table, req.where || undefined);
    this.host.requested();
  }

  private onWatermark(event: ChangeEvent): void {
    let mark: { slot?: string; run?: string; chunk?: number; mark?: string };
    try {
      mark = JSON.parse(Buffer.from(event.message!.contentBase64, 'base64').toString('utf8'));
    } catch {
      return;
    }
    const c = this.chunk;
    if (mark.slot !== this.host.slot || mark.run !== this.run || !c || mark.chunk !== c.id) return;
    const lsn = event.source.position.kind === 'postgres' ? event.source.position.lsn : '0/0';
    const source: ChangeEvent['source'] = {
      connector: 'postgresql',
      db: this.host.db,
      position: { kind: 'postgres', lsn },
      txId: event.source.txId,
      commitTimeMs: event.source.commitTimeMs,
      snapshot: 'true',
    };
    if (mark.mark === 'low' || mark.mark === 'fence') {
      c.open = true;
      c.lowGeneration = ++this.generation;
      this.host.copied(c.known, c.schema);
      if (c.truncateFirst) {
        this.host.push(
          {
            op: 'truncate',
            table: c.schema.table,
            schema: c.schema,
            key: null,
            before: null,
            after: null,
            source,
            truncate: { cascade: false, restartIdentity: false },
          },
          EVENT_OVERHEAD,
        );
      }
      if (mark.mark === 'low') return;
    }
    if ((mark.mark !== 'high' && mark.mark !== 'fence') || !c.open) return;
    this.chunk = null;
    if (!c.fenced && !c.redo && c.invisible) {
      // A transaction that changed the table and committed before the low watermark, yet was not visible to the
      // read (its commit record precedes its visibility, e.g. while it waits for a synchronous standby): the rows
      // read may be older than the stream's; read the chunk again.
      for (const [xid, generation] of this.changedBy) {
        if (generation < c.lowGeneration && c.invisible.has(xid)) {
          c.redo = true;
          this.host.logger.info({
            event: 'incremental_snapshot_chunk_reread',
            pipeline: this.host.pipeline,
            table: c.progress.table,
            reason: `transaction ${xid} committed before the low watermark but was not visible to the read`,
          });
          break;
        }
      }
    }
    if ((c.redo && !c.fenced) || c.rows === null) {
      c.done('redo');
      return;
    }
    const rows = c.rows;
    const rowsBefore = c.progress.rows;
    for (const row of rows) {
      if (!c.fenced && (c.truncated || c.changed.has(keyText(c.keyCols, row)))) {
        c.progress.superseded = (c.progress.superseded ?? 0) + 1;
        continue;
      }
      let key: Row | null = null;
      if (c.keyCols.length > 0) {
        key = {};
        for (const k of c.keyCols) key[k] = row[k] ?? null;
      }
      this.host.push(
        { op: 'read', table: c.schema.table, schema: c.schema, key, before: null, after: row, source },
        EVENT_OVERHEAD + 64,
      );
      c.progress.rows++;
    }
    this.saved = null;
    c.progress.chunks = (c.progress.chunks ?? 0) + 1;
    this.host.progress?.add(c.progress.table, c.progress.rows - rowsBefore);
    const last = rows[rows.length - 1];
    if (last) c.progress.lastKey = c.keyCols.map((k) => String(last[k]));
    if (c.fenced || rows.length < this.host.chunkRows) {
      this.state.pending = this.state.pending.filter((p) => p !== c.progress);
      if (!this.state.tables.includes(c.progress.table)) this.state.tables.push(c.progress.table);
      this.host.progress?.finish(c.progress.table);
      this.host.logger.info({
        event: 'incremental_snapshot_table_done',
        pipeline: this.host.pipeline,
        table: c.progress.table,
        rows: c.progress.rows,
        chunks: c.progress.chunks,
        rows_left_to_stream: c.progress.superseded ?? 0,
      });
    }
    c.done('emitted');
  }

  // --- reader side

  /**
   * Runs the pending snapshots chunk by chunk until none is left or `stop()`. `client` is an ordinary connection
   * (values as raw text) that also writes the watermarks.
   */
  async runAll(client: pg.Client): Promise<void> {
    while (!this.stopped) {
      const progress = this.state.pending[0];
      if (!progress) return;
      const t = await this.sourceTable(client, progress.table);
      if (!t) {
        this.host.logger.warn({
          event: 'incremental_snapshot_table_missing',
          pipeline: this.host.pipeline,
          table: progress.table,
        });
        this.saved = null;
        this.state.pending = this.state.pending.filter((p) => p !== progress);
        continue;
      }
      const schema = await tableSchemaFromCatalog(client, this.host.resolver, t);
      for (const c of schema.columns) if (progress.retyped?.includes(c.name)) c.retyped = true;
      const known = await knownTableFromCatalog(client, t.oid, schema.table);
      const keyCols = schema.keyColumns;
      this.copying = schema.table;
      this.changedBy.clear();
      const estimated = await this.estimate(client, t.oid);
      this.host.progress?.start(progress.table, estimated, progress.rows);
      this.host.logger.info({
        event: 'incremental_snapshot_table_started',
        pipeline: this.host.pipeline,
        table: progress.table,
        resume_after: progress.lastKey,
        rows_done: progress.rows,
        estimated_rows: estimated,
        where: progress.where ?? null,
      });
      while (!this.stopped && this.state.pending.includes(progress)) {
        if (keyCols.length === 0) await this.runFenced(client, t, progress, schema, known);
        else await this.runChunk(client, progress, schema, known, keyCols);
      }
      // Nothing to guard any more: stop noting the table's transactions.
      this.copying = null;
      this.changedBy.clear();
    }
  }

  private async runChunk(
    client: pg.Client,
    progress: TableProgress,
    schema: TableSchema,
    known: KnownTable,
    keyCols: string[],
  ) {
    let done!: (r: 'emitted' | 'redo') => void;
    const finished = new Promise<'emitted' | 'redo'>((resolve) => {
      done = resolve;
    });
    const c: Chunk = {
      id: this.nextChunkId++,
      progress,
      schema,
      known,
      keyCols,
      // A partial snapshot (where) only copies rows; a whole table's first chunk empties the target table first.
      truncateFirst: progress.lastKey === null && !progress.where,
      rows: null,
      invisible: null,
      lowGeneration: 0,
      changed: new Set(),
      open: false,
      redo: false,
      truncated: false,
      done,
    };
    this.chunk = c;
    await this.watermark(client, c.id, 'low');
    const after: Row | null = progress.lastKey
      ? Object.fromEntries(keyCols.map((k, i) => [k, progress.lastKey![i]!]))
      : null;
    const rows: Row[] = [];
    // One snapshot for the read and the list of transactions it does not see.
    await client.query('begin isolation level repeatable read read only');
    const snap = (await client.query<{ s: string }>('select txid_current_snapshot()::text as s')).rows[0]!.s;
    for await (const piece of readKeyRange(
      client,
      { oid: 0, table: schema.table, hasPrimaryKey: true, replicaIdentity: 'd', canSelect: true, isOwner: true },
      schema,
      keyCols,
      after,
      this.host.chunkRows,
      progress.where,
    )) {
      for (const r of piece.rows) rows.push(r);
    }
    const [xmin, , xip] = snap.split(':');
    c.invisible = new Set(
      (xip ?? '')
        .split(',')
        .filter(Boolean)
        .map((x) => Number(BigInt(x) & 0xffffffffn)),
    );
    // A transaction waiting for a synchronous standby has written its commit (it may already be in the stream) but
    // is not visible to the read: if one is, the rows read may be older than the stream's; read again later.
    const waiting = await client.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
        where wait_event = 'SyncRep' and backend_xid is not null and backend_xid::text::bigint = any($1::bigint[])`,
      [[...c.invisible]],
    );
    await client.query('commit');
    if (waiting.rows[0]!.n > 0) {
      c.redo = true;
      this.host.logger.info({
        event: 'incremental_snapshot_chunk_reread',
        pipeline: this.host.pipeline,
        table: progress.table,
        reason: 'a transaction waiting for a synchronous standby was not visible to the read',
      });
      await new Promise((r) => setTimeout(r, 200));
    }
    this.forgetVisibleBefore(Number(BigInt(xmin!) & 0xffffffffn));
    c.rows = rows;
    await this.watermark(client, c.id, 'high');
    await finished;
  }

  /**
   * A table without a key: neither key ranges nor the dedup between watermarks work, so the whole table is read in
   * one transaction that holds a SHARE lock (writers wait; readers do not) and writes one `fence` watermark. No change
   * of the table commits between the read and that transaction's commit, so the rows read are exactly the table at
   * the fence's position in the stream: emitted there after a truncate, nothing is missing or doubled. Held in memory
   * until the stream reaches the fence.
   */
  private async runFenced(
    client: pg.Client,
    t: SourceTable,
    progress: TableProgress,
    schema: TableSchema,
    known: KnownTable,
  ) {
    let done!: (r: 'emitted' | 'redo') => void;
    const finished = new Promise<'emitted' | 'redo'>((resolve) => {
      done = resolve;
    });
    const c: Chunk = {
      id: this.nextChunkId++,
      progress,
      schema,
      known,
      keyCols: [],
      truncateFirst: true,
      rows: null,
      invisible: null,
      lowGeneration: 0,
      // Never opened before the fence: changes before it are in the rows read, nothing is left to the stream.
      changed: new Set(),
      open: false,
      redo: false,
      truncated: false,
      done,
      fenced: true,
    };
    this.chunk = c;
    await client.query('begin isolation level read committed');
    try {
      await client.query(`set local lock_timeout = '30s'`);
      await client.query(`lock table ${quoteTable(schema.table)} in share mode`);
      const rows: Row[] = [];
      // Read committed: the read's snapshot is taken after the lock, so it sees every change committed before.
      for await (const piece of readTable(client, t, schema, [], this.host.chunkRows)) {
        for (const r of piece.rows) rows.push(r);
      }
      c.rows = rows;
      await this.watermark(client, c.id, 'fence');
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    }
    await finished;
  }

  /** Transactions before `xmin` are visible to every later read: they can never make a chunk stale again. */
  private forgetVisibleBefore(xmin: number): void {
    for (const xid of this.changedBy.keys()) {
      // Circular xid order (32 bits): xid precedes xmin when xmin - xid is in (0, 2^31).
      const d = (xmin - xid) >>> 0;
      if (d !== 0 && d < 0x80000000) this.changedBy.delete(xid);
    }
  }

  private async watermark(client: pg.Client, chunk: number, mark: 'low' | 'high' | 'fence'): Promise<void> {
    const content = JSON.stringify({ slot: this.host.slot, run: this.run, chunk, mark });
    await client.query('select pg_logical_emit_message(true, $1, $2)', [WATERMARK_PREFIX, content]);
  }

  private async sourceTable(client: pg.Client, name: string): Promise<SourceTable | null> {
    const dot = name.indexOf('.');
    const row = (
      await client.query<{ oid: string; replident: string }>(
        `select c.oid::int::text as oid, c.relreplident::text as replident
           from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2`,
        [name.slice(0, dot), name.slice(dot + 1)],
      )
    ).rows[0];
    if (!row) return null;
    return {
      oid: Number(row.oid),
      table: { schema: name.slice(0, dot), name: name.slice(dot + 1) },
      hasPrimaryKey: false,
      replicaIdentity: row.replident,
      canSelect: true,
      isOwner: true,
    };
  }

  private async estimate(client: pg.Client, oid: number): Promise<number | null> {
    const r = await client.query<{ n: string }>('select reltuples::bigint::text as n from pg_class where oid = $1', [
      oid,
    ]);
    const n = Number(r.rows[0]?.n ?? -1);
    return n >= 0 ? n : null;
  }
}

/** Reads the incremental snapshot state from a checkpoint's `state` (absent in checkpoints of older versions). */
export function snapshotStateOf(state: Record<string, unknown> | undefined): SnapshotState | null {
  const s = state?.snapshot as SnapshotState | undefined;
  if (!s || !Array.isArray(s.tables) || !Array.isArray(s.pending)) return null;
  return s;
}
