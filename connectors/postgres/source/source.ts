/**
 * PostgreSQL change source: pgoutput logical replication with an optional initial snapshot.
 *
 * Positions: a checkpoint holds the commit END LSN of the last fully delivered transaction. Streaming resumes with
 * START_REPLICATION at that LSN, and transactions whose commit is at or before it are skipped (PostgreSQL 15/16 may
 * resend them after a server restart). The slot is told only what commit() was given.
 *
 * Snapshot: the slot is created with an exported snapshot, and the published tables are read on several
 * connections that import it (REPEATABLE READ; key-range chunks of several tables and of one table at once; keyless
 * tables in one COPY), then streaming starts at the slot's consistent point. Each chunk read ends in a checkpoint at
 * the consistent point with per-table progress; the exported snapshot cannot outlive its connection, so a restart
 * streams from the consistent point and copies what the checkpoint lacks by incremental snapshot. If a previous run
 * stopped before its first checkpoint (the slot exists without one), the slot is dropped and recreated. Every
 * table's snapshot rows are preceded by a snapshot `truncate` event, so targets drop what a partial copy or an
 * earlier run (before a teardown) wrote.
 */
import type pg from 'pg';
import { type BatchOptions, DEFAULT_BATCH_OPTIONS } from '../../../src/config/batch.ts';
import type { ChangeBatch } from '../../../src/core/change-batch.ts';
import type { ChangeEvent, Row, TableSchema } from '../../../src/core/change-event.ts';
import { type Checkpoint, formatLsn, parseLsn } from '../../../src/core/checkpoint.ts';
import type { ConnectorContext, PreflightProblem } from '../../../src/core/connector-context.ts';
import type { Source, SourceStatus } from '../../../src/core/source.ts';
import { ConnectionError, SourceSetupError, TributaryError } from '../../../src/errors.ts';
import { CommitBatcher } from '../../../src/pipeline/commit-batcher.ts';
import { classifyPostgresError, postgresErrorKind } from '../errors.ts';
import { quoteTable } from '../identifiers.ts';
import { TypeResolver } from '../type-names.ts';
import {
  checkServer,
  connect,
  connectFailure,
  ensurePublications,
  type ReplicationNames,
  type SourceTable,
  tableSchemaFromCatalog,
  tableSchemaFromRelation,
  throwProblems,
} from './catalog.ts';
import { type PostgresSourceConfig, type PostgresSourceConfigInput, postgresSourceConfig } from './config.ts';
import { CopyTextBlock, rowsAtMost } from './copy-text-block.ts';
import { IncrementalSnapshot, snapshotStateOf, type TableProgress } from './incremental-snapshot.ts';
import {
  type DecodedStream,
  EVENT_OVERHEAD,
  HEARTBEAT_PREFIX,
  lsnText,
  PgoutputDecoder,
  type RawRelation,
} from './pgoutput-decoder.ts';
import { replicationNames } from './replication-names.ts';
import { ReplicationStream } from './replication-stream.ts';
import {
  isPartitionedFileNode,
  type KnownTable,
  knownTableFromCatalog,
  type ResolvedRelation,
  resolveRelation,
  SchemaHistory,
} from './schema-history.ts';
import { chunkEnd, readKeyRangeMessages, readTableMessages } from './snapshot-reader.ts';
import { dropSlotWithRetry } from './teardown.ts';
import {
  announceRewrite,
  type RewriteNote,
  type RewriteOutcome,
  rewriteOutcome,
  TABLE_REWRITTEN_PREFIX,
  tablesWithNewFileNode,
} from './unannounced-rewrite.ts';

/** Prefix of Tributary's own heartbeat messages (any pipeline's); they are consumed, never emitted. */
export { HEARTBEAT_PREFIX } from './pgoutput-decoder.ts';

/**
 * Prefix of the message that places a replicated table's DROP in the stream: pgoutput sends nothing for a DROP TABLE,
 * so the source writes `{slot, relid, table}` when it notices the table is gone; every change of the table precedes
 * it in the WAL. Consumed by the source that wrote it (the target table is emptied there), never emitted.
 */
export const TABLE_DROPPED_PREFIX = 'tributary.table.dropped';

/**
 * Prefix of the message event that describes a table's schema change, derived from its Relation message (PostgreSQL
 * logical decoding carries no DDL text): JSON with the table, the columns before and after, and what changed by
 * column identity. It precedes the first change under the new shape, at that change's position. Database targets
 * skip it; the jsonl and Kafka outputs write it as a schema-change record (docs/event-format.md).
 */
export const SCHEMA_CHANGE_PREFIX = 'tributary.schema_change';

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

/** One table of the initial snapshot: its chunks in key order as planned so far. */
interface TableCopy {
  t: SourceTable;
  schema: TableSchema;
  /** `schema.name` */
  name: string;
  keyCols: string[];
  estimated: number | null;
  /**
   * Rows read (null while the chunk is read), the chunk's planned last key (null: up to the table's end), and whether
   * no row follows the chunk (the table's last).
   */
  chunks: { rows: number | null; end: Row | null; last: boolean }[];
  /** The table's last chunk is planned. */
  planned: boolean;
  /** The chunk whose rows go into the batcher now: a table's chunks go out whole, in key order. */
  turn: number;
  started: boolean;
  done: boolean;
  firstGiven: boolean;
  /** The table holds rows in the snapshot (Debezium's first and last markers go on the first and last such table). */
  hasRows: boolean;
  source(snapshot: 'true' | 'first' | 'first_in_data_collection'): ChangeEvent['source'];
  readSource: ChangeEvent['source'];
}

interface SnapshotPlan {
  /** Create the slot with an exported snapshot and copy the tables. */
  consistentPoint: bigint;
  /** Transaction holding the imported snapshot (for initial_only, a snapshot of its own). */
  client: pg.Client;
  /** The exported snapshot the other connections of a parallel snapshot import. */
  snapshotName: string;
  /** Emit a truncate before each table (redoing an interrupted snapshot). */
  truncateFirst: boolean;
  /** initial_only: stop after the copy. */
  only: boolean;
}

export class PostgresSource implements Source {
  readonly classifyError = classifyPostgresError;
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
  /** Copies of tables' existing rows while streaming, and which tables were copied (kept in the checkpoint). */
  private incremental: IncrementalSnapshot | null = null;
  private incrementalClient: pg.Client | null = null;
  private incrementalRunning = false;

  /** Stream from here (START_REPLICATION position). */
  private startLsn = 0n;
  /** Skip transactions whose commit is at or before this LSN (already delivered). */
  private skipUpTo = 0n;
  /** The last LSN commit() was given: the only position ever reported to the server. */
  private durableLsn = 0n;
  private seq = 0;

  /** Highest LSN handed to the batcher as a commit (for idle keepalive advancement). */
  private lastMarkLsn = 0n;
  private lastCommitAt = Date.now();
  /** Streaming changes and commits go here; batches come out of it. */
  private batcher: CommitBatcher | null = null;
  // Relation messages are resolved against the catalog while the raw stream waits.
  private blocked = false;
  private backlog: { data: Buffer; hi: number; lo: number }[] = [];
  /** Each table's columns by attribute number at the stream position (saved with every checkpoint). */
  private history = new SchemaHistory();
  private closed = false;
  /** A clean stop asked to hand out what is complete and end. */
  private draining = false;
  private statusTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private tableCheckTimer: NodeJS.Timeout | null = null;
  private tableCheckRunning = false;
  /** Dropped tables announced in the WAL (by relid), with the shape their truncate carries. */
  private readonly droppedTables = new Map<number, TableSchema>();
  /** Rewrites announced in the WAL by this run (relid to file node): each is written once. */
  private readonly announcedRewrites = new Map<number, string>();
  /** The source may not write logical messages (privilege, read-only server): rewrites wait for a Relation message. */
  private rewriteCheckOff = false;
  /** Schema-change descriptions waiting for the first change under their shape (the TableSchema of the Relation). */
  private readonly schemaChanges = new WeakMap<TableSchema, string>();

