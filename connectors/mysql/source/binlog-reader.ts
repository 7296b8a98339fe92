/**
 * The only file that knows @vlasky/zongji. It turns the binlog stream into our own events (transaction begin,
 * rows with their table's column descriptors, commit, standalone statement) and applies backpressure: when more
 * than `highWaterRows` decoded rows wait to be pulled, the replication connection's socket is paused; it resumes
 * once the consumer drained the buffer below half of that.
 */
import ZongJi from '@vlasky/zongji';
import type { SslOptions } from 'mysql2';
import { TributaryError } from '../../../src/errors.ts';
import { type ExecutedGtids, executedGtids } from '../flavor.ts';

export interface BinlogColumn {
  name: string;
  /** Type text from the binlog metadata (`bigint unsigned`, `decimal(10,2)`, `enum('a','b')`, `longtext`...). */
  type: string;
  charset: string | null;
}

export interface BinlogTable {
  /** Binlog table id; changes when the table's definition changes. */
  tableId: number;
  database: string;
  name: string;
  columns: BinlogColumn[];
  /** Primary-key column names from the metadata, or undefined when the server does not log them. */
  primaryKey?: string[];
}

export type RawRow = Record<string, unknown>;

interface Common {
  /** Binlog file of the event. */
  file: string;
  /** Event timestamp (seconds resolution), ms since epoch. */
  timestampMs: number;
}

/**
 * Stands for a binlog offset that is not known (an event header without one): larger than any real offset, so that a
 * target comparing it with its checkpoint never takes the event as already delivered.
 */
export const UNKNOWN_POS = Number.MAX_SAFE_INTEGER;

export type BinlogEvent =
  | (Common & {
      type: 'begin';
      gtid?: string;
      /** Offset where the event group starts (read from the group's first event header), or `UNKNOWN_POS`. */
      pos: number;
    })
  | (Common & {
      type: 'rows';
      op: 'insert' | 'update' | 'delete';
      table: BinlogTable;
      /** As the library decodes them: the row for inserts and deletes, `{before, after}` for updates. */
      rows: RawRow[] | { before: RawRow; after: RawRow }[];
      gtid?: string;
    })
  | (Common & {
      type: 'commit';
      /** Position just after the commit event; undefined when its header carries none (no checkpoint there). */
      pos: number | undefined;
      gtid?: string;
      /** Executed GTID set including this transaction, when known. */
      gtidSet?: string;
    })
  | (Common & {
      type: 'statement';
      /** A statement that is its own transaction (DDL, TRUNCATE); the position after it is a commit point. */
      query: string;
      database: string;
      /** Position just after the statement; undefined when its header carries none (no checkpoint there). */
      pos: number | undefined;
      gtid?: string;
      gtidSet?: string;
    });

export interface BinlogReaderOptions {
  host: string;
  port: number;
  user: string;
  password?: string;
  ssl?: SslOptions;
  serverId: number;
  flavor: 'mariadb' | 'mysql';
  /** Start point: a GTID set (preferred when given) or file+position. */
  start: { gtidSet: string } | { file: string; pos: number };
  /** Initial executed GTID set for checkpoints when starting from file+position (MariaDB position or MySQL set). */
  initialGtidSet?: string;
  includeSchema?: Record<string, string[] | true>;
  excludeSchema?: Record<string, string[] | true>;
  highWaterRows: number;
  connectTimeoutMs?: number;
}

const MYSQL_GEOMETRY = 255;
const MYSQL_BLOB = 252;
const MYSQL_JSON = 245;

// biome-ignore lint/suspicious/noExplicitAny: zongji events are loosely typed
type ZEvent = any;

export class BinlogReader {
  private zongji: ZongJi | null = null;
  private readonly queue: BinlogEvent[] = [];
  private queuedRows = 0;
  private paused = false;
  private error: unknown = null;
  private ended = false;
  private waiter: (() => void) | null = null;
  private file = '';
  /** Offset just after the last complete event group in `file`; meaningful only while `posKnown`. */
  private lastPos = 0;
  /**
   * False while the offset in `file` is not known: on a start by GTID set the server's first (artificial) rotate
   * event names the file but gives offset 4, not where the stream resumes; and after a commit whose header carried
   * no offset.
   */
  private posKnown = true;
  /** Nothing but the artificial start of the dump was seen yet. */
  private atDumpStart = true;
  /** The open event group's begin was emitted (MySQL: by its GTID event, before its BEGIN query). */
  private groupBegun = false;
  /** Where the open event group starts (its first event's header), `UNKNOWN_POS` when not known. */
  private groupStart = UNKNOWN_POS;
  private gtid: string | undefined;
  /** Executed GTIDs (MariaDB position per domain, MySQL set), from the start point on. */
  private readonly executed: ExecutedGtids;
  private readonly tables = new Map<number, BinlogTable>();
  private readonly options: BinlogReaderOptions;
  private startedResolve: (() => void) | null = null;

