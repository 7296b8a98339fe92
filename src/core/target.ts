import type { ErrorKind } from '../errors.ts';
import type { ChangeBatch } from './change-batch.ts';
import type { CheckpointStore } from './checkpoint-store.ts';

/**
 * A change target (sink).
 *
 * `write` is called in batch order, possibly before the previous call resolved (up to the pipeline's in-flight
 * limit); a target that must apply in order serializes internally. The promise resolves only when the batch is
 * durable at the target (for batches that end mid-transaction: once applied, since durability comes with the
 * transaction's last batch). Writes are idempotent: replaying a batch after a crash does no harm.
 */
export interface Target {
  open(): Promise<void>;
  write(batch: ChangeBatch): Promise<void>;
  /** Discards anything applied but not durable (an open transaction), e.g. before the pipeline restarts. */
  reset?(): Promise<void>;
  close(): Promise<void>;
  /**
   * Present when the target saves the checkpoint atomically with the data of the batch that carries it
   * (exactly-once effect). The pipeline then uses it as its checkpoint store.
   */
  readonly checkpointStore?: CheckpointStore;
  /** The engine's verdict on an error its client threw, before the generic rules; undefined when it does not know it. */
  classifyError?(err: unknown): ErrorKind | undefined;
}
