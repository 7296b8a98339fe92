/**
 * Incremental snapshot of MySQL/MariaDB tables while streaming, fenced by what each read's snapshot sees instead of
 * watermarks written to the source: nothing is written there, so it needs no privilege beyond the snapshot's. Per
 * chunk of a table, in key order:
 *
 *   1. at a transaction boundary of the stream a window opens: from there the stream notes each key of the table
 *      that a transaction changes, with that transaction's GTID and binlog offset (before the table's first chunk a
 *      snapshot truncate goes out, so the target drops rows the source no longer has);
 *   2. the chunk is read (`WHERE key > last ORDER BY key LIMIT n`) on a connection of its own, in a transaction WITH
 *      CONSISTENT SNAPSHOT that sees every transaction the stream had delivered when the window opened
 *      (startSnapshotBounds says which transactions it surely sees and which it may see: one exact position on
 *      MariaDB and under MySQL's global read lock, the executed GTID sets just before and after the start on MySQL
 *      with GTIDs, which takes no lock);
 *   3. once the stream has delivered every transaction the read may have seen, at its next transaction boundary, the
 *      chunk's rows go out as snapshot reads in a transaction of their own, without the keys that a transaction the
 *      read may not have seen changed.
 *
 * Why that is right for each key of the chunk: a key no such transaction changed has, at the boundary, the value
 * the read returned; a key one changed got its value (or its delete) from the stream, which noted it because every
 * transaction before the window is one the read saw. Keys beyond the chunk are read later or come from the stream.
 * Progress (the table's last key) moves only when a chunk is emitted, so the checkpoint of that transaction is the
 * first to cover it, and a restart resumes after the last chunk the target holds durably.
 *
 * A table without a primary key is read whole and goes out after a truncate, unless a transaction the read may not
 * have seen changed it: then it is read again. A chunk is read again too when a DDL statement on the table or a
 * TRUNCATE came through the window.
 */
import type mysql from 'mysql2/promise';
import type { ChangeEvent, Row, TableSchema } from '../../../src/core/change-event.ts';
import { TributaryError } from '../../../src/errors.ts';
import type { Logger } from '../../../src/observability/logger.ts';
import type { SnapshotProgress } from '../../../src/observability/snapshot-progress.ts';
import type { SnapshotBounds } from '../flavor.ts';
import { gtidCovers, gtidSetCovers } from '../gtid-set.ts';
import { compareMysqlPositions } from '../position-order.ts';
import { type KeyStateValue, keyFromState, keyToState, readChunk } from './snapshot-reader.ts';
import type { MysqlColumn } from './values.ts';

/** One table's incremental snapshot, as kept in the checkpoint. */
export interface TableProgress {
  /** `db.name` */
  table: string;
  /** The last emitted row's key (null: nothing emitted yet, the table is emptied at the target first). */
  lastKey: KeyStateValue[] | null;
  /** The primary key `lastKey` is of: a copy under another key starts the table over. */
  key?: string[];
  rows: number;
  chunks?: number;
  /** Rows of emitted chunks left to the stream (changed after the read). */
  superseded?: number;
  /** An SQL condition limiting the rows read (a partial re-snapshot: nothing is emptied first). */
  where?: string;
  /**
   * Columns whose type changed with values the binlog does not carry (the reason for this copy): until the copy is
   * done the table's rows mark them `retyped`, so the target takes the new type even where old values would not
   * convert (the copy replaces them).
   */
  retyped?: string[];
}

/** What stream checkpoints carry (`state.snapshot`). */
export interface MysqlSnapshotState {
  /** Tables whose existing rows the target has (copied, or followed from their creation). */
  tables: string[];
  /** Tables still being copied, in order. */
  pending: TableProgress[];
  /**
   * Chunks emitted so far by this pipeline: a chunk goes out at the stream's current position, often the position of
   * the checkpoint before it, so at an equal position this count tells progress from a replay.
   */
  emitted: number;
  /**
   * The `databases` and `tables` the pipeline was configured with: on the next start, a table is copied only when
   * the configuration now names it and did not then (a table created or renamed at the source while the pipeline
   * was stopped is not new to it: its rows and DDL are in the binlog after the checkpoint).
   */
  replicates?: { databases?: string[]; tables?: string[] };
}