  constructor(options: BinlogReaderOptions) {
    this.options = options;
    if ('file' in options.start) {
      this.file = options.start.file;
      this.lastPos = options.start.pos;
    } else {
      this.posKnown = false;
    }
    const initial = 'gtidSet' in options.start ? options.start.gtidSet : options.initialGtidSet;
    this.executed = executedGtids(options.flavor, initial ?? '');
  }

  /** Connects and starts the dump; resolves once the server accepted it (or rejects with its error). */
  start(): Promise<void> {
    const o = this.options;
    const zongji = new ZongJi({
      host: o.host,
      port: o.port,
      user: o.user,
      password: o.password,
      charset: 'utf8mb4',
      dateStrings: true,
      timezone: 'Z',
      jsonStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      connectTimeout: o.connectTimeoutMs ?? 10_000,
      ...(o.ssl ? { ssl: o.ssl } : {}),
    } as never);
    this.zongji = zongji;
    const started = new Promise<void>((resolve, reject) => {
      this.startedResolve = resolve;
      zongji.on('error', (err: unknown) => {
        if (this.startedResolve) {
          this.startedResolve = null;
          reject(err);
        }
        this.fail(isServerOrNetworkError(err) ? err : this.decodeError(err));
      });
    });
    zongji.on('binlog', (event: ZEvent) => {
      try {
        this.onEvent(event);
      } catch (err) {
        this.fail(err);
      }
    });
    zongji.on('ready', () => {
      // The dump command is queued right after 'ready'; the server's first answer (a rotate event, or an error)
      // follows. Resolve on the first event or shortly after, whichever comes first.
      setTimeout(() => this.markStarted(), 300);
    });
    const start = o.start;
    zongji.start({
      serverId: o.serverId,
      ...('gtidSet' in start ? { gtidSet: start.gtidSet } : { filename: start.file, position: start.pos }),
      includeSchema: o.includeSchema,
      excludeSchema: o.excludeSchema,
    } as never);
    return started;
  }

  private markStarted(): void {
    const r = this.startedResolve;
    this.startedResolve = null;
    r?.();
  }

  /** Current binlog file and the position after the last complete event group (`UNKNOWN_POS` when not known). */
  position(): { file: string; pos: number } {
    return { file: this.file, pos: this.posKnown ? this.lastPos : UNKNOWN_POS };
  }

