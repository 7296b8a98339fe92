import type { ChangeEvent } from './change-event.ts';
import type { Checkpoint } from './checkpoint.ts';

/**
 * An ordered run of events. Batches of one pipeline are numbered consecutively from 0 within one run of the source.
 *
 * `checkpoint` is set only when the batch ends on a transaction commit (never mid-transaction): once this batch and
 * every earlier one are durable at the target, the checkpoint may be saved and acknowledged. A batch with no events
 * and a checkpoint is a heartbeat that lets an idle source advance.
 */
export interface ChangeBatch {
  seq: number;
  events: ChangeEvent[];
  checkpoint: Checkpoint | null;
  /** Approximate in-memory size of the events, for byte-bounded buffering. */
  bytes: number;
}
