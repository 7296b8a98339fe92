/**
 * The commit-aware batcher every source pushes into. A source decodes and calls `push` (a change), `commit` (the end
 * of a transaction, with the checkpoint that resumes after it) and `fail`; the pipeline pulls batches.
 *
 * The rule it keeps: a batch carries a checkpoint only when it ends on a commit. Batches are cut after the last
 * complete transaction that fits, once full or `max_wait_ms` after they started; a transaction larger than a batch is
 * split (only full batches go out without a checkpoint) and only its last part (or a batch of its own right after it)
 * carries the checkpoint. After `fail` the transactions that committed before the failure still go out, then batches
 * end with the error: nothing pushed after the failure, or of the transaction it interrupted, reaches the pipeline.
 *
 * A commit with no changes behind it (a transaction on tables not replicated, a server keepalive) is an idle mark: it
 * replaces any idle mark still waiting and goes out as an empty "heartbeat" batch at most once per
 * `heartbeatIntervalMs`, so an idle source advances without a checkpoint loop (each saved checkpoint is itself a write
 * the source sees).
 *
 * The queue is bounded by events and bytes: above either bound `flow.pause()` is called (the source stops reading its
 * socket), and `flow.resume()` once the consumer took it below half of both.
 */
import { type BatchOptions, DEFAULT_BATCH_OPTIONS } from '../config/batch.ts';
import { blockBatch, type ChangeBatch } from '../core/change-batch.ts';
import type { ChangeEvent } from '../core/change-event.ts';
import type { Checkpoint } from '../core/checkpoint.ts';
import type { RowBlock } from '../core/row-block.ts';

/** Where a source stops and restarts reading from its server. */
export interface FlowControl {
  pause(): void;
  resume(): void;
}

export interface CommitBatcherOptions {
  batch?: BatchOptions;
  /** Most events queued ahead of the consumer before the source is paused. */
  maxQueuedEvents: number;
  /** Most bytes (approximate) queued ahead of the consumer before the source is paused. */
  maxQueuedBytes: number;
  /** Least time between two heartbeat batches (idle marks); batches with changes are not limited. */
  heartbeatIntervalMs: number;
  flow?: FlowControl;
  /** Sequence number of the first batch (a source that already handed out snapshot batches continues from there). */
  firstSeq?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** The end of a transaction in the queue. */
class CommitMark {
  constructor(public checkpoint: Checkpoint) {}
}

/** Snapshot rows in bulk form: counted as its rows; a batch holds blocks or events, never both. */
class BlockEntry {
  constructor(public block: RowBlock) {}
}

type Entry = ChangeEvent | CommitMark | BlockEntry;

/** The changes an entry counts for. */
function changesOf(entry: Entry): number {
  return entry instanceof BlockEntry ? entry.block.rows : entry instanceof CommitMark ? 0 : 1;
}

export class CommitBatcher {
  private readonly limits: BatchOptions;
  private readonly now: () => number;
  private seq: number;

  private queue: Entry[] = [];
  private sizes: number[] = [];
  /** Index of the first entry not yet taken. */
  private head = 0;
  /** Entries removed from the front of `queue` so far (absolute index = dropped + array index). */
  private dropped = 0;
  private queuedEvents = 0;
  private queuedBytes = 0;
  private peakEvents = 0;
  private flowPaused = false;

  /** Changes pushed since the last commit (taken or not): the open transaction. */
  private openEvents = 0;
  /** Absolute index of the open transaction's first change. */
  private openStart = 0;
  /** Changes handed out since the last batch with a checkpoint (a transaction split across batches). */
  private uncheckpointed = 0;
  /** The newest commit with no changes behind it, waiting to go out as a heartbeat. */
  private idle: Checkpoint | null = null;
  private lastCheckpointAt: number;

  private failure: unknown = null;
  private failed = false;
  private ended = false;
  private waiter: (() => void) | null = null;
  /** The consumer waits for a first entry or is past max_wait_ms: any input wakes it. */
  private overdue = true;
  /** While a batch lingers: unconsumed entries that make it full (and show what follows it). */
  private wantEntries = 1;

  constructor(private readonly options: CommitBatcherOptions) {
    this.limits = options.batch ?? DEFAULT_BATCH_OPTIONS;
    this.now = options.now ?? Date.now;
    this.seq = options.firstSeq ?? 0;
    this.lastCheckpointAt = this.now();
  }

  // ---- producer side (called synchronously while decoding) ----------------------------------------------------

  /** A change of the open transaction; `bytes` is its approximate in-memory size. */
  push(event: ChangeEvent, bytes: number): void {
    this.enqueue(event, 1, bytes);
  }

  /** Snapshot rows of the open transaction in bulk form (see row-block.ts); `bytes` as decoded events would take. */
  pushBlock(block: RowBlock, bytes: number): void {
    if (block.rows > 0) this.enqueue(new BlockEntry(block), block.rows, bytes);
  }