  /** Next event, `undefined` after `timeoutMs` without one, `null` once stopped. Throws the stream's error. */
  async next(timeoutMs: number): Promise<BinlogEvent | null | undefined> {
    if (this.queue.length === 0 && !this.error && !this.ended) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.waiter = null;
          resolve();
        }, timeoutMs);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = null;
          resolve();
        };
      });
    }
    const event = this.queue.shift();
    if (event) {
      if (event.type === 'rows') this.queuedRows -= event.rows.length;
      if (this.paused && this.queuedRows <= this.options.highWaterRows / 2) this.resume();
      return event;
    }
    if (this.error) throw this.error;
    if (this.ended) return null;
    return undefined;
  }

  /** Ends a `next` waiting on an empty queue now (it returns undefined, as on its timeout). */
  wake(): void {
    this.waiter?.();
  }

  /** Rows decoded and waiting to be pulled. */
  bufferedRows(): number {
    return this.queuedRows;
  }

  isPaused(): boolean {
    return this.paused;
  }

  async stop(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    const z = this.zongji;
    this.zongji = null;
    this.wake();
    if (!z) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      z.once('stopped', () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        z.stop();
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  /**
   * The library could not decode something (an event type it does not know, a table map it cannot match to the
   * table's current columns, a column type) and skipped it: the stream has a gap from here.
   */
  /** The table of the last table-map event: a rows event the library cannot decode follows its table's map. */
  private lastMappedTable: string | undefined;

  private decodeError(err: unknown): BinlogDecodeError {
    const at = this.groupPosition();
    const where =
      at.pos === UNKNOWN_POS ? `${this.file || 'an unknown binlog file'} (offset unknown)` : `${at.file}:${at.pos}`;
    return new BinlogDecodeError(where, this.gtid, err, this.lastMappedTable);
  }

  /**
   * Where the event group being read starts: from its first event's header, else the end of the group before it.
   * After a start by GTID set the reader knows no offset until the first group's header, so the end of the previous
   * group is unknown there, while the group's own start is not.
   */
  private groupPosition(): { file: string; pos: number } {
    if (this.groupBegun && this.groupStart !== UNKNOWN_POS) return { file: this.file, pos: this.groupStart };
    return this.position();
  }

  private fail(err: unknown): void {
    if (this.ended) return;
    if (!this.error) this.error = err;
    this.wake();
  }

  private push(event: BinlogEvent): void {
    this.queue.push(event);
    if (event.type === 'rows') {
      this.queuedRows += event.rows.length;
      if (!this.paused && this.queuedRows >= this.options.highWaterRows) this.pause();
    }
    this.wake();
  }

  private pause(): void {
    // biome-ignore lint/suspicious/noExplicitAny: mysql2 connection internals
    const conn = (this.zongji as any)?.connection;
    if (!conn) return;
    this.paused = true;
    conn.pause();
  }

  private resume(): void {
    // biome-ignore lint/suspicious/noExplicitAny: mysql2 connection internals
    const conn = (this.zongji as any)?.connection;
    this.paused = false;
    conn?.resume();
  }

  private gtidSet(): string | undefined {
    return this.executed.toString() || undefined;
  }

  private tableOf(event: ZEvent): BinlogTable | undefined {
    return this.tables.get(event.tableId);
  }

  private onTableMap(event: ZEvent): void {
    this.lastMappedTable = `${event.schemaName}.${event.tableName}`;
    const entry = event.tableMap?.[event.tableId];
    if (!entry?.columns) return;
    // Geometry values are decoded as raw bytes (MySQL's internal SRID + WKB) so that we format them ourselves;
    // zongji's own decoding loses the geometry's type. Both types read a length-prefixed value.
    // MySQL's binary JSON too: values.ts prints it as the server does (the library's text differs, e.g. DECIMAL).
    for (const col of entry.columns) if (col.type === MYSQL_GEOMETRY || col.type === MYSQL_JSON) col.type = MYSQL_BLOB;
    const columns: BinlogColumn[] = entry.columnSchemas.map((s: ZEvent, i: number) => ({
      name: String(s.COLUMN_NAME),
      type: String(s.COLUMN_TYPE || '').toLowerCase(),
      charset: entry.columns[i]?.charset ?? s.CHARACTER_SET_NAME ?? null,
    }));
    const primaryKey: string[] | undefined = Array.isArray(event.primaryKey)
      ? event.primaryKey.map((i: number) => columns[i]!.name)
      : undefined;
    const previous = this.tables.get(event.tableId);
    if (
      previous &&
      previous.database === event.schemaName &&
      previous.name === event.tableName &&
      sameColumns(previous.columns, columns) &&
      String(previous.primaryKey) === String(primaryKey)
    )
      return;
    this.tables.set(event.tableId, {
      tableId: event.tableId,
      database: event.schemaName,
      name: event.tableName,
      columns,
      primaryKey,
    });
  }

  private onEvent(event: ZEvent): void {
    // After an error nothing more is taken: the library may skip what it could not decode and go on, and no commit
    // after the gap may ever become a checkpoint.
    if (this.ended || this.error) return;
    const name: string = event.getEventName();
    const timestampMs = Number(event.timestamp) || Date.now();
    if (name !== 'rotate' && name !== 'format') this.markStarted();
    switch (name) {
      case 'rotate':
        this.file = event.binlogName;
        if (this.atDumpStart && 'gtidSet' in this.options.start && !(Number(event.nextPosition) > 0)) {
          // The artificial rotate that starts a dump by GTID: offset 4 is not where the stream resumes.
          this.posKnown = false;
        } else {
          // A file+offset start (the offset asked for), or the switch to the next file (its start).
          this.lastPos = Number(event.position) || 4;
          this.posKnown = true;
        }
        return;
      case 'heartbeat':
        if (event.binlogName) this.file = event.binlogName;
        return;
      case 'gtid':
        this.atDumpStart = false;
        this.gtid = event.gtid;
        this.begin(event, timestampMs);
        return;
      case 'mariadbgtid':
        this.atDumpStart = false;
        this.gtid = event.gtid;
        // Standalone groups (DDL) begin too: the statement's events carry the group's start.
        this.begin(event, timestampMs);
        return;
      case 'mariadbgtidlist':
        return;
      case 'tablemap':
        this.onTableMap(event);
        return;
      case 'writerows':
      case 'updaterows':
      case 'deleterows': {
        const table = this.tableOf(event);
        if (!table || !event.rows) return;
        const op = name === 'writerows' ? 'insert' : name === 'updaterows' ? 'update' : 'delete';
        const missing = missingColumns(event, table);
        if (missing.length > 0) {
          this.fail(new PartialRowImageError(table, op, missing, this.groupPosition(), this.gtid));
          return;
        }
        this.push({ type: 'rows', op, table, rows: event.rows, gtid: this.gtid, file: this.file, timestampMs });
        return;
      }
      case 'xid':
        this.commit(event, timestampMs);
        return;
      case 'query': {
        const query = String(event.query ?? '').trim();
        const upper = query.slice(0, 16).toUpperCase();
        if (upper === 'BEGIN' || upper.startsWith('XA START') || upper.startsWith('XA END')) {
          if (!this.groupBegun) this.begin(event, timestampMs);
          return;
        }
        if (upper === 'COMMIT' || upper.startsWith('XA COMMIT')) {
          this.commit(event, timestampMs);
          return;
        }
        if (upper === 'ROLLBACK' || upper.startsWith('XA ROLLBACK') || upper.startsWith('SAVEPOINT')) {
          if (upper !== 'ROLLBACK' || event.nextPosition <= 0) return;
          this.commit(event, timestampMs);
          return;
        }
        if (!this.groupBegun) this.begin(event, timestampMs);
        const pos = this.endOf(event);
        if (this.gtid) this.executed.add(this.gtid);
        this.push({
          type: 'statement',
          query,
          database: String(event.schema ?? ''),
          file: this.file,
          pos,
          gtid: this.gtid,
          gtidSet: this.gtidSet(),
          timestampMs,
        });
        this.gtid = undefined;
        this.groupBegun = false;
        return;
      }
      default:
        return;
    }
  }

  /**
   * Emits the start of an event group at the offset where `event` (its first event) starts, from the event's own
   * header: after a start by GTID set, the position the reader tracks is not known until then.
   */
  private begin(event: ZEvent, timestampMs: number): void {
    this.groupBegun = true;
    const next = Number(event.nextPosition);
    let pos = UNKNOWN_POS;
    if (next > 0) {
      // Header: end offset of the event; the length counts the header (19 bytes) and the CRC32 checksum.
      const start = next - (Number(event.size) + 19 + (this.zongji?.useChecksum ? 4 : 0));
      if (start >= 4) pos = start;
    } else if (this.posKnown) {
      pos = this.lastPos; // the end of the previous group: at or before this one's start, after the checkpoint
    }
    this.groupStart = pos;
    this.push({ type: 'begin', gtid: this.gtid, file: this.file, pos, timestampMs });
  }

  /** The offset after an event that ends a group (a commit point), or undefined when its header carries none. */
  private endOf(event: ZEvent): number | undefined {
    const next = Number(event.nextPosition);
    if (next > 0) {
      this.lastPos = next;
      this.posKnown = true;
      return next;
    }
    this.posKnown = false;
    return undefined;
  }

  private commit(event: ZEvent, timestampMs: number): void {
    const pos = this.endOf(event);
    if (this.gtid) this.executed.add(this.gtid);
    this.push({
      type: 'commit',
      file: this.file,
      pos,
      gtid: this.gtid,
      gtidSet: this.gtidSet(),
      timestampMs,
    });
    this.gtid = undefined;
    this.groupBegun = false;
  }
}

function sameColumns(a: BinlogColumn[], b: BinlogColumn[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.name !== b[i]!.name || a[i]!.type !== b[i]!.type || a[i]!.charset !== b[i]!.charset) return false;
  }
  return true;
}

