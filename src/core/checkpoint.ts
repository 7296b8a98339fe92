/**
 * Where a pipeline resumes. Saved only once everything up to it is durable at the target.
 */

export type CheckpointPosition =
  | {
      kind: 'postgres';
      /** Commit end LSN of the last fully delivered transaction (`X/Y`). Resume streams changes after it. */
      lsn: string;
      /**
       * End LSN of the last transaction commit at or before `lsn` (`lsn` itself unless an idle advance moved past
       * it), null when none was streamed yet: the first element of the next change's `source.sequence`, so a replay
       * writes the same events. Absent in checkpoints of older versions (then `lsn` is used).
       */
      lastCommitLsn?: string | null;
    }
  | {
      kind: 'mysql';
      /** Binlog coordinates just after the last fully delivered transaction's XID event. */
      file: string;
      pos: number;
      /** Executed GTID set after that transaction (MySQL `uuid:1-n,...`, MariaDB `d-s-n,...`), when GTIDs are on. */
      gtidSet?: string;
    };

export interface Checkpoint {
  pipeline: string;
  phase: 'snapshot' | 'stream';
  position: CheckpointPosition;
  /** Source-specific resumable state, e.g. the snapshot's progress. Must be JSON-serializable. */
  state?: Record<string, unknown>;
  /** Commit time at the source of the last delivered change, ms since epoch (for lag). */
  sourceTimeMs?: number;
}

/** Parses a PostgreSQL LSN in either spelling (`0/1926A58`, `00000000/01926A28`) into a 64-bit number. */
export function parseLsn(lsn: string): bigint {
  const slash = lsn.indexOf('/');
  if (slash < 0) throw new Error(`not an LSN: ${lsn}`);
  const hi = BigInt(`0x${lsn.slice(0, slash)}`);
  const lo = BigInt(`0x${lsn.slice(slash + 1)}`);
  return (hi << 32n) | lo;
}

