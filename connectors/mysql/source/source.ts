import type mysql from 'mysql2/promise';
import { type BatchOptions, DEFAULT_BATCH_OPTIONS } from '../../../src/config/batch.ts';
import type { ChangeBatch } from '../../../src/core/change-batch.ts';
import {
  type ChangeEvent,
  type ColumnInfo,
  type Row,
  type SourceInfo,
  type TableSchema,
  tableId,
} from '../../../src/core/change-event.ts';
import type { Checkpoint } from '../../../src/core/checkpoint.ts';
import type { ConnectorContext } from '../../../src/core/connector-context.ts';
import type { Source, SourceStatus } from '../../../src/core/source.ts';
import { SourceSetupError, TributaryError } from '../../../src/errors.ts';
import { CommitBatcher } from '../../../src/pipeline/commit-batcher.ts';
import { connect, type MysqlEndpoint, parseMysqlUrl } from '../connection.ts';
import { classifyMysqlError } from '../errors.ts';
import {
  type BinlogCoordinates,
  binaryLogs,
  currentCoordinates,
  detectFlavor,
  type Flavor,
  gtidSetAt,
  isPurgedBinlogError,
  snapshotStreamsByGtid,
  startConsistentSnapshot,
  startSharedSnapshot,
  startSnapshotBounds,
} from '../flavor.ts';
import { quoteIdent } from '../identifiers.ts';
import { type BinlogEvent, BinlogReader, type BinlogTable, type RawRow, UNKNOWN_POS } from './binlog-reader.ts';
import { type ColumnDefaultFact, existingRowsValueAtAdd, useMysqlTimestampDefaults } from './column-defaults.ts';
import { keepsValues } from './column-retype.ts';
import type { MysqlSourceConfig } from './config.ts';
import { type DdlTable, type DeclaredDefault, parseTableDdl, type TableDdl } from './ddl.ts';
import {
  MysqlIncrementalSnapshot,
  type MysqlSnapshotState,
  mysqlSnapshotStateOf,
  type StreamPoint,
  type TableProgress,
} from './incremental-snapshot.ts';
import { holdReaderLock } from './instance-lock.ts';
import { preflightMysqlSource } from './preflight.ts';
import { RowDecoder } from './row-decoder.ts';
import { droppedTableEvent } from './schema-change.ts';
import { type KnownColumn, MysqlSchemaHistory, type TypeChange } from './schema-history.ts';
import { checkServerReached } from './server-behind.ts';
import { replicaServerId } from './server-id.ts';
import { type ChunkTable, chunkEnd, keyToState, readChunk } from './snapshot-reader.ts';
import { SNAPSHOT_SIGNAL } from './snapshot-request.ts';
import { TableFilter } from './table-filter.ts';
import { kindOfType, type MysqlColumn, normalizeColumnType } from './values.ts';

interface TableEntry {
  schema: TableSchema;
  columns: MysqlColumn[];
  /** Catalog facts per lower-case column name (entries read from INFORMATION_SCHEMA only). */
  facts?: Map<string, ColumnDefaultFact>;
  /** Columns whose `missingValue` is set (awaiting delivery to the target, see `addedColumns`). */
  withMissing?: string[];
  /** Decodes binlog rows of this layout. */
  decoder: RowDecoder;
  /** Stream entries: the columns of this layout by identity (the schema history's, when the entry was made). */
  known?: KnownColumn[];
  /** Stream entries: the target has not got this shape yet (its rows change what the history says it has). */
  delivers?: boolean;
}

/** Prefix of the `message` events that carry DDL statements; the content is the statement text. */
export const DDL_MESSAGE_PREFIX = 'tributary.ddl';

function estimateBytes(row: Row | null): number {
  if (!row) return 0;
  let n = 0;
  for (const k in row) {
    const v = row[k];
    n += k.length + (typeof v === 'string' ? v.length : 4) + 16;
  }
  return n;
}

/** Catalog reads after an ADD COLUMN before a column it added counts as renamed or dropped by a later statement. */
const CATALOG_SETTLE_READS = 6;

/**
 * Streams row changes from a MySQL or MariaDB binlog, after an optional consistent snapshot.
 *
 * Snapshot: one transaction WITH CONSISTENT SNAPSHOT (or several that see the same transactions, with
 * `snapshot_parallelism`) gives the rows and the exact binlog position they correspond to; tables are read in
 * primary-key order in keyset chunks, each preceded by a `truncate` event (so a snapshot redone after a crash
 * replaces whatever an interrupted one delivered). Streaming then starts at exactly that position. A restart during
 * the snapshot resumes after the last durable chunk (see `snapshot`).
 */
export class MysqlSource implements Source {
  readonly classifyError = classifyMysqlError;
  private readonly config: MysqlSourceConfig;
  private readonly ctx: ConnectorContext;
  private readonly batch: BatchOptions;
  private readonly endpoint: MysqlEndpoint;
  private readonly tables: TableFilter;
  private conn: mysql.Connection | null = null;
  private reader: BinlogReader | null = null;
  private flavor: Flavor = 'mariadb';
  private serverId = 0;
  private replicaId = 0;
  private needsSnapshot = false;
  private streamFrom: (BinlogCoordinates & { byGtid: boolean }) | null = null;
  private closed = false;
  private iterating = false;
  private lastCommitted: Checkpoint | null = null;
  private lastEmitted: Checkpoint | null = null;
  /** Where streaming starts when there was no checkpoint and no snapshot: saved before the pipeline runs. */
  private startPosition: Checkpoint | null = null;
  /** The batcher being filled (snapshot or stream). */
  private batcher: CommitBatcher | null = null;
  /** A clean stop asked to hand out what is complete and end. */
  private draining = false;
  /** Wake the producers waiting for room in the batcher (the readers of a parallel snapshot wait at once). */
  private readonly roomWaiters = new Set<() => void>();
  private readonly streamTables = new WeakMap<BinlogTable, TableEntry>();
  private readonly infoCache = new Map<string, Promise<TableEntry | null>>();
  /**
   * Each replicated table's columns by identity at the position read so far, and as the target last got them; stream
   * checkpoints carry it (`state.schemaHistory`). Column renames and drops reach the target from it.
   */
  private history = new MysqlSchemaHistory();
  /**
   * Columns added to a table (`db.name`) and the value its existing rows read for them, kept until a row event of the
   * table that carries them is committed: stream checkpoints carry them (`state.addedColumns`), so a restart between
   * the ALTER TABLE and the target's first row of the table still gives the target the value.
   */
  private readonly addedColumns = new Map<string, Map<string, string | null>>();
  /** Each table's schema as last read (catalog or TableMap): a dropped table's truncate carries it. */
  private readonly lastSchemas = new Map<string, TableSchema>();
  /**
   * Tables dropped while no schema of theirs was known: their truncate goes before the next row event of a table of
   * that name. Stream checkpoints carry them (`state.droppedTables`) until then.
   */
  private readonly droppedUnseen = new Set<string>();
  /**
   * Columns added to a table that was no longer in the catalog under that name when the ALTER TABLE was read (renamed
   * since): their existing rows' value is read from the catalog under the name a later RENAME gives the table.
   * Checkpoints carry them (`state.pendingAddedColumns`).
   */
  private readonly pendingAdded = new Map<string, Set<string>>();
  /** Added columns already reported as not followable (warned once per process). */
  private readonly unfollowable = new Map<string, Set<string>>();
  /** Copies of tables' existing rows while streaming (tables added to the pipeline), and which tables are copied. */
  private incremental: MysqlIncrementalSnapshot | null = null;

  constructor(config: MysqlSourceConfig, ctx: ConnectorContext, options?: { batch: BatchOptions }) {
    this.config = config;
    this.ctx = ctx;
    this.batch = options?.batch ?? DEFAULT_BATCH_OPTIONS;
    this.endpoint = parseMysqlUrl(config.url);
    this.tables = new TableFilter(config);
  }

  async open(from: Checkpoint | null): Promise<void> {
    this.closed = false;
    this.draining = false;
    this.needsSnapshot = false;
    this.streamFrom = null;
    this.lastEmitted = null;
    this.startPosition = null;
    this.addedColumns.clear();
    this.unfollowable.clear();
    this.lastSchemas.clear();
    this.droppedUnseen.clear();
    this.pendingAdded.clear();
    this.incremental = null;
    this.history = from?.phase === 'stream' ? MysqlSchemaHistory.fromState(from.state) : new MysqlSchemaHistory();
    if (from?.phase === 'stream') {
      restoreNameSets(from.state?.pendingAddedColumns, this.pendingAdded);
      restoreAddedColumns(from.state?.addedColumns, this.addedColumns);
      for (const id of restoreDroppedTables(from.state?.droppedTables)) this.droppedUnseen.add(id);
    }
    if (from) {
      // This pipeline has read this server before: a server that cannot be reached now is down or restarting (an
      // outage, retried like a lost connection), not a setup mistake for an operator (as at a first start).
      await (await connect(this.endpoint, this.config.connect_timeout_ms)).end();
    }
    const problems = await preflightMysqlSource(this.config, this.ctx);
    if (problems.length > 0) {
      throw new SourceSetupError(
        `the MySQL source is not ready: ${problems.map((p) => p.message).join('; ')}`,
        problems.map((p) => p.hint).join('\n'),
      );
    }
    this.conn = await connect(this.endpoint, this.config.connect_timeout_ms);
    this.flavor = (await detectFlavor(this.conn)).flavor;
    const [idRows] = await this.conn.query('SELECT @@server_id AS id');
    this.serverId = Number((idRows as { id: number }[])[0]!.id);
    this.replicaId = replicaServerId(this.config, this.ctx.pipeline);
    await holdReaderLock(this.conn, this.ctx.pipeline, this.replicaId);

    if (from && from.position.kind !== 'mysql') {
      throw new TributaryError('operator', `checkpoint of pipeline ${from.pipeline} is not a MySQL position`, {
        hint: 'the pipeline was pointed at a different source type; clear its checkpoint to start over',
      });
    }
    if (from?.phase === 'stream' && from.position.kind === 'mysql') {
      const p = from.position;
      // A checkpoint without GTIDs (written before they were tracked): the executed set at its offset.
      const gtidSet = p.gtidSet ?? (await gtidSetAt(this.conn, this.flavor, p.file, p.pos));
      const byGtid = this.config.resume_by_gtid && !!p.gtidSet;
      this.streamFrom = { file: p.file, pos: p.pos, gtidSet, byGtid };
      this.lastCommitted = from;
      try {
        await this.checkRetained(this.streamFrom);
        this.incremental = await this.planIncremental(from);
        await this.startReader(this.streamFrom);
      } catch (err) {
        if (!(err instanceof PurgedBinlogError) || !this.config.resnapshot_on_purged_binlog) throw err;
        this.ctx.logger.warn({ event: 'binlog_purged_resnapshot', file: p.file, pos: p.pos }, err.message);
        await this.stopReader();
        this.streamFrom = null;
        this.incremental = null;
        this.needsSnapshot = true;
      }
    } else if (this.config.snapshot === 'never') {
      const coords = await currentCoordinates(this.conn, this.flavor);
      this.streamFrom = { ...coords, byGtid: false };
      this.startPosition = {
        pipeline: this.ctx.pipeline,
        phase: 'stream',
        position: { kind: 'mysql', file: coords.file, pos: coords.pos, gtidSet: coords.gtidSet || undefined },
        state: { ...this.history.toState() },
      };
      // Tables here now have rows the pipeline did not copy by choice; a table added later is copied.
      const tables = (await this.snapshotTables(this.conn)).map((t) => `${t.db}.${t.name}`);
      this.incremental = this.newIncremental({ tables, pending: [], emitted: 0 });
      this.startPosition.state = { ...this.startPosition.state, snapshot: this.incremental.snapshotState() };
      await this.startReader(this.streamFrom);
    } else {
      // No checkpoint, or a snapshot that did not finish: (re)do the snapshot.
      this.needsSnapshot = true;
    }
    this.ctx.logger.info(
      {
        event: 'mysql_source_opened',
        flavor: this.flavor,
        snapshot: this.needsSnapshot,
        from: this.streamFrom ? `${this.streamFrom.file}:${this.streamFrom.pos}` : undefined,
        gtid: this.streamFrom?.byGtid ? this.streamFrom.gtidSet : undefined,
        replica_server_id: this.replicaId,
      },
      'MySQL source opened',
    );
  }