  constructor(
    config: PostgresSourceConfig | PostgresSourceConfigInput,
    private readonly ctx: ConnectorContext,
    options?: { batch: BatchOptions },
  ) {
    this.config = postgresSourceConfig.parse(config);
    this.batch = options?.batch ?? DEFAULT_BATCH_OPTIONS;
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
    const problems = await checkServer(meta, this.config, this.names);
    if (from?.phase === 'stream') await this.explainRenamedTables(meta, SchemaHistory.fromState(from.state), problems);
    throwProblems(problems);
    if (this.config.snapshot === 'initial_only') {
      if (from?.state?.snapshotComplete) {
        this.finished = true;
        return;
      }
      this.publications = await this.ensurePublications(meta);
      const client = await connect(this.config, { rawValues: true });
      await client.query('begin isolation level repeatable read read only');
      const lsn = (await client.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
      const exported = (await client.query<{ s: string }>('select pg_export_snapshot() as s')).rows[0]!.s;
      this.snapshot = {
        consistentPoint: parseLsn(lsn),
        client,
        snapshotName: exported,
        truncateFirst: true,
        only: true,
      };
      return;
    }
    const publishedBefore = await this.publishedTables(meta);
    this.publications = await this.ensurePublications(meta);
    this.incremental = await this.planIncremental(meta, from, publishedBefore);
    let slot = await this.slotRow();
    // A previous run's connection may still hold the slot for a moment after it stopped.
    for (let i = 0; i < 40 && slot?.active_pid != null; i++) {
      await new Promise((r) => setTimeout(r, 250));
      slot = await this.slotRow();
    }
    if (slot?.active_pid != null) {
      // Where the other reader connects from, when the server tells (pg_read_all_stats, or the same user).
      const holder = (
        await this.meta!.query<{ addr: string | null; app: string | null }>(
          'select host(client_addr) as addr, application_name as app from pg_stat_activity where pid = $1',
          [slot.active_pid],
        )
      ).rows[0];
      const from = holder?.addr ? ` from ${holder.addr}` : holder ? ' over a local socket' : '';
      throw new ConnectionError(
        `replication slot ${this.names.slot} is held by another instance (server process ${slot.active_pid}${from}${holder?.app ? `, application ${holder.app}` : ''})`,
        'Another instance of this pipeline (or another program) streams from this slot; this one retries until the slot is free. Stop the other instance, or give each pipeline its own slot_name.',
      );
    }
    if (slot?.wal_status === 'lost') {
      if (from?.phase === 'stream') return this.slotLost(from, 'its WAL was removed (wal_status lost)');
      // Nothing was streamed from it yet: a new slot (and snapshot) replaces it below.
      await this.dropSlot();
      slot = undefined;
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
      this.history = SchemaHistory.fromState(from.state);
      await this.announceDroppedTables(meta);
      await this.announceRewrites(meta);
      // Debezium's sequence[0] continues from the checkpoint, so replayed events are written identically.
      const last = from.position.kind === 'postgres' ? from.position.lastCommitLsn : undefined;
      this.decoder.setLastCommitLsn(last === undefined ? formatLsn(at) : (last ?? undefined));
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
    if (slot) {
      // Nothing was streamed from it (no stream checkpoint): a previous snapshot did not finish. Redo it.
      this.log('snapshot_restart', { slot: this.names.slot, reason: 'slot exists without a streaming checkpoint' });
      await this.dropSlot();
    }
    // Always: the target may hold rows of an earlier run (after teardown) that the source no longer has.
    await this.beginSnapshot(true);
  }

  /**
   * A configured table that no longer exists under its name but is in the schema history was renamed or dropped at
   * the source after the checkpoint: say so, and how to go on (the change itself is then followed from the stream). A table
   * dropped and created again under its name is followed (announceDroppedTables, planIncremental).
   */
  private async explainRenamedTables(meta: pg.Client, history: SchemaHistory, problems: PreflightProblem[]) {
    const known = history.toState();
    if (known.length === 0) return;
    const now = await meta.query<{ relid: number; schema: string; name: string }>(
      `select c.oid::int as relid, n.nspname as schema, c.relname as name
         from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = any($1::oid[])`,
      [known.map((t) => t.relid)],
    );
    const current = new Map(now.rows.map((r) => [r.relid, `${r.schema}.${r.name}`]));
    for (const t of known) {
      const old = `${t.schema}.${t.name}`;
      const renamed = current.get(t.relid);
      if (renamed === old) continue;
      const problem = problems.find((p) => p.message.startsWith(`table ${old} does not exist`));
      if (!problem) continue;
      if (!renamed) {
        problem.message = `table ${old} was dropped at the source after the last checkpoint`;
        problem.hint = `Remove ${old} from source.tables, then restart the pipeline: the drop is followed (the target table is emptied where the stream reaches it).`;
        continue;
      }
      problem.message = `table ${old} was renamed to ${renamed} at the source after the last checkpoint`;
      problem.hint = `Replace ${old} by ${renamed} in source.tables, then restart the pipeline: the rename is followed (the target table is renamed too).`;
    }
  }

  /** `schema.name` of every table our publications publish now. */
  private async publishedTables(meta: pg.Client): Promise<string[]> {
    const rows = await meta.query<{ t: string }>(
      `select distinct schemaname || '.' || tablename as t from pg_publication_tables where pubname = any($1) order by 1`,
      [[this.names.publication, this.names.insertOnlyPublication]],
    );
    return rows.rows.map((r) => r.t);
  }

  /**
   * Which tables' existing rows are still to be copied while streaming: those of an unfinished incremental snapshot
   * (from the checkpoint) and tables published now that the checkpoint does not count as copied (added to \`tables\`
   * since). A checkpoint of an older version has no such list: then the tables published before this start count.
   */
  private async planIncremental(
    meta: pg.Client,
    from: Checkpoint | null,
    publishedBefore: string[],
  ): Promise<IncrementalSnapshot> {
    const published = await this.publishedTables(meta);
    const prior = from?.phase === 'stream' ? snapshotStateOf(from.state) : null;
    const copied = prior ? prior.tables : from?.phase === 'stream' ? publishedBefore : published;
    const pending = prior ? prior.pending.filter((p) => published.includes(p.table)) : [];
    const incremental = new IncrementalSnapshot(
      {
        pipeline: this.ctx.pipeline,
        slot: this.names.slot,
        db: this.db,
        logger: this.ctx.logger,
        resolver: this.resolver,
        chunkRows: this.config.snapshot_chunk_rows,
        progress: this.ctx.snapshotProgress,
        push: (event, bytes) => this.batcher!.push(event, bytes),
        requested: () => {
          if (this.incremental) this.startIncremental(this.incremental);
        },
        copied: (known, schema) => {
          // A table the stream has described keeps the history's shape, which is exact at this position.
          if (!this.history.get(known.relid))
            this.history.set({ ...known, keyColumns: schema.keyColumns, beforeImage: schema.beforeImage });
        },
      },
      { tables: copied.filter((t) => published.includes(t)), pending },
    );
    if (from?.phase === 'stream' && this.config.snapshot !== 'never') {
      const { unknown, renamedFrom } = await this.tablesByHistory(meta, from, published);
      for (const table of published) {
        // Renamed while stopped from a table already copied: the same rows, renamed at the target where the stream
        // tells the rename (its next Relation message, or the rewrite check's message).
        const was = renamedFrom.get(table);
        if (was !== undefined && copied.includes(was) && !copied.includes(table)) continue;
        const part = pending.find((p) => p.table === table);
        if (part) {
          // Part-way copied, then dropped and created again while stopped: the copy starts over (emptying first).
          if (!unknown.has(table) || part.lastKey === null) continue;
          this.log('incremental_snapshot_requested', { table, reason: 'table created again at the source' });
          incremental.request(table);
          continue;
        }
        // Copied before, but gone from the publication since, or now another table than any the checkpoint knows:
        // dropped and created again under its name (while streaming, its copy was requested after that checkpoint).
        const back =
          prior !== null && copied.includes(table) && (!publishedBefore.includes(table) || unknown.has(table));
        if (copied.includes(table) && !back) continue;
        this.log('incremental_snapshot_requested', {
          table,
          reason: back
            ? 'table created again at the source'
            : prior?.initial
              ? 'initial snapshot interrupted before a chunk was durable'
              : 'table added to the pipeline',
        });
        incremental.request(table);
      }
    }
    return incremental;
  }

  /**
   * Published tables (`schema.name`) as the checkpoint's schema history knows them. Every table the pipeline copied
   * or streamed is in it: `unknown`, those whose relation it does not know, were created (or dropped and created
   * again) after that checkpoint; `renamedFrom`, those it knows under another name, were renamed since, with that
   * name. Both empty for a checkpoint that keeps no history.
   */
  private async tablesByHistory(
    meta: pg.Client,
    from: Checkpoint,
    published: string[],
  ): Promise<{ unknown: Set<string>; renamedFrom: Map<string, string> }> {
    const unknown = new Set<string>();
    const renamedFrom = new Map<string, string>();
    if (!Array.isArray(from.state?.schemaHistory) || published.length === 0) return { unknown, renamedFrom };
    const history = SchemaHistory.fromState(from.state);
    const rows = await meta.query<{ relid: number; t: string }>(
      `select c.oid::int as relid, n.nspname || '.' || c.relname as t
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where (n.nspname || '.' || c.relname) = any($1)`,
      [published],
    );
    for (const r of rows.rows) {
      const known = history.get(r.relid);
      if (!known) unknown.add(r.t);
      else if (`${known.schema}.${known.name}` !== r.t) renamedFrom.set(r.t, `${known.schema}.${known.name}`);
    }
    return { unknown, renamedFrom };
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
    this.decoder.setLastCommitLsn(undefined);
    this.snapshot = { consistentPoint: cp, client, snapshotName: created.snapshotName!, truncateFirst, only: false };
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
      if (this.finished || this.closed || this.draining) return;
    }
    const batcher = this.startStreaming();
    if (!batcher) return;
    if (this.incremental?.hasWork) this.startIncremental(this.incremental);
    yield* batcher.batches();
  }

  /** The schema-change event (`described`: its JSON) of a table, at the position of the change that brings it. */
  private pushSchemaChange(schema: TableSchema, source: ChangeEvent['source'], described: string): void {
    this.batcher!.push(
      {
        op: 'message',
        table: schema.table,
        schema,
        key: null,
        before: null,
        after: null,
        source: { ...source },
        message: {
          prefix: SCHEMA_CHANGE_PREFIX,
          contentBase64: Buffer.from(described, 'utf8').toString('base64'),
          transactional: true,
        },
      },
      EVENT_OVERHEAD + described.length,
    );
  }

  /** `lastCommitLsn`: the last transaction commit at or before `lsn` (what the next change's sequence starts with). */
  private checkpointAt(
    lsn: bigint,
    timeMs: number | undefined,
    lastCommitLsn: string | null = this.decoder.previousCommitLsn,
  ): Checkpoint {
    const cp: Checkpoint = {
      pipeline: this.ctx.pipeline,
      phase: 'stream',
      position: { kind: 'postgres', lsn: formatLsn(lsn), lastCommitLsn },
      state: { schemaHistory: this.history.toState() },
    };
    if (this.incremental) cp.state = { ...cp.state, snapshot: this.incremental.snapshotState() };
    if (timeMs !== undefined) cp.sourceTimeMs = timeMs;
    return cp;
  }

  /**
   * The initial snapshot: the published tables are read on up to `snapshot_parallelism` connections, each in a
   * REPEATABLE READ transaction that imports the one exported snapshot, so every row is read at the slot's
   * consistent point. Keyed tables are planned into key-range chunks of `snapshot_chunk_rows` (an index-only scan
   * finds each chunk's last key on a planner connection); several tables and several chunks of one table are read
   * at once. Rows go into the shared commit batcher; each chunk read to its end is a commit whose checkpoint (at the
   * consistent point) records per table the chunks done in key order with none missing before them: a restart
   * resumes those tables after that key by the incremental snapshot (see docs/snapshots.md), which is correct under
   * writes since the snapshot although the exported snapshot is gone.
   */
  private async *snapshotBatches(plan: SnapshotPlan): AsyncGenerator<ChangeBatch> {
    const started = Date.now();
    const cpText = formatLsn(plan.consistentPoint);
    const chunkRows = this.config.snapshot_chunk_rows;
    const maxBlockRows = this.batch.max_events;
    const clients: pg.Client[] = [plan.client];
    let stopped = false;
    const stopping = () => stopped || this.closed || this.draining;
    let paused = false;
    // Readers waiting for room in the batcher (each its own waiter: all go on at once).
    let waiting: (() => void)[] = [];
    const gate = () =>
      new Promise<void>((resolve) => {
        waiting.push(resolve);
      });
    const openGate = () => {
      const w = waiting;
      waiting = [];
      for (const resolve of w) resolve();
    };
    const batcher = new CommitBatcher({
      batch: this.batch,
      maxQueuedEvents: this.config.read_ahead_events,
      maxQueuedBytes: this.config.read_ahead_bytes,
      heartbeatIntervalMs: this.config.heartbeat_interval_ms,
      flow: {
        pause: () => {
          paused = true;
        },
        resume: () => {
          paused = false;
          openGate();
        },
      },
      firstSeq: this.seq,
    });
    this.batcher = batcher;

    const copies: TableCopy[] = [];
    let plannerDone = false;
    let rows = 0;

    const checkpoint = (): Checkpoint => {
      const tables: string[] = [];
      const pending: TableProgress[] = [];
      for (const c of copies) {
        if (c.done) {
          tables.push(c.name);
          continue;
        }
        let n = 0;
        let done = 0;
        while (n < c.chunks.length && c.chunks[n]!.rows !== null) done += c.chunks[n++]!.rows!;
        const end = n > 0 ? c.chunks[n - 1]!.end : null;
        if (end) pending.push({ table: c.name, lastKey: c.keyCols.map((k) => String(end[k])), rows: done, chunks: n });
      }
      return {
        pipeline: this.ctx.pipeline,
        phase: 'stream',
        position: { kind: 'postgres', lsn: cpText, lastCommitLsn: null },
        state: { schemaHistory: this.history.toState(), snapshot: { tables, pending, initial: true } },
        sourceTimeMs: started,
      };
    };

    const startTable = (c: TableCopy) => {
      if (c.started) return;
      c.started = true;
      if (plan.truncateFirst)
        batcher.push(
          {
            op: 'truncate',
            table: c.schema.table,
            schema: c.schema,
            key: null,
            before: null,
            after: null,
            source: c.source('true'),
            truncate: { cascade: false, restartIdentity: false },
          },
          EVENT_OVERHEAD,
        );
      this.ctx.snapshotProgress?.start(c.name, c.estimated);
      this.log('snapshot_table_started', { table: c.name, estimated_rows: c.estimated });
    };

    const chunkDone = (c: TableCopy) => {
      if (!c.done && c.planned && c.chunks.every((k) => k.rows !== null)) {
        c.done = true;
        this.ctx.snapshotProgress?.finish(c.name);
        this.log('snapshot_table_done', {
          table: c.name,
          rows: c.chunks.reduce((sum, k) => sum + (k.rows ?? 0), 0),
          chunks: c.chunks.length,
        });
      }
      if (!plan.only) batcher.commit(checkpoint());
    };

    const lastWithRows = () => [...copies].reverse().find((o) => o.hasRows);
    // The last table's last chunk, read and waiting for every other chunk to be counted.
    let finalChunk: (() => void) | null = null;
    const finishFinalChunk = () => {
      if (!finalChunk || !plannerDone) return;
      const last = lastWithRows();
      const othersCounted = copies.every((o) =>
        o.chunks.every((k, i) => k.rows !== null || (o === last && i === o.chunks.length - 1)),
      );
      if (!othersCounted) return;
      const finish = finalChunk;
      finalChunk = null;
      finish();
    };

    // The chunks to read, in table order and key order; planned one ahead of the readers that ask.
    const planner = async function* (client: pg.Client) {
      for (let i = 0; i < copies.length; i++) {
        const c = copies[i]!;
        const lastTable = i === copies.length - 1;
        if (c.keyCols.length === 0) {
          c.chunks.push({ rows: null, end: null, last: true });
          c.planned = true;
          if (lastTable) plannerDone = true;
          yield { c, index: 0, after: null as Row | null };
          continue;
        }
        let after: Row | null = null;
        for (;;) {
          const bound = await chunkEnd(client, c.t, c.keyCols, after, chunkRows);
          const index = c.chunks.length;
          const last = bound === null || bound.last;
          c.chunks.push({ rows: null, end: bound?.end ?? null, last });
          if (last) {
            c.planned = true;
            if (lastTable) plannerDone = true;
          }
          yield { c, index, after };
          if (last) break;
          after = bound.end;
        }
      }
      plannerDone = true;
    };

    const reader = async (client: pg.Client, work: ReturnType<typeof planner>) => {
      for (;;) {
        if (stopping()) return;
        const next = await work.next();
        if (next.done || stopping()) return;
        const { c, index, after } = next.value;
        startTable(c);
        const keyCols = c.keyCols;
        // The chunk's text goes on in blocks (see copy-text-block.ts); its last block waits for the chunk's end, to
        // carry Debezium's last markers.
        let held: CopyTextBlock | null = null;
        let heldSize = 0;
        let count = 0;
        const pieces = afterTurn(
          keyCols.length === 0
            ? readTableMessages(client, c.t, c.schema)
            : readKeyRangeMessages(client, c.t, c.schema, keyCols, after, chunkRows),
          async () => {
            while (c.turn < index && !stopping()) await gate();
          },
        );
        for await (const piece of pieces) {
          for (const { data, rows: n } of rowsAtMost(piece.data, piece.rows, maxBlockRows)) {
            const block = new CopyTextBlock(c.schema, data, n, c.readSource);
            if (!c.firstGiven) {
              c.firstGiven = true;
              // Debezium: `first` on the first table's first row, `first_in_data_collection` on other tables' first.
              block.firstSource = c.source(c === copies.find((o) => o.hasRows) ? 'first' : 'first_in_data_collection');
            }
            if (held) batcher.pushBlock(held, heldSize);
            held = block;
            // The size the rows take as events, should a target decode them.
            heldSize = n * EVENT_OVERHEAD + data.length;
          }
          count += piece.rows;
          rows += piece.rows;
          this.ctx.snapshotProgress?.add(c.name, piece.rows);
          if (stopping()) return;
          while (paused && !stopping()) await gate();
        }
        const record = c.chunks[index]!;
        this.ctx.logger.debug({
          event: 'snapshot_chunk_read',
          pipeline: this.ctx.pipeline,
          table: c.name,
          chunk: index,
          rows: count,
          last: record.last,
        });
        const finalBlock = held;
        const finish = () => {
          // Counted only once its rows are pushed: a checkpoint never covers a chunk whose rows it does not carry.
          record.rows = count;
          if (finalBlock) batcher.pushBlock(finalBlock, heldSize);
          chunkDone(c);
        };
        if (record.last && c === lastWithRows()) {
          // Debezium's `last` is the last row of the last table: it goes out after every other chunk.
          if (finalBlock) finalBlock.lastSource = { ...c.readSource, snapshot: 'last' };
          finalChunk = finish;
        } else {
          if (finalBlock && record.last)
            finalBlock.lastSource = { ...c.readSource, snapshot: 'last_in_data_collection' };
          finish();
        }
        c.turn = index + 1;
        openGate();
        finishFinalChunk();
      }
    };

    const produce = async () => {
      const client = plan.client;
      const tables = await this.snapshotTables(client, plan.only);
      // The snapshot's transaction id for the read events (Debezium writes its snapshot transaction's): the first id
      // the snapshot does not see, read without assigning an id (that would write WAL and hold up a shutdown).
      const xid = (await client.query<{ x: string }>('select txid_snapshot_xmax(txid_current_snapshot())::text as x'))
        .rows[0]?.x;
      for (const t of tables) {
        const schema = await tableSchemaFromCatalog(client, this.resolver, t);
        // The key with the columns: a table dropped later is described by its history alone.
        this.history.set({
          ...(await knownTableFromCatalog(client, t.oid, t.table)),
          keyColumns: schema.keyColumns,
          beforeImage: schema.beforeImage,
        });
        const estimated = Number(
          (
            await client.query<{ n: string }>('select reltuples::bigint::text as n from pg_class where oid = $1', [
              t.oid,
            ])
          ).rows[0]?.n ?? -1,
        );
        const source = (snapshot: 'true' | 'first' | 'first_in_data_collection'): ChangeEvent['source'] => ({
          connector: 'postgresql',
          db: this.db,
          position: { kind: 'postgres', lsn: cpText },
          txId: xid,
          commitTimeMs: started,
          snapshot,
        });
        // Read as text like every value on this connection: 1 or 0.
        const hasRows =
          Number(
            (
              await client.query<{ e: string }>(
                `select case when exists (select 1 from ${quoteTable(t.table)}) then 1 else 0 end as e`,
              )
            ).rows[0]?.e,
          ) === 1;
        copies.push({
          hasRows,
          t,
          schema,
          name: `${schema.table.schema}.${schema.table.name}`,
          keyCols: schema.keyColumns,
          estimated: estimated >= 0 ? estimated : null,
          chunks: [],
          planned: false,
          turn: 0,
          started: false,
          done: false,
          firstGiven: false,
          source,
          // One source block for every read event of the table (events are never mutated; markers replace it).
          readSource: source('true'),
        });
      }
      // As many readers as asked and the server has connections free for (one more plans the chunks).
      const free = Number(
        (
          await client.query<{ n: string }>(
            `select (current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
                     - (select count(*) from pg_stat_activity where backend_type = 'client backend'))::text as n`,
          )
        ).rows[0]?.n ?? 0,
      );
      const degree = Math.max(1, Math.min(this.config.snapshot_parallelism, free - 2));
      this.log('snapshot_started', {
        tables: tables.length,
        consistent_point: cpText,
        truncate_first: plan.truncateFirst,
        parallelism: degree,
        chunk_rows: chunkRows,
      });
      const open = async () => {
        const c = await connect(this.config, { rawValues: true });
        clients.push(c);
        await c.query('begin isolation level repeatable read read only');
        await c.query(`set transaction snapshot '${plan.snapshotName}'`);
        return c;
      };
      const readers = [client];
      let planning = client;
      if (degree > 1) {
        const more = await Promise.all(Array.from({ length: degree }, open));
        planning = more.pop()!;
        readers.push(...more);
      }
      const work = planner(planning);
      await Promise.all(readers.map((r) => reader(r, work)));
      if (stopping()) return;
      for (const c of clients) await c.query('commit');
      if (plan.only) {
        batcher.commit({
          pipeline: this.ctx.pipeline,
          phase: 'snapshot',
          position: { kind: 'postgres', lsn: cpText },
          state: { snapshotComplete: true },
          sourceTimeMs: started,
        });
        this.finished = true;
      } else {
        batcher.commit(this.checkpointAt(plan.consistentPoint, started, null));
        this.lastMarkLsn = plan.consistentPoint;
      }
      this.log('snapshot_done', { rows, ms: Date.now() - started, parallelism: degree });
    };

    const producer = produce().then(
      () => batcher.end(),
      (err: unknown) => {
        stopped = true;
        if (this.closed) return batcher.end();
        batcher.fail(
          err instanceof TributaryError
            ? err
            : new ConnectionError(
                `initial snapshot failed: ${err instanceof Error ? err.message : String(err)}`,
                'The pipeline restarts; tables whose copy the checkpoint records in part resume after their last durable chunk, the others are copied again (target tables truncated first).',
                err,
              ),
        );
      },
    );
    try {
      for await (const batch of batcher.batches()) {
        this.seq = batch.seq + 1;
        yield batch;
      }
    } catch (err) {
      if (this.closed) return;
      throw err;
    } finally {
      stopped = true;
      openGate();
      // Ending the connections ends reads still running.
      if (!this.finished) for (const c of clients) void c.end().catch(() => undefined);
      await producer;
      for (const c of clients) await c.end().catch(() => undefined);
      if (this.batcher === batcher) this.batcher = null;
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

  /** Starts START_REPLICATION; its changes and commits flow into the returned batcher. */
  private startStreaming(): CommitBatcher | null {
    const stream = this.stream;
    if (!stream || this.closed || this.draining) return null;
    // Never hand out a checkpoint before where this run starts (keepalives right after a resume can be behind it).
    if (this.lastMarkLsn < this.skipUpTo) this.lastMarkLsn = this.skipUpTo;
    this.decoder.resumeAfter(this.skipUpTo);
    const batcher = new CommitBatcher({
      batch: this.batch,
      maxQueuedEvents: this.config.read_ahead_events,
      maxQueuedBytes: this.config.read_ahead_bytes,
      heartbeatIntervalMs: this.config.heartbeat_interval_ms,
      flow: { pause: () => stream.hold('backpressure'), resume: () => stream.release('backpressure') },
      firstSeq: this.seq,
    });
    this.batcher = batcher;
    stream.start(
      this.names.slot,
      this.startLsn,
      this.publications,
      {
        xlog: (data, start, hi, lo) => this.onXLog(data, start, hi, lo),
        keepalive: (walEnd, reply) => this.onKeepalive(walEnd, reply),
      },
      (err) => (err ? this.fail(err) : batcher.end()),
    );
    this.log('streaming_started', { slot: this.names.slot, from: formatLsn(this.startLsn) });
    this.statusTimer = setInterval(() => stream.sendStatus(this.durableLsn), this.config.status_interval_ms);
    this.statusTimer.unref();
    this.lastCommitAt = Date.now();
    const every = this.config.heartbeat_interval_ms;
    this.heartbeatTimer = setInterval(() => this.maybeHeartbeat(), Math.max(50, Math.floor(every / 2)));
    this.heartbeatTimer.unref();
    this.tableCheckTimer = setInterval(() => this.checkTables(), this.config.table_check_interval_ms);
    this.tableCheckTimer.unref();
    return batcher;
  }

  /** Copies pending tables' existing rows chunk by chunk while the stream runs (incremental-snapshot.ts). */
  private startIncremental(incremental: IncrementalSnapshot): void {
    if (this.incrementalRunning || this.closed || this.draining) return;
    this.incrementalRunning = true;
    const run = async () => {
      const client = await connect(this.config, { rawValues: true });
      this.incrementalClient = client;
      try {
        await incremental.runAll(client);
      } finally {
        this.incrementalRunning = false;
        this.incrementalClient = null;
        await client.end().catch(() => undefined);
      }
      // A request that arrived while the last chunk finished.
      if (incremental.hasWork) this.startIncremental(incremental);
    };
    run().catch((err: unknown) => {
      if (this.closed || this.draining) return;
      this.fail(
        err instanceof TributaryError
          ? err
          : new ConnectionError(
              `incremental snapshot failed: ${err instanceof Error ? err.message : String(err)}`,
              'The pipeline restarts and resumes the snapshot after the last chunk the target holds.',
              err,
            ),
      );
    });
  }

  /** While streaming: follows tables dropped at the source and new tables to publish (table_check_interval_ms). */
  private checkTables(): void {
    if (this.closed || this.draining || this.tableCheckRunning || !this.meta) return;
    this.tableCheckRunning = true;
    const meta = this.meta;
    (async () => {
      await this.announceDroppedTables(meta);
      await this.announceRewrites(meta);
      const before = await this.publishedTables(meta);
      this.publications = await this.ensurePublications(meta);
      const added = (await this.publishedTables(meta)).filter((t) => !before.includes(t));
      const incremental = this.incremental;
      if (added.length === 0 || !incremental || this.config.snapshot === 'never') return;
      for (const table of added) {
        this.log('incremental_snapshot_requested', { table, reason: 'table created at the source' });
        incremental.request(table);
      }
      this.startIncremental(incremental);
    })()
      .catch((err: unknown) => {
        if (this.closed || this.draining) return;
        this.fail(err instanceof TributaryError ? err : connectFailure(this.config.url, err));
      })
      .finally(() => {
        this.tableCheckRunning = false;
      });
  }

  /**
   * Tables of the schema history that no longer exist were dropped: a message in the WAL (after every change of the
   * table) marks the drop in the stream, where the target table is emptied and the table forgotten. The shape of the
   * truncate is worked out now, while the column types still resolve; a restart before the stream reached the
   * message announces it again (the first one read does the work, the other finds the table forgotten).
   */
  private async announceDroppedTables(meta: pg.Client): Promise<void> {
    const known = this.history.toState();
    if (known.length === 0) return;
    const alive = new Set(
      (
        await meta.query<{ relid: number }>('select oid::int as relid from pg_class where oid = any($1::oid[])', [
          known.map((t) => t.relid),
        ])
      ).rows.map((r) => r.relid),
    );
    for (const t of known) {
      if (alive.has(t.relid) || this.droppedTables.has(t.relid)) continue;
      this.droppedTables.set(t.relid, await this.schemaOfDropped(meta, t));
      const table = `${t.schema}.${t.name}`;
      await meta.query('select pg_logical_emit_message(true, $1, $2)', [
        TABLE_DROPPED_PREFIX,
        JSON.stringify({ slot: this.names.slot, relid: t.relid, table }),
      ]);
      this.log('source_table_dropped', {
        table,
        relid: t.relid,
        note: 'the target table is emptied where the stream reaches the drop',
      });
    }
  }

  /** The shape a dropped table had, from the schema history (type names and kinds still resolve by type OID). */
  private async schemaOfDropped(meta: pg.Client, t: KnownTable): Promise<TableSchema> {
    const keys = new Set(t.keyColumns ?? []);
    const raw: RawRelation = {
      relid: t.relid,
      schema: t.schema,
      name: t.name,
      replicaIdentity: 'd',
      columns: t.columns.map((c) => ({ name: c.name, typeOid: c.typeOid, typmod: c.typmod, isKey: keys.has(c.name) })),
    };
    const { schema } = await tableSchemaFromRelation(
      meta,
      this.resolver,
      raw,
      t.columns.map((c) => c.attnum),
    );
    schema.beforeImage = t.beforeImage ?? schema.beforeImage;
    return schema;
  }

  /** A drop announced by this source reached the stream: the target table is emptied here, the table forgotten. */
  private onTableDropped(event: ChangeEvent): void {
    let note: { slot?: string; relid?: number };
    try {
      note = JSON.parse(Buffer.from(event.message!.contentBase64, 'base64').toString('utf8'));
    } catch {
      return;
    }
    if (note.slot !== this.names.slot || typeof note.relid !== 'number') return;
    const schema = this.droppedTables.get(note.relid);
    if (!schema || !this.history.delete(note.relid)) return;
    this.batcher!.push(
      {
        op: 'truncate',
        table: schema.table,
        schema,
        key: null,
        before: null,
        after: null,
        source: { ...event.source, snapshot: false },
        truncate: { cascade: false, restartIdentity: false },
      },
      EVENT_OVERHEAD,
    );
  }

  /**
   * Tables whose file node differs from the history's were rewritten (or truncated, vacuumed full, clustered) after
   * the stream position: a message places what the catalog shows in the stream (unannounced-rewrite.ts), for the
   * case that no later change of the table brings a Relation message. Written once per file node and run.
   */
  private async announceRewrites(meta: pg.Client): Promise<void> {
    if (this.rewriteCheckOff) return;
    const changed = (await tablesWithNewFileNode(meta, this.history.toState())).filter(
      (c) => !this.droppedTables.has(c.table.relid) && this.announcedRewrites.get(c.table.relid) !== c.filenode,
    );
    if (changed.length === 0) return;
    const client = await connect(this.config);
    try {
      for (const { table: t } of changed) {
        let filenode: string | null;
        try {
          filenode = await announceRewrite(client, this.names.slot, t);
        } catch (err) {
          if (postgresErrorKind(err) === 'retryable') throw err;
          this.rewriteCheckOff = true;
          this.ctx.logger.warn({
            event: 'table_rewrite_check_disabled',
            pipeline: this.ctx.pipeline,
            reason: err instanceof Error ? err.message : String(err),
            note: 'a table rewritten with no later change (ALTER COLUMN TYPE) is copied again only with its next change; allow the source user pg_logical_emit_message',
          });
          return;
        }
        if (filenode === null) continue;
        this.announcedRewrites.set(t.relid, filenode);
        this.ctx.logger.debug({
          event: 'source_table_rewrite_announced',
          pipeline: this.ctx.pipeline,
          table: `${t.schema}.${t.name}`,
          filenode,
        });
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * A rewrite announced by this source reached the stream. A Relation message since may have told it already (the
   * history has the file node); otherwise the history takes the table's shape at this position, and a column
   * retyped or added with the rewrite has the table copied again: the copy's low watermark follows this message.
   */
  private onTableRewritten(event: ChangeEvent): void {
    let note: RewriteNote;
    try {
      note = JSON.parse(Buffer.from(event.message!.contentBase64, 'base64').toString('utf8'));
    } catch {
      return;
    }
    if (note.slot !== this.names.slot || typeof note.table?.relid !== 'number') return;
    const known = this.history.get(note.table.relid);
    if (!known || known.filenode === note.table.filenode) return;
    const outcome = rewriteOutcome(known, note.table);
    if (!outcome) return;
    this.history.set(outcome.table);
    if (outcome.renamedFrom) this.followRenameFromNote(event, outcome, note);
    // A partitioned table's partitions truncated, attached or detached (or rewritten by VACUUM FULL, CLUSTER): rows
    // came or went without the WAL carrying them as its changes. A history of an older version ('0') had no partitions.
    const partitionsChanged =
      isPartitionedFileNode(note.table.filenode) && known.filenode !== '0' && known.filenode !== '';
    if (outcome.retyped.length === 0 && outcome.added.length === 0 && !partitionsChanged) return;
    const table = `${outcome.table.schema}.${outcome.table.name}`;
    const incremental = this.incremental;
    if (!incremental) return;
    const reasons = [
      ...(partitionsChanged && outcome.retyped.length === 0 && outcome.added.length === 0
        ? ['its partitions were truncated, attached, detached or rewritten']
        : []),
      ...(outcome.retyped.length > 0
        ? [`column ${outcome.retyped.join(', ')} changed type with a rewrite of the table`]
        : []),
      ...(outcome.added.length > 0
        ? [`column ${outcome.added.join(', ')} was added with a default that a rewrite of the table gave existing rows`]
        : []),
    ];
    this.ctx.logger.warn({
      event: 'incremental_snapshot_requested',
      pipeline: this.ctx.pipeline,
      table,
      reason: `${reasons.join('; ')}, and no change of the table followed in the stream: the new values of existing rows are not in the WAL; the table is copied again`,
    });
    incremental.request(table, undefined, outcome.retyped);
    queueMicrotask(() => this.startIncremental(incremental));
  }

  /**
   * A table renamed, then rewritten, with no change of it since: no Relation message tells the rename, so the note
   * does. A schema-change event of the new name with `renamedFrom` goes out at the note's position (the targets rename
   * their table there, as for a Relation message), before the copy the rewrite requests.
   */
  private followRenameFromNote(event: ChangeEvent, outcome: RewriteOutcome, note: RewriteNote): void {
    const from = outcome.renamedFrom!;
    const t = outcome.table;
    const table = { schema: t.schema, name: t.name };
    const keys = t.keyColumns ?? [];
    // The note's columns keep their names (rewriteOutcome decides only such a note): compared by name.
    const types = new Map((note.after ?? []).map((c) => [c.name, c.type]));
    const retyped = (note.before ?? []).flatMap((b) => {
      const now = types.get(b.name);
      return now !== undefined && now !== b.type ? [b.name] : [];
    });
    const described = JSON.stringify({
      table,
      xid: event.source.txId,
      before: { schema: from.schema, name: from.name, columns: note.before ?? [], key: keys },
      after: { schema: t.schema, name: t.name, columns: note.after ?? [], key: keys },
      changes: [
        { kind: 'rename_table', from: `${from.schema}.${from.name}` },
        ...retyped.map((column) => ({ kind: 'type', column })),
      ],
    });
    const schema: TableSchema = {
      table,
      columns: (note.after ?? []).map((c) => ({
        name: c.name,
        type: c.type,
        kind: 'text',
        typeOid: c.type_oid,
        nullable: c.nullable,
        isKey: keys.includes(c.name),
      })),
      keyColumns: keys,
      beforeImage: t.beforeImage ?? 'key',
      renamedFrom: from,
    };
    this.pushSchemaChange(schema, event.source, described);
    this.log('source_schema_changed', {
      table: `${t.schema}.${t.name}`,
      renamed_from: `${from.schema}.${from.name}`,
      changes: [],
      xid: event.source.txId,
    });
  }

  private heartbeatRunning = false;
  private maybeHeartbeat(): void {
    if (this.closed || this.heartbeatRunning || !this.meta) return;
    if (Date.now() - this.lastCommitAt < this.config.heartbeat_interval_ms) return;
    if (this.decoder.inTransaction || this.blocked) return;
    this.heartbeatRunning = true;
    this.lastCommitAt = Date.now();
    this.meta
      .query('select pg_logical_emit_message(true, $1, $2)', [HEARTBEAT_PREFIX, this.names.slot])
      .catch((err: unknown) => {
        if (postgresErrorKind(err) !== 'retryable') {
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
    this.batcher?.fail(err);
    // Nothing more is read after a failure: let go of the replication connection now, not at close(). A walsender
    // waits for its WAL to be confirmed before it exits, so a server's shutdown would otherwise wait on this process
    // (and the next run would find the slot still active).
    this.stream?.close().catch(() => undefined);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // decoding (called synchronously from the socket)

  /** What the decoder hands over: changes and commits go to the batcher. */
  private readonly decoded: DecodedStream = {
    change: (event, bytes) => {
      if (event.op === 'message' && event.message?.prefix === TABLE_DROPPED_PREFIX) {
        this.onTableDropped(event);
        return;
      }
      if (event.op === 'message' && event.message?.prefix === TABLE_REWRITTEN_PREFIX) {
        this.onTableRewritten(event);
        return;
      }
      const described = event.op === 'message' ? undefined : this.schemaChanges.get(event.schema);
      if (described !== undefined) {
        this.schemaChanges.delete(event.schema);
        this.pushSchemaChange(event.schema, event.source, described);
      }
      if (this.incremental?.observe(event)) return;
      this.batcher!.push(event, bytes);
    },
    commit: (endLsn, timeMs) => {
      this.lastCommitAt = Date.now();
      // Every change of a transaction carries its commit LSN, or none does (a transaction already partly handed out).
      const text = formatLsn(endLsn);
      this.batcher!.forEachOpenChange((e) => {
        if (e.source.position.kind === 'postgres') e.source.position.commitLsn = text;
      });
      if (endLsn > this.lastMarkLsn) this.lastMarkLsn = endLsn;
      this.batcher!.commit(this.checkpointAt(endLsn, timeMs));
    },
    relation: (raw) => this.onRelation(raw),
  };

  private onXLog(data: Buffer, start: number, hi: number, lo: number): void {
    if (this.batcher?.isFailed !== false) return;
    if (this.blocked) {
      this.backlog.push({ data: Buffer.from(data.subarray(start)), hi, lo });
      return;
    }
    try {
      this.decoder.feed(data, start, data.length, hi, lo, this.decoded);
    } catch (err) {
      this.fail(
        err instanceof TributaryError
          ? new TributaryError(err.kind, `${err.message} (WAL position ${lsnText(hi, lo)}, slot ${this.names.slot})`, {
              hint: err.hint,
              cause: err,
            })
          : err,
      );
    }
  }

  private onKeepalive(walEnd: bigint, reply: boolean): void {
    if (reply) this.stream?.sendStatus(this.durableLsn);
    // Idle advancement: with no transaction open, everything committed up to the server's WAL end has been received.
    // The batcher sends it as a heartbeat at most once per heartbeat interval (our own checkpoint writes move the WAL
    // end too: without that bound they would drive checkpoints in a loop).
    if (this.decoder.inTransaction || this.blocked || walEnd <= this.lastMarkLsn) return;
    this.lastMarkLsn = walEnd;
    this.batcher?.commit(this.checkpointAt(walEnd, Date.now()));
  }

  private onRelation(raw: RawRelation): void {
    this.blocked = true;
    this.stream?.hold('relation');
    this.resolveRelation(raw).then(
      () => {
        this.blocked = false;
        const pending = this.backlog;
        this.backlog = [];
        for (let i = 0; i < pending.length; i++) {
          const { data, hi, lo } = pending[i]!;
          this.onXLog(data, 0, hi, lo);
          if (this.blocked) {
            this.backlog = pending.slice(i + 1).concat(this.backlog);
            return;
          }
        }
        this.stream?.release('relation');
      },
      (err: unknown) => this.fail(err instanceof TributaryError ? err : connectFailure(this.config.url, err)),
    );
  }

  /**
   * Matches a Relation message to the table's columns by identity (schema history), refuses what the stream cannot
   * carry, and installs the new shape with what changed (renames, drops) for the targets.
   */
  private async resolveRelation(raw: RawRelation): Promise<void> {
    const meta = this.meta!;
    const known = this.history.get(raw.relid);
    if (this.decoder.skippingTransaction) {
      // A transaction delivered before (resent after a server restart) describes a shape at or before the checkpoint,
      // which the history has already passed: it only needs decoding, and changes nothing.
      const byName = new Map(known?.columns.map((c) => [c.name, c.attnum]));
      const attnums = raw.columns.map((c) => byName.get(c.name) ?? -1);
      this.decoder.setRelation(raw.relid, (await tableSchemaFromRelation(meta, this.resolver, raw, attnums)).schema);
      return;
    }
    const resolved = await resolveRelation(meta, known, raw, this.decoder.transactionId);
    const { schema, volatileDefaults, lostDefaults } = await tableSchemaFromRelation(
      meta,
      this.resolver,
      raw,
      resolved.attnums,
    );
    const added = new Set(resolved.changes.flatMap((c) => (c.kind === 'add' ? [c.column] : [])));
    const retyped = this.retypedWithRewrite(raw, resolved);
    const volatileAdded = volatileDefaults.filter((c) => added.has(c));
    // A default but no kept value: lost to a rewrite only if the table was rewritten since; otherwise the default was
    // set after the column was added (ADD COLUMN, then SET DEFAULT), and existing rows read NULL, as the stream says.
    const lostAdded = resolved.rewritten ? lostDefaults.filter((c) => added.has(c)) : [];
    if (retyped.length > 0 || volatileAdded.length > 0 || lostAdded.length > 0) {
      for (const c of schema.columns) if (retyped.includes(c.name)) c.retyped = true;
      this.copyAgain(raw, retyped, volatileAdded, lostAdded);
    }
    // A copy still to run converts these columns (the table check's message told the rewrite before this Relation
    // message): rows that reach the target ahead of it carry the mark too, so the target takes the new type for them.
    const converting = this.incremental?.retypedColumns(`${raw.schema}.${raw.name}`);
    if (converting) for (const c of schema.columns) if (converting.includes(c.name)) c.retyped = true;
    const typeChanged = this.typeChanged(raw, resolved).filter((c) => !added.has(c));
    if (known && (resolved.changes.length > 0 || resolved.renamedFrom || typeChanged.length > 0))
      this.schemaChanges.set(schema, await this.describeSchemaChange(meta, known, resolved, schema, typeChanged));
    if (resolved.changes.length > 0) schema.changes = resolved.changes;
    if (resolved.renamedFrom) schema.renamedFrom = resolved.renamedFrom;
    if (resolved.changes.length > 0 || resolved.renamedFrom)
      this.log('source_schema_changed', {
        table: `${raw.schema}.${raw.name}`,
        ...(resolved.renamedFrom
          ? { renamed_from: `${resolved.renamedFrom.schema}.${resolved.renamedFrom.name}` }
          : {}),
        changes: resolved.changes,
        xid: this.decoder.transactionId,
      });
    const k = resolved.table;
    if (
      k.keyColumns?.join('\0') !== schema.keyColumns.join('\0') ||
      k.beforeImage !== schema.beforeImage ||
      k !== known
    )
      this.history.set({ ...k, keyColumns: schema.keyColumns, beforeImage: schema.beforeImage });
    this.decoder.setRelation(raw.relid, schema);
  }

  /**
   * The schema-change description (SCHEMA_CHANGE_PREFIX): the table, its columns before (from the history, type names
   * from the catalog by type OID) and after (the Relation message), and the changes by column identity.
   */
  private async describeSchemaChange(
    meta: pg.Client,
    known: KnownTable,
    resolved: ResolvedRelation,
    schema: TableSchema,
    typeChanged: string[],
  ): Promise<string> {
    const names = await meta.query<{ type: string }>(
      'select format_type(o, m) as type from unnest($1::oid[], $2::int4[]) with ordinality u(o, m, i) order by i',
      [known.columns.map((c) => c.typeOid), known.columns.map((c) => c.typmod)],
    );
    const before = {
      schema: known.schema,
      name: known.name,
      columns: known.columns.map((c, i) => ({ name: c.name, type: names.rows[i]?.type ?? String(c.typeOid) })),
      key: known.keyColumns ?? null,
    };
    return JSON.stringify({
      table: schema.table,
      xid: this.decoder.transactionId,
      before,
      after: {
        schema: schema.table.schema,
        name: schema.table.name,
        columns: schema.columns.map((c) => ({
          name: c.name,
          type: c.type,
          type_oid: c.typeOid ?? null,
          nullable: c.nullable ?? true,
        })),
        key: schema.keyColumns,
      },
      changes: [
        ...(resolved.renamedFrom ? [{ kind: 'rename_table', from: `${known.schema}.${known.name}` }] : []),
        ...resolved.changes,
        ...typeChanged.map((column) => ({ kind: 'type', column })),
      ],
    });
  }

  /** Columns whose type differs from the history's (by attribute number). */
  private typeChanged(raw: RawRelation, resolved: ResolvedRelation): string[] {
    const before = this.history.get(raw.relid);
    if (!before) return [];
    const byAttnum = new Map(before.columns.map((c) => [c.attnum, c]));
    return raw.columns
      .filter((c, i) => {
        const old = byAttnum.get(resolved.attnums[i]!);
        return old !== undefined && (old.typeOid !== c.typeOid || old.typmod !== c.typmod);
      })
      .map((c) => c.name);
  }

  /** Columns whose type changed with a rewrite of the table since the history knew it (ALTER COLUMN TYPE). */
  private retypedWithRewrite(raw: RawRelation, resolved: ResolvedRelation): string[] {
    const before = this.history.get(raw.relid);
    if (!resolved.rewritten || !before) return [];
    const byAttnum = new Map(before.columns.map((c) => [c.attnum, c]));
    return raw.columns
      .filter((c, i) => {
        const old = byAttnum.get(resolved.attnums[i]!);
        return old !== undefined && (old.typeOid !== c.typeOid || old.typmod !== c.typmod);
      })
      .map((c) => c.name);
  }

  /**
   * Values PostgreSQL changed in every row without writing them to the WAL cannot reach the target from the stream:
   * a column retyped with a table rewrite (ALTER COLUMN TYPE, with or without USING), added with a volatile default
   * (random(), clock_timestamp(), nextval(), an identity), or added with a constant default whose kept value a later
   * rewrite erased before this message was read. The table's rows are copied again by the incremental snapshot: its
   * first chunk empties the target table at its low watermark, which the stream reaches after this message, so
   * every row ends with the source's value. The request is in the checkpoint of this transaction's commit.
   */
  private copyAgain(raw: RawRelation, retyped: string[], volatileAdded: string[], lostAdded: string[]): void {
    const table = `${raw.schema}.${raw.name}`;
    const incremental = this.incremental;
    if (!incremental)
      throw new SourceSetupError(
        `table ${table}: rows were rewritten at the source without the WAL carrying them (transaction ${this.decoder.transactionId})`,
        `Copy ${table} again: run tributary teardown for this pipeline and start it over.`,
      );
    const reasons = [
      ...(retyped.length > 0 ? [`column ${retyped.join(', ')} changed type with a rewrite of the table`] : []),
      ...(volatileAdded.length > 0
        ? [`column ${volatileAdded.join(', ')} was added with a volatile default or as an identity`]
        : []),
      ...(lostAdded.length > 0
        ? [`column ${lostAdded.join(', ')} was added with a default whose value for existing rows a rewrite erased`]
        : []),
    ];
    this.ctx.logger.warn({
      event: 'incremental_snapshot_requested',
      pipeline: this.ctx.pipeline,
      table,
      reason: `${reasons.join('; ')} (transaction ${this.decoder.transactionId}): the new values of existing rows are not in the WAL; the table is copied again`,
    });
    incremental.request(table);
    // Started once this message is resolved: the copy's watermarks follow it in the stream.
    queueMicrotask(() => this.startIncremental(incremental));
  }

  async commit(checkpoint: Checkpoint): Promise<void> {
    if (checkpoint.position.kind !== 'postgres')
      throw new TributaryError('fatal', `a PostgreSQL source got a ${checkpoint.position.kind} checkpoint`);
    if (checkpoint.phase !== 'stream') return;
    const lsn = parseLsn(checkpoint.position.lsn);
    if (lsn <= this.durableLsn) return;
    this.durableLsn = lsn;
    this.stream?.sendStatus(lsn);
  }

  drain(): void {
    this.draining = true;
    this.incremental?.stop();
    this.batcher?.end();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.statusTimer) clearInterval(this.statusTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.tableCheckTimer) clearInterval(this.tableCheckTimer);
    this.incremental?.stop();
    this.batcher?.end();
    await this.incrementalClient?.end().catch(() => undefined);
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
          bufferedEvents: this.batcher?.stats().queuedEvents ?? 0,
          bufferedBytes: this.batcher?.stats().queuedBytes ?? 0,
          peakBufferedEvents: this.batcher?.stats().peakQueuedEvents ?? 0,
          paused: this.stream?.isPaused ?? false,
          schemaHistory: this.history.toState().map((t) => ({
            table: `${t.schema}.${t.name}`,
            columns: t.columns.map((c) => `${c.attnum}:${c.name}`),
          })),
        },
      };
    } finally {
      if (!own) await client.end().catch(() => undefined);
    }
  }
}

/**
 * The pieces of one chunk's read, started at once (the server prepares the first rows meanwhile, and the socket
 * pauses once a few pieces wait) but handed on only once `turn` resolves. The readers of a parallel snapshot thus
 * deliver each table's chunks whole and in key order: a target inserts at the end of the key's index instead of at
 * several places at once (into PostgreSQL on 2 cores, interleaved chunks cost the target's backend about 60% more
 * CPU per row, and our process about 25% more).
 */
async function* afterTurn<T>(pieces: AsyncIterable<T>, turn: () => Promise<void>): AsyncGenerator<T> {
  const it = pieces[Symbol.asyncIterator]();
  const first = it.next();
  // A failed read is thrown below, once it is this chunk's turn.
  first.catch(() => undefined);
  try {
    await turn();
    for (let r = await first; !r.done; r = await it.next()) yield r.value;
  } finally {
    await it.return?.(undefined);
  }
}