/**
 * A binlog event the reader could not decode. Stops the pipeline for an operator: the checkpoint stays before the
 * event, so nothing after it is lost, but the same event fails again until its cause is removed.
 */
export class BinlogDecodeError extends TributaryError {
  constructor(
    readonly position: string,
    readonly gtid: string | undefined,
    cause: unknown,
    /** The table of the last table map before the event (`db.table`), when known. */
    readonly table?: string,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const at = `at ${position}${gtid ? ` (transaction ${gtid})` : ''}`;
    const kept =
      'Everything committed before it was delivered and nothing from this transaction on was checkpointed, so no change is lost, but the pipeline cannot go past it: the event is in the binlog already.';
    if (/PARTIAL_UPDATE_ROWS_EVENT/.test(reason)) {
      // A session chose binlog_row_value_options=PARTIAL_JSON (the global setting is refused at start).
      super(
        'operator',
        `a partial JSON update${table ? ` of ${table}` : ''} ${at}: a session set binlog_row_value_options=PARTIAL_JSON, so the binlog holds only a diff of the JSON document, which cannot be applied to a copy`,
        {
          hint: `${kept} Stop the clients that set binlog_row_value_options=PARTIAL_JSON (a session variable, often in a connection pool's init SQL), then start over from a new snapshot: tributary teardown, then run.`,
          cause,
        },
      );
      return;
    }
    if (/TRANSACTION_PAYLOAD_EVENT/.test(reason)) {
      super(
        'operator',
        `a compressed transaction ${at}: a session set binlog_transaction_compression=ON, and compressed transactions cannot be read`,
        {
          hint: `${kept} Stop the clients that set binlog_transaction_compression=ON for their sessions, then start over from a new snapshot: tributary teardown, then run.`,
          cause,
        },
      );
      return;
    }
    super('operator', `cannot decode the binlog ${at}${table ? ` (table ${table})` : ''}: ${reason}`, {
      hint:
        `${kept} ` +
        'If a table changed after the event was written (ALTER TABLE while binlog_row_metadata was not FULL), set ' +
        'binlog_row_metadata=FULL and re-snapshot the pipeline (tributary teardown, then run).',
      cause,
    });
  }
}