  /**
   * Which tables' existing rows are still to be copied while streaming: those of an unfinished incremental snapshot
   * (from the checkpoint) and tables replicated now that the checkpoint does not count as copied (added to `tables`
   * or `databases` since). A checkpoint of an older version has no such list: then the tables here now count.
   */
  private async planIncremental(from: Checkpoint): Promise<MysqlIncrementalSnapshot> {
    const replicated = (await this.snapshotTables(this.conn!)).map((t) => `${t.db}.${t.name}`);
    const prior = mysqlSnapshotStateOf(from.state);
    const incremental = this.newIncremental({
      tables: prior?.tables ?? replicated,
      pending: (prior?.pending ?? []).filter((p) => replicated.includes(p.table)),
      emitted: prior?.emitted ?? 0,
    });
    const before = prior?.replicates ? new TableFilter(prior.replicates) : null;
    for (const table of prior ? replicated : []) {
      if (prior!.tables.includes(table) || prior!.pending.some((p) => p.table === table)) continue;
      const dot = table.indexOf('.');
      // Named by the configuration already: created or renamed at the source after the checkpoint, its rows and
      // DDL come with the stream (copying it now would read the catalog ahead of the stream).
      if (this.config.snapshot === 'never' || before?.replicates(table.slice(0, dot), table.slice(dot + 1))) {
        incremental.followed(table);
        continue;
      }
      this.ctx.logger.info(
        { event: 'incremental_snapshot_requested', table, reason: 'table added to the pipeline' },
        `table ${table} added to the pipeline: its existing rows are copied while streaming`,
      );
      incremental.request(table);
    }
    return incremental;
  }

  /** The tables the configuration names, as checkpoints keep them (see MysqlSnapshotState.replicates). */
  private configuredTables(): { databases?: string[]; tables?: string[] } {
    const { databases, tables } = this.config;
    return { ...(databases ? { databases } : {}), ...(tables ? { tables } : {}) };
  }

  private newIncremental(state: MysqlSnapshotState): MysqlIncrementalSnapshot {
    return new MysqlIncrementalSnapshot(
      {
        pipeline: this.ctx.pipeline,
        logger: this.ctx.logger,
        progress: this.ctx.snapshotProgress,
        chunkRows: this.config.snapshot_chunk_rows,
        serverId: this.serverId,
        connect: () => connect(this.endpoint, this.config.connect_timeout_ms),
        startSnapshot: (conn) => startSnapshotBounds(conn, this.flavor),
        wake: () => this.reader?.wake(),
        describe: (conn, db, name) => this.describeTable(conn, db, name),
      },
      { ...state, replicates: this.configuredTables() },
    );
  }

  private async checkRetained(from: BinlogCoordinates & { byGtid: boolean }): Promise<void> {
    await checkServerReached(this.conn!, this.flavor, from);
    if (from.byGtid) return; // the server reports a purged GTID when the dump starts
    const logs = await binaryLogs(this.conn!);
    const found = logs.find((l) => l.name === from.file);
    if (!found || from.pos > found.size) {
      throw new PurgedBinlogError(from, logs[0]?.name);
    }
  }

  private included(db: string, table: string): boolean {
    return this.tables.replicates(db, table);
  }

  private async startReader(from: BinlogCoordinates & { byGtid: boolean }): Promise<void> {
    const filter = this.tables.readerFilter();
    const reader = new BinlogReader({
      ...this.endpoint,
      serverId: this.replicaId,
      flavor: this.flavor,
      start: from.byGtid ? { gtidSet: from.gtidSet } : { file: from.file, pos: from.pos },
      initialGtidSet: from.gtidSet,
      includeSchema: filter.include,
      excludeSchema: filter.exclude,
      // The batcher holds the read-ahead; the reader's own buffer bridges the pauses of decoding (lookups, DDL).
      highWaterRows: Math.max(100, Math.floor(this.config.read_ahead_events / 2)),
      connectTimeoutMs: this.config.connect_timeout_ms,
    });
    this.reader = reader;
    try {
      await reader.start();
    } catch (err) {
      await reader.stop();
      this.reader = null;
      if (isPurgedBinlogError(err)) {
        const logs = await binaryLogs(this.conn!).catch(() => []);
        throw new PurgedBinlogError(from, logs[0]?.name, err);
      }
      throw err;
    }
  }

  private async stopReader(): Promise<void> {
    const r = this.reader;
    this.reader = null;
    await r?.stop();
  }

  /** The binlog position streaming starts at when `open` had no checkpoint and takes no snapshot (`snapshot: never`). */
  startCheckpoint(): Checkpoint | null {
    return this.startPosition;
  }

  async *batches(): AsyncIterable<ChangeBatch> {
    if (this.iterating) throw new Error('batches() is already being iterated');
    this.iterating = true;
    let seq = 0;
    try {
      if (this.needsSnapshot) {
        const batcher = this.newBatcher(seq);
        const copied = this.snapshot(batcher);
        for await (const b of batcher.batches()) {
          seq = b.seq + 1;
          if (b.checkpoint) this.lastEmitted = b.checkpoint;
          yield b;
        }
        const coords = await copied;
        if (this.closed || this.draining || !coords) return;
        this.needsSnapshot = false;
        if (this.config.snapshot === 'initial_only') return;
        // A snapshot started without a lock is exact by its GTID set (see startConsistentSnapshot).
        this.streamFrom = { ...coords, byGtid: snapshotStreamsByGtid(coords) };
        await this.startReader(this.streamFrom);
      }
      if (!this.reader) return;
      const batcher = this.newBatcher(seq);
      void this.stream(this.reader, batcher);
      this.incremental?.ensureRunning((err) => batcher.fail(err));
      for await (const b of batcher.batches()) {
        if (b.checkpoint) this.lastEmitted = b.checkpoint;
        yield b;
      }
    } finally {
      this.iterating = false;
    }
  }

  private newBatcher(firstSeq: number): CommitBatcher {
    const batcher = new CommitBatcher({
      batch: this.batch,
      maxQueuedEvents: this.config.read_ahead_events,
      maxQueuedBytes: this.config.read_ahead_bytes,
      heartbeatIntervalMs: this.config.heartbeat_interval_ms,
      flow: { pause: () => undefined, resume: () => this.wakeRoomWaiters() },
      firstSeq,
    });
    this.batcher = batcher;
    return batcher;
  }