/** The incremental snapshot state a checkpoint carries, or null when it has none (written by an older version). */
export function mysqlSnapshotStateOf(state: Record<string, unknown> | undefined): MysqlSnapshotState | null {
  const saved = state?.snapshot as Partial<MysqlSnapshotState> | undefined;
  if (!saved || !Array.isArray(saved.tables) || !Array.isArray(saved.pending)) return null;
  const selectors = saved.replicates;
  const names = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined);
  return {
    tables: saved.tables.filter((t): t is string => typeof t === 'string'),
    pending: saved.pending.filter((p): p is TableProgress => typeof p?.table === 'string'),
    emitted: typeof saved.emitted === 'number' ? saved.emitted : 0,
    ...(selectors && typeof selectors === 'object'
      ? { replicates: { databases: names(selectors.databases), tables: names(selectors.tables) } }
      : {}),
  };
}

/** A point of the stream between transactions. */
export interface StreamPoint {
  file: string;
  pos: number;
  gtidSet?: string;
}

/** Where a transaction of the stream began, and its GTID. */
export interface TransactionMark {
  file: string;
  pos: number;
  gtid?: string;
}

export interface IncrementalSnapshotHost {
  pipeline: string;
  logger: Logger;
  progress?: SnapshotProgress;
  chunkRows: number;
  serverId: number;
  connect(): Promise<mysql.Connection>;
  /** Opens a consistent snapshot on `conn` and says which transactions it sees. */
  startSnapshot(conn: mysql.Connection): Promise<SnapshotBounds>;
  /** Asks the stream for a transaction boundary now, even while the source is idle (a window to open, a chunk read). */
  wake(): void;
  /** The table as the catalog has it now; null when it is gone. */
  describe(
    conn: mysql.Connection,
    db: string,
    name: string,
  ): Promise<{ schema: TableSchema; columns: MysqlColumn[] } | null>;
}

/** Reads of a keyless table before a copy that no transaction touched in between is given up on. */
const KEYLESS_ATTEMPTS = 20;
/** Reads of the catalog for a table the binlog says exists, before it counts as dropped (see copyTable). */
const CATALOG_SETTLE_READS = 6;
/** MySQL's error for a snapshot's read of a table whose definition changed after the snapshot began. */
const ER_TABLE_DEF_CHANGED = 1412;
/** Snapshot starts that may not see what the stream had delivered when the window opened, before giving up. */
const SNAPSHOT_ATTEMPTS = 100;

interface Window {
  progress: TableProgress;
  db: string;
  keyCols: readonly string[];
  truncateFirst: boolean;
  schema: TableSchema | null;
  open: boolean;
  /** Where the stream was when the window opened: the read must see every transaction before it. */
  openedAt: StreamPoint | null;
  opened: () => void;
  /** Last transaction that changed each key (keyText) since the window opened; keyless: any change at all. */
  changed: Map<string, TransactionMark>;
  redo: boolean;
  read: { at: SnapshotBounds; rows: Row[]; lastKey: unknown[] | null; schema: TableSchema } | null;
  done: (result: 'emitted' | 'redo') => void;
}

const ANY_ROW = '*';

/** A table's columns and key as described, to tell whether a DDL statement changed it. */
function shapeOf(table: { schema: TableSchema } | null): string {
  if (!table) return 'gone';
  return JSON.stringify([table.schema.columns.map((c) => [c.name, c.type, c.nullable]), table.schema.keyColumns]);
}

function keyText(keyCols: readonly string[], row: Row): string {
  return JSON.stringify(keyCols.map((k) => row[k] ?? null));
}

/**
 * A transaction the read may not have seen: outside its visible GTID set, or at or after its exact position. When
 * neither can tell, it counts as unseen (its key is left to the stream, which is always right).
 */
function unseen(at: SnapshotBounds, tx: TransactionMark): boolean {
  if (tx.gtid && at.visible.gtidSet) {
    const covered = gtidCovers(at.visible.gtidSet, tx.gtid);
    if (covered !== undefined) return !covered;
  }
  return !at.exactPosition || tx.file === '' || compareMysqlPositions(tx, at.visible) >= 0;
}

/** The read sees every transaction the stream had delivered at `point`. */
function seesAllBefore(at: SnapshotBounds, point: StreamPoint): boolean {
  if (point.gtidSet && at.visible.gtidSet && gtidSetCovers(at.visible.gtidSet, point.gtidSet) === true) return true;
  return at.exactPosition && point.file !== '' && compareMysqlPositions(point, at.visible) <= 0;
}