  private enqueue(entry: ChangeEvent | BlockEntry, changes: number, bytes: number): void {
    if (this.failed || this.ended) return;
    if (this.openEvents === 0) this.openStart = this.dropped + this.queue.length;
    this.openEvents++;
    this.idle = null; // a later commit covers it
    this.queue.push(entry);
    this.sizes.push(bytes);
    this.queuedEvents += changes;
    this.queuedBytes += bytes;
    if (this.queuedEvents > this.peakEvents) this.peakEvents = this.queuedEvents;
    if (
      !this.flowPaused &&
      (this.queuedEvents >= this.options.maxQueuedEvents || this.queuedBytes >= this.options.maxQueuedBytes)
    ) {
      this.flowPaused = true;
      this.options.flow?.pause();
    }
    if (this.waiter && this.worthWaking()) this.wake();
  }

  /**
   * The open transaction committed: `checkpoint` resumes after it. Without changes since the last commit it is an idle
   * mark (see the file comment). A source calls it for a keepalive only while no transaction is open.
   */
  commit(checkpoint: Checkpoint): void {
    if (this.failed || this.ended) return;
    if (this.openEvents > 0) {
      this.openEvents = 0;
      this.queue.push(new CommitMark(checkpoint));
      this.sizes.push(0);
    } else if (this.head < this.queue.length) {
      // Only complete transactions are queued: the last entry is a commit, which this one covers.
      (this.queue[this.queue.length - 1] as CommitMark).checkpoint = checkpoint;
    } else {
      this.idle = checkpoint;
    }
    if (this.waiter && this.worthWaking()) this.wake();
  }

  /**
   * Calls `fn` on every change of the open transaction when none of them was handed out yet, and returns true; false
   * (without calling it) when part of it already went out. For stamping a transaction-wide fact known at its commit.
   */
  forEachOpenChange(fn: (event: ChangeEvent) => void): boolean {
    const start = this.openStart - this.dropped;
    if (this.openEvents === 0 || start < this.head) return false;
    for (let i = start; i < this.queue.length; i++) {
      const entry = this.queue[i]!;
      if (!(entry instanceof BlockEntry)) fn(entry as ChangeEvent);
    }
    return true;
  }

  /**
   * Decoding failed: the transactions committed before it still go out (they were whole and are not to blame), then
   * batches end with this error. The interrupted transaction's changes are dropped, and nothing is taken after it.
   */
  fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.failure = err;
    let last = this.queue.length - 1;
    while (last >= 0 && !(this.queue[last] instanceof CommitMark)) last--;
    for (let i = last + 1; i < this.queue.length; i++) {
      this.queuedEvents -= changesOf(this.queue[i]!);
      this.queuedBytes -= this.sizes[i]!;
    }
    this.queue.length = last + 1;
    this.sizes.length = last + 1;
    if (this.head > this.queue.length) this.head = this.queue.length;
    this.openEvents = 0;
    this.wake();
  }

  /** No more input: complete transactions still queued and a waiting idle mark go out at once, then batches end. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  get isFailed(): boolean {
    return this.failed;
  }

  /** Whether the batcher wants the source paused (its queue is above the bounds). */
  get wantsPause(): boolean {
    return this.flowPaused;
  }

  stats(): { queuedEvents: number; queuedBytes: number; peakQueuedEvents: number; paused: boolean } {
    return {
      queuedEvents: this.queuedEvents,
      queuedBytes: this.queuedBytes,
      peakQueuedEvents: this.peakEvents,
      paused: this.flowPaused,
    };
  }

  // ---- consumer side -------------------------------------------------------------------------------------------

  async *batches(): AsyncGenerator<ChangeBatch> {
    for (;;) {
      const batch = await this.next();
      if (!batch) return;
      yield batch;
    }
  }