export function formatLsn(value: bigint): string {
  const hi = value >> 32n;
  const lo = value & 0xffffffffn;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

/**
 * Orders two positions of the same kind: negative if a is before b, 0 if equal, positive if after.
 * MySQL positions compare by binlog file then offset (GTID sets are not totally ordered).
 *
 * MySQL file+offset order holds only within the binlogs of one server. After a resume by GTID set on another server
 * (a failover to a replica, whose binlog files are its own), a file+offset compares with one of the old server
 * without meaning, either way: "before" there would make a target drop new transactions. When both sides carry GTIDs,
 * decide by them: an event is covered when `gtidCovers(stored.gtidSet, event.gtid)`, a checkpoint when
 * `gtidSetCovers(stored.gtidSet, checkpoint.gtidSet)` (`compareCoverage`); use file+offset only when GTIDs are absent.
 */
export function comparePositions(a: CheckpointPosition, b: CheckpointPosition): number {
  if (a.kind === 'postgres' && b.kind === 'postgres') {
    const x = parseLsn(a.lsn);
    const y = parseLsn(b.lsn);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind === 'mysql' && b.kind === 'mysql') {
    if (a.file !== b.file) return compareBinlogFiles(a.file, b.file);
    return a.pos - b.pos;
  }
  throw new Error(`cannot compare a ${a.kind} position with a ${b.kind} position`);
}

/**
 * Orders binlog file names `base.NNNNNN` by their number: after `binlog.999999` comes `binlog.1000000`, which sorts
 * before it as text. Names of different bases (another server's files) compare as text.
 */
export function compareBinlogFiles(a: string, b: string): number {
  const x = /^(.*)\.(\d+)$/.exec(a);
  const y = /^(.*)\.(\d+)$/.exec(b);
  if (x && y && x[1] === y[1]) {
    const m = BigInt(x[2]!);
    const n = BigInt(y[2]!);
    if (m !== n) return m < n ? -1 : 1;
  }
  return a === b ? 0 : a < b ? -1 : 1;
}

/**
 * Whether position `a` reaches past `stored`, by what each covers: negative when `stored` covers all of `a` and more
 * (a replay), 0 when they cover the same, positive when `a` holds something `stored` does not (it may replace it).
 * MySQL positions that both carry a GTID set compare by the sets (file+offset means nothing across servers); equal
 * sets, unreadable sets and positions without sets compare by `comparePositions`. Not an order: two GTID sets may
 * each hold what the other lacks, and then either is positive against the other.
 */
export function compareCoverage(a: CheckpointPosition, stored: CheckpointPosition): number {
  if (a.kind === 'mysql' && stored.kind === 'mysql' && a.gtidSet && stored.gtidSet) {
    const covered = gtidSetCovers(stored.gtidSet, a.gtidSet);
    if (covered === false) return 1;
    // Equal sets: no transaction lies between them, so either answer is harmless; file+offset keeps one server's
    // checkpoints moving over binlog events that are not transactions.
    if (covered === true && gtidSetCovers(a.gtidSet, stored.gtidSet) === false) return -1;
  }
  return comparePositions(a, stored);
}

/**
 * A checkpoint of an initial snapshot still running (PostgreSQL: `state.snapshot.initial`): every chunk it copies ends
 * in another checkpoint at the same position (the snapshot's consistent point) with more copied. Its batches are
 * never replayed (a restart copies the rest by incremental snapshot), so at an equal position a later checkpoint is
 * progress, not a replay.
 */
export function isSnapshotProgress(cp: Checkpoint): boolean {
  return (cp.state?.snapshot as { initial?: unknown } | undefined)?.initial === true;
}

/** True when `next` would move the checkpoint backwards (a snapshot checkpoint never replaces a stream one). */
export function isBackwards(current: Checkpoint, next: Checkpoint): boolean {
  if (current.phase === 'stream' && next.phase === 'snapshot') return true;
  if (current.phase !== next.phase) return false;
  if (current.position.kind !== next.position.kind) return false;
  return compareCoverage(next.position, current.position) < 0;
}

/**
 * Whether a database checkpoint store may replace `stored` with `next`: never with one it covers, and at the same
 * position never from `stream` back to `snapshot`.
 */
export function advances(stored: Checkpoint | null, next: Checkpoint): boolean {
  if (!stored || stored.position.kind !== next.position.kind) return true;
  const c = compareCoverage(next.position, stored.position);
  if (c !== 0) return c > 0;
  return !(stored.phase === 'stream' && next.phase === 'snapshot');
}

/** The later of two checkpoints of one pipeline (either may be missing). */
export function laterCheckpoint(a: Checkpoint | null, b: Checkpoint | null): Checkpoint | null {
  if (!a) return b;
  if (!b) return a;
  return isBackwards(a, b) ? a : b;
}

/**
 * Whether a MySQL/MariaDB executed GTID set includes a transaction's GTID; undefined when either cannot be read or
 * they are of different flavors. MariaDB (`domain-server-seq`, one entry per domain): the set holds the last
 * sequence number per domain, and a GTID is included when its domain's entry has a sequence number at or above its
 * own, whatever server wrote it (MariaDB's own `gtid_slave_pos` semantics). MySQL (`uuid[:tag]:1-5:7,...`): the GTID's
 * number lies in one of its source id's intervals.
 */
export function gtidCovers(gtidSet: string, gtid: string): boolean | undefined {
  const maria = parseMariadbGtidSet(gtid);
  if (maria) {
    const set = parseMariadbGtidSet(gtidSet);
    if (!set || maria.size !== 1) return undefined;
    const [[domain, seq]] = [...maria] as [[string, bigint]];
    const have = set.get(domain);
    return have !== undefined && have >= seq;
  }
  const one = parseMysqlGtidSet(gtid);
  const set = parseMysqlGtidSet(gtidSet);
  if (!one || !set || one.size !== 1) return undefined;
  const [[sid, ranges]] = [...one] as [[string, [bigint, bigint][]]];
  if (ranges.length !== 1 || ranges[0]![0] !== ranges[0]![1]) return undefined;
  const n = ranges[0]![0];
  return (set.get(sid) ?? []).some(([lo, hi]) => lo <= n && n <= hi);
}

/** Whether executed GTID set `outer` includes all of `inner` (see `gtidCovers`); undefined when unreadable. */
export function gtidSetCovers(outer: string, inner: string): boolean | undefined {
  const innerMaria = parseMariadbGtidSet(inner);
  const outerMaria = parseMariadbGtidSet(outer);
  if (innerMaria && outerMaria) {
    for (const [domain, seq] of innerMaria) {
      const have = outerMaria.get(domain);
      if (have === undefined || have < seq) return false;
    }
    return true;
  }
  const a = parseMysqlGtidSet(outer);
  const b = parseMysqlGtidSet(inner);
  if (!a || !b || innerMaria || outerMaria) return undefined;
  for (const [sid, ranges] of b) {
    const have = a.get(sid) ?? [];
    for (const [lo, hi] of ranges) {
      // Intervals of one set do not overlap or touch (the server merges them): one must hold the whole range.
      if (!have.some(([x, y]) => x <= lo && hi <= y)) return false;
    }
  }
  return true;
}

const MARIADB_GTID = /^(\d+)-(\d+)-(\d+)$/;

/** MariaDB GTID position (`0-1-100,1-2-7`) as domain -> sequence number; null when not that form. `''`: empty. */
function parseMariadbGtidSet(text: string): Map<string, bigint> | null {
  const out = new Map<string, bigint>();
  for (const part of text.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const m = MARIADB_GTID.exec(p);
    if (!m) return null;
    const seq = BigInt(m[3]!);
    const prev = out.get(m[1]!);
    if (prev === undefined || prev < seq) out.set(m[1]!, seq);
  }
  return text.trim() === '' ? null : out;
}

/** MySQL GTID set (`uuid[:tag]:1-5:7,...`) as source id (uuid with tag) -> intervals; null when not that form. */
function parseMysqlGtidSet(text: string): Map<string, [bigint, bigint][]> | null {
  const out = new Map<string, [bigint, bigint][]>();
  for (const part of text.replace(/\s+/g, '').split(',')) {
    if (part === '') continue;
    const fields = part.split(':');
    const uuid = fields[0]!.toLowerCase();
    if (!/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/.test(uuid)) return null;
    let sid = uuid;
    for (const f of fields.slice(1)) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(f);
      if (!m) {
        if (!/^[a-z_][a-z0-9_]{0,31}$/i.test(f)) return null;
        sid = `${uuid}:${f.toLowerCase()}`; // MySQL 8.3+ tagged GTIDs: the tag is part of the source id
        continue;
      }
      const list = out.get(sid) ?? [];
      out.set(sid, list);
      list.push([BigInt(m[1]!), BigInt(m[2] ?? m[1]!)]);
    }
  }
  return out.size === 0 ? null : out;
}
