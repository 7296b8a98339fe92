/**
 * The differences between MariaDB and MySQL 8 that replication code meets, in one place: GTID spelling, how to
 * take a consistent snapshot and learn its binlog coordinates, where the current binlog position lives.
 */
import type mysql from 'mysql2/promise';
import { SourceSetupError, TributaryError } from '../../src/errors.ts';
import { MysqlGtidSet } from './gtid-set.ts';

export type Flavor = 'mariadb' | 'mysql';

export interface BinlogCoordinates {
  file: string;
  pos: number;
  /** Executed GTID set at these coordinates (MariaDB `d-s-n,...`, MySQL `uuid:1-n,...`); '' when none. */
  gtidSet: string;
}

type Conn = mysql.Connection | mysql.PoolConnection;

// biome-ignore lint/suspicious/noExplicitAny: rows from SHOW statements
async function rows(conn: Conn, sql: string, params?: unknown[]): Promise<any[]> {
  const [result] = await conn.query(sql, params);
  // biome-ignore lint/suspicious/noExplicitAny: rows from SHOW statements
  return result as any[];
}

export async function detectFlavor(conn: Conn): Promise<{ flavor: Flavor; version: string }> {
  const [r] = await rows(conn, 'SELECT VERSION() AS v');
  const version = String(r.v);
  return { flavor: /mariadb/i.test(version) ? 'mariadb' : 'mysql', version };
}

/** `SHOW MASTER STATUS` was renamed in MySQL 8.4 (`SHOW BINARY LOG STATUS`); MariaDB keeps the old name. */
async function masterStatus(conn: Conn): Promise<{ file: string; pos: number; gtid?: string } | null> {
  let r: Record<string, unknown>[];
  try {
    r = await rows(conn, 'SHOW MASTER STATUS');
  } catch {
    r = await rows(conn, 'SHOW BINARY LOG STATUS');
  }
  const first = r[0];
  if (!first) return null;
  return {
    file: String(first.File),
    pos: Number(first.Position),
    gtid: first.Executed_Gtid_Set === undefined ? undefined : String(first.Executed_Gtid_Set).replace(/\s/g, ''),
  };
}

/** The server's current end of binlog and executed GTID set. */
export async function currentCoordinates(conn: Conn, flavor: Flavor): Promise<BinlogCoordinates> {
  const status = await masterStatus(conn);
  if (!status) throw new Error('binary logging is off (SHOW MASTER STATUS returned nothing)');
  if (flavor === 'mariadb') {
    return { file: status.file, pos: status.pos, gtidSet: await mariadbGtidAt(conn, status.file, status.pos) };
  }
  return { file: status.file, pos: status.pos, gtidSet: status.gtid ?? '' };
}

/** MariaDB: the GTID position that corresponds exactly to a binlog file and offset. */
export async function mariadbGtidAt(conn: Conn, file: string, pos: number): Promise<string> {
  const [r] = await rows(conn, 'SELECT BINLOG_GTID_POS(?, ?) AS g', [file, pos]);
  return r?.g == null ? '' : String(r.g);
}

/** How long the MySQL snapshot waits for the global read lock before it gives up on it (FLUSH TABLES WITH READ LOCK
 * blocks every writer while it waits, e.g. behind a long query). */
export const GLOBAL_LOCK_WAIT_SECONDS = 3;
/** Attempts of the lock-free MySQL snapshot start before it takes the global read lock instead. */
const LOCK_FREE_ATTEMPTS = 50;
/** Attempts of the lock-free start when the global read lock is not an option. */
const LOCK_FREE_ATTEMPTS_ONLY_WAY = 300;
/** How long the lock-free start waits, after the snapshot began, for commits in flight to show in the GTID set. */
const SETTLE_MS = 20;

/** How the snapshot obtained its position: which lock it took. */
export type SnapshotLocking = 'none' | 'global_read_lock';