  /** Waits while the batcher is above its bounds (the reader then fills its own buffer and pauses the socket). */
  private async room(batcher: CommitBatcher): Promise<void> {
    while (batcher.wantsPause && !this.closed && !this.draining && !batcher.isFailed) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.roomWaiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, 250);
        this.roomWaiters.add(wake);
      });
    }
  }

  private wakeRoomWaiters(): void {
    for (const wake of [...this.roomWaiters]) wake();
  }

  // ---- snapshot -------------------------------------------------------------------------------------------

  private async snapshotTables(conn: mysql.Connection): Promise<{ db: string; name: string }[]> {
    const [rows] = await conn.query(
      "SELECT TABLE_SCHEMA AS db, TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' " +
        'ORDER BY TABLE_SCHEMA, TABLE_NAME',
    );
    return (rows as { db: string; name: string }[]).filter((t) => this.included(t.db, t.name));
  }

  /**
   * Copies the tables into `batcher` and ends it; resolves with the binlog position the copy corresponds to, or null
   * when closed first. A failure fails the batcher.
   *
   * With `snapshot: initial` every full chunk of a keyed table ends a transaction whose checkpoint is a stream
   * checkpoint at the snapshot's position, with the copy's progress as an incremental snapshot's (`state.snapshot`,
   * `initial: true`): a restart streams from that position and copies the rest by the incremental snapshot, after the
   * last durable chunk. (A table without a key starts over: no stable order to resume in.) With `initial_only`, each
   * table ends with a snapshot checkpoint and a restart redoes the copy.
   */
  private async snapshot(batcher: CommitBatcher): Promise<BinlogCoordinates | null> {
    if (this.config.snapshot_parallelism > 1) {
      const copied = await this.parallelSnapshot(batcher, this.config.snapshot_parallelism);
      if (copied !== 'one_connection') return copied;
    }
    let conn: mysql.Connection | null = null;
    try {
      conn = await connect(this.endpoint, this.config.connect_timeout_ms);
      const coords = await startConsistentSnapshot(conn, this.flavor);
      const startedAt = Date.now();
      this.ctx.logger.info(
        { event: 'snapshot_started', file: coords.file, pos: coords.pos, gtid: coords.gtidSet },
        'consistent snapshot started',
      );
      const tables = await this.snapshotTables(conn);
      // The copy describes every table again (a snapshot redone after a purged binlog starts its history anew).
      this.history.clear();
      const done: string[] = [];
      let first = true;
      const sourceInfo = (db: string, snapshot: SourceInfo['snapshot']): SourceInfo => ({
        connector: 'mysql',
        db,
        position: { kind: 'mysql', file: coords.file, pos: coords.pos, serverId: 0, row: 0 },
        commitTimeMs: startedAt,
        snapshot,
      });
      const resumable = this.config.snapshot === 'initial';
      let emitted = 0;
      const position = {
        kind: 'mysql' as const,
        file: coords.file,
        pos: coords.pos,
        gtidSet: coords.gtidSet || undefined,
      };
      /** After a table, or a chunk of one (`current`): what a restart needs to copy the rest. */
      const progressCp = (current: TableProgress | null, next: number): Checkpoint =>
        resumable
          ? {
              pipeline: this.ctx.pipeline,
              phase: 'stream',
              position,
              state: {
                ...this.history.toState(),
                snapshot: {
                  tables: [...done],
                  pending: [
                    ...(current ? [current] : []),
                    ...tables.slice(next).map((x) => ({ table: `${x.db}.${x.name}`, lastKey: null, rows: 0 })),
                  ],
                  emitted: ++emitted,
                  replicates: this.configuredTables(),
                  initial: true,
                },
              },
              sourceTimeMs: startedAt,
            }
          : {
              pipeline: this.ctx.pipeline,
              phase: 'snapshot',
              position,
              state: { snapshot: { tablesDone: [...done] } },
              sourceTimeMs: startedAt,
            };
      // Debezium's snapshot markers need each table's last row: it is held back until the next row or the table's end.
      let held: { event: ChangeEvent; bytes: number } | null = null;
      for (const [tableIndex, t] of tables.entries()) {
        const entry = await this.describeTable(conn, t.db, t.name);
        if (entry) this.lastSchemas.set(`${t.db}.${t.name}`, entry.schema);
        if (!entry) continue;
        const { schema, columns } = entry;
        this.history.create(
          t.db,
          t.name,
          columns.map((c) => ({ name: c.name, type: c.type })),
          { delivered: true },
        );
        const progressName = `${t.db}.${t.name}`;
        // The server's estimate (InnoDB samples it): a copy may end above or below it.
        const [estimateRows] = await conn.query(
          'SELECT TABLE_ROWS AS n FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
          [t.db, t.name],
        );
        const estimate = (estimateRows as { n: unknown }[])[0]?.n;
        const estimated = estimate === null || estimate === undefined ? null : Number(estimate);
        this.ctx.snapshotProgress?.start(progressName, estimated);
        this.ctx.logger.info(
          { event: 'snapshot_table_started', table: progressName, estimated_rows: estimated },
          'snapshot table started',
        );
        let tableRows = 0;
        batcher.push(
          {
            op: 'truncate',
            table: schema.table,
            schema,
            key: null,
            before: null,
            after: null,
            source: sourceInfo(t.db, first ? 'first' : 'true'),
            truncate: { cascade: false, restartIdentity: false },
          },
          100,
        );
        first = false;
        const keys = schema.keyColumns;
        const chunkTable = { db: t.db, name: t.name, columns, keyColumns: keys };
        let lastKey: unknown[] | null = null;
        let offset = 0;
        let chunks = 0;
        /** Key of the held row, and of the last row pushed with its count: what a chunk's checkpoint covers. */
        let heldKey: unknown[] | null = null;
        let pushedKey: unknown[] | null = null;
        let pushedRows = 0;
        for (;;) {
          if (this.closed || this.draining || batcher.isFailed) return null;
          const chunk = await readChunk(conn, chunkTable, {
            after: lastKey,
            limit: this.config.snapshot_chunk_rows,
            offset,
          });
          const list = chunk.rows;
          for (const [i, after] of list.entries()) {
            const key: Row | null =
              keys.length > 0 ? (Object.fromEntries(keys.map((k) => [k, after[k] ?? null])) as Row) : null;
            const bytes = estimateBytes(after) + 100;
            const marker: SourceInfo['snapshot'] =
              held === null ? (tableIndex === 0 ? 'first' : 'first_in_data_collection') : 'true';
            if (held) {
              batcher.push(held.event, held.bytes);
              pushedKey = heldKey;
              pushedRows++;
              if (batcher.wantsPause) await this.room(batcher);
            }
            heldKey = chunk.keys[i] ?? null;
            held = {
              event: {
                op: 'read',
                table: schema.table,
                schema,
                key,
                before: null,
                after,
                source: sourceInfo(t.db, marker),
              },
              bytes,
            };
          }
          this.ctx.snapshotProgress?.add(progressName, list.length);
          tableRows += list.length;
          if (list.length < this.config.snapshot_chunk_rows) break;
          offset += list.length;
          lastKey = chunk.lastKey;
          chunks++;
          if (resumable && keys.length > 0 && pushedKey) {
            const current: TableProgress = {
              table: progressName,
              lastKey: keyToState(pushedKey),
              rows: pushedRows,
              chunks,
              key: [...keys],
            };
            batcher.commit(progressCp(current, tableIndex + 1));
          }
        }
        if (held) {
          const lastTable = tableIndex === tables.length - 1;
          held.event.source = { ...held.event.source, snapshot: lastTable ? 'last' : 'last_in_data_collection' };
          batcher.push(held.event, held.bytes);
          held = null;
        }
        done.push(`${t.db}.${t.name}`);
        batcher.commit(progressCp(null, tableIndex + 1));
        this.ctx.snapshotProgress?.finish(progressName);
        this.ctx.logger.info(
          { event: 'snapshot_table_done', table: progressName, rows: tableRows },
          'snapshot table done',
        );
      }
      await conn.query('COMMIT');
      this.incremental = this.newIncremental({ tables: [...done], pending: [], emitted: 0 });
      const finalCp: Checkpoint = {
        pipeline: this.ctx.pipeline,
        phase: 'stream',
        position: { kind: 'mysql', file: coords.file, pos: coords.pos, gtidSet: coords.gtidSet || undefined },
        state: { ...this.history.toState(), snapshot: this.incremental.snapshotState() },
        sourceTimeMs: startedAt,
      };
      batcher.commit(finalCp);
      batcher.end();
      this.ctx.logger.info(
        { event: 'snapshot_finished', tables: done.length, ms: Date.now() - startedAt },
        'snapshot finished',
      );
      return coords;
    } catch (err) {
      batcher.fail(err);
      return null;
    } finally {
      await conn?.end().catch(() => undefined);
    }
  }

  /**
   * The initial snapshot on several connections (`snapshot_parallelism` readers and one that plans), all in
   * transactions WITH CONSISTENT SNAPSHOT that see exactly the same transactions (startSharedSnapshot): several
   * tables, and key-range chunks of one table, are read at once. The planner finds each chunk's last key ahead of
   * the reads (chunkEnd, in the same snapshot), so a chunk is read as `key > previous end LIMIT snapshot_chunk_rows`
   * exactly as the serial copy reads it. A chunk's rows go into the batcher together, at once, and then the chunk is
   * counted: each such commit's checkpoint records per table only the chunks done in key order with none missing
   * before them, so a restart resumes each table after its last durable chunk by the incremental snapshot (as a
   * serial copy's restart does), and reads again at most the chunks that were in flight.
   *
   * Resolves like `snapshot`, or with 'one_connection' when one position for several connections cannot be had (no
   * RELOAD privilege for the global read lock while commits keep coming) or the server has no connections to spare:
   * then the serial copy runs instead.
   */
  private async parallelSnapshot(
    batcher: CommitBatcher,
    asked: number,
  ): Promise<BinlogCoordinates | null | 'one_connection'> {
    const conns: mysql.Connection[] = [];
    let finished = false;
    let failed = false;
    const stopping = () => failed || this.closed || this.draining || batcher.isFailed;
    const chunkRows = this.config.snapshot_chunk_rows;
    // The reader of the last table's last chunk waits for every other chunk to go out first (Debezium's `last`).
    let othersWaiter: (() => void) | null = null;
    const wakeOthersWaiter = () => {
      const wake = othersWaiter;
      othersWaiter = null;
      wake?.();
    };
    try {
      const planning = await connect(this.endpoint, this.config.connect_timeout_ms);
      conns.push(planning);
      const [maxRows] = await planning.query('SELECT @@max_connections AS n');
      const [processes] = await planning.query('SHOW PROCESSLIST');
      const free = Number((maxRows as { n: unknown }[])[0]?.n) - (processes as unknown[]).length;
      const degree = Math.min(asked, free - 2);
      const lowered = (reason: string) => {
        this.ctx.logger.warn(
          { event: 'snapshot_parallelism_lowered', asked, parallelism: 1, reason },
          `the snapshot is read on one connection: ${reason}`,
        );
        return 'one_connection' as const;
      };
      if (degree < 2) return lowered(`the server has ${free} connections free`);
      for (let i = 0; i < degree; i++) {
        try {
          conns.push(await connect(this.endpoint, this.config.connect_timeout_ms));
        } catch (err) {
          // Without the PROCESS privilege the process list shows this user's sessions only: the server may be full
          // before `free` says so. Read on the connections had, and give one back so the server is not left full.
          if ((err as { cause?: { code?: string } }).cause?.code !== 'ER_CON_COUNT_ERROR') throw err;
          conns.pop()?.destroy();
          break;
        }
      }
      if (conns.length < 3) return lowered('the server refused more connections (max_connections)');
      const shared = await startSharedSnapshot(conns, this.flavor);
      if ('unavailable' in shared) return lowered(shared.unavailable);
      const coords = shared;
      const startedAt = Date.now();
      this.ctx.logger.info(
        {
          event: 'snapshot_started',
          file: coords.file,
          pos: coords.pos,
          gtid: coords.gtidSet,
          parallelism: conns.length - 1,
          locking: coords.locking,
          chunk_rows: chunkRows,
        },
        'consistent snapshot started',
      );
      const position = {
        kind: 'mysql' as const,
        file: coords.file,
        pos: coords.pos,
        gtidSet: coords.gtidSet || undefined,
      };
      const sourceInfo = (db: string, snapshot: SourceInfo['snapshot']): SourceInfo => ({
        connector: 'mysql',
        db,
        position: { kind: 'mysql', file: coords.file, pos: coords.pos, serverId: 0, row: 0 },
        commitTimeMs: startedAt,
        snapshot,
      });

      interface ChunkRecord {
        /** The key the chunk starts after (null: the table's start). */
        after: unknown[] | null;
        /** A keyless table's chunk: the rows it skips (the serial copy's LIMIT/OFFSET, in the same snapshot). */
        offset: number;
        /** The table's last chunk (planned with no row after its end). */
        last: boolean;
        /** Rows pushed to the batcher; null until the chunk's rows are all there. */
        rows: number | null;
        lastKey: unknown[] | null;
      }
      interface TableCopy {
        name: string;
        db: string;
        schema: TableSchema;
        chunkTable: ChunkTable;
        estimated: number | null;
        chunks: ChunkRecord[];
        planned: boolean;
        done: boolean;
        firstGiven: boolean;
      }
      const tables = await this.snapshotTables(planning);
      // The copy describes every table again (a snapshot redone after a purged binlog starts its history anew).
      this.history.clear();
      const copies: TableCopy[] = [];
      for (const t of tables) {
        const entry = await this.describeTable(planning, t.db, t.name);
        if (!entry) continue;
        this.lastSchemas.set(`${t.db}.${t.name}`, entry.schema);
        // The server's estimate (InnoDB samples it): a copy may end above or below it.
        const [estimateRows] = await planning.query(
          'SELECT TABLE_ROWS AS n FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
          [t.db, t.name],
        );
        const estimate = (estimateRows as { n: unknown }[])[0]?.n;
        copies.push({
          name: `${t.db}.${t.name}`,
          db: t.db,
          schema: entry.schema,
          chunkTable: { db: t.db, name: t.name, columns: entry.columns, keyColumns: entry.schema.keyColumns },
          estimated: estimate === null || estimate === undefined ? null : Number(estimate),
          chunks: [],
          planned: false,
          done: false,
          firstGiven: false,
        });
      }

      const resumable = this.config.snapshot === 'initial';
      let emitted = 0;
      /** What the chunks pushed so far let a restart skip: per table, the chunks done in key order, none missing. */
      const checkpoint = (): Checkpoint => {
        const done = copies.filter((c) => c.done).map((c) => c.name);
        if (!resumable) {
          return {
            pipeline: this.ctx.pipeline,
            phase: 'snapshot',
            position,
            state: { snapshot: { tablesDone: done } },
            sourceTimeMs: startedAt,
          };
        }
        const pending: TableProgress[] = [];
        for (const c of copies) {
          if (c.done) continue;
          let n = 0;
          let rows = 0;
          while (n < c.chunks.length && c.chunks[n]!.rows !== null) rows += c.chunks[n++]!.rows!;
          const lastKey = n > 0 && c.chunkTable.keyColumns.length > 0 ? c.chunks[n - 1]!.lastKey : null;
          pending.push(
            lastKey
              ? { table: c.name, lastKey: keyToState(lastKey), rows, chunks: n, key: [...c.chunkTable.keyColumns] }
              : { table: c.name, lastKey: null, rows: 0 },
          );
        }
        return {
          pipeline: this.ctx.pipeline,
          phase: 'stream',
          position,
          state: {
            ...this.history.toState(),
            snapshot: {
              tables: done,
              pending,
              emitted: ++emitted,
              replicates: this.configuredTables(),
              initial: true,
            },
          },
          sourceTimeMs: startedAt,
        };
      };

      // The chunks to read, in table order and key order, planned one at a time as readers ask. A table's truncate
      // goes into the batcher as its first chunk is handed out, before any of its rows.
      const planner = async function* (this: MysqlSource) {
        for (const [index, c] of copies.entries()) {
          // Known to the history from its copy's start on, as in the serial copy (checkpoints carry it from there).
          this.history.create(
            c.db,
            c.chunkTable.name,
            c.chunkTable.columns.map((col) => col.name),
            { delivered: true },
          );
          this.ctx.snapshotProgress?.start(c.name, c.estimated);
          this.ctx.logger.info(
            { event: 'snapshot_table_started', table: c.name, estimated_rows: c.estimated },
            'snapshot table started',
          );
          batcher.push(
            {
              op: 'truncate',
              table: c.schema.table,
              schema: c.schema,
              key: null,
              before: null,
              after: null,
              source: sourceInfo(c.db, index === 0 ? 'first' : 'true'),
              truncate: { cascade: false, restartIdentity: false },
            },
            100,
          );
          if (c.chunkTable.keyColumns.length === 0) {
            const [counted] = await planning.query(
              `SELECT COUNT(*) AS n FROM ${quoteIdent(c.db)}.${quoteIdent(c.chunkTable.name)}`,
            );
            const chunks = Math.max(1, Math.ceil(Number((counted as { n: unknown }[])[0]?.n ?? 0) / chunkRows));
            for (let i = 0; i < chunks; i++) {
              c.chunks.push({ after: null, offset: i * chunkRows, last: i === chunks - 1, rows: null, lastKey: null });
              if (i === chunks - 1) c.planned = true;
              yield { c, index: i };
            }
            continue;
          }
          let after: unknown[] | null = null;
          for (;;) {
            const bound = await chunkEnd(planning, c.chunkTable, after, chunkRows);
            const last = bound === null || bound.last;
            c.chunks.push({ after, offset: 0, last, rows: null, lastKey: null });
            if (last) c.planned = true;
            yield { c, index: c.chunks.length - 1 };
            if (last) break;
            after = bound.end;
          }
        }
      }.call(this);

      const lastCopy = copies[copies.length - 1];
      const othersCounted = (self: ChunkRecord) =>
        copies.every((c) => c.planned && c.chunks.every((k) => k === self || k.rows !== null));

      const reader = async (conn: mysql.Connection) => {
        for (;;) {
          if (stopping()) return;
          const next = await planner.next();
          if (next.done || stopping()) return;
          const { c, index } = next.value;
          const record = c.chunks[index]!;
          const keyCols = c.chunkTable.keyColumns;
          const readAt = Date.now();
          const chunk = await readChunk(conn, c.chunkTable, {
            after: record.after,
            limit: chunkRows,
            offset: record.offset,
          });
          this.ctx.logger.debug({
            event: 'snapshot_chunk_read',
            pipeline: this.ctx.pipeline,
            table: c.name,
            chunk: index,
            rows: chunk.rows.length,
            last: record.last,
            // The server's id of the reading connection, and when the read began: which reads ran at once.
            connection: conn.threadId,
            started_at_ms: readAt,
            ms: Date.now() - readAt,
          });
          const final = record.last && c === lastCopy;
          while (final && !othersCounted(record) && !stopping()) {
            // Woken by each chunk that goes out, and now and then to see a stop (close, drain, a failed batcher),
            // which the other readers leave on without a word.
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, 250);
              othersWaiter = () => {
                clearTimeout(timer);
                resolve();
              };
            });
          }
          while (batcher.wantsPause && !stopping()) await this.room(batcher);
          if (stopping()) return;
          // From here to the commit nothing waits: the chunk's rows go out together, and its checkpoint after them.
          const list = chunk.rows;
          for (const [i, after] of list.entries()) {
            let marker: SourceInfo['snapshot'] = 'true';
            if (!c.firstGiven) {
              c.firstGiven = true;
              marker = c === copies[0] ? 'first' : 'first_in_data_collection';
            } else if (record.last && i === list.length - 1) {
              marker = final ? 'last' : 'last_in_data_collection';
            }
            const key: Row | null =
              keyCols.length > 0 ? (Object.fromEntries(keyCols.map((k) => [k, after[k] ?? null])) as Row) : null;
            batcher.push(
              {
                op: 'read',
                table: c.schema.table,
                schema: c.schema,
                key,
                before: null,
                after,
                source: sourceInfo(c.db, marker),
              },
              estimateBytes(after) + 100,
            );
          }
          record.rows = list.length;
          record.lastKey = chunk.lastKey;
          this.ctx.snapshotProgress?.add(c.name, list.length);
          if (c.planned && c.chunks.every((k) => k.rows !== null)) {
            c.done = true;
            this.ctx.snapshotProgress?.finish(c.name);
            this.ctx.logger.info(
              {
                event: 'snapshot_table_done',
                table: c.name,
                rows: c.chunks.reduce((sum, k) => sum + (k.rows ?? 0), 0),
                chunks: c.chunks.length,
              },
              'snapshot table done',
            );
          }
          if (resumable || c.done) batcher.commit(checkpoint());
          wakeOthersWaiter();
        }
      };

      const running = conns.slice(1).map((conn) =>
        reader(conn)
          .catch((err: unknown) => {
            failed = true;
            this.wakeRoomWaiters();
            throw err;
          })
          .finally(wakeOthersWaiter),
      );
      const results = await Promise.allSettled(running);
      const rejected = results.find((r) => r.status === 'rejected');
      if (rejected) throw (rejected as PromiseRejectedResult).reason;
      if (stopping()) return null;
      for (const conn of conns) await conn.query('COMMIT');
      finished = true;
      this.incremental = this.newIncremental({ tables: copies.map((c) => c.name), pending: [], emitted: 0 });
      batcher.commit({
        pipeline: this.ctx.pipeline,
        phase: 'stream',
        position,
        state: { ...this.history.toState(), snapshot: this.incremental.snapshotState() },
        sourceTimeMs: startedAt,
      });
      batcher.end();
      this.ctx.logger.info(
        {
          event: 'snapshot_finished',
          tables: copies.length,
          ms: Date.now() - startedAt,
          parallelism: conns.length - 1,
        },
        'snapshot finished',
      );
      return coords;
    } catch (err) {
      batcher.fail(err);
      return null;
    } finally {
      // A copy that stopped midway may have reads running: closing their sockets ends them.
      for (const conn of conns) {
        if (finished) await conn.end().catch(() => undefined);
        else conn.destroy();
      }
    }
  }

  /** Table schema from INFORMATION_SCHEMA (snapshot, and statements that name a table). */
  private async describeTable(conn: mysql.Connection | null, db: string, name: string): Promise<TableEntry | null> {
    const c = conn ?? this.conn!;
    // The binlog can carry a DDL statement before the server has committed it to its data dictionary (MySQL sends
    // what is flushed to the binlog, ahead of the engine commit), so INFORMATION_SCHEMA may still show the table as it
    // was. The statement holds the table's metadata lock until it is done: taking it waits for that. Briefly: a later
    // DDL statement queued behind a user's long transaction would hold the probe as long (then the catalog is read).
    const probe = `1 FROM ${quoteIdent(db)}.${quoteIdent(name)} LIMIT 0`;
    await c
      .query(
        this.flavor === 'mariadb'
          ? `SET STATEMENT lock_wait_timeout = 10 FOR SELECT ${probe}`
          : `SELECT /*+ SET_VAR(lock_wait_timeout = 10) */ ${probe}`,
      )
      .catch(() => undefined);
    // Columns and key are read apart; MariaDB can replace the table's definition in between (TRUNCATE, a copying
    // ALTER): a key that disagrees with the columns' own key marks is read again rather than taken as "no key".
    let cols: { name: string; type: string; nullable: string; dflt: string | null; extra: string | null; ck: string }[];
    let keys: string[];
    for (let attempt = 1; ; attempt++) {
      const [colRows] = await c.query(
        'SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, IS_NULLABLE AS nullable, COLUMN_DEFAULT AS dflt, ' +
          'EXTRA AS extra, COLUMN_KEY AS ck FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ' +
          'ORDER BY ORDINAL_POSITION',
        [db, name],
      );
      cols = colRows as typeof cols;
      if (cols.length === 0) return null;
      const [keyRows] = await c.query(
        'SELECT INDEX_NAME AS idx, COLUMN_NAME AS name FROM information_schema.STATISTICS ' +
          'WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX',
        [db, name],
      );
      const unique = new Map<string, string[]>();
      for (const r of keyRows as { idx: string; name: string }[])
        unique.set(r.idx, [...(unique.get(r.idx) ?? []), r.name]);
      keys = unique.get('PRIMARY') ?? [];
      // COLUMN_KEY says PRI for the primary key, or, without one, for a unique index of NOT NULL columns.
      const marked = cols.filter((r) => r.ck === 'PRI').map((r) => r.name);
      const agree =
        [...unique.values()].some((k) => k.length === marked.length && marked.every((m) => k.includes(m))) ||
        (marked.length === 0 && keys.length === 0);
      if (agree || attempt >= CATALOG_SETTLE_READS) break;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
    const json = await this.jsonColumns(c, db, name);
    const entry = buildEntry(
      db,
      name,
      cols.map((r) => ({ name: r.name, type: normalizeColumnType(r.type), nullable: r.nullable === 'YES' })),
      keys,
      json,
    );
    entry.facts = new Map(
      cols.map((r, i) => [
        r.name.toLowerCase(),
        {
          name: r.name,
          type: entry.columns[i]!.type,
          kind: entry.columns[i]!.kind,
          nullable: r.nullable === 'YES',
          columnDefault: r.dflt === null ? null : String(r.dflt),
          extra: String(r.extra ?? ''),
        },
      ]),
    );
    if (this.flavor === 'mysql') await useMysqlTimestampDefaults(c, db, name, entry.facts);
    return entry;
  }

  /** MariaDB's JSON is LONGTEXT with a json_valid() check; that check marks the column as json. */
  private async jsonColumns(c: mysql.Connection, db: string, name: string): Promise<Set<string>> {
    if (this.flavor !== 'mariadb') return new Set();
    try {
      const [rows] = await c.query(
        'SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?',
        [db, name],
      );
      const out = new Set<string>();
      for (const r of rows as { clause: string }[]) {
        for (const m of String(r.clause).matchAll(/json_valid\(`((?:[^`]|``)+)`\)/gi))
          out.add(m[1]!.replace(/``/g, '`'));
      }
      return out;
    } catch {
      return new Set();
    }
  }

  /**
   * The table a TRUNCATE read from the stream empties, with the columns the stream has reached: the catalog can be
   * ahead (a column added after the TRUNCATE), and a target that took such a column here would hold it when the
   * ALTER is read, so rows written in between would keep NULL instead of the column's default.
   */
  private async truncatedSchema(db: string, name: string): Promise<TableSchema | null> {
    const entry = await this.settledInfo(db, name);
    const schema = entry?.schema ?? this.lastSchemas.get(`${db}.${name}`);
    const known = this.history.get(db, name);
    if (!schema || !known || known.partial) return schema ?? null;
    const reached = new Set(known.columns.map((c) => c.name.toLowerCase()));
    const columns = schema.columns.filter((c) => reached.has(c.name.toLowerCase()));
    return columns.length === schema.columns.length ? schema : { ...schema, columns };
  }

  /**
   * The catalog's entry of a table the stream just showed to exist (rows of it, a TRUNCATE of it). MariaDB leaves a
   * table out of INFORMATION_SCHEMA while a statement replaces its definition (TRUNCATE, a copying ALTER), so a table
   * not found is looked at again briefly before it counts as gone (dropped or renamed further on in the stream).
   */
  private async settledInfo(db: string, name: string): Promise<TableEntry | null> {
    let info = await this.cachedInfo(db, name);
    for (let attempt = 1; !info && attempt <= CATALOG_SETTLE_READS; attempt++) {
      await new Promise((r) => setTimeout(r, 50 * attempt));
      this.infoCache.delete(`${db}.${name}`);
      info = await this.cachedInfo(db, name);
    }
    return info;
  }

  private cachedInfo(db: string, name: string): Promise<TableEntry | null> {
    const id = `${db}.${name}`;
    let p = this.infoCache.get(id);
    if (!p) {
      p = this.describeTable(null, db, name).then((entry) => {
        if (entry) this.lastSchemas.set(id, entry.schema);
        return entry;
      });
      this.infoCache.set(id, p);
    }
    return p;
  }

  private async streamEntry(table: BinlogTable): Promise<TableEntry> {
    const cached = this.streamTables.get(table);
    // A statement that changed the table's history without a new table map (none should) makes a new entry too.
    if (cached && cached.known === this.history.get(table.database, table.name)?.columns) return cached;
    const id = `${table.database}.${table.name}`;
    let info = await this.settledInfo(table.database, table.name);
    const names = table.columns.map((c) => c.name);
    const target = this.history.get(table.database, table.name)?.delivered;
    const fit = this.history.fitTableMap(table.database, table.name, table.columns);
    // A type change no MODIFY / CHANGE the pipeline read told (or told otherwise): found here, at its first rows.
    for (const change of fit.retyped) this.followRetype(table.database, table.name, change, 'table map');
    if (!fit.firstSeen && target && (fit.added.length > 0 || fit.removed.length > 0)) {
      // The layout changed by a statement not understood as ALTER TABLE: taken by name.
      this.ctx.logger.warn(
        {
          event: 'source_columns_changed_by_unread_statement',
          table: id,
          added: fit.added,
          dropped: fit.removed,
          hint: `a column renamed by such a statement reaches the target as dropped and added (its values read NULL there): re-snapshot ${id} if one was`,
        },
        `the columns of ${id} changed without an ALTER TABLE the pipeline understood: taken as added ${fit.added.join(', ') || 'none'}, dropped ${fit.removed.join(', ') || 'none'}`,
      );
      const fresh = fit.added.filter((n) => !this.addedColumns.get(id)?.has(n));
      if (fresh.length > 0) {
        if (fresh.some((n) => !info?.facts?.has(n.toLowerCase()))) {
          this.infoCache.delete(id);
          info = await this.cachedInfo(table.database, table.name);
        }
        this.resolveAddedColumns({ db: table.database, name: table.name }, fresh, info, false);
      }
    }
    const pending = this.pendingAdded.get(id);
    if (pending) {
      // Rows written before the rename that took the table out of the catalog: its added columns reach the target
      // now, before the catalog could say what existing rows read.
      for (const c of [...pending]) {
        if (!names.includes(c)) continue;
        pending.delete(c);
        const w = this.unfollowable.get(id) ?? new Set<string>();
        this.unfollowable.set(id, w);
        w.add(c);
        const why =
          'the catalog did not show the column when the pipeline read the ALTER TABLE (the table was renamed, or altered again, meanwhile), and rows were written in between';
        // Copied under this name, which the request follows through the RENAME further on in the stream.
        if (this.copyAgain(id, c, why)) continue;
        this.ctx.logger.warn(
          {
            event: 'source_column_added_existing_value_unknown',
            table: id,
            column: c,
            reason: why,
            hint: `re-snapshot ${id} (or fill ${c} on the target)`,
          },
          `column ${c} added to ${id}: the value existing rows read is not known (existing rows at the target read NULL)`,
        );
      }
      if (pending.size === 0) this.pendingAdded.delete(id);
    }
    const added = this.addedColumns.get(id);
    if (added) {
      for (const c of [...added.keys()]) if (!names.includes(c)) added.delete(c); // dropped again
      if (added.size === 0) this.addedColumns.delete(id);
    }
    // Columns the target has that the table no longer has, or has under another name, by identity: the target drops
    // and renames them (by the names it has) before it adds new ones. One added under a dropped column's name is new.
    const changes = this.history.changesSinceDelivered(table.database, table.name);
    const droppedNames = new Set(changes.flatMap((c) => (c.kind === 'drop' ? [c.column.toLowerCase()] : [])));
    const keys = table.primaryKey ?? info?.schema.keyColumns ?? this.lastSchemas.get(id)?.keyColumns ?? [];
    const json = new Set(info?.columns.filter((c) => c.kind === 'json').map((c) => c.name) ?? []);
    const nullable = new Map(info?.schema.columns.map((c) => [c.name, c.nullable]) ?? []);
    const entry = buildEntry(
      table.database,
      table.name,
      table.columns.map((c) => ({ name: c.name, type: c.type, nullable: nullable.get(c.name) })),
      keys,
      json,
      this.addedColumns.get(id),
      droppedNames,
    );
    if (changes.length > 0) entry.schema.changes = changes;
    this.markRetyped(id, entry.schema);
    const known = this.history.get(table.database, table.name)!;
    entry.known = known.columns;
    entry.delivers = !sameColumns(known.delivered, known.columns);
    this.streamTables.set(table, entry);
    this.lastSchemas.set(id, entry.schema);
    return entry;
  }

  /**
   * The entry a copied chunk goes out with: its columns as read, with what the stream would add to a row of the table
   * at this point (the value existing rows read for columns added since the target last got the table, the renames
   * and drops it has not got yet), so the copy is never the first to bring the target a shape without them.
   */
  private copyEntry(read: TableSchema): TableEntry {
    const { schema: db, name } = read.table;
    const id = `${db}.${name}`;
    const changes = this.history.changesSinceDelivered(db, name);
    const droppedNames = new Set(changes.flatMap((c) => (c.kind === 'drop' ? [c.column.toLowerCase()] : [])));
    const entry = buildEntry(
      db,
      name,
      read.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable })),
      read.keyColumns,
      new Set(read.columns.filter((c) => c.kind === 'json').map((c) => c.name)),
      this.addedColumns.get(id),
      droppedNames,
    );
    if (changes.length > 0) entry.schema.changes = changes;
    this.markRetyped(id, entry.schema);
    const known = this.history.get(db, name);
    if (known) {
      entry.known = known.columns;
      entry.delivers = !sameColumns(known.delivered, known.columns);
    }
    return entry;
  }

  /**
   * Decides what existing rows read for columns just added to a table, from the catalog as it is now (read when the
   * ALTER TABLE event is processed, not as of its binlog position). `overwrite`: the statement added the column
   * (ADD COLUMN), so an earlier decision for a column of that name is stale.
   */
  private resolveAddedColumns(
    t: DdlTable,
    names: string[],
    info: TableEntry | null,
    overwrite: boolean,
    declared?: Map<string, DeclaredDefault>,
  ): string[] {
    const id = `${t.db}.${t.name}`;
    const declaredByLower = new Map([...(declared ?? [])].map(([n, d]) => [n.toLowerCase(), d]));
    const missing: string[] = [];
    for (const n of names) {
      const fact = info?.facts?.get(n.toLowerCase());
      if (!fact) {
        missing.push(n); // no longer in the catalog under this name (renamed or dropped by a later statement)
        continue;
      }
      const col = fact.name;
      const added = this.addedColumns.get(id);
      const warned = this.unfollowable.get(id);
      if (!overwrite && (added?.has(col) || warned?.has(col))) continue;
      added?.delete(col);
      warned?.delete(col);
      // The statement's own default wins over a catalog a later statement changed (see existingRowsValueAtAdd).
      let r = existingRowsValueAtAdd(fact, declaredByLower.get(n.toLowerCase()), this.flavor);
      if ('unknown' in r && r.catalog !== undefined && !this.canCopyAgain()) {
        this.ctx.logger.warn(
          { event: 'source_column_added_existing_value_uncertain', table: id, column: col, reason: r.unknown },
          `column ${col} added to ${id}: existing rows are given the catalog's default (${r.unknown}); with snapshot: never the table cannot be copied again to be sure`,
        );
        r = { value: r.catalog };
      }
      if ('value' in r) {
        const m = this.addedColumns.get(id) ?? new Map<string, string | null>();
        this.addedColumns.set(id, m);
        m.set(col, r.value);
        this.ctx.logger.info(
          { event: 'source_column_added', table: id, column: col, existing_rows_value: r.value },
          `column ${col} added to ${id}; existing rows read ${r.value === null ? 'NULL' : 'its default'}`,
        );
        continue;
      }
      const w = this.unfollowable.get(id) ?? new Set<string>();
      this.unfollowable.set(id, w);
      w.add(col);
      if (this.copyAgain(id, col, 'volatile' in r ? r.volatile : r.unknown)) continue;
      if ('volatile' in r) {
        this.ctx.logger.warn(
          {
            event: 'source_column_added_with_volatile_default',
            table: id,
            column: col,
            reason: r.volatile,
            hint: `existing rows of ${id} got per-row or per-statement values for ${col} that the binlog does not carry; re-snapshot the table (or fill the column on the target)`,
          },
          `column ${col} added to ${id} with a non-constant default (${r.volatile}): existing rows at the target will read NULL`,
        );
      } else {
        this.ctx.logger.warn(
          {
            event: 'source_column_added_existing_value_unknown',
            table: id,
            column: col,
            reason: r.unknown,
            hint: `re-snapshot ${id} (or fill ${col} on the target)`,
          },
          `column ${col} added to ${id}: the value existing rows read is not known (${r.unknown})`,
        );
      }
    }
    return missing;
  }

  /**
   * Existing rows of `id` got values for the added column `col` that the binlog does not carry: the table's rows are
   * copied again by the incremental snapshot, from this point of the stream on (its reads see the column). False when
   * the pipeline copies nothing (`snapshot: never`): the caller warns that those rows read NULL at the target.
   */
  private canCopyAgain(): boolean {
    return this.incremental !== null && this.batcher !== null && this.config.snapshot !== 'never';
  }

  private copyAgain(id: string, col: string, reason: string): boolean {
    const incremental = this.incremental;
    const batcher = this.batcher;
    if (!incremental || !batcher || !this.canCopyAgain()) return false;
    this.ctx.logger.warn(
      {
        event: 'incremental_snapshot_requested',
        table: id,
        column: col,
        reason: `column ${col} added with a value for existing rows the binlog does not carry (${reason})`,
      },
      `column ${col} added to ${id}: existing rows got values the binlog does not carry (${reason}); the table is copied again`,
    );
    incremental.request(id);
    incremental.ensureRunning((err) => batcher.fail(err));
    return true;
  }

  /**
   * A column's type changed (`via`: read in a MODIFY / CHANGE, or told by a table map). The server converted the
   * values existing rows hold without writing them to the binlog: unless the change keeps every value (a widening, see
   * keepsValues), the table is copied again by the incremental snapshot from this point of the stream, with the
   * column marked `retyped` until the copy is done, so the target takes the new type even where old values would not
   * convert (the copy replaces them). A type not known before the statement counts as changing values. With
   * `snapshot: never` nothing is copied: a warning names the table, the column and the fix.
   */
  private followRetype(db: string, name: string, change: TypeChange, via: 'statement' | 'table map'): void {
    const { column, from, to } = change;
    if (!this.included(db, name)) return;
    if (from !== undefined && to !== null && keepsValues(from, to)) return;
    const id = `${db}.${name}`;
    // The statement's definition said so already, in its own spelling.
    if (via === 'table map' && this.incremental?.retypedColumns(id)?.includes(column)) return;
    const what =
      from === undefined
        ? `column ${column} was redefined as ${to ?? 'a type not read'} (its type before is not known)`
        : `column ${column} changed type from ${from} to ${to ?? 'a type not read'}`;
    const reason = `${what}${via === 'table map' ? ' (told by the binlog table map)' : ''}, which may rewrite the values existing rows hold without the binlog carrying them`;
    const incremental = this.incremental;
    const batcher = this.batcher;
    if (incremental && batcher && this.config.snapshot !== 'never') {
      this.ctx.logger.warn(
        { event: 'incremental_snapshot_requested', table: id, column, from: from ?? null, to, reason },
        `${id}: ${reason}; the table is copied again`,
      );
      incremental.request(id, undefined, [column]);
      incremental.ensureRunning((err) => batcher.fail(err));
      return;
    }
    this.ctx.logger.warn(
      {
        event: 'source_column_retyped_not_copied',
        table: id,
        column,
        from: from ?? null,
        to,
        hint: `copy the table again: tributary snapshot --pipeline ${this.ctx.pipeline} --table ${id} (a target column that cannot take the new type must be changed there by hand first)`,
      },
      `${id}: ${reason}; with snapshot: never the table is not copied again, so the target may keep the old values of ${column}`,
    );
  }

  /** Marks the columns a pending copy of the table follows a type change of (see followRetype). */
  private markRetyped(id: string, schema: TableSchema): void {
    const retyped = this.incremental?.retypedColumns(id);
    if (!retyped) return;
    const names = new Set(retyped.map((c) => c.toLowerCase()));
    for (const c of schema.columns) if (names.has(c.name.toLowerCase())) c.retyped = true;
  }

  /**
   * The events standing for the renames of a statement, in order: a replicated table renamed to a replicated name is a
   * schema-change event of the new name with `renamedFrom` (the target renames its table); one renamed out of the
   * replicated tables is emptied at the target, as if dropped. A table renamed into the replicated tables brings rows
   * the pipeline never copied: that stops the pipeline.
   */
  private async renameEvents(
    ddl: TableDdl,
    ev: StatementEvent,
    at: Extract<SourceInfo['position'], { kind: 'mysql' }>,
  ): Promise<ChangeEvent[]> {
    const out: ChangeEvent[] = [];
    for (const [i, r] of ddl.renames.entries()) {
      const fromIn = this.included(r.from.db, r.from.name);
      const toIn = this.included(r.to.db, r.to.name);
      const fromId = `${r.from.db}.${r.from.name}`;
      const toId = `${r.to.db}.${r.to.name}`;
      const position = { ...at, row: i };
      if (!fromIn && !toIn) continue;
      if (!fromIn) {
        // Its rows were never copied: the incremental snapshot copies them from this point of the stream on (its
        // first chunk empties the target table, which may hold a table dropped under that name).
        const incremental = this.incremental;
        const batcher = this.batcher;
        if (!incremental || !batcher || this.config.snapshot === 'never') {
          throw new TributaryError(
            'operator',
            `table ${toId} is replicated, but it was renamed from ${fromId}, which is not, at the source (${ev.file}:${at.pos}): the rows it had then were never copied`,
            {
              hint: `with snapshot: never the pipeline copies no rows: leave ${toId} out of source.tables, or set snapshot: initial and run \`tributary teardown\` for the pipeline to start it over`,
            },
          );
        }
        this.ctx.logger.info(
          { event: 'incremental_snapshot_requested', table: toId, reason: `renamed from ${fromId}, not replicated` },
          `table ${fromId} renamed to ${toId}, which is replicated: its rows are copied while streaming`,
        );
        incremental.request(toId);
        incremental.ensureRunning((err) => batcher.fail(err));
        continue;
      }
      // For emptying the table at the target: its shape last read, or (not read since the start) the key columns of
      // the catalog's table, which the target checks (other columns reach the target with the next rows).
      const known = this.lastSchemas.get(fromId);
      let schema = known;
      if (!schema) {
        const now = (await this.cachedInfo(r.to.db, r.to.name))?.schema;
        if (now) {
          const keys = now.columns.filter((c) => now.keyColumns.includes(c.name));
          schema = { ...now, columns: keys.length > 0 ? keys : now.columns };
        }
      }
      this.lastSchemas.delete(fromId);
      const fromRef = { schema: r.from.db, name: r.from.name };
      if (!toIn) {
        if (schema) out.push(droppedTableEvent(r.from, { ...schema, table: fromRef }, ev, position));
        else this.droppedUnseen.add(fromId);
        continue;
      }
      // A table dropped earlier under either name whose emptying is still due at the target: emptied first (or,
      // its shape unknown, the old name's emptying moves with the table).
      for (const [id, t] of [
        [fromId, r.from],
        [toId, r.to],
      ] as const) {
        if (schema && this.droppedUnseen.delete(id))
          out.push(droppedTableEvent(t, { ...schema, table: { schema: t.db, name: t.name } }, ev, position));
      }
      if (this.droppedUnseen.delete(fromId)) this.droppedUnseen.add(toId);
      const ref = { schema: r.to.db, name: r.to.name };
      if (known) this.lastSchemas.set(toId, { ...known, table: ref, changes: undefined, renamedFrom: undefined });
      else this.lastSchemas.delete(toId);
      const e = ddlEvent(ev, r.to, position);
      // The target renames its table by the names alone; the table's shape comes with its next rows.
      out.push({ ...e, schema: { ...e.schema, renamedFrom: fromRef } });
      this.ctx.logger.info(
        { event: 'source_table_renamed', table: toId, renamed_from: fromId },
        `table ${fromId} renamed to ${toId} at the source`,
      );
    }
    return out;
  }

  /** Rows inserted into the signal table (`tributary snapshot`): requests addressed to this pipeline are taken. */
  private takeSignals(rows: RawRow[], batcher: CommitBatcher): void {
    const text = (v: unknown) => (Buffer.isBuffer(v) ? v.toString('utf8') : v == null ? '' : String(v));
    for (const raw of rows) {
      if (text(raw.pipeline) !== this.ctx.pipeline || text(raw.kind) !== SNAPSHOT_SIGNAL) continue;
      let request: { table?: unknown; where?: unknown };
      try {
        request = JSON.parse(text(raw.data));
      } catch {
        request = {};
      }
      const table = typeof request.table === 'string' ? request.table : '';
      const dot = table.indexOf('.');
      if (dot <= 0 || !this.included(table.slice(0, dot), table.slice(dot + 1))) {
        this.ctx.logger.warn(
          { event: 'snapshot_request_ignored', request: text(raw.data) },
          `snapshot request ignored: ${table || 'no table'} is not replicated by pipeline ${this.ctx.pipeline}`,
        );
        continue;
      }
      const where = typeof request.where === 'string' && request.where !== '' ? request.where : undefined;
      this.ctx.logger.info(
        { event: 'incremental_snapshot_requested', table, where: where ?? null, reason: 'snapshot request' },
        `re-snapshot of ${table} requested`,
      );
      this.incremental?.request(table, where);
      this.incremental?.ensureRunning((err) => batcher.fail(err));
    }
  }

  /**
   * What a table DDL statement means for the incremental snapshot: a chunk read across it is read again, and a table
   * created (or renamed from a replicated one) while streaming has all its rows in the stream, so it counts as copied.
   */
  private followCopies(ddl: TableDdl): void {
    const incremental = this.incremental;
    if (!incremental) return;
    incremental.observeDdl(ddl.tables.map((t) => `${t.db}.${t.name}`));
    if (ddl.kind === 'create') {
      for (const t of ddl.tables) if (this.included(t.db, t.name)) incremental.followed(`${t.db}.${t.name}`);
    }
    for (const r of ddl.renames) {
      if (this.included(r.from.db, r.from.name) && this.included(r.to.db, r.to.name))
        incremental.followed(`${r.to.db}.${r.to.name}`);
    }
  }

  /** Follows a table DDL statement: the schema history, added columns, renamed and dropped tables. */
  private async followDdl(ddl: TableDdl): Promise<void> {
    const forget = (id: string) => {
      this.addedColumns.delete(id);
      this.unfollowable.delete(id);
      this.pendingAdded.delete(id);
    };
    const move = (from: string, to: string) => {
      forget(to);
      const added = this.addedColumns.get(from);
      const warned = this.unfollowable.get(from);
      const pending = this.pendingAdded.get(from);
      forget(from);
      if (pending) this.pendingAdded.set(to, pending);
      if (added) this.addedColumns.set(to, added);
      if (warned) this.unfollowable.set(to, warned);
    };
    if (ddl.kind === 'create') {
      const t = ddl.tables[0]!;
      // CREATE TABLE IF NOT EXISTS of a table the history has changes nothing.
      if (ddl.ifNotExists && this.history.get(t.db, t.name)) return;
      forget(`${t.db}.${t.name}`);
      const like = ddl.likeTable && this.history.get(ddl.likeTable.db, ddl.likeTable.name);
      const columns = ddl.createdColumns ?? (like && !like.partial ? like.columns.map((c) => c.name) : undefined);
      // A table created again is a new table; one whose columns the text does not tell is known from its first rows.
      if (columns && this.included(t.db, t.name)) this.history.create(t.db, t.name, columns);
      else this.history.drop(t.db, t.name);
      return;
    }
    if (ddl.kind === 'drop') {
      for (const t of ddl.tables) {
        forget(`${t.db}.${t.name}`);
        this.history.drop(t.db, t.name);
      }
      return;
    }
    if (ddl.kind === 'alter') {
      const t = ddl.tables[0]!;
      const final = ddl.renames[ddl.renames.length - 1]?.to ?? t;
      const id = `${t.db}.${t.name}`;
      // A pending copy's retyped columns go by the names the columns have after the statement.
      if (ddl.renamedColumns.length > 0) this.incremental?.renameRetyped(id, ddl.renamedColumns);
      const retyped = this.included(t.db, t.name) ? this.history.alter(t.db, t.name, ddl) : [];
      for (const change of retyped) this.followRetype(final.db, final.name, change, 'statement');
      // Added columns waiting for their existing rows' value follow renames of their name; dropped ones are done.
      const pending = this.pendingAdded.get(id) ?? new Set<string>();
      for (const c of ddl.droppedColumns) pending.delete(c);
      if (ddl.renamedColumns.length > 0 && this.included(t.db, t.name)) {
        const to = new Map(ddl.renamedColumns.map((r) => [r.from.toLowerCase(), r.to]));
        const renamed = (n: string) => to.get(n.toLowerCase());
        const added = this.addedColumns.get(id);
        // Not yet at the target: the added column reaches it under its new name.
        if (added) {
          const next = new Map<string, string | null>();
          for (const [c, v] of added) next.set(renamed(c) ?? c, v);
          this.addedColumns.set(id, next);
        }
        for (const c of [...pending]) {
          const n = renamed(c);
          if (n === undefined) continue;
          pending.delete(c);
          pending.add(n);
        }
      }
      if (ddl.addedColumns.length > 0 && this.included(final.db, final.name)) {
        const info = await this.cachedInfo(final.db, final.name);
        let missing = this.resolveAddedColumns(t, ddl.addedColumns, info, true, ddl.addedDefaults);
        // While another ALTER of the table runs, the catalog can show the table without the column, or not at all
        // (seen with MariaDB: INFORMATION_SCHEMA skips a table whose definition is being replaced, and the lock probe
        // does not wait for that statement's early phase). Read again briefly before a later rename or drop is assumed.
        for (let attempt = 1; missing.length > 0 && attempt <= CATALOG_SETTLE_READS; attempt++) {
          await new Promise((r) => setTimeout(r, 50 * attempt));
          this.infoCache.delete(`${final.db}.${final.name}`);
          const again = await this.cachedInfo(final.db, final.name);
          missing = this.resolveAddedColumns(t, missing, again, true, ddl.addedDefaults);
        }
        // Not in the catalog under this name: renamed (or dropped) by a statement further on.
        for (const c of missing) pending.add(c);
      }
      if (pending.size > 0) this.pendingAdded.set(id, pending);
      else this.pendingAdded.delete(id);
      if (ddl.renamedColumns.length > 0 && pending.size > 0 && this.included(final.db, final.name))
        await this.resolvePending(t, final);
    }
    for (const r of ddl.renames) {
      move(`${r.from.db}.${r.from.name}`, `${r.to.db}.${r.to.name}`);
      this.incremental?.renamed(`${r.from.db}.${r.from.name}`, `${r.to.db}.${r.to.name}`);
      if (this.included(r.to.db, r.to.name)) this.history.rename(r.from, r.to);
      else this.history.drop(r.from.db, r.from.name);
    }
    for (const r of ddl.renames) if (this.included(r.to.db, r.to.name)) await this.resolvePending(r.to, r.to);
  }

  /**
   * Added columns whose value for existing rows waits for the catalog (`t`'s entry, looked up under `at`, the name
   * the table has after the statement): those the catalog now has are decided.
   */
  private async resolvePending(t: DdlTable, at: DdlTable): Promise<void> {
    const id = `${t.db}.${t.name}`;
    const pending = this.pendingAdded.get(id);
    if (!pending) return;
    const info = await this.cachedInfo(at.db, at.name);
    if (!info) return; // renamed again further on
    const found = [...pending].filter((c) => info.facts?.has(c.toLowerCase()));
    for (const c of found) pending.delete(c);
    if (pending.size === 0) this.pendingAdded.delete(id);
    this.resolveAddedColumns(t, found, info, true);
  }

  /** Stream checkpoint state: added columns not yet delivered with a row of their table. */
  private addedColumnsState(): Record<string, Record<string, string | null>> | undefined {
    if (this.addedColumns.size === 0) return undefined;
    const out: Record<string, Record<string, string | null>> = {};
    for (const [id, cols] of this.addedColumns) out[id] = Object.fromEntries(cols);
    return out;
  }

  // ---- streaming ------------------------------------------------------------------------------------------

  /**
   * Decodes the binlog into `batcher` until closed (then ends it) or a failure (then fails it: no checkpoint of
   * anything after the failure, or of the transaction it interrupted, reaches the pipeline).
   */
  private async stream(reader: BinlogReader, batcher: CommitBatcher): Promise<void> {
    // Where reading started (the reader may have decoded ahead before this generator first runs). After a start by
    // GTID set the checkpoint's file+offset may not even be of this server: each group's begin tells its own.
    let txStart =
      this.streamFrom && !this.streamFrom.byGtid
        ? { file: this.streamFrom.file, pos: this.streamFrom.pos }
        : { file: '', pos: UNKNOWN_POS };
    /** Entries whose rows in the open transaction bring the target added columns or a shape it does not have yet. */
    const delivering = new Set<TableEntry>();
    const checkpointOf = (e: { file: string; pos: number; gtidSet?: string; timestampMs: number }): Checkpoint => {
      // The rows of the committing transaction carry their shape to the target, added columns (and the value existing
      // rows read for them), renames and drops included: the history says the target has it, nothing is kept for it.
      for (const entry of delivering) {
        const { schema, name } = entry.schema.table;
        const m = this.addedColumns.get(tableId(entry.schema.table));
        if (m) {
          for (const c of entry.withMissing ?? []) m.delete(c);
          if (m.size === 0) this.addedColumns.delete(tableId(entry.schema.table));
        }
        if (entry.known) this.history.markDelivered(schema, name, entry.known);
      }
      delivering.clear();
      const addedColumns = this.addedColumnsState();
      const droppedTables = this.droppedUnseen.size > 0 ? [...this.droppedUnseen] : undefined;
      const pendingAddedColumns =
        this.pendingAdded.size > 0
          ? Object.fromEntries([...this.pendingAdded].map(([id, cols]) => [id, [...cols]]))
          : undefined;
      const snapshot = this.incremental?.snapshotState();
      return {
        pipeline: this.ctx.pipeline,
        phase: 'stream',
        position: { kind: 'mysql', file: e.file, pos: e.pos, gtidSet: e.gtidSet || undefined },
        state: {
          ...this.history.toState(),
          addedColumns,
          droppedTables,
          pendingAddedColumns,
          snapshot,
        },
        sourceTimeMs: e.timestampMs,
      };
    };
    /** Where the stream is between transactions: the incremental snapshot's chunks go out there. */
    let streamAt: StreamPoint = this.streamFrom
      ? { file: this.streamFrom.file, pos: this.streamFrom.pos, gtidSet: this.streamFrom.gtidSet || undefined }
      : { file: '', pos: 0 };
    let lastCommitMs = Date.now();
    /** Events of a transaction whose commit has not come yet were pushed. */
    let inTransaction = false;
    const snapshotBoundary = () => {
      const events = this.incremental?.boundary(streamAt);
      if (!events) return;
      if (events.length > 0) {
        // The copy reaches the target with the shape the stream would give a row of the table here.
        const entry = this.copyEntry(events[0]!.schema);
        for (const e of events) e.schema = entry.schema;
        if (entry.withMissing || entry.delivers) delivering.add(entry);
      }
      for (const e of events) batcher.push(e, estimateBytes(e.after) + 100);
      batcher.commit(checkpointOf({ ...streamAt, timestampMs: lastCommitMs }));
    };
    /**
     * A commit point (after a commit, or a statement that is its own transaction) at `e.pos`; none when the reader
     * could not tell the offset (the next commit point covers this one).
     */
    const commitPoint = (e: { file: string; pos: number | undefined; gtidSet?: string; timestampMs: number }) => {
      inTransaction = false;
      if (e.pos === undefined) return;
      batcher.commit(checkpointOf({ ...e, pos: e.pos }));
      streamAt = { file: e.file, pos: e.pos, gtidSet: e.gtidSet || undefined };
      lastCommitMs = e.timestampMs;
      snapshotBoundary();
    };
    try {
      while (!this.closed && !this.draining && !batcher.isFailed) {
        if (batcher.wantsPause) await this.room(batcher);
        let ev: BinlogEvent | null | undefined;
        try {
          ev = await reader.next(250);
        } catch (err) {
          if (isPurgedBinlogError(err) && this.streamFrom) {
            const logs = this.conn ? await binaryLogs(this.conn).catch(() => []) : [];
            throw new PurgedBinlogError(this.streamFrom, logs[0]?.name, err);
          }
          throw err;
        }
        if (ev === null) break;
        if (ev === undefined) {
          // Idle: a chunk whose position the stream has passed need not wait for the next transaction.
          if (!inTransaction) snapshotBoundary();
          continue;
        }
        switch (ev.type) {
          case 'begin':
            txStart = { file: ev.file, pos: ev.pos };
            inTransaction = true;
            break;
          case 'rows': {
            const t = ev.table;
            if (this.tables.isSignalTable(t.database, t.name)) {
              if (ev.op === 'insert') this.takeSignals(ev.rows as RawRow[], batcher);
              break;
            }
            if (!this.included(t.database, t.name)) break;
            const entry = await this.streamEntry(t);
            if (entry.withMissing || entry.delivers) delivering.add(entry);
            // Per row: only what differs between rows is computed (one pass over the columns per image).
            const { op, rows, gtid, timestampMs } = ev;
            const decoder = entry.decoder;
            const schema = entry.schema;
            const table = schema.table;
            const db = t.database;
            const file = txStart.file || ev.file;
            const pos = txStart.pos;
            const serverId = this.serverId;
            const last = rows.length - 1;
            inTransaction = true;
            const copying = this.incremental?.watches(`${db}.${t.name}`) ? this.incremental : null;
            const tx = { file, pos, gtid };
            if (this.droppedUnseen.delete(tableId(table))) {
              const at = { kind: 'mysql' as const, file, pos, gtid, serverId, row: 0 };
              batcher.push(droppedTableEvent({ db, name: t.name }, schema, ev, at), 100);
            }
            for (let i = 0; i <= last; i++) {
              let before: Row | null = null;
              let after: Row | null = null;
              let bytes = 200;
              if (op === 'insert') {
                after = decoder.decode(rows[i] as RawRow);
                bytes += decoder.bytes;
              } else if (op === 'delete') {
                before = decoder.decode(rows[i] as RawRow);
                bytes += decoder.bytes;
              } else {
                const r = rows[i] as { before: RawRow; after: RawRow };
                before = decoder.decode(r.before);
                bytes += decoder.bytes;
                after = decoder.decode(r.after);
                bytes += decoder.bytes;
              }
              const event: ChangeEvent = {
                op,
                table,
                schema,
                key: decoder.key((after ?? before)!),
                before,
                after,
                source: {
                  connector: 'mysql',
                  db,
                  position: { kind: 'mysql', file, pos, gtid, serverId, row: i },
                  txId: gtid,
                  commitTimeMs: timestampMs,
                  snapshot: false,
                },
              };
              batcher.push(event, bytes);
              copying?.observeRow(`${db}.${t.name}`, before, after, tx);
            }
            break;
          }
          case 'commit': {
            commitPoint(ev);
            txStart = { file: ev.file, pos: ev.pos ?? UNKNOWN_POS };
            break;
          }
          case 'statement': {
            const truncated = parseTruncate(ev.query, ev.database);
            if (truncated && this.included(truncated.db, truncated.name)) {
              this.incremental?.observeTruncate(`${truncated.db}.${truncated.name}`);
              const schema = await this.truncatedSchema(truncated.db, truncated.name);
              // Not known at all (dropped further on before any row of it was read): emptied before its next rows.
              if (!schema) this.droppedUnseen.add(`${truncated.db}.${truncated.name}`);
              else {
                batcher.push(
                  {
                    op: 'truncate',
                    table: schema.table,
                    schema,
                    key: null,
                    before: null,
                    after: null,
                    source: {
                      connector: 'mysql',
                      db: truncated.db,
                      position: {
                        kind: 'mysql',
                        file: ev.file,
                        pos: txStart.pos,
                        gtid: ev.gtid,
                        serverId: this.serverId,
                        row: 0,
                      },
                      txId: ev.gtid,
                      commitTimeMs: ev.timestampMs,
                      snapshot: false,
                    },
                    truncate: { cascade: false, restartIdentity: false },
                  },
                  100,
                );
              }
            } else if (isDdl(ev.query)) {
              // Column layouts come from each TableMap event; only the INFORMATION_SCHEMA extras are cached.
              this.infoCache.clear();
              const ddl = parseTableDdl(ev.query, ev.database);
              if (ddl) {
                this.followCopies(ddl);
                const replicated = ddl.tables.find((x) => this.included(x.db, x.name));
                const at = {
                  kind: 'mysql' as const,
                  file: ev.file,
                  pos: txStart.pos,
                  gtid: ev.gtid,
                  serverId: this.serverId,
                  row: 0,
                };
                // A rename between replicated tables goes as one schema-change event per renamed table, carrying the
                // table's shape and its previous name: the target renames its table at this point of the stream.
                const renamed = await this.renameEvents(ddl, ev, at);
                if (replicated && !renamed.some((e) => e.op === 'message'))
                  batcher.push(ddlEvent(ev, replicated, at), ev.query.length + 200);
                for (const e of renamed) batcher.push(e, ev.query.length + 200);
                if (ddl.kind === 'drop') {
                  // The target empties the table: one re-created under the name starts empty there too.
                  for (const t of ddl.tables.filter((x) => this.included(x.db, x.name))) {
                    const id = `${t.db}.${t.name}`;
                    const schema = this.lastSchemas.get(id) ?? (await this.cachedInfo(t.db, t.name))?.schema;
                    if (schema) batcher.push(droppedTableEvent(t, schema, ev, { ...at, row: 1 }), 100);
                    else this.droppedUnseen.add(id);
                  }
                }
                await this.followDdl(ddl);
              }
            }
            commitPoint(ev);
            txStart = { file: ev.file, pos: ev.pos ?? UNKNOWN_POS };
            break;
          }
        }
      }
      batcher.end();
    } catch (err) {
      batcher.fail(err);
    }
  }

  async commit(checkpoint: Checkpoint): Promise<void> {
    this.lastCommitted = checkpoint;
  }

  drain(): void {
    this.draining = true;
    this.incremental?.stop();
    this.batcher?.end();
    this.wakeRoomWaiters();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.incremental?.stop();
    this.batcher?.end();
    this.wakeRoomWaiters();
    await this.stopReader();
    const c = this.conn;
    this.conn = null;
    await c?.end().catch(() => undefined);
  }

  async status(): Promise<SourceStatus> {
    const details: Record<string, unknown> = {
      flavor: this.flavor,
      replicaServerId: this.replicaId,
      snapshotPending: this.needsSnapshot,
      lastEmitted: this.lastEmitted?.position,
      lastCommitted: this.lastCommitted?.position,
      bufferedRows: this.reader?.bufferedRows(),
      bufferedEvents: this.batcher?.stats().queuedEvents,
      // Reading stops when the batcher is full (decoding waits), and the socket pauses once the reader's buffer fills.
      readingPaused: this.reader?.isPaused() || this.batcher?.wantsPause,
      socketPaused: this.reader?.isPaused(),
    };
    let retainedBytes: number | undefined;
    const at = this.lastCommitted?.position;
    if (this.conn && at?.kind === 'mysql') {
      try {
        const logs = await binaryLogs(this.conn);
        const i = logs.findIndex((l) => l.name === at.file);
        if (i >= 0) retainedBytes = logs.slice(i).reduce((n, l) => n + l.size, 0) - at.pos;
      } catch {
        // status is best effort
      }
    }
    return { retainedBytes, details };
  }
}

