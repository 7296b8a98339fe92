/**
 * Where a pipeline resumes. Saved only once everything up to it is durable at the target. The position is typed per
 * engine; which one covers which is the engines' knowledge (src/checkpoint-order.ts).
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
 * A checkpoint of an initial snapshot still running (PostgreSQL: `state.snapshot.initial`): every chunk it copies ends
 * in another checkpoint at the same position (the snapshot's consistent point) with more copied. Its batches are
 * never replayed (a restart copies the rest by incremental snapshot), so at an equal position a later checkpoint is
 * progress, not a replay.
 */
export function isSnapshotProgress(cp: Checkpoint): boolean {
  return (cp.state?.snapshot as { initial?: unknown } | undefined)?.initial === true;
}

/**
 * Chunks an incremental snapshot had emitted when this checkpoint was taken (`state.snapshot.emitted`). A source
 * whose chunks go out at the stream's current position (MySQL: no watermark of its own in the binlog) often gives a
 * chunk the position of the checkpoint before it: at an equal position, a higher count is progress, not a replay.
 */
export function snapshotChunksEmitted(cp: Checkpoint): number {
  const emitted = (cp.state?.snapshot as { emitted?: unknown } | undefined)?.emitted;
  return typeof emitted === 'number' ? emitted : 0;
}
