import type { ChangeEvent } from './change-event.ts';
import type { Checkpoint } from './checkpoint.ts';
import type { RowBlock } from './row-block.ts';

/**
 * An ordered run of events. Batches of one pipeline are numbered consecutively from 0 within one run of the source.
 *
 * `checkpoint` is set only when the batch ends on a transaction commit (never mid-transaction): once this batch and
 * every earlier one are durable at the target, the checkpoint may be saved and acknowledged. A batch with no events
 * and a checkpoint is a heartbeat that lets an idle source advance.
 */
export interface ChangeBatch {
  seq: number;
  /** The changes, in order. A batch of row blocks decodes them from its blocks when first read (and keeps them). */
  readonly events: ChangeEvent[];
  /**
   * Set on a batch of snapshot rows still in bulk form (see row-block.ts) instead of events: a target that loads
   * blocks as they are reads these and leaves `events` alone. A batch holds blocks or single events, never both.
   */
  readonly blocks?: readonly RowBlock[];
  checkpoint: Checkpoint | null;
  /** Approximate in-memory size of the events, for byte-bounded buffering. */
  bytes: number;
}

/** A batch of row blocks whose `events` are decoded from them on first read. */
export function blockBatch(
  seq: number,
  blocks: readonly RowBlock[],
  checkpoint: Checkpoint | null,
  bytes: number,
): ChangeBatch {
  let decoded: ChangeEvent[] | null = null;
  const batch = { seq, blocks, checkpoint, bytes } as ChangeBatch;
  // An own enumerable property: a copy made with spread still has the events.
  Object.defineProperty(batch, 'events', {
    enumerable: true,
    get: () => {
      decoded ??= blocks.length === 1 ? blocks[0]!.events() : blocks.flatMap((b) => b.events());
      return decoded;
    },
  });
  return batch;
}

/** How many changes a batch carries, without decoding its blocks. */
export function changeCount(batch: ChangeBatch): number {
  if (!batch.blocks) return batch.events.length;
  let n = 0;
  for (const b of batch.blocks) n += b.rows;
  return n;
}