/**
 * Opens a transaction with a consistent snapshot on `conn` and returns the binlog coordinates it corresponds to:
 * every transaction committed before them is visible to the snapshot, none after.
 *
 * MariaDB: `START TRANSACTION WITH CONSISTENT SNAPSHOT` makes the binlog position part of the snapshot
 * (`binlog_snapshot_file/position` status), without any lock; `BINLOG_GTID_POS` turns it into the exact GTID position.
 *
 * MySQL with gtid_mode=ON: no lock. The executed GTID set and binlog position are read just before and a moment
 * after the snapshot starts; only when nothing committed in between is that position taken (else the snapshot
 * transaction is rolled back and started again), and streaming then starts by the GTID set. An engine commit shows
 * in the GTID set right after it; the moment covers that.
 *
 * MySQL otherwise (GTIDs off, or no quiet moment found on a busy server): `FLUSH TABLES WITH READ LOCK` (needs
 * RELOAD) stops commits only while the snapshot starts and the position is read, and waits at most
 * GLOBAL_LOCK_WAIT_SECONDS to get it (writers wait behind it meanwhile, e.g. while a long query runs).
 */
export async function startConsistentSnapshot(
  conn: Conn,
  flavor: Flavor,
): Promise<BinlogCoordinates & { locking: SnapshotLocking }> {
  await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  if (flavor === 'mariadb') {
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const { file, pos } = await mariadbSnapshotPosition(conn);
    return { file, pos, gtidSet: await mariadbGtidAt(conn, file, pos), locking: 'none' };
  }
  const [mode] = await rows(conn, 'SELECT @@GLOBAL.gtid_mode AS m');
  const gtids = String(mode?.m).toUpperCase() === 'ON';
  if (gtids) {
    const quiet = await lockFreeSnapshot(conn, LOCK_FREE_ATTEMPTS);
    if (quiet) return quiet;
  }
  const locked = await globalReadLock(conn);
  if (locked === true) {
    try {
      await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const status = await masterStatus(conn);
      if (!status) throw new Error('binary logging is off (SHOW BINARY LOG STATUS returned nothing)');
      return { file: status.file, pos: status.pos, gtidSet: status.gtid ?? '', locking: 'global_read_lock' };
    } finally {
      await conn.query('UNLOCK TABLES');
    }
  }
  if (gtids) {
    const quiet = await lockFreeSnapshot(conn, LOCK_FREE_ATTEMPTS_ONLY_WAY);
    if (quiet) return quiet;
    throw new TributaryError(
      'retryable',
      `the server committed transactions during each attempt to start the snapshot without a lock, and the global read lock ${locked === 'denied' ? 'is not allowed (no RELOAD privilege)' : `could not be had within ${GLOBAL_LOCK_WAIT_SECONDS} s`}`,
      {
        hint: 'the pipeline retries; to start on a busy server, GRANT RELOAD ON *.* TO the source user (the snapshot then blocks commits only for the milliseconds it takes to read the binlog position)',
      },
    );
  }
  if (locked === 'denied') {
    throw new SourceSetupError(
      'the snapshot needs the global read lock here (gtid_mode is not ON), and the source user may not take it (no RELOAD privilege)',
      'GRANT RELOAD ON *.* TO the source user (the snapshot then blocks commits only for the milliseconds it takes to read the binlog position), or enable GTIDs (gtid_mode = ON, enforce_gtid_consistency = ON): then no lock is needed',
    );
  }
  throw new TributaryError(
    'retryable',
    `the global read lock for the snapshot could not be had within ${GLOBAL_LOCK_WAIT_SECONDS} s (a long query or transaction holds tables open)`,
    { hint: 'the pipeline retries; enable GTIDs (gtid_mode = ON) to snapshot without a lock' },
  );
}

/** Attempts to start snapshots on several connections with no commit in between, before taking the global read lock. */
const SHARED_ATTEMPTS = 20;