/** The stream has delivered every transaction the read may have seen. */
function reached(point: StreamPoint, at: SnapshotBounds): boolean {
  if (point.gtidSet && at.seen.gtidSet && gtidSetCovers(point.gtidSet, at.seen.gtidSet) === true) return true;
  return point.file !== '' && compareMysqlPositions(point, at.seen) >= 0;
}

export class MysqlIncrementalSnapshot {
  private readonly state: MysqlSnapshotState;
  private saved: MysqlSnapshotState | null = null;
  private window: Window | null = null;
  private stopped = false;
  private running = false;
  private conn: mysql.Connection | null = null;
  /** Waiting for the stream to reach a position (see streamReached). */
  private reachWaiters: { at: SnapshotBounds; resolve: () => void }[] = [];

  constructor(
    private readonly host: IncrementalSnapshotHost,
    state: MysqlSnapshotState,
  ) {
    this.state = {
      tables: [...state.tables],
      pending: state.pending.map((p) => ({ ...p })),
      emitted: state.emitted,
      ...(state.replicates ? { replicates: state.replicates } : {}),
    };
  }

  /** The state a checkpoint at the current stream position carries (a copy, made once per change). */
  snapshotState(): MysqlSnapshotState {
    this.saved ??= {
      tables: [...this.state.tables],
      pending: this.state.pending.map((p) => ({ ...p })),
      emitted: this.state.emitted,
      ...(this.state.replicates ? { replicates: this.state.replicates } : {}),
    };
    return this.saved;
  }

  get hasWork(): boolean {
    return this.state.pending.length > 0;
  }

  /**
   * Requests a copy of a table's existing rows (those matching `where`); one running for the table starts over.
   * `retyped`: columns the copy follows a type change of (kept with those of a copy it replaces).
   */
  request(table: string, where?: string, retyped?: string[]): void {
    if (this.window?.progress.table === table) this.window.redo = true;
    const before = this.state.pending.find((p) => p.table === table);
    const columns = [...new Set([...(before?.retyped ?? []), ...(retyped ?? [])])];
    // A copy of every row pending stays one (its `retyped` columns need every row copied).
    const only = before && !before.where ? undefined : where;
    this.state.pending = this.state.pending.filter((p) => p.table !== table);
    this.state.pending.push({
      table,
      lastKey: null,
      rows: 0,
      ...(only ? { where: only } : {}),
      ...(columns.length > 0 ? { retyped: columns } : {}),
    });
    this.saved = null;
  }

  /** Column renames of a table (`db.name`, statement order as one step: swaps work) for its pending copy's `retyped`. */
  renameRetyped(table: string, renames: readonly { from: string; to: string }[]): void {
    const p = this.state.pending.find((x) => x.table === table);
    if (!p?.retyped) return;
    const to = new Map(renames.map((r) => [r.from.toLowerCase(), r.to]));
    p.retyped = p.retyped.map((c) => to.get(c.toLowerCase()) ?? c);
    this.saved = null;
  }

  /** The columns a pending copy of the table (`db.name`) follows a type change of; undefined when none. */
  retypedColumns(table: string): string[] | undefined {
    return this.state.pending.find((p) => p.table === table)?.retyped;
  }

  /** Copies the pending tables in the background unless already doing so; `failed` gets what stopped it. */
  ensureRunning(failed: (err: unknown) => void): void {
    if (this.running || this.stopped || !this.hasWork) return;
    this.running = true;
    this.run()
      .catch(failed)
      .finally(() => {
        this.running = false;
        // A request that came while the last table finished.
        if (!this.stopped && this.hasWork) this.ensureRunning(failed);
      });
  }

  /**
   * A table renamed in the stream: a copy requested under its old name (not yet read, or being read) goes on under the
   * new one, so the rows reach the table the target will have by then. A chunk being read is read again.
   */
  renamed(from: string, to: string): void {
    let moved = false;
    for (const p of this.state.pending) {
      if (p.table !== from) continue;
      p.table = to;
      moved = true;
    }
    if (this.window?.progress.table === to) this.window.redo = true;
    if (moved) this.saved = null;
  }

