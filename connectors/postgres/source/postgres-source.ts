/**
 * PostgreSQL change source: pgoutput logical replication with an optional initial snapshot.
 *
 * Positions: a checkpoint holds the commit END LSN of the last fully delivered transaction. Streaming resumes with
 * START_REPLICATION at that LSN, and transactions whose commit is at or before it are skipped (PostgreSQL 15/16 may
 * resend them after a server restart). The slot is told only what commit() was given.
 *
 * Snapshot: the slot is created with an exported snapshot, every published table is read in one REPEATABLE READ
 * transaction using it (keyset chunks by key; keyless tables through a cursor), then streaming starts at the slot's
 * consistent point. The exported snapshot cannot outlive its connection, so a snapshot is not resumable: it carries
 * no checkpoint until it is complete. If a previous run stopped mid-snapshot (no streaming checkpoint but the slot
 * exists), the slot is dropped and recreated and every table's rows are preceded by a snapshot `truncate` event, so
 * targets drop what the partial copy wrote.
 */
import type pg from 'pg';
import type { ChangeBatch } from '../../../src/core/change-batch.ts';
import type { ChangeEvent, Row, TableSchema } from '../../../src/core/change-event.ts';
import { type Checkpoint, formatLsn, parseLsn } from '../../../src/core/checkpoint.ts';
import type { ConnectorContext, PreflightProblem } from '../../../src/core/connector-context.ts';
import type { Source, SourceStatus } from '../../../src/core/source.ts';
import { ConnectionError, errorKind, SourceSetupError, TributaryError } from '../../../src/errors.ts';
import { TypeResolver } from '../types.ts';
import {
  checkServer,
  connect,
  connectFailure,
  ensurePublications,
  quoteIdent,
  type ReplicationNames,
  type SourceTable,
  tableSchemaFromCatalog,
  tableSchemaFromRelation,
  throwProblems,
} from './catalog.ts';
import {
  defaultReplicationName,
  type PostgresSourceConfig,
  type PostgresSourceConfigInput,
  postgresSourceConfig,
} from './config.ts';
import { type ControlMessage, isControl, lsnText, PgoutputDecoder, type RawRelation } from './pgoutput-decoder.ts';
import { ReplicationStream } from './replication-stream.ts';
import { readTable } from './snapshot-reader.ts';

export interface BatchOptions {
  max_events: number;
  max_bytes: number;
  max_wait_ms: number;
}

const DEFAULT_BATCH: BatchOptions = { max_events: 5000, max_bytes: 8 * 1024 * 1024, max_wait_ms: 100 };

/** Prefix of Tributary's own heartbeat messages (any pipeline's); they are consumed, never emitted. */
export const HEARTBEAT_PREFIX = 'tributary.heartbeat';

/** Approximate fixed cost of one event object graph, in bytes. */
const EVENT_OVERHEAD = 200;

/** Commit boundary in the internal queue. */
class CommitMark {
  constructor(
    readonly lsn: bigint,
    readonly timeMs: number,
    /** The last commit's end LSN at this mark (null before the first streamed commit). */
    readonly lastCommitLsn: string | null,
  ) {}
}

type Entry = ChangeEvent | CommitMark;

const MESSAGE_SCHEMA: TableSchema = {
  table: { schema: '', name: '' },
  columns: [],
  keyColumns: [],
  beforeImage: 'none',
};

export function replicationNames(config: PostgresSourceConfig, pipeline: string): ReplicationNames {
  const base = defaultReplicationName(pipeline);
  const publication = config.publication_name ?? base;
  return {
    slot: config.slot_name ?? base,
    publication,
    insertOnlyPublication: `${publication}_insert_only`.slice(0, 63),
  };
}

function databaseOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.slice(1)) || 'postgres';
  } catch {
    return '';
  }
}

interface SlotRow {
  confirmed_flush_lsn: string | null;
  wal_status: string | null;
  active_pid: number | null;
}

interface SnapshotPlan {
  /** Create the slot with an exported snapshot and copy the tables. */
  consistentPoint: bigint;
  /** Transaction holding the imported snapshot (null for initial_only, which uses its own). */
  client: pg.Client;
  /** Emit a truncate before each table (redoing an interrupted snapshot). */
  truncateFirst: boolean;
  /** initial_only: stop after the copy. */
  only: boolean;
}

export class PostgresSource implements Source {
  private readonly config: PostgresSourceConfig;
  private readonly batch: BatchOptions;
  private readonly names: ReplicationNames;
  private readonly db: string;
  private readonly resolver = new TypeResolver();
  private meta: pg.Client | null = null;
  private stream: ReplicationStream | null = null;
  private decoder: PgoutputDecoder;
  private publications: string[] = [];
  private snapshot: SnapshotPlan | null = null;
  private finished = false;

