import type { ErrorKind } from '../errors.ts';
import type { ChangeBatch } from './change-batch.ts';
import type { Checkpoint } from './checkpoint.ts';

export interface SourceStatus {
  /** Bytes of WAL/binlog the source holds back for us (PostgreSQL: current WAL LSN minus confirmed flush). */
  retainedBytes?: number;
  /** MySQL/MariaDB: binlog bytes the server wrote after the checkpoint (what the pipeline has still to read). */
  behindBytes?: number;
  /** What an operator must act on (e.g. the checkpoint's binlog file purged), one sentence each with the fix. */
  warnings?: string[];
  /** Free-form facts for `tributary status`. */
  details?: Record<string, unknown>;
}

/**
 * A change source. The pipeline opens it with the last saved checkpoint (null on first start), pulls batches
 * (pulling is the backpressure: a source must not read far ahead of what is pulled), and acknowledges checkpoints
 * once they are durable at the target and saved.
 */
export interface Source {
  /** Preflight checks, connect, create slots/publications when allowed. Throws a TributaryError with a hint. */
  open(from: Checkpoint | null): Promise<void>;
  /**
   * After `open` without a checkpoint: where the source starts streaming when that position exists nowhere else (a
   * binlog position read at start; a PostgreSQL slot keeps its own). The pipeline saves it before it reports the
   * pipeline running, so changes made while a pipeline that saw none was stopped are still delivered.
   */
  startCheckpoint?(): Checkpoint | null;
  /** Yields batches in source order until closed. */
  batches(): AsyncIterable<ChangeBatch>;
  /**
   * A clean stop: stop reading, hand out what is complete (complete transactions, the newest idle position) and end
   * `batches()`. Without it the pipeline simply stops pulling.
   */
  drain?(): void;
  /** The checkpoint is durable at the target and saved: the source may release everything up to it. */
  commit(checkpoint: Checkpoint): Promise<void>;
  /** Stops reading; pending `batches()` iteration ends. Idempotent. */
  close(): Promise<void>;
  status?(): Promise<SourceStatus>;
  /**
   * The engine's verdict on an error its client threw (SQLSTATEs, server error codes), before the generic rules of
   * src/errors.ts; undefined when it does not know the error.
   */
  classifyError?(err: unknown): ErrorKind | undefined;
}
