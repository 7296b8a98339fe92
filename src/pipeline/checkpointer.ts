import type { ChangeBatch } from '../core/change-batch.ts';
import type { Checkpoint } from '../core/checkpoint.ts';

/**
 * Releases checkpoints strictly in batch order: a batch's checkpoint is released only when it and every batch before
 * it are durable, whatever order the target finished them in.
 */
export class Checkpointer {
  /** Batches handed out and not yet part of a released prefix, in seq order. */
  private readonly pending: { seq: number; checkpoint: Checkpoint | null; durable: boolean }[] = [];
  private nextSeq: number | undefined;

  /** Records a batch about to be written. Batches must be tracked in seq order without gaps. */
  track(batch: ChangeBatch): void {
    if (this.nextSeq !== undefined && batch.seq !== this.nextSeq) {
      throw new Error(`batch ${batch.seq} tracked out of order (expected ${this.nextSeq})`);
    }
    this.nextSeq = batch.seq + 1;
    this.pending.push({ seq: batch.seq, checkpoint: batch.checkpoint, durable: false });
  }

  /**
   * Marks a batch durable and returns the newest checkpoint that this made releasable, or null when the fully
   * durable prefix did not reach a new checkpoint.
   */
  markDurable(seq: number): Checkpoint | null {
    const head = this.pending[0];
    if (head === undefined) throw new Error(`batch ${seq} was not tracked`);
    const entry = this.pending[seq - head.seq];
    if (entry === undefined || entry.seq !== seq) throw new Error(`batch ${seq} was not tracked`);
    entry.durable = true;
    let released: Checkpoint | null = null;
    while (this.pending.length > 0 && this.pending[0]!.durable) {
      const done = this.pending.shift()!;
      if (done.checkpoint) released = done.checkpoint;
    }
    return released;
  }

  get inFlight(): number {
    return this.pending.length;
  }
}