  /** A table whose rows all reach the target through the stream (created, or renamed into the pipeline, while it ran). */
  followed(table: string): void {
    if (this.state.tables.includes(table)) return;
    this.state.tables.push(table);
    this.saved = null;
  }

  // --- stream side: called in stream order, between and inside transactions

  /** Whether row changes of this table (`db.name`) must be observed now. */
  watches(table: string): boolean {
    const w = this.window;
    return w?.open === true && w.progress.table === table;
  }

  /** A row change of the stream (`table` is `db.name`). */
  observeRow(table: string, before: Row | null, after: Row | null, tx: TransactionMark): void {
    const w = this.window;
    if (!w?.open || w.progress.table !== table) return;
    if (w.keyCols.length === 0) {
      w.changed.set(ANY_ROW, tx);
      return;
    }
    if (before) w.changed.set(keyText(w.keyCols, before), tx);
    if (after) w.changed.set(keyText(w.keyCols, after), tx);
  }

  /** A truncate of the table at the source: every row read before it is stale. */
  observeTruncate(table: string): void {
    const w = this.window;
    if (w?.open && w.progress.table === table) w.redo = true;
  }

  /** A DDL statement naming the table: the chunk's shape may be stale. */
  observeDdl(tables: readonly string[]): void {
    const w = this.window;
    if (w?.open && tables.includes(w.progress.table)) w.redo = true;
  }

  /**
   * A transaction boundary of the stream at `point`. Returns the events of a transaction to commit there (a
   * truncate opening a table's copy, or a chunk's rows), or null when there is nothing; an empty list still changed
   * the progress a checkpoint must carry.
   */
  boundary(point: StreamPoint): ChangeEvent[] | null {
    if (this.reachWaiters.length > 0) {
      const due = this.reachWaiters.filter((x) => reached(point, x.at));
      this.reachWaiters = this.reachWaiters.filter((x) => !due.includes(x));
      for (const x of due) x.resolve();
    }
    const w = this.window;
    if (!w) return null;
    if (!w.open) {
      w.open = true;
      w.openedAt = point;
      w.opened();
      if (!w.truncateFirst || !w.schema) return null;
      return [this.event('truncate', w.schema, w.db, point, 0, null)];
    }
    const read = w.read;
    if (!read || !reached(point, read.at)) return null;
    this.window = null;
    if (w.redo) {
      this.host.logger.info(
        { event: 'incremental_snapshot_chunk_reread', pipeline: this.host.pipeline, table: w.progress.table },
        'chunk read again: the table changed shape or was truncated while it was read',
      );
      w.done('redo');
      return null;
    }
    const p = w.progress;
    const keyless = w.keyCols.length === 0;
    const events: ChangeEvent[] = [];
    if (keyless) {
      const tx = w.changed.get(ANY_ROW);
      if (tx && unseen(read.at, tx)) {
        w.done('redo');
        return null;
      }
      events.push(this.event('truncate', read.schema, w.db, point, 0, null));
    }
    const rowsBefore = p.rows;
    for (const row of read.rows) {
      if (!keyless) {
        const tx = w.changed.get(keyText(w.keyCols, row));
        if (tx && unseen(read.at, tx)) {
          p.superseded = (p.superseded ?? 0) + 1;
          continue;
        }
      }
      events.push(this.event('read', read.schema, w.db, point, events.length, row));
      p.rows++;
    }
    p.chunks = (p.chunks ?? 0) + 1;
    if (read.lastKey) p.lastKey = keyToState(read.lastKey);
    this.state.emitted++;
    this.saved = null;
    this.host.progress?.add(p.table, p.rows - rowsBefore);
    if (keyless || read.rows.length < this.host.chunkRows) {
      this.state.pending = this.state.pending.filter((x) => x !== p);
      this.followed(p.table);
      this.host.progress?.finish(p.table);
      this.host.logger.info(
        {
          event: 'incremental_snapshot_table_done',
          pipeline: this.host.pipeline,
          table: p.table,
          rows: p.rows,
          chunks: p.chunks,
          rows_left_to_stream: p.superseded ?? 0,
        },
        'incremental snapshot table done',
      );
    }
    w.done('emitted');
    return events;
  }