  /** Stream from here (START_REPLICATION position). */
  private startLsn = 0n;
  /** Skip transactions whose commit is at or before this LSN (already delivered). */
  private skipUpTo = 0n;
  /** The last LSN commit() was given: the only position ever reported to the server. */
  private durableLsn = 0n;
  private seq = 0;

  // Internal queue between the socket and batches(), bounded by read_ahead_* (the socket pauses above it).
  private queue: Entry[] = [];
  private sizes: number[] = [];
  private head = 0;
  /** Entries removed from the front of `queue` so far (absolute index = dropped + array index). */
  private dropped = 0;
  /** Absolute queue index of the current transaction's first entry. */
  private txFirst = 0;
  private queuedEvents = 0;
  private queuedBytes = 0;
  private peakQueuedEvents = 0;
  /** Highest LSN queued as a commit mark (for idle keepalive advancement). */
  private lastMarkLsn = 0n;
  private inTx = false;
  private skipTx = false;
  private txCommitTimeMs = 0;
  private lastCommitAt = Date.now();
  /** End LSN of the last streamed commit (Debezium's sequence[0]); null before the first one. */
  private lastCommitLsn: string | null = null;
  // Relation messages are resolved against the catalog while the raw stream waits.
  private blocked = false;
  private backlog: Buffer[] = [];
  /** Column names per relation OID as last seen (snapshot or Relation message), to tell newly added columns. */
  private readonly knownColumns = new Map<number, Set<string>>();
  private failure: unknown = null;
  private closed = false;
  private wake: (() => void) | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;

  constructor(
    config: PostgresSourceConfig | PostgresSourceConfigInput,
    private readonly ctx: ConnectorContext,
    options?: { batch: BatchOptions },
  ) {
    this.config = postgresSourceConfig.parse(config);
    this.batch = options?.batch ?? DEFAULT_BATCH;
    this.names = replicationNames(this.config, ctx.pipeline);
    this.db = databaseOf(this.config.url);
    this.decoder = new PgoutputDecoder(this.db);
  }

  get slotName(): string {
    return this.names.slot;
  }

