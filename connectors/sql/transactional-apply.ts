import type { ChangeBatch } from '../../src/core/change-batch.ts';
import type { ChangeEvent } from '../../src/core/change-event.ts';
import type { Checkpoint } from '../../src/core/checkpoint.ts';
import type { ConnectorContext } from '../../src/core/connector-context.ts';
import type { RowBlock } from '../../src/core/row-block.ts';
import type { WriteResult } from '../../src/core/target.ts';
import { TributaryError } from '../../src/errors.ts';
import { StoredCheckpoint } from './stored-checkpoint.ts';

/** What a SQL target does against its own database; `TransactionalApply` decides when. */
export interface SqlSession {
  /**
   * Opens a connection unless a usable one is open. A new connection reads the stored checkpoint, which it returns;
   * an open one returns undefined.
   */
  connect(): Promise<Checkpoint | null | undefined>;
  /** The stored checkpoint read again over the open connection; undefined when none is usable (a failing one is dropped). */
  reload(): Promise<Checkpoint | null | undefined>;
  /** Drops the open transaction, if any. Never throws: a connection that cannot roll back is dropped. */
  rollback(): Promise<void>;
  /** Applies events none of which is durable yet, in the open transaction (begun when needed). */
  apply(events: ChangeEvent[]): Promise<void>;
  /** Applies snapshot row blocks (see row-block.ts), in the open transaction: loaded as they are, or as events. */
  applyBlocks(blocks: RowBlock[]): Promise<void>;
  /** Writes the checkpoint row in the open transaction and commits it. */
  commit(checkpoint: Checkpoint): Promise<void>;
  /** The error a failed batch rejects with. */
  classify(err: unknown, batch: ChangeBatch): unknown;
}

interface Pending {
  batch: ChangeBatch;
  resolve: (result: WriteResult) => void;
  reject: (err: unknown) => void;
}

/**
 * The write side of a SQL target, whatever the database: batches apply in order (`write` may be called before the
 * previous one resolved), consecutive batches ending on commits share one target transaction with the checkpoint row
 * of the last (group commit), replays of what the stored checkpoint covers are skipped, and after a failure every
 * write fails until `reset()` or `open()`: what was applied but not committed is gone and must come again.
 */
export class TransactionalApply {
  readonly stored = new StoredCheckpoint();
  private queue: Pending[] = [];
  private pumping: Promise<void> | null = null;
  private failure: unknown = null;
  private stopping = false;

  constructor(
    private readonly session: SqlSession,
    private readonly ctx: ConnectorContext,
    private readonly groupCommitMaxBatches: number,
  ) {}

  async open(): Promise<void> {
    await this.idle();
    this.failure = null;
    await this.session.rollback();
    // A commit whose answer was lost may have happened: trust only the stored row.
    const stored = await this.session.reload();
    if (stored !== undefined) {
      this.stored.set(stored);
      return;
    }
    const fresh = await this.session.connect();
    if (fresh !== undefined) this.stored.set(fresh);
  }

