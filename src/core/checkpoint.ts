/**
 * Where a pipeline resumes. Saved only once everything up to it is durable at the target.
 */

export type CheckpointPosition =
  | {
      kind: 'postgres';
      /** Commit end LSN of the last fully delivered transaction (`X/Y`). Resume streams changes after it. */
      lsn: string;
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
 */
export function comparePositions(a: CheckpointPosition, b: CheckpointPosition): number {
  if (a.kind === 'postgres' && b.kind === 'postgres') {
    const x = parseLsn(a.lsn);
    const y = parseLsn(b.lsn);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind === 'mysql' && b.kind === 'mysql') {
    if (a.file !== b.file) return a.file < b.file ? -1 : 1;
    return a.pos - b.pos;
  }
  throw new Error(`cannot compare a ${a.kind} position with a ${b.kind} position`);
}

/** True when `next` would move the checkpoint backwards (a snapshot checkpoint never replaces a stream one). */
export function isBackwards(current: Checkpoint, next: Checkpoint): boolean {
  if (current.phase === 'stream' && next.phase === 'snapshot') return true;
  if (current.phase !== next.phase) return false;
  if (current.position.kind !== next.position.kind) return false;
  return comparePositions(next.position, current.position) < 0;
}

/** The later of two checkpoints of one pipeline (either may be missing). */
export function laterCheckpoint(a: Checkpoint | null, b: Checkpoint | null): Checkpoint | null {
  if (!a) return b;
  if (!b) return a;
  return isBackwards(a, b) ? a : b;
}