  private event(
    op: 'read' | 'truncate',
    schema: TableSchema,
    db: string,
    point: StreamPoint,
    row: number,
    after: Row | null,
  ): ChangeEvent {
    const key =
      after && schema.keyColumns.length > 0
        ? (Object.fromEntries(schema.keyColumns.map((k) => [k, after[k] ?? null])) as Row)
        : null;
    return {
      op,
      table: schema.table,
      schema,
      key,
      before: null,
      after,
      source: {
        connector: 'mysql',
        db,
        position: { kind: 'mysql', file: point.file, pos: point.pos, serverId: this.host.serverId, row },
        commitTimeMs: Date.now(),
        snapshot: 'true',
      },
      ...(op === 'truncate' ? { truncate: { cascade: false, restartIdentity: false } } : {}),
    };
  }

  // --- reader side

  /** Copies the pending tables one chunk at a time until none is left or stop(); a failure rejects. */
  async run(): Promise<void> {
    try {
      while (!this.stopped && this.state.pending.length > 0) {
        const p = this.state.pending[0]!;
        await this.copyTable(p);
      }
    } finally {
      await this.conn?.end().catch(() => undefined);
      this.conn = null;
    }
  }

  stop(): void {
    this.stopped = true;
    for (const x of this.reachWaiters.splice(0)) x.resolve();
    const w = this.window;
    this.window = null;
    w?.opened();
    w?.done('redo');
  }

  /** Whether the request `p` moved to another name by the time the stream has read everything committed now. */
  private async renamedOnceReached(conn: mysql.Connection, p: TableProgress): Promise<boolean> {
    const before = p.table;
    const at = await this.host.startSnapshot(conn);
    await conn.query('COMMIT');
    await new Promise<void>((resolve) => {
      this.reachWaiters.push({ at, resolve });
      this.host.wake();
    });
    return p.table !== before;
  }

  /**
   * Starts a snapshot that sees every transaction the stream delivered before the window opened: those are not in the
   * window's notes, so the read must have them. A transaction the stream has read may still be committing in the
   * engine (the binlog goes out first); it shows in a moment.
   */
  private async startSnapshotAfter(conn: mysql.Connection, openedAt: StreamPoint): Promise<SnapshotBounds> {
    for (let attempt = 1; ; attempt++) {
      const at = await this.host.startSnapshot(conn);
      if (seesAllBefore(at, openedAt)) return at;
      await conn.query('COMMIT');
      if (attempt >= SNAPSHOT_ATTEMPTS || this.stopped) {
        throw new TributaryError(
          'retryable',
          `the snapshot to copy a chunk did not see transactions the stream had read (${JSON.stringify(openedAt)})`,
          { hint: 'the pipeline retries; if this repeats, report it with the server version and its binlog settings' },
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(5 * attempt, 100)));
    }
  }

  /**
   * Reads the window's chunk at snapshot `at`. MySQL refuses a snapshot's read of a table whose definition changed
   * after the snapshot began (ER_TABLE_DEF_CHANGED): the window sees that change too, so the chunk is read again.
   */
  private async readInto(
    w: Window,
    conn: mysql.Connection,
    at: SnapshotBounds,
    table: { schema: TableSchema; columns: MysqlColumn[] },
  ): Promise<void> {
    const p = w.progress;
    try {
      const chunk = await readChunk(
        conn,
        { db: w.db, name: table.schema.table.name, columns: table.columns, keyColumns: w.keyCols },
        {
          after: p.lastKey ? keyFromState(p.lastKey) : null,
          limit: w.keyCols.length > 0 ? this.host.chunkRows : null,
          where: p.where,
        },
      );
      w.read = { at, rows: chunk.rows, lastKey: chunk.lastKey, schema: table.schema };
      this.host.wake();
    } catch (err) {
      if ((err as { errno?: number }).errno !== ER_TABLE_DEF_CHANGED) throw err;
      this.host.logger.info(
        { event: 'incremental_snapshot_chunk_reread', pipeline: this.host.pipeline, table: p.table },
        'chunk read again: the table changed definition after its snapshot began',
      );
      w.redo = true;
    }
  }