class PurgedBinlogError extends SourceSetupError {
  constructor(from: BinlogCoordinates & { byGtid: boolean }, oldest: string | undefined, cause?: unknown) {
    const where = from.byGtid ? `GTID position ${from.gtidSet} (${from.file}:${from.pos})` : `${from.file}:${from.pos}`;
    super(
      `the checkpoint's binlog position ${where} is no longer on the server (purged); the oldest binlog available is ${oldest ?? 'none'}`,
      'changes between the checkpoint and the oldest binlog are lost to replication: set resnapshot_on_purged_binlog: true ' +
        '(or clear the pipeline checkpoint) to take a new snapshot, and keep binlogs longer ' +
        '(binlog_expire_logs_seconds / expire_logs_days) than the longest pipeline outage',
      cause,
    );
  }
}

function buildEntry(
  db: string,
  name: string,
  cols: { name: string; type: string; nullable?: boolean }[],
  keys: string[],
  json: Set<string>,
  missing?: Map<string, string | null>,
  /** Lower-cased names of the target's columns the source dropped: a column added under one replaces it. */
  dropped?: Set<string>,
): TableEntry {
  const columns: MysqlColumn[] = cols.map((c) => ({
    name: c.name,
    type: c.type,
    kind: json.has(c.name) ? 'json' : kindOfType(c.type),
  }));
  const keySet = new Set(keys);
  const infos: ColumnInfo[] = cols.map((c, i) => ({
    name: c.name,
    type: c.type,
    kind: columns[i]!.kind,
    nullable: c.nullable,
    isKey: keySet.has(c.name),
    ...(missing?.has(c.name) ? { missingValue: missing.get(c.name) ?? null } : {}),
    ...(missing?.has(c.name) && dropped?.has(c.name.toLowerCase()) ? { replacesDropped: true } : {}),
  }));
  const withMissing = infos.filter((c) => c.missingValue !== undefined).map((c) => c.name);
  return {
    columns,
    decoder: new RowDecoder(columns, keys),
    schema: { table: { schema: db, name }, columns: infos, keyColumns: keys, beforeImage: 'full' },
    ...(withMissing.length > 0 ? { withMissing } : {}),
  };
}