/**
 * Opens a transaction with a consistent snapshot on each of `conns`, all seeing exactly the same transactions, and
 * returns the binlog coordinates they correspond to (the reads of a parallel snapshot). Returns a reason instead when
 * that cannot be had here: the caller then reads on one connection.
 *
 * MySQL with GTIDs tries lock-free first: the snapshots start at once, and the position is taken only when nothing
 * committed while they started (the binlog position and GTID set read before the starts equal those read a moment
 * after, as in startConsistentSnapshot). Else `FLUSH TABLES WITH READ LOCK` (needs RELOAD) holds commits while the
 * snapshots start and the position is read, as mydumper does. MySQL without GTIDs, and MariaDB, take the lock at
 * once: MariaDB connections whose `binlog_snapshot_file/position` were all the same were seen holding different
 * views under commits (31 rows in one, 34 in four), and a reader that sees more rows than the planner ends its chunk
 * before the planned end, so rows between would be read by no chunk.
 */
export async function startSharedSnapshot(
  conns: readonly Conn[],
  flavor: Flavor,
  lockFreeAttempts = SHARED_ATTEMPTS,
): Promise<(BinlogCoordinates & { locking: SnapshotLocking }) | { unavailable: string }> {
  for (const c of conns) await c.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  const start = () => Promise.all(conns.map((c) => c.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY')));
  const rollback = () => Promise.all(conns.map((c) => c.query('ROLLBACK')));
  const [mode] = flavor === 'mysql' ? await rows(conns[0]!, 'SELECT @@GLOBAL.gtid_mode AS m') : [];
  const lockFree = flavor === 'mysql' && String(mode?.m).toUpperCase() === 'ON';
  for (let attempt = 0; lockFree && attempt < lockFreeAttempts; attempt++) {
    const before = await masterStatus(conns[0]!);
    if (!before) throw new Error('binary logging is off (SHOW BINARY LOG STATUS returned nothing)');
    await start();
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const after = await masterStatus(conns[0]!);
    if (after && after.file === before.file && after.pos === before.pos && after.gtid === before.gtid) {
      return { file: after.file, pos: after.pos, gtidSet: after.gtid ?? '', locking: 'none' };
    }
    await rollback();
    await new Promise((r) => setTimeout(r, Math.min(5 * attempt, 50)));
  }
  const locked = await globalReadLock(conns[0]!);
  if (locked !== true) {
    return {
      unavailable:
        locked === 'denied'
          ? 'the global read lock is not allowed (no RELOAD privilege) and commits kept coming while the snapshots started'
          : `the global read lock could not be had within ${GLOBAL_LOCK_WAIT_SECONDS} s`,
    };
  }
  try {
    await start();
    if (flavor === 'mariadb') {
      const { file, pos } = await mariadbSnapshotPosition(conns[0]!);
      return { file, pos, gtidSet: await mariadbGtidAt(conns[0]!, file, pos), locking: 'global_read_lock' };
    }
    const status = await masterStatus(conns[0]!);
    if (!status) throw new Error('binary logging is off (SHOW BINARY LOG STATUS returned nothing)');
    return { file: status.file, pos: status.pos, gtidSet: status.gtid ?? '', locking: 'global_read_lock' };
  } finally {
    await conns[0]!.query('UNLOCK TABLES');
  }
}

/** MariaDB: the binlog position the connection's consistent snapshot corresponds to. */
async function mariadbSnapshotPosition(conn: Conn): Promise<{ file: string; pos: number }> {
  const status = await rows(conn, "SHOW STATUS LIKE 'binlog_snapshot_%'");
  const v = Object.fromEntries(status.map((r) => [String(r.Variable_name).toLowerCase(), String(r.Value)]));
  const file = v.binlog_snapshot_file;
  if (!file) throw new Error('binary logging is off (binlog_snapshot_file is empty)');
  return { file, pos: Number(v.binlog_snapshot_position) };
}

/**
 * What a consistent snapshot is known to see, for reads fenced against the stream (the incremental snapshot): every
 * transaction of `visible` is visible to it, and none outside `seen`. Equal when the position is exact.
 */
export interface SnapshotBounds {
  visible: BinlogCoordinates;
  /** `visible` is exact by file+offset too: every transaction before it in the binlog is visible. */
  exactPosition: boolean;
  seen: BinlogCoordinates;
}

/**
 * Opens a transaction with a consistent snapshot on `conn` and says what it sees, without waiting for a moment
 * without commits. MariaDB: exact, as in startConsistentSnapshot. MySQL with GTIDs: the executed GTID set read just
 * before the snapshot starts (its transactions have committed in the engine, so the snapshot sees them) and the one
 * read just after (a transaction outside it had not committed when the snapshot started). MySQL without GTIDs: the
 * exact position under the global read lock, as in startConsistentSnapshot.
 */
export async function startSnapshotBounds(conn: Conn, flavor: Flavor): Promise<SnapshotBounds> {
  if (flavor === 'mysql') {
    const [mode] = await rows(conn, 'SELECT @@GLOBAL.gtid_mode AS m');
    if (String(mode?.m).toUpperCase() === 'ON') {
      await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      const before = await masterStatus(conn);
      await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const after = await masterStatus(conn);
      if (!before || !after) throw new Error('binary logging is off (SHOW BINARY LOG STATUS returned nothing)');
      return {
        visible: { file: before.file, pos: before.pos, gtidSet: before.gtid ?? '' },
        exactPosition: false,
        seen: { file: after.file, pos: after.pos, gtidSet: after.gtid ?? '' },
      };
    }
  }
  const at = await startConsistentSnapshot(conn, flavor);
  const exact = { file: at.file, pos: at.pos, gtidSet: at.gtidSet };
  return { visible: exact, exactPosition: true, seen: exact };
}

/** Whether streaming after this snapshot starts by its GTID set rather than its binlog offset. */
export function snapshotStreamsByGtid(coords: { locking?: SnapshotLocking; gtidSet: string }): boolean {
  return coords.locking === 'none' && coords.gtidSet.includes(':');
}

/** Takes MySQL's global read lock, waiting at most GLOBAL_LOCK_WAIT_SECONDS. */
async function globalReadLock(conn: Conn): Promise<true | 'denied' | 'timeout'> {
  const [before] = await rows(conn, 'SELECT @@SESSION.lock_wait_timeout AS t');
  await conn.query(`SET SESSION lock_wait_timeout = ${GLOBAL_LOCK_WAIT_SECONDS}`);
  try {
    await conn.query('FLUSH TABLES WITH READ LOCK');
    return true;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR') return 'denied';
    if (code === 'ER_LOCK_WAIT_TIMEOUT') return 'timeout';
    throw err;
  } finally {
    await conn.query(`SET SESSION lock_wait_timeout = ${Number(before?.t) || 31536000}`);
  }
}

/** The lock-free start (see startConsistentSnapshot), or null when no attempt found a moment without commits. */
async function lockFreeSnapshot(
  conn: Conn,
  attempts: number,
): Promise<(BinlogCoordinates & { locking: SnapshotLocking }) | null> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const before = await masterStatus(conn);
    if (!before) throw new Error('binary logging is off (SHOW BINARY LOG STATUS returned nothing)');
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const after = await masterStatus(conn);
    if (after && after.file === before.file && after.pos === before.pos && after.gtid === before.gtid) {
      return { file: after.file, pos: after.pos, gtidSet: after.gtid ?? '', locking: 'none' };
    }
    await conn.query('ROLLBACK');
    await new Promise((r) => setTimeout(r, Math.min(5 * attempt, 50)));
  }
  return null;
}