  private async copyTable(p: TableProgress): Promise<void> {
    const dot = p.table.indexOf('.');
    const db = p.table.slice(0, dot);
    const name = p.table.slice(dot + 1);
    this.conn ??= await this.host.connect();
    const conn = this.conn;
    const first = await this.host.describe(conn, db, name);
    if (!first) {
      // Not in the catalog: dropped, or renamed by a statement the stream has not read yet. Once the stream has read
      // everything up to now, such a rename has moved the request to the table's new name (renamed()).
      if (await this.renamedOnceReached(conn, p)) return;
      if (this.stopped) return;
      // The catalog can show a statement a moment after the binlog has it (MariaDB, a RENAME just read): looked at
      // again briefly before the table counts as dropped.
      for (let attempt = 1; attempt <= CATALOG_SETTLE_READS && !this.stopped; attempt++) {
        await new Promise((r) => setTimeout(r, 50 * attempt));
        if (p.table !== `${db}.${name}` || (await this.host.describe(conn, db, name))) return;
      }
      if (this.stopped) return;
      // Gone at the source: its DROP reaches the target through the stream.
      this.state.pending = this.state.pending.filter((x) => x !== p);
      this.saved = null;
      this.host.logger.info(
        { event: 'incremental_snapshot_table_gone', pipeline: this.host.pipeline, table: p.table },
        'table to copy is gone at the source',
      );
      return;
    }
    const [est] = await conn.query(
      'SELECT TABLE_ROWS AS n FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
      [db, name],
    );
    const estimate = (est as { n: unknown }[])[0]?.n;
    this.host.progress?.start(p.table, estimate === null || estimate === undefined ? null : Number(estimate));
    if (p.rows > 0) this.host.progress?.add(p.table, p.rows);
    // Also at a resume: where it goes on from (the checkpoint's last durable chunk).
    this.host.logger.info(
      {
        event: 'incremental_snapshot_table_started',
        pipeline: this.host.pipeline,
        table: p.table,
        rows_done: p.rows,
        resume_after: p.lastKey,
      },
      p.lastKey ? 'incremental snapshot table resumed' : 'incremental snapshot table started',
    );
    const keyCols = first.schema.keyColumns;
    if (p.key && p.key.join('\0') !== keyCols.join('\0')) {
      p.lastKey = null;
      p.rows = 0;
    }
    p.key = [...keyCols];
    this.saved = null;
    let attempts = 0;
    while (!this.stopped && this.state.pending[0] === p) {
      const w: Window = {
        progress: p,
        db,
        keyCols,
        truncateFirst: p.lastKey === null && keyCols.length > 0 && !p.where,
        schema: first.schema,
        open: false,
        openedAt: null,
        opened: () => undefined,
        changed: new Map(),
        redo: false,
        read: null,
        done: () => undefined,
      };
      const opened = new Promise<void>((resolve) => {
        w.opened = resolve;
      });
      const done = new Promise<'emitted' | 'redo'>((resolve) => {
        w.done = resolve;
      });
      this.window = w;
      this.host.wake();
      await opened;
      if (this.stopped) return;
      // Described after the window opened (a DDL statement the stream read before it has reached the catalog: the
      // description waits for the table's metadata lock) and again after the read: a DDL statement in between
      // could make the rows read and their description disagree, so the chunk is read again then. One after the
      // second description comes after the read in the binlog: the window sees it, or the chunk is emitted before it.
      const table = await this.host.describe(conn, db, name);
      const at = await this.startSnapshotAfter(conn, w.openedAt!);
      try {
        if (!table || table.schema.keyColumns.join('\0') !== keyCols.join('\0')) {
          w.redo = true;
        } else {
          await this.readInto(w, conn, at, table);
        }
      } finally {
        await conn.query('COMMIT');
      }
      if (w.read && shapeOf(await this.host.describe(conn, db, name)) !== shapeOf(table)) {
        this.host.logger.info(
          { event: 'incremental_snapshot_chunk_reread', pipeline: this.host.pipeline, table: p.table },
          'chunk read again: the table changed definition while it was read',
        );
        w.read = null;
      }
      if (w.read === null) {
        // The table changed shape or lost its key: start it over with the catalog as it is now.
        this.window = null;
        return;
      }
      const result = await done;
      if (result === 'redo' && keyCols.length === 0 && ++attempts >= KEYLESS_ATTEMPTS) {
        throw new TributaryError(
          'operator',
          `${p.table} has no primary key and changed during each of ${KEYLESS_ATTEMPTS} attempts to copy it while streaming`,
          {
            hint: `give ${p.table} a primary key (then it is copied in chunks), or copy it while writes to it pause`,
          },
        );
      }
    }
  }
}