/**
 * A DDL statement on a replicated table as a `message` event (prefix `tributary.ddl`, content the statement text,
 * `source.db` the statement's default database), in binlog order. It is its own transaction (its GTID is `txId`).
 */
type StatementEvent = { query: string; database: string; file: string; gtid?: string; timestampMs: number };

function ddlEvent(
  ev: { query: string; database: string; gtid?: string; timestampMs: number },
  table: DdlTable,
  position: SourceInfo['position'],
): ChangeEvent {
  const ref = { schema: table.db, name: table.name };
  return {
    op: 'message',
    table: ref,
    schema: { table: ref, columns: [], keyColumns: [], beforeImage: 'none' },
    key: null,
    before: null,
    after: null,
    source: {
      connector: 'mysql',
      db: ev.database || table.db,
      position,
      txId: ev.gtid,
      commitTimeMs: ev.timestampMs,
      snapshot: false,
    },
    message: {
      prefix: DDL_MESSAGE_PREFIX,
      contentBase64: Buffer.from(ev.query, 'utf8').toString('base64'),
      transactional: true,
    },
  };
}

/** Reads `state.addedColumns` of a stream checkpoint (ignores anything malformed). */
function restoreAddedColumns(saved: unknown, into: Map<string, Map<string, string | null>>): void {
  if (!saved || typeof saved !== 'object') return;
  for (const [id, cols] of Object.entries(saved as Record<string, unknown>)) {
    if (!cols || typeof cols !== 'object') continue;
    const m = new Map<string, string | null>();
    for (const [c, v] of Object.entries(cols as Record<string, unknown>))
      if (typeof v === 'string' || v === null) m.set(c, v);
    if (m.size > 0) into.set(id, m);
  }
}