/** Binlog files the server still has, oldest first. */
export async function binaryLogs(conn: Conn): Promise<{ name: string; size: number }[]> {
  const r = await rows(conn, 'SHOW BINARY LOGS');
  return r.map((x) => ({ name: String(x.Log_name), size: Number(x.File_size) }));
}

/** MySQL's server error when a requested binlog position or GTID is gone (ER_MASTER_FATAL_ERROR_READING_BINLOG). */
export function isPurgedBinlogError(err: unknown): boolean {
  const e = err as { errno?: number; code?: string; message?: string } | null;
  if (!e) return false;
  return (
    e.errno === 1236 ||
    e.code === 'ER_MASTER_FATAL_ERROR_READING_BINLOG' ||
    /could not find (first log file name|GTID state)|purged binary logs|binary log.*purged/i.test(e.message ?? '')
  );
}

/**
 * Tracks a MariaDB GTID position (last GTID per replication domain) as transactions commit, so every checkpoint
 * carries the exact position even after a file+offset resume.
 */
export class MariadbGtidPosition {
  private readonly domains = new Map<number, string>();

  constructor(initial = '') {
    for (const part of initial.split(',')) {
      const g = part.trim();
      if (!g) continue;
      const m = /^(\d+)-(\d+)-(\d+)$/.exec(g);
      if (!m) throw new Error(`not a MariaDB GTID position: ${initial}`);
      this.domains.set(Number(m[1]), g);
    }
  }