  /** The next batch; null once ended and everything complete went out. Throws the failure. */
  async next(): Promise<ChangeBatch | null> {
    for (;;) {
      if (this.head < this.queue.length) break;
      if (this.failed) throw this.failure;
      if (this.idle) {
        const due = this.lastCheckpointAt + this.options.heartbeatIntervalMs - this.now();
        if (due <= 0 || this.ended) {
          const checkpoint = this.idle;
          this.idle = null;
          return this.emit([], 0, checkpoint);
        }
        this.overdue = true;
        await this.wait(due);
        continue;
      }
      if (this.ended) return null;
      this.maybeResume();
      this.overdue = true;
      await this.wait(1000);
    }

    const { max_events, max_bytes, max_wait_ms } = this.limits;
    const deadline = this.now() + max_wait_ms;
    const events: ChangeEvent[] = [];
    const blocks: RowBlock[] = [];
    /** Changes taken: events, or the rows of blocks. */
    let count = 0;
    let bytes = 0;
    let mark: CommitMark | null = null;
    let eventsAtMark = 0;
    let blocksAtMark = 0;
    let countAtMark = 0;
    let bytesAtMark = 0;
    let headAtMark = 0;
    let full = false;
    for (;;) {
      while (this.head < this.queue.length) {
        const entry = this.queue[this.head]!;
        if (entry instanceof CommitMark) {
          this.head++;
          mark = entry;
          eventsAtMark = events.length;
          blocksAtMark = blocks.length;
          countAtMark = count;
          bytesAtMark = bytes;
          headAtMark = this.head;
          // A split transaction's commit goes out at once, before any later transaction's changes.
          if (count === 0 && this.uncheckpointed > 0) full = true;
          if (full || count >= max_events || bytes >= max_bytes) {
            full = true;
            break;
          }
          continue;
        }
        const size = this.sizes[this.head]!;
        const changes = changesOf(entry);
        // Blocks and events do not share a batch; a block larger than a batch goes alone.
        const otherKind = entry instanceof BlockEntry ? events.length > 0 : blocks.length > 0;
        if (
          otherKind ||
          count >= max_events ||
          (count > 0 && (bytes + size > max_bytes || (changes > 1 && count + changes > max_events)))
        ) {
          full = true;
          break;
        }
        this.head++;
        if (entry instanceof BlockEntry) blocks.push(entry.block);
        else events.push(entry);
        count += changes;
        bytes += size;
      }
      if (full || this.failed || this.ended) break;
      const left = deadline - this.now();
      // Past max_wait_ms a batch goes out at its last commit; a transaction still open is waited for (unless the batch
      // is full or the source is paused for room): a part of it without a checkpoint is a write the target cannot
      // commit yet.
      if (left <= 0 && (mark || count >= max_events || bytes >= max_bytes || this.flowPaused)) break;
      this.maybeResume();
      this.overdue = left <= 0;
      this.wantEntries = Math.max(1, max_events - count + 1);
      await this.wait(left > 0 ? left : 1000);
    }
    // Failed: only transactions that committed before the failure go out (a part of one larger than a batch too: its
    // commit is still queued); what was taken of the interrupted one is dropped.
    if (this.failed && !mark && this.head >= this.queue.length) throw this.failure;

    let checkpoint: Checkpoint | null = null;
    let taken = events;
    let takenBlocks = blocks;
    let takenCount = count;
    let takenBytes = bytes;
    if (mark) {
      checkpoint = mark.checkpoint;
      if (countAtMark < count) {
        // The unfinished transaction waits for the next batch.
        taken = events.slice(0, eventsAtMark);
        takenBlocks = blocks.slice(0, blocksAtMark);
        takenCount = countAtMark;
        takenBytes = bytesAtMark;
        this.head = headAtMark;
      } else if (this.idle && this.head === this.queue.length) {
        // Nothing follows this commit but an idle mark: it covers the batch, one write less.
        checkpoint = this.idle;
        this.idle = null;
      }
    } else if (this.ended && !full) {
      // The source stopped inside a transaction: its tail is not handed out (nothing could checkpoint it).
      this.queue.length = 0;
      this.sizes.length = 0;
      this.head = 0;
      this.queuedEvents = 0;
      this.queuedBytes = 0;
      return null;
    }
    this.queuedEvents -= takenCount;
    this.queuedBytes -= takenBytes;
    this.compact();
    this.maybeResume();
    return this.emit(taken, takenBytes, checkpoint, takenBlocks, takenCount);
  }

  private emit(
    events: ChangeEvent[],
    bytes: number,
    checkpoint: Checkpoint | null,
    blocks: RowBlock[] = [],
    count = events.length,
  ): ChangeBatch {
    if (checkpoint) {
      this.uncheckpointed = 0;
      this.lastCheckpointAt = this.now();
    } else {
      this.uncheckpointed += count;
    }
    if (blocks.length > 0) return blockBatch(this.seq++, blocks, checkpoint, bytes);
    return { seq: this.seq++, events, checkpoint, bytes };
  }

  private maybeResume(): void {
    if (!this.flowPaused) return;
    const { maxQueuedEvents, maxQueuedBytes } = this.options;
    if (this.queuedEvents <= maxQueuedEvents / 2 && this.queuedBytes <= maxQueuedBytes / 2) {
      this.flowPaused = false;
      this.options.flow?.resume();
    }
  }

  private compact(): void {
    if (this.head === this.queue.length) {
      this.dropped += this.head;
      this.queue.length = 0;
      this.sizes.length = 0;
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.dropped += this.head;
      this.head = 0;
    }
  }

  /**
   * Whether new input can change what the waiting consumer does: anything while it waits for a first entry or is past
   * max_wait_ms; while a batch lingers, only enough for a full batch (a wake per change costs a timer and a promise).
   */
  private worthWaking(): boolean {
    return (
      this.overdue ||
      this.flowPaused ||
      this.queue.length - this.head >= this.wantEntries ||
      // Blocks count their rows: a few entries can fill a batch.
      this.queuedEvents > this.limits.max_events ||
      this.queuedBytes >= this.limits.max_bytes
    );
  }

  private wake(): void {
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w();
    }
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve();
      }, ms);
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