/** Reads `state.pendingAddedColumns` of a stream checkpoint: column names per table (ignores anything malformed). */
function restoreNameSets(saved: unknown, into: Map<string, Set<string>>): void {
  if (!saved || typeof saved !== 'object') return;
  for (const [id, cols] of Object.entries(saved as Record<string, unknown>)) {
    if (!Array.isArray(cols)) continue;
    const names = cols.filter((c): c is string => typeof c === 'string');
    if (names.length > 0) into.set(id, new Set(names));
  }
}

/** Whether the target has these columns (same identities and names, in order). */
function sameColumns(delivered: KnownColumn[] | undefined, columns: KnownColumn[]): boolean {
  return (
    delivered !== undefined &&
    delivered.length === columns.length &&
    delivered.every((c, i) => c.id === columns[i]!.id && c.name === columns[i]!.name)
  );
}

/** Reads `state.droppedTables` of a stream checkpoint (ignores anything malformed). */
function restoreDroppedTables(saved: unknown): string[] {
  return Array.isArray(saved) ? saved.filter((id): id is string => typeof id === 'string') : [];
}

const IDENT = '(?:`((?:[^`]|``)+)`|([\\w$]+))';
const TRUNCATE_RE = new RegExp(`^\\s*truncate\\s+(?:table\\s+)?(?:${IDENT}\\s*\\.\\s*)?${IDENT}\\s*;?\\s*$`, 'i');

export function parseTruncate(query: string, defaultDb: string): { db: string; name: string } | null {
  const m = TRUNCATE_RE.exec(query.replace(/^\/\*.*?\*\/\s*/s, ''));
  if (!m) return null;
  const db = (m[1]?.replace(/``/g, '`') ?? m[2]) || defaultDb;
  const name = m[3]?.replace(/``/g, '`') ?? m[4]!;
  return { db, name };
}

function isDdl(query: string): boolean {
  return /^\s*(alter|create|drop|rename)\b/i.test(query);
}