  /** Resolves `applied` for a batch inside a transaction, `durable` once the transaction it ends is committed. */
  write(batch: ChangeBatch): Promise<WriteResult> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<WriteResult>((resolve, reject) => {
      this.queue.push({ batch, resolve, reject });
      if (!this.pumping) this.pumping = this.pump();
    });
  }

  async reset(): Promise<void> {
    this.stopping = true;
    const err = new TributaryError('retryable', 'the target was reset before this batch was applied');
    for (const p of this.queue.splice(0)) p.reject(err);
    await this.idle();
    this.stopping = false;
    this.failure = null;
    await this.session.rollback();
    const stored = await this.session.reload();
    if (stored !== undefined) this.stored.set(stored);
  }

  private async idle(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  private async pump(): Promise<void> {
    await null;
    const group: Pending[] = [];
    let groupCheckpoint: Checkpoint | null = null;
    try {
      while (true) {
        if (this.stopping || this.failure) {
          const err =
            this.failure ?? new TributaryError('retryable', 'the target was reset before this batch was committed');
          for (const p of group.splice(0)) p.reject(err);
          break;
        }
        const first = this.queue.shift();
        if (!first) break;
        // Batches queued behind one that ends no transaction are applied together with it, up to one that does: the
        // target then sends fewer, larger statements exactly when it is the slower side (the pipeline's in-flight
        // window bounds how many wait here).
        const taken = [first];
        while (!taken[taken.length - 1]!.batch.checkpoint && this.queue.length > 0) taken.push(this.queue.shift()!);
        const item = taken[taken.length - 1]!;
        try {
          const fresh = await this.session.connect();
          if (fresh !== undefined) this.stored.set(fresh);
          const { batch } = item;
          if (batch.checkpoint && this.stored.coversCheckpoint(batch.checkpoint)) {
            if (group.length > 0) {
              throw new TributaryError('fatal', `batch ${batch.seq} carries a checkpoint before one already applied`);
            }
            // Replayed after a crash between commit and acknowledgement: already durable here. What the open
            // transaction holds is the start of this same replayed transaction.
            await this.session.rollback();
            this.ctx.logger.info({
              event: 'target_replay_skipped',
              seq: batch.seq,
              position: batch.checkpoint.position,
            });
            for (let i = 0; i < taken.length - 1; i++) taken[i]!.resolve('applied');
            item.resolve('durable');
            continue;
          }
          await this.applyTaken(taken);
          for (let i = 0; i < taken.length - 1; i++) taken[i]!.resolve('applied');
          if (!batch.checkpoint) {
            item.resolve('applied');
            continue;
          }
          group.push(item);
          groupCheckpoint = batch.checkpoint;
          const next = this.queue[0];
          if (next?.batch.checkpoint && group.length < this.groupCommitMaxBatches) continue;
          await this.session.commit(groupCheckpoint);
          this.stored.committed(groupCheckpoint);
          this.ctx.logger.debug({ event: 'target_committed', position: groupCheckpoint.position });
          for (const p of group.splice(0)) p.resolve('durable');
        } catch (raw) {
          const err = this.session.classify(raw, item.batch);
          this.failure = err;
          this.ctx.logger.warn({ event: 'target_write_failed', seq: item.batch.seq, err: (err as Error).message });
          // Batches taken with it that were applied already resolved (their settle calls below are no-ops).
          for (const p of taken) if (!group.includes(p)) p.reject(err);
          for (const p of group.splice(0)) p.reject(err);
          for (const p of this.queue.splice(0)) p.reject(err);
          await this.session.rollback();
        }
      }
    } finally {
      this.pumping = null;
    }
  }

  /** Applies the batches taken together in order: runs of block batches as blocks, the others as events. */
  private async applyTaken(taken: Pending[]): Promise<void> {
    if (taken.length === 1 && !taken[0]!.batch.blocks) return this.applyUncovered(taken[0]!.batch.events);
    for (let i = 0; i < taken.length; ) {
      const blocks = !!taken[i]!.batch.blocks;
      let j = i;
      while (j < taken.length && !!taken[j]!.batch.blocks === blocks) j++;
      const run = taken.slice(i, j).map((p) => p.batch);
      // Snapshot rows: never covered by a stored streaming checkpoint (they carry no streamed position).
      if (blocks) await this.session.applyBlocks(run.flatMap((b) => b.blocks!));
      else await this.applyUncovered(run.length === 1 ? run[0]!.events : run.flatMap((b) => b.events));
      i = j;
    }
  }

  /** Applies the events the stored checkpoint does not cover (a transaction replayed in part is skipped in part). */
  private async applyUncovered(events: ChangeEvent[]): Promise<void> {
    let kept: ChangeEvent[] | null = null;
    let skipped = 0;
    if (this.stored.get()?.phase === 'stream') {
      for (let i = 0; i < events.length; i++) {
        const ev = events[i]!;
        if (!this.stored.coversEvent(ev)) {
          kept?.push(ev);
          continue;
        }
        // Copied only once something is skipped: the common batch goes through as it came.
        kept ??= events.slice(0, i);
        if (ev.op !== 'message') skipped++;
      }
    }
    await this.session.apply(kept ?? events);
    if (skipped > 0) this.ctx.logger.info({ event: 'target_replay_skipped', events: skipped });
  }
}