  async open(from: Checkpoint | null): Promise<void> {
    if (from && from.position.kind !== 'postgres')
      throw new TributaryError(
        'operator',
        `a PostgreSQL source cannot resume from a ${from.position.kind} checkpoint`,
        {
          hint: 'The checkpoint store holds a checkpoint of another source type for this pipeline name; clear it or rename the pipeline.',
        },
      );
    try {
      await this.openInner(from);
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  private async openInner(from: Checkpoint | null): Promise<void> {
    this.seq = 0;
    this.meta = await connect(this.config);
    const meta = this.meta;
    throwProblems(await checkServer(meta, this.config, this.names));
    if (this.config.snapshot === 'initial_only') {
      if (from?.state?.snapshotComplete) {
        this.finished = true;
        return;
      }
      this.publications = await this.ensurePublications(meta);
      const client = await connect(this.config, { rawValues: true });
      await client.query('begin isolation level repeatable read read only');
      const lsn = (await client.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
      this.snapshot = { consistentPoint: parseLsn(lsn), client, truncateFirst: from !== null, only: true };
      return;
    }
    this.publications = await this.ensurePublications(meta);
    let slot = await this.slotRow();
    // A previous run's connection may still hold the slot for a moment after it stopped.
    for (let i = 0; i < 40 && slot?.active_pid != null; i++) {
      await new Promise((r) => setTimeout(r, 250));
      slot = await this.slotRow();
    }
    if (slot?.active_pid != null)
      throw new ConnectionError(
        `replication slot ${this.names.slot} is in use by server process ${slot.active_pid}`,
        'Another process streams from this slot (or a previous run has not disconnected yet); the pipeline retries. Make sure only one pipeline uses each slot_name.',
      );
    let hadSlot = slot !== undefined;
    if (slot?.wal_status === 'lost') {
      if (from?.phase === 'stream') return this.slotLost(from, 'its WAL was removed (wal_status lost)');
      // Nothing was streamed from it yet: a new slot (and snapshot) replaces it below.
      await this.dropSlot();
      slot = undefined;
      hadSlot = true;
    }

    if (from && from.phase === 'stream') {
      if (!slot) return this.slotLost(from, 'it no longer exists');
      const at = parseLsn(from.position.kind === 'postgres' ? from.position.lsn : '0/0');
      const confirmed = slot.confirmed_flush_lsn ? parseLsn(slot.confirmed_flush_lsn) : 0n;
      if (confirmed > at)
        throw new SourceSetupError(
          `replication slot ${this.names.slot} is at ${formatLsn(confirmed)}, past the checkpoint ${formatLsn(at)}: changes in between were acknowledged but are not in the checkpoint`,
          'The checkpoint store went back in time (restored or replaced?). Run tributary teardown and start over with a fresh snapshot, or restore the matching checkpoint.',
        );
      this.startLsn = at;
      this.skipUpTo = at;
      this.durableLsn = at;
      // Debezium's sequence[0] continues from the checkpoint, so replayed events are written identically.
      const last = from.position.kind === 'postgres' ? from.position.lastCommitLsn : undefined;
      this.lastCommitLsn = last === undefined ? formatLsn(at) : last;
      this.decoder.setLastCommitLsn(this.lastCommitLsn ?? undefined);
      this.stream = await ReplicationStream.open(this.config);
      return;
    }

    // No streaming checkpoint yet.
    if (this.config.snapshot === 'never') {
      this.stream = await ReplicationStream.open(this.config);
      if (!slot) {
        const created = await this.stream.createSlot(this.names.slot, false);
        this.startLsn = parseLsn(created.consistentPoint);
        this.log('slot_created', { slot: this.names.slot, consistent_point: created.consistentPoint });
      } else {
        this.startLsn = slot.confirmed_flush_lsn ? parseLsn(slot.confirmed_flush_lsn) : 0n;
      }
      this.skipUpTo = this.startLsn;
      return;
    }
    let truncateFirst = false;
    if (slot) {
      // Nothing was streamed from it (no stream checkpoint): a previous snapshot did not finish. Redo it.
      this.log('snapshot_restart', { slot: this.names.slot, reason: 'slot exists without a streaming checkpoint' });
      await this.dropSlot();
      truncateFirst = true;
    }
    if (from || hadSlot) truncateFirst = true;
    await this.beginSnapshot(truncateFirst);
  }

  private ensurePublications(meta: pg.Client): Promise<string[]> {
    return ensurePublications(meta, this.config, this.names, (event, fields) => this.log(event, fields));
  }

  private async beginSnapshot(truncateFirst: boolean): Promise<void> {
    this.stream = await ReplicationStream.open(this.config);
    const created = await this.stream.createSlot(this.names.slot, true);
    this.log('slot_created', { slot: this.names.slot, consistent_point: created.consistentPoint });
    const client = await connect(this.config, { rawValues: true });
    await client.query('begin isolation level repeatable read read only');
    await client.query(`set transaction snapshot '${created.snapshotName}'`);
    const cp = parseLsn(created.consistentPoint);
    this.startLsn = cp;
    this.skipUpTo = cp;
    // Like Debezium: no commit was streamed yet, so the first transaction's sequence starts with null.
    this.lastCommitLsn = null;
    this.decoder.setLastCommitLsn(undefined);
    this.snapshot = { consistentPoint: cp, client, truncateFirst, only: false };
  }

  private async slotLost(from: Checkpoint | null, why: string): Promise<void> {
    if (this.config.on_slot_lost !== 'resnapshot')
      throw new SourceSetupError(
        `replication slot ${this.names.slot} cannot resume the checkpoint ${from?.position.kind === 'postgres' ? from.position.lsn : ''}: ${why}`,
        'Changes since the checkpoint are gone from PostgreSQL and were not recreated silently. Set on_slot_lost: resnapshot to copy every table again (targets are truncated first), or run tributary teardown and start over.',
      );
    this.log('slot_lost_resnapshot', { slot: this.names.slot, why });
    if (await this.slotRow()) await this.dropSlot();
    await this.beginSnapshot(true);
  }

  private async slotRow(): Promise<SlotRow | undefined> {
    return (
      await this.meta!.query<SlotRow>(
        `select confirmed_flush_lsn::text as confirmed_flush_lsn, wal_status, active_pid
           from pg_replication_slots where slot_name = $1 and database = current_database()`,
        [this.names.slot],
      )
    ).rows[0];
  }

  private async dropSlot(): Promise<void> {
    await dropSlotWithRetry(this.meta!, this.names.slot);
  }

  log(event: string, fields: Record<string, unknown>): void {
    this.ctx.logger.info({ event, pipeline: this.ctx.pipeline, ...fields });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // batches

  async *batches(): AsyncIterable<ChangeBatch> {
    if (this.finished) return;
    if (this.snapshot) {
      yield* this.snapshotBatches(this.snapshot);
      this.snapshot = null;
      if (this.finished || this.closed) return;
    }
    await this.startStreaming();
    while (!this.closed) {
      const batch = await this.nextStreamBatch();
      if (batch) yield batch;
    }
    if (this.failure) throw this.failure;
  }

  private newBatch(events: ChangeEvent[], bytes: number, checkpoint: Checkpoint | null): ChangeBatch {
    return { seq: this.seq++, events, checkpoint, bytes };
  }

  private checkpointAt(lsn: bigint, timeMs: number | undefined, lastCommitLsn: string | null): Checkpoint {
    const cp: Checkpoint = {
      pipeline: this.ctx.pipeline,
      phase: 'stream',
      position: { kind: 'postgres', lsn: formatLsn(lsn), lastCommitLsn },
    };
    if (timeMs !== undefined) cp.sourceTimeMs = timeMs;
    return cp;
  }

  private async *snapshotBatches(plan: SnapshotPlan): AsyncGenerator<ChangeBatch> {
    const client = plan.client;
    const started = Date.now();
    const cpText = formatLsn(plan.consistentPoint);
    // The last batch is held back until the copy is complete, so it can carry the checkpoint and `last`.
    const st: { pending: ChangeBatch | null; events: ChangeEvent[]; bytes: number } = {
      pending: null,
      events: [],
      bytes: 0,
    };
    let rows = 0;
    const flush = (): ChangeBatch | null => {
      if (st.events.length === 0) return null;
      const previous = st.pending;
      st.pending = this.newBatch(st.events, st.bytes, null);
      st.events = [];
      st.bytes = 0;
      return previous;
    };
    try {
      const tables = await this.snapshotTables(client, plan.only);
      // The snapshot's transaction id for the read events (Debezium writes its snapshot transaction's): the first id
      // the snapshot does not see, read without assigning an id (that would write WAL and hold up a shutdown).
      const xid = (await client.query<{ x: string }>('select txid_snapshot_xmax(txid_current_snapshot())::text as x'))
        .rows[0]?.x;
      this.log('snapshot_started', {
        tables: tables.length,
        consistent_point: cpText,
        truncate_first: plan.truncateFirst,
      });
      for (const t of tables) {
        if (this.closed) return;
        const schema = await tableSchemaFromCatalog(client, this.resolver, t);
        this.knownColumns.set(t.oid, new Set(schema.columns.map((c) => c.name)));
        const source = (snapshot: 'true' | 'first' | 'first_in_data_collection'): ChangeEvent['source'] => ({
          connector: 'postgresql',
          db: this.db,
          position: { kind: 'postgres', lsn: cpText },
          txId: xid,
          commitTimeMs: started,
          snapshot,
        });
        if (plan.truncateFirst) {
          st.events.push({
            op: 'truncate',
            table: schema.table,
            schema,
            key: null,
            before: null,
            after: null,
            source: source('true'),
            truncate: { cascade: false, restartIdentity: false },
          });
          st.bytes += EVENT_OVERHEAD;
        }
        // One source block for every read event of the table (events are never mutated; `last` replaces it).
        const readSource = source('true');
        // Debezium: `first` only on the first table's first row, `first_in_data_collection` on other tables'.
        const firstSource = source(t === tables[0] ? 'first' : 'first_in_data_collection');
        let tableFirst = true;
        const table = schema.table;
        const keyCols = schema.keyColumns;
        const key0 = keyCols.length === 1 ? keyCols[0]! : null;
        for await (const { rows: chunk, chars } of readTable(
          client,
          t,
          schema,
          keyCols,
          this.config.snapshot_chunk_rows,
        )) {
          // Sizes are approximate: each row counts the average line length of its piece.
          const size = EVENT_OVERHEAD + Math.ceil(chars / chunk.length);
          for (let i = 0; i < chunk.length; i++) {
            const row = chunk[i]!;
            let key: Row | null = null;
            if (key0 !== null) {
              key = { [key0]: row[key0] ?? null };
            } else if (keyCols.length > 0) {
              key = {};
              for (const k of keyCols) key[k] = row[k] ?? null;
            }
            st.events.push({
              op: 'read',
              table,
              schema,
              key,
              before: null,
              after: row,
              source: tableFirst ? firstSource : readSource,
            });
            tableFirst = false;
            st.bytes += size;
            rows++;
            if (st.events.length >= this.batch.max_events || st.bytes >= this.batch.max_bytes) {
              const ready = flush();
              if (ready) yield ready;
            }
          }
          if (this.closed) return;
        }
        // Debezium's marker on a table's last row (the row is still held back, in this or the pending batch).
        const tableLast = st.events[st.events.length - 1] ?? st.pending?.events[st.pending.events.length - 1];
        if (!tableFirst && tableLast?.op === 'read')
          tableLast.source = { ...tableLast.source, snapshot: 'last_in_data_collection' };
      }
      await client.query('commit');
      const ready = flush();
      if (ready) yield ready;
      const last: ChangeBatch = st.pending ?? this.newBatch([], 0, null);
      const lastEvent = last.events[last.events.length - 1];
      if (lastEvent?.op === 'read') lastEvent.source = { ...lastEvent.source, snapshot: 'last' };
      if (plan.only) {
        last.checkpoint = {
          pipeline: this.ctx.pipeline,
          phase: 'snapshot',
          position: { kind: 'postgres', lsn: cpText },
          state: { snapshotComplete: true },
          sourceTimeMs: started,
        };
        this.finished = true;
      } else {
        last.checkpoint = this.checkpointAt(plan.consistentPoint, started, null);
        this.lastMarkLsn = plan.consistentPoint;
      }
      this.log('snapshot_done', { rows, ms: Date.now() - started });
      yield last;
    } catch (err) {
      if (this.closed) return;
      throw err instanceof TributaryError
        ? err
        : new ConnectionError(
            `initial snapshot failed: ${err instanceof Error ? err.message : String(err)}`,
            'The snapshot restarts from the beginning when the pipeline restarts (targets are truncated first).',
            err,
          );
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** The tables of our publications (what streaming will send), read inside the snapshot transaction. */
  private async snapshotTables(client: pg.Client, only: boolean): Promise<SourceTable[]> {
    const rows = (
      await client.query<{
        oid: string;
        schema: string;
        name: string;
        replident: string;
      }>(
        `select c.oid::int::text as oid, n.nspname as schema, c.relname as name, c.relreplident::text as replident
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where (n.nspname, c.relname) in (select schemaname, tablename from pg_publication_tables where pubname = any($1))
          order by 2, 3`,
        [only ? [this.names.publication, this.names.insertOnlyPublication] : this.publications],
      )
    ).rows;
    // Tables listed in the config are read in that order (as Debezium reads its table.include.list).
    const listed = this.config.tables ?? [];
    const rank = (r: { schema: string; name: string }) => {
      const i = listed.indexOf(`${r.schema}.${r.name}`);
      return i < 0 ? listed.length : i;
    };
    rows.sort((a, b) => rank(a) - rank(b));
    return rows.map((r) => ({
      oid: Number(r.oid),
      table: { schema: r.schema, name: r.name },
      hasPrimaryKey: false,
      replicaIdentity: r.replident,
      canSelect: true,
      isOwner: true,
    }));
  }

  private async startStreaming(): Promise<void> {
    const stream = this.stream;
    if (!stream || this.closed) return;
    // Never hand out a checkpoint before where this run starts (keepalives right after a resume can be behind it).
    if (this.lastMarkLsn < this.skipUpTo) this.lastMarkLsn = this.skipUpTo;
    stream.start(
      this.names.slot,
      this.startLsn,
      this.publications,
      {
        xlog: (data, start, hi, lo) => this.onXLog(data, start, hi, lo),
        keepalive: (walEnd, reply) => this.onKeepalive(walEnd, reply),
      },
      (err) => {
        if (err) this.fail(err);
        else this.notify();
      },
    );
    this.log('streaming_started', { slot: this.names.slot, from: formatLsn(this.startLsn) });
    this.statusTimer = setInterval(() => stream.sendStatus(this.durableLsn), this.config.status_interval_ms);
    this.statusTimer.unref();
    this.lastCommitAt = Date.now();
    const every = this.config.heartbeat_interval_ms;
    this.heartbeatTimer = setInterval(() => this.maybeHeartbeat(), Math.max(50, Math.floor(every / 2)));
    this.heartbeatTimer.unref();
  }

  private heartbeatRunning = false;
  private maybeHeartbeat(): void {
    if (this.closed || this.heartbeatRunning || !this.meta) return;
    if (Date.now() - this.lastCommitAt < this.config.heartbeat_interval_ms) return;
    if (this.inTx || this.blocked) return;
    this.heartbeatRunning = true;
    this.lastCommitAt = Date.now();
    this.meta
      .query('select pg_logical_emit_message(true, $1, $2)', [HEARTBEAT_PREFIX, this.names.slot])
      .catch((err: unknown) => {
        if (errorKind(err) !== 'retryable') {
          // Not allowed to write logical messages (privilege, read-only standby): idle advancement then relies on
          // server keepalives only.
          if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
          this.ctx.logger.warn({
            event: 'heartbeat_disabled',
            pipeline: this.ctx.pipeline,
            reason: err instanceof Error ? err.message : String(err),
          });
          return;
        }
        this.fail(connectFailure(this.config.url, err));
      })
      .finally(() => {
        this.heartbeatRunning = false;
      });
  }

  private fail(err: unknown): void {
    if (this.closed) return;
    if (!this.failure) this.failure = err;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    if (w) {
      this.wake = null;
      w();
    }
  }

  private waitForData(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private push(entry: Entry, size: number): void {
    this.queue.push(entry);
    this.sizes.push(size);
    if (size > 0) {
      this.queuedEvents++;
      this.queuedBytes += size;
      if (this.queuedEvents > this.peakQueuedEvents) this.peakQueuedEvents = this.queuedEvents;
      if (this.queuedEvents >= this.config.read_ahead_events || this.queuedBytes >= this.config.read_ahead_bytes)
        this.stream?.pause();
    }
    if (this.wake) this.notify();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // decoding (called synchronously from the socket)

  private onXLog(data: Buffer, start: number, hi: number, lo: number): void {
    if (this.blocked) {
      this.backlog.push(Buffer.from(data.subarray(start - 25)));
      return;
    }
    try {
      this.handleXLog(data, start, hi, lo);
    } catch (err) {
      this.fail(err);
    }
  }

  private handleXLog(data: Buffer, start: number, hi: number, lo: number): void {
    const decoded = this.decoder.decode(data, start, data.length, hi, lo);
    if (!isControl(decoded)) {
      if (this.skipTx) return;
      if (Array.isArray(decoded)) {
        for (const ev of decoded) this.push(ev, EVENT_OVERHEAD);
      } else {
        this.push(decoded, data.length - start + EVENT_OVERHEAD);
      }
      return;
    }
    this.control(decoded, hi, lo);
  }

  private control(msg: ControlMessage, hi: number, lo: number): void {
    switch (msg.type) {
      case 'begin':
        this.inTx = true;
        this.txFirst = this.dropped + this.queue.length;
        this.skipTx = msg.finalLsn < this.skipUpTo;
        this.txCommitTimeMs = msg.commitTimeMs;
        return;
      case 'commit':
        this.inTx = false;
        this.lastCommitAt = Date.now();
        if (this.skipTx) {
          this.skipTx = false;
          return;
        }
        this.stampCommit(msg.endLsn);
        this.pushMark(msg.endLsn, msg.commitTimeMs, true);
        return;
      case 'relation':
        this.onRelation(msg.relation);
        return;
      case 'message': {
        if (msg.prefix.startsWith(HEARTBEAT_PREFIX)) return;
        if (msg.transactional) {
          if (this.skipTx) return;
          const ev = this.decoder.messageEvent(
            msg.prefix,
            msg.content,
            true,
            lsnText(hi, lo),
            this.txCommitTimeMs,
            MESSAGE_SCHEMA,
          );
          this.push(ev, msg.content.length + EVENT_OVERHEAD);
        } else {
          if (msg.lsn <= this.skipUpTo) return;
          const ev = this.decoder.messageEvent(
            msg.prefix,
            msg.content,
            false,
            formatLsn(msg.lsn),
            Date.now(),
            MESSAGE_SCHEMA,
          );
          this.push(ev, msg.content.length + EVENT_OVERHEAD);
          this.pushMark(msg.lsn, Date.now(), false);
        }
        return;
      }
      case 'ignored':
        return;
    }
  }

  /** `commit`: a transaction's commit (Debezium's sequence[0] moves); otherwise an idle advance or a message. */
  private pushMark(lsn: bigint, timeMs: number, commit: boolean): void {
    if (lsn <= this.lastMarkLsn) return;
    this.lastMarkLsn = lsn;
    if (commit) {
      this.lastCommitLsn = formatLsn(lsn);
      this.decoder.setLastCommitLsn(this.lastCommitLsn);
    }
    this.push(new CommitMark(lsn, timeMs, this.lastCommitLsn), 0);
  }

  private onKeepalive(walEnd: bigint, reply: boolean): void {
    if (reply) this.stream?.sendStatus(this.durableLsn);
    // Idle advancement: with no transaction open and nothing queued, everything committed up to the server's WAL
    // end has been received. The mark becomes an empty batch that moves the slot once it is committed.
    if (!this.inTx && !this.blocked && this.queue.length === this.head && walEnd > this.lastMarkLsn) {
      this.pushMark(walEnd, Date.now(), false);
    }
  }

  private onRelation(raw: RawRelation): void {
    this.blocked = true;
    this.stream?.pause();
    tableSchemaFromRelation(this.meta!, this.resolver, raw).then(
      ({ schema, volatileDefaults, lostDefaults }) => {
        this.warnUnknownExistingValues(raw, volatileDefaults, lostDefaults);
        this.decoder.setRelation(raw.relid, schema);
        this.blocked = false;
        const pending = this.backlog;
        this.backlog = [];
        for (let i = 0; i < pending.length; i++) {
          const chunk = pending[i]!;
          this.onXLog(chunk, 25, chunk.readUInt32BE(1), chunk.readUInt32BE(5));
          if (this.blocked) {
            this.backlog = pending.slice(i + 1).concat(this.backlog);
            return;
          }
        }
        this.maybeResume();
      },
      (err: unknown) => this.fail(connectFailure(this.config.url, err)),
    );
  }

  /**
   * A column added with a volatile default (random(), clock_timestamp(), nextval(), an identity) made PostgreSQL
   * rewrite the table with a value per existing row and write none of them as changes: the target cannot get them
   * from the stream. The same holds for a constant default whose kept value (attmissingval) is gone because the table
   * was rewritten before this Relation message was resolved (the catalog is read as it is now). Known only for columns
   * new since the relation was last seen by this source (snapshot or Relation message).
   */
  private warnUnknownExistingValues(raw: RawRelation, volatileDefaults: string[], lostDefaults: string[]): void {
    const known = this.knownColumns.get(raw.relid);
    this.knownColumns.set(raw.relid, new Set(raw.columns.map((c) => c.name)));
    if (!known) return;
    const table = `${raw.schema}.${raw.name}`;
    for (const column of volatileDefaults) {
      if (known.has(column)) continue;
      this.ctx.logger.warn({
        event: 'source_column_added_with_volatile_default',
        pipeline: this.ctx.pipeline,
        table,
        column,
        hint: `Column ${column} was added to ${table} with a volatile default (or as an identity): PostgreSQL gave every existing row its own value without logging it, so those rows have NULL in ${column} on the target. Re-snapshot the table, or fill the column on the target from the source.`,
      });
    }
    for (const column of lostDefaults) {
      if (known.has(column)) continue;
      this.ctx.logger.warn({
        event: 'source_column_added_existing_value_unknown',
        pipeline: this.ctx.pipeline,
        table,
        column,
        hint: `Column ${column} was added to ${table} and has a default, but the value the existing rows read is no longer in the catalog (the table was rewritten since, e.g. by another ADD COLUMN with a volatile default, VACUUM FULL or ALTER TYPE; or the default was set after the column was added, when NULL is right). The target added ${column} with NULL in those rows: if the source rows are not NULL there, re-snapshot the table or fill the column on the target from the source.`,
      });
    }
  }

  private maybeResume(): void {
    if (this.blocked || !this.stream?.isPaused) return;
    if (this.queuedEvents <= this.config.read_ahead_events / 2 && this.queuedBytes <= this.config.read_ahead_bytes / 2)
      this.stream.resume();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // batching

  private compact(): void {
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.dropped += this.head;
      this.head = 0;
    } else if (this.head === this.queue.length && this.head > 0) {
      this.queue.length = 0;
      this.sizes.length = 0;
      this.dropped += this.head;
      this.head = 0;
    }
  }

  /**
   * Sets `commitLsn` on the events of the transaction that just committed when all of them are still buffered
   * (the usual case), so every event of a transaction has it or none has (a transaction already partly handed out).
   */
  private stampCommit(endLsn: bigint): void {
    const start = this.txFirst - this.dropped;
    if (start < this.head) return;
    const text = formatLsn(endLsn);
    for (let i = start; i < this.queue.length; i++) {
      const entry = this.queue[i]!;
      if (!(entry instanceof CommitMark) && entry.source.position.kind === 'postgres')
        entry.source.position.commitLsn = text;
    }
  }

  /**
   * One batch: transactions up to max_events/max_bytes (lingering up to max_wait_ms for more), cut after the last
   * complete transaction when possible; a transaction larger than a batch is split and only its last part carries
   * the checkpoint. Returns null when nothing arrived (closed or failed).
   */
  private async nextStreamBatch(): Promise<ChangeBatch | null> {
    while (this.queue.length === this.head) {
      if (this.failure) throw this.failure;
      if (this.closed) return null;
      this.maybeResume();
      await this.waitForData(1000);
    }
    const { max_events, max_bytes, max_wait_ms } = this.batch;
    const deadline = Date.now() + max_wait_ms;
    const events: ChangeEvent[] = [];
    let bytes = 0;
    let mark: CommitMark | null = null;
    let eventsAtMark = 0;
    let bytesAtMark = 0;
    let headAtMark = 0;
    let full = false;
    for (;;) {
      while (this.head < this.queue.length) {
        const entry = this.queue[this.head]!;
        if (entry instanceof CommitMark) {
          this.head++;
          mark = entry;
          eventsAtMark = events.length;
          bytesAtMark = bytes;
          headAtMark = this.head;
          if (events.length >= max_events || bytes >= max_bytes) {
            full = true;
            break;
          }
          continue;
        }
        const size = this.sizes[this.head]!;
        if (events.length >= max_events || (events.length > 0 && bytes + size > max_bytes)) {
          full = true;
          break;
        }
        this.head++;
        events.push(entry);
        bytes += size;
      }
      if (full || this.failure || this.closed) break;
      const left = deadline - Date.now();
      if (left <= 0) break;
      this.maybeResume();
      await this.waitForData(left);
    }
    let checkpoint: Checkpoint | null = null;
    let taken = events;
    let takenBytes = bytes;
    if (mark) {
      checkpoint = this.checkpointAt(mark.lsn, mark.timeMs, mark.lastCommitLsn);
      if (eventsAtMark < events.length) {
        // Leave the unfinished transaction for the next batch.
        taken = events.slice(0, eventsAtMark);
        takenBytes = bytesAtMark;
        this.head = headAtMark;
      }
    }
    this.queuedEvents -= taken.length;
    this.queuedBytes -= takenBytes;
    this.compact();
    this.maybeResume();
    if (taken.length === 0 && !checkpoint) return null;
    return this.newBatch(taken, takenBytes, checkpoint);
  }

  // ---------------------------------------------------------------------------------------------------------------

  async commit(checkpoint: Checkpoint): Promise<void> {
    if (checkpoint.position.kind !== 'postgres')
      throw new TributaryError('fatal', `a PostgreSQL source got a ${checkpoint.position.kind} checkpoint`);
    if (checkpoint.phase !== 'stream') return;
    const lsn = parseLsn(checkpoint.position.lsn);
    if (lsn <= this.durableLsn) return;
    this.durableLsn = lsn;
    this.stream?.sendStatus(lsn);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.statusTimer) clearInterval(this.statusTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.notify();
    if (this.stream && this.durableLsn > 0n) this.stream.sendStatus(this.durableLsn);
    await this.stream?.close();
    this.stream = null;
    await this.snapshot?.client.end().catch(() => undefined);
    await this.meta?.end().catch(() => undefined);
    this.meta = null;
  }

  async status(): Promise<SourceStatus> {
    const own = this.meta;
    const client = own ?? (await connect(this.config));
    try {
      const row = (
        await client.query<{
          retained: string | null;
          confirmed_flush_lsn: string | null;
          restart_lsn: string | null;
          active: boolean;
          wal_status: string | null;
        }>(
          `select (pg_current_wal_lsn() - confirmed_flush_lsn)::text as retained, confirmed_flush_lsn::text,
                  restart_lsn::text, active, wal_status
             from pg_replication_slots where slot_name = $1`,
          [this.names.slot],
        )
      ).rows[0];
      return {
        retainedBytes: row?.retained != null ? Number(row.retained) : undefined,
        details: {
          slot: this.names.slot,
          publications: this.publications,
          slotExists: row !== undefined,
          confirmedFlushLsn: row?.confirmed_flush_lsn ?? null,
          restartLsn: row?.restart_lsn ?? null,
          active: row?.active ?? false,
          walStatus: row?.wal_status ?? null,
          durableLsn: formatLsn(this.durableLsn),
          phase: this.snapshot ? 'snapshot' : 'stream',
          bufferedEvents: this.queuedEvents,
          bufferedBytes: this.queuedBytes,
          peakBufferedEvents: this.peakQueuedEvents,
          paused: this.stream?.isPaused ?? false,
        },
      };
    } finally {
      if (!own) await client.end().catch(() => undefined);
    }
  }
}

async function dropSlotWithRetry(client: pg.Client, slot: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await client.query('select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1', [
        slot,
      ]);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '55006' || attempt >= 20) {
        throw new ConnectionError(
          `cannot drop replication slot ${slot}: ${err instanceof Error ? err.message : String(err)}`,
          'Another connection still uses the slot (a previous run may not have closed yet); the pipeline retries.',
          err,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Preflight for `tributary validate`: every problem with its fix; an unreachable server is one problem. */
export async function preflightPostgresSource(
  config: PostgresSourceConfig | PostgresSourceConfigInput,
  ctx: ConnectorContext,
): Promise<PreflightProblem[]> {
  const cfg = postgresSourceConfig.parse(config);
  let client: pg.Client;
  try {
    client = await connect(cfg);
  } catch (err) {
    const e = err instanceof TributaryError ? err : connectFailure(cfg.url, err);
    return [{ message: e.message, hint: e.hint ?? '' }];
  }
  try {
    return await checkServer(client, cfg, replicationNames(cfg, ctx.pipeline));
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Drops the slot and the publications (for `tributary teardown`). */
export async function teardownPostgresSource(
  config: PostgresSourceConfig | PostgresSourceConfigInput,
  ctx: ConnectorContext,
): Promise<void> {
  const cfg = postgresSourceConfig.parse(config);
  const names = replicationNames(cfg, ctx.pipeline);
  const client = await connect(cfg);
  try {
    await dropSlotWithRetry(client, names.slot);
    await client.query(`drop publication if exists ${quoteIdent(names.publication)}`);
    await client.query(`drop publication if exists ${quoteIdent(names.insertOnlyPublication)}`);
    ctx.logger.info({
      event: 'source_teardown',
      pipeline: ctx.pipeline,
      slot: names.slot,
      publication: names.publication,
    });
  } finally {
    await client.end().catch(() => undefined);
  }
}