/** An error of the server or the connection (it has a code), not of decoding what the server sent. */
function isServerOrNetworkError(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown } | null;
  return typeof e?.code === 'string' || typeof e?.errno === 'number';
}

/**
 * The columns a rows event leaves out of its row images (a session with binlog_row_image MINIMAL or NOBLOB): the
 * library reads them as NULL, which would be wrong data.
 */
function missingColumns(event: ZEvent, table: BinlogTable): string[] {
  const n = Number(event.numberOfColumns);
  const missing = new Set<string>();
  for (const bitmap of [event.columns_present_bitmap, event.columns_present_bitmap2]) {
    if (!Buffer.isBuffer(bitmap)) continue;
    for (let i = 0; i < n; i++) {
      if ((bitmap[i >> 3]! & (1 << (i & 7))) === 0) missing.add(table.columns[i]?.name ?? `#${i + 1}`);
    }
  }
  return [...missing];
}

/** A rows event without full row images: stops the pipeline before anything after it is checkpointed. */
export class PartialRowImageError extends TributaryError {
  constructor(
    table: BinlogTable,
    op: string,
    missing: string[],
    at: { file: string; pos: number },
    gtid: string | undefined,
  ) {
    const where = at.pos === UNKNOWN_POS ? at.file : `${at.file}:${at.pos}`;
    super(
      'operator',
      `the binlog at ${where}${gtid ? ` (transaction ${gtid})` : ''} holds an ${op} of ${table.database}.${table.name} without the values of ${missing.join(', ')}: it was written with binlog_row_image other than FULL (a session setting), so the row cannot be followed faithfully`,
      {
        hint:
          `Make every session that writes ${table.database}.${table.name} use binlog_row_image=FULL (it is a session ` +
          'variable: check the application connection settings and SET GLOBAL binlog_row_image=FULL), then ' +
          're-snapshot the pipeline (tributary teardown, then run): the change is already in the binlog and cannot be ' +
          'read in full. Nothing from this transaction on was checkpointed.',
      },
    );
  }
}
