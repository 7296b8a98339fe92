import type { ErrorKind } from '../errors.ts';
import type { ChangeBatch } from './change-batch.ts';
import type { CheckpointStore } from './checkpoint-store.ts';

/**
 * What a write achieved. `durable`: the batch survives a crash of the target (committed, fsynced, acknowledged by
 * the brokers). `applied`: it is in an open transaction that a later batch of the same source transaction makes
 * durable; a crash loses it. A batch that carries a checkpoint must come back `durable`: only then may its
 * checkpoint be saved.
 */
export type WriteResult = 'applied' | 'durable';

/**
 * A change target (sink).
 *
 * `write` is called in batch order, possibly before the previous call resolved (up to the pipeline's in-flight
 * limit); a target that must apply in order serializes internally. It resolves with what it achieved (above): for a
 * batch that ends on a commit, only once that is durable. Writes are idempotent: replaying a batch after a crash does
 * no harm.
 */
interface TargetBase {
  open(): Promise<void>;
  write(batch: ChangeBatch): Promise<WriteResult>;
  /** Discards anything applied but not durable (an open transaction), e.g. before the pipeline restarts. */
  reset?(): Promise<void>;
  close(): Promise<void>;
  /** The engine's verdict on an error its client threw, before the generic rules; undefined when it does not know it. */
  classifyError?(err: unknown): ErrorKind | undefined;
  /**
   * What the target must remember from one run to the next (the Kafka target: each topic's partition count), saved
   * with every checkpoint the pipeline stores for it (as `state.target`, JSON) and handed to `resume` after open().
   */
  checkpointState?(): Record<string, unknown>;
  resume?(saved: Record<string, unknown> | undefined): void;
}

/** A target whose checkpoints live elsewhere: the pipeline saves each one to its store once the batch is durable. */
export interface PlainTarget extends TargetBase {
  readonly transactional?: false;
}

/**
 * A target that writes the checkpoint a batch carries in the same transaction as the batch's data (exactly-once
 * effect). The pipeline loads from its store and saves nothing itself, unless a separate store is configured too.
 */
export interface TransactionalTarget extends TargetBase {
  readonly transactional: true;
  /** Reads (and, for `teardown` or a start position, writes) the checkpoints kept with the data. */
  readonly checkpointStore: CheckpointStore;
}

export type Target = PlainTarget | TransactionalTarget;