  /** Records a committed GTID `domain-server-seq`. */
  add(gtid: string): void {
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(gtid);
    if (!m) return;
    this.domains.set(Number(m[1]), gtid);
  }

  toString(): string {
    return [...this.domains.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([, g]) => g)
      .join(',');
  }
}

/** The executed GTIDs as transactions commit: MariaDB's last GTID per domain, or MySQL's GTID set. */
export interface ExecutedGtids {
  /** Records a committed transaction's GTID. */
  add(gtid: string): void;
  /** The position/set to resume from ('' when none). */
  toString(): string;
}

export function executedGtids(flavor: Flavor, initial: string): ExecutedGtids {
  return flavor === 'mariadb' ? new MariadbGtidPosition(initial) : MysqlGtidSet.parse(initial);
}

/**
 * The executed GTIDs exactly at a binlog file and offset, for a checkpoint that has only those ('' when the server
 * has no GTIDs there or the file is gone). MariaDB computes it (`BINLOG_GTID_POS`); on MySQL it is the file's
 * Previous_gtids plus the GTIDs of the file's transactions that end at or before the offset.
 */
export async function gtidSetAt(conn: Conn, flavor: Flavor, file: string, pos: number): Promise<string> {
  try {
    if (flavor === 'mariadb') return await mariadbGtidAt(conn, file, pos);
    const [mode] = await rows(conn, 'SELECT @@GLOBAL.gtid_mode AS m');
    if (String(mode?.m).toUpperCase() === 'OFF') return '';
    const events = await rows(conn, 'SHOW BINLOG EVENTS IN ?', [file]);
    let set = MysqlGtidSet.parse('');
    let pending: string | undefined;
    for (const e of events) {
      if (Number(e.Pos) >= pos) break;
      const info = String(e.Info ?? '');
      if (e.Event_type === 'Previous_gtids') set = MysqlGtidSet.parse(info);
      else if (e.Event_type === 'Gtid' || e.Event_type === 'Gtid_tagged') {
        if (pending) set.add(pending);
        pending = /GTID_NEXT\s*=\s*'([^']+)'/.exec(info)?.[1];
      }
      // A group whose events all lie before the offset committed before it.
      if (pending && Number(e.End_log_pos) <= pos && (e.Event_type === 'Xid' || e.Event_type === 'Query')) {
        if (e.Event_type === 'Xid' || !/^BEGIN/i.test(info)) {
          set.add(pending);
          pending = undefined;
        }
      }
    }
    return set.toString();
  } catch {
    return '';
  }
}

/** System databases that are never replicated. */
export const SYSTEM_DATABASES = ['mysql', 'information_schema', 'performance_schema', 'sys'];
