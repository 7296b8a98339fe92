import { describe, expect, it } from 'vitest';
import { seededIntegers } from '../../test/fixtures/seeded-random.ts';
import { type ChangeBatch, changeCount } from '../core/change-batch.ts';
import type { ChangeEvent, TableSchema } from '../core/change-event.ts';
import { type Checkpoint, formatLsn, parseLsn } from '../core/checkpoint.ts';
import type { RowBlock } from '../core/row-block.ts';
import { CommitBatcher } from './commit-batcher.ts';

const schema: TableSchema = {
  table: { schema: 'public', name: 't' },
  columns: [{ name: 'id', type: 'integer', kind: 'int', isKey: true }],
  keyColumns: ['id'],
  beforeImage: 'key',
};

/** Change `i` of transaction `tx` (transactions commit at LSN tx). */
function change(tx: number, i: number): ChangeEvent {
  return {
    op: 'insert',
    table: schema.table,
    schema,
    key: { id: `${tx}.${i}` },
    before: null,
    after: { id: `${tx}.${i}` },
    source: {
      connector: 'postgresql',
      db: 'd',
      position: { kind: 'postgres', lsn: formatLsn(BigInt(tx)) },
      txId: String(tx),
      commitTimeMs: 0,
      snapshot: false,
    },
  };
}

const checkpointAt = (tx: number): Checkpoint => ({
  pipeline: 'p',
  phase: 'stream',
  position: { kind: 'postgres', lsn: formatLsn(BigInt(tx)) },
});
const txOf = (cp: Checkpoint): number => Number(parseLsn((cp.position as { lsn: string }).lsn));
const txOfEvent = (e: ChangeEvent): number => Number(e.source.txId);

/** Deterministic, so a failing seed can be replayed. */
const random = seededIntegers;

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('CommitBatcher invariants (seeded random workloads)', () => {
  for (let seed = 1; seed <= 40; seed++) {
    it(`seed ${seed}: order, bounds, checkpoints only after complete transactions, bounded queue`, async () => {
      const rnd = random(seed);
      const maxEvents = 1 + rnd(20);
      const maxBytes = 50 + rnd(400);
      const maxQueued = maxEvents + rnd(60);
      let paused = false;
      const batcher = new CommitBatcher({
        batch: { max_events: maxEvents, max_bytes: maxBytes, max_wait_ms: rnd(3) },
        maxQueuedEvents: maxQueued,
        maxQueuedBytes: 1_000_000,
        heartbeatIntervalMs: 1_000_000,
        flow: { pause: () => (paused = true), resume: () => (paused = false) },
      });
      const pushed: ChangeEvent[] = [];
      /** Number of changes pushed when each transaction committed. */
      const pushedAtCommit = new Map<number, number>();
      let maxQueuedSeen = 0;
      const transactions = 30 + rnd(50);
      const producer = (async () => {
        for (let tx = 1; tx <= transactions; tx++) {
          // Some transactions change nothing (idle marks); some are larger than a batch.
          const size = rnd(5) === 0 ? 0 : 1 + rnd(maxEvents * 3);
          for (let i = 0; i < size; i++) {
            while (paused) await tick();
            const e = change(tx, i);
            pushed.push(e);
            batcher.push(e, 10 + rnd(40));
            maxQueuedSeen = Math.max(maxQueuedSeen, batcher.stats().queuedEvents);
            if (rnd(8) === 0) await tick();
          }
          batcher.commit(checkpointAt(tx));
          pushedAtCommit.set(tx, pushed.length);
          if (rnd(3) === 0) await tick();
        }
        batcher.end();
      })();
      const batches: ChangeBatch[] = [];
      for await (const b of batcher.batches()) {
        batches.push(b);
        if (rnd(4) === 0) await tick();
      }
      await producer;

      // Every change in order, exactly once.
      const delivered = batches.flatMap((b) => b.events);
      expect(delivered).toEqual(pushed);
      // Consecutive sequence numbers from 0.
      expect(batches.map((b) => b.seq)).toEqual(batches.map((_, i) => i));
      let count = 0;
      let lastCheckpointTx = 0;
      for (const b of batches) {
        // Within bounds (a single change larger than max_bytes still goes alone).
        expect(b.events.length).toBeLessThanOrEqual(maxEvents);
        if (b.events.length > 1) expect(b.bytes).toBeLessThanOrEqual(maxBytes + 50);
        count += b.events.length;
        if (b.checkpoint) {
          const tx = txOf(b.checkpoint);
          // The batch ends exactly where that transaction's changes end: never mid-transaction.
          expect(pushedAtCommit.get(tx)).toBe(count);
          // The next change delivered (if any) belongs to a later transaction.
          expect(tx).toBeGreaterThan(lastCheckpointTx);
          lastCheckpointTx = tx;
        } else {
          // No checkpoint: the batch is full or ends inside a transaction.
          const last = b.events[b.events.length - 1];
          expect(last).toBeDefined();
        }
      }
      // The last transaction's checkpoint went out (end() flushes complete transactions and idle marks).
      expect(lastCheckpointTx).toBe(transactions);
      // Paused at the bound: the queue never held more than it.
      expect(maxQueuedSeen).toBeLessThanOrEqual(maxQueued);
    });
  }

  for (let seed = 100; seed < 120; seed++) {
    it(`seed ${seed}: after a decoder failure the transactions committed before it go out whole with their checkpoint, then nothing`, async () => {
      const rnd = random(seed);
      const maxEvents = 1 + rnd(10);
      const batcher = new CommitBatcher({
        batch: { max_events: maxEvents, max_bytes: 1_000_000, max_wait_ms: 0 },
        maxQueuedEvents: 1_000,
        maxQueuedBytes: 1_000_000,
        heartbeatIntervalMs: 1_000_000,
      });
      const failAtTx = 2 + rnd(10);
      const failAfter = rnd(maxEvents * 2);
      const batches: ChangeBatch[] = [];
      let thrown: unknown;
      const consumer = (async () => {
        try {
          for await (const b of batcher.batches()) {
            batches.push(b);
            if (rnd(2) === 0) await tick();
          }
        } catch (err) {
          thrown = err;
        }
      })();
      let committedBeforeFailure = 0;
      for (let tx = 1; tx <= failAtTx + 5; tx++) {
        const size = 1 + rnd(maxEvents * 2);
        for (let i = 0; i < size; i++) {
          if (tx === failAtTx && i === Math.min(failAfter, size - 1)) batcher.fail(new Error('cannot decode'));
          batcher.push(change(tx, i), 10);
          if (rnd(3) === 0) await tick();
        }
        batcher.commit(checkpointAt(tx));
        if (!batcher.isFailed) committedBeforeFailure = tx;
        if (rnd(3) === 0) await tick();
      }
      batcher.end();
      await consumer;
      expect((thrown as Error).message).toBe('cannot decode');
      // No checkpoint of the interrupted transaction or any later one, and no change after it.
      for (const b of batches) {
        if (b.checkpoint) expect(txOf(b.checkpoint)).toBeLessThanOrEqual(committedBeforeFailure);
        for (const e of b.events) expect(txOfEvent(e)).toBeLessThanOrEqual(failAtTx);
      }
      // Every transaction committed before the failure was handed out, and its checkpoint with it (or a later one).
      const checkpoints = batches.filter((b) => b.checkpoint).map((b) => txOf(b.checkpoint!));
      expect(Math.max(0, ...checkpoints)).toBe(committedBeforeFailure);
      for (let tx = 1; tx <= committedBeforeFailure; tx++) {
        expect(batches.flatMap((b) => b.events).filter((e) => txOfEvent(e) === tx).length).toBeGreaterThan(0);
      }
    });
  }
});

/** The changes as one row block (snapshot rows in bulk form), decoded back into exactly them. */
function blockOf(events: ChangeEvent[]): RowBlock {
  return {
    format: 'postgres-copy-data',
    table: schema.table,
    schema,
    columns: ['id'],
    data: Buffer.alloc(0),
    rows: events.length,
    source: events[0]!.source,
    events: () => events,
  };
}

describe('CommitBatcher with row blocks (seeded random workloads)', () => {
  for (let seed = 200; seed < 230; seed++) {
    it(`seed ${seed}: blocks and events never share a batch, every change in order once, bounds by rows, checkpoints after whole transactions`, async () => {
      const rnd = random(seed);
      const maxEvents = 2 + rnd(30);
      const maxQueued = maxEvents * 2 + rnd(60);
      let paused = false;
      const batcher = new CommitBatcher({
        batch: { max_events: maxEvents, max_bytes: 1_000_000, max_wait_ms: rnd(3) },
        maxQueuedEvents: maxQueued,
        maxQueuedBytes: 1_000_000,
        heartbeatIntervalMs: 1_000_000,
        flow: { pause: () => (paused = true), resume: () => (paused = false) },
      });
      const pushed: ChangeEvent[] = [];
      const pushedAtCommit = new Map<number, number>();
      /** The largest block pushed: a batch holds more rows than max_events only as one such block. */
      let largestBlock = 0;
      const transactions = 20 + rnd(40);
      const producer = (async () => {
        for (let tx = 1; tx <= transactions; tx++) {
          const size = rnd(6) === 0 ? 0 : 1 + rnd(maxEvents * 3);
          for (let i = 0; i < size; ) {
            while (paused) await tick();
            // Runs of changes as blocks (some larger than a batch) or as single events, mixed in one transaction.
            const n = rnd(2) === 0 ? 1 : Math.min(size - i, 1 + rnd(maxEvents + 5));
            const events = Array.from({ length: n }, (_, k) => change(tx, i + k));
            pushed.push(...events);
            if (n === 1 && rnd(2) === 0) batcher.push(events[0]!, 10);
            else {
              largestBlock = Math.max(largestBlock, n);
              batcher.pushBlock(blockOf(events), 10 * n);
            }
            i += n;
            if (rnd(6) === 0) await tick();
          }
          batcher.commit(checkpointAt(tx));
          pushedAtCommit.set(tx, pushed.length);
          if (rnd(3) === 0) await tick();
        }
        batcher.end();
      })();
      const batches: ChangeBatch[] = [];
      for await (const b of batcher.batches()) {
        batches.push(b);
        if (rnd(4) === 0) await tick();
      }
      await producer;

      expect(batches.flatMap((b) => b.events)).toEqual(pushed);
      let count = 0;
      let lastCheckpointTx = 0;
      for (const b of batches) {
        const n = changeCount(b);
        if (b.blocks) {
          // Decoded on read, as many as counted; more than a batch only as a single block.
          expect(b.events.length).toBe(n);
          if (n > maxEvents) expect(b.blocks.length).toBe(1);
        } else {
          expect(n).toBeLessThanOrEqual(maxEvents);
        }
        expect(n).toBeLessThanOrEqual(Math.max(maxEvents, largestBlock));
        count += n;
        if (b.checkpoint) {
          const tx = txOf(b.checkpoint);
          expect(pushedAtCommit.get(tx)).toBe(count);
          expect(tx).toBeGreaterThan(lastCheckpointTx);
          lastCheckpointTx = tx;
        }
      }
      expect(lastCheckpointTx).toBe(transactions);
      expect(batcher.stats().queuedEvents).toBe(0);
    });
  }

  it('a failure drops the blocks of the interrupted transaction and counts their rows out of the queue', async () => {
    const batcher = new CommitBatcher({
      batch: { max_events: 100, max_bytes: 1_000_000, max_wait_ms: 0 },
      maxQueuedEvents: 1_000,
      maxQueuedBytes: 1_000_000,
      heartbeatIntervalMs: 1_000_000,
    });
    const first = Array.from({ length: 7 }, (_, i) => change(1, i));
    batcher.pushBlock(blockOf(first), 70);
    batcher.commit(checkpointAt(1));
    batcher.pushBlock(blockOf(Array.from({ length: 5 }, (_, i) => change(2, i))), 50);
    expect(batcher.stats().queuedEvents).toBe(12);
    batcher.fail(new Error('cannot read'));
    expect(batcher.stats().queuedEvents).toBe(7);
    const b = await batcher.next();
    expect(b!.events).toEqual(first);
    expect(txOf(b!.checkpoint!)).toBe(1);
    await expect(batcher.next()).rejects.toThrow('cannot read');
  });
});

describe('CommitBatcher', () => {
  const options = (now: () => number) => ({
    batch: { max_events: 3, max_bytes: 1_000, max_wait_ms: 0 },
    maxQueuedEvents: 100,
    maxQueuedBytes: 10_000,
    heartbeatIntervalMs: 1_000,
    now,
  });

  it('splits a transaction larger than a batch; only its last part carries the checkpoint', async () => {
    const b = new CommitBatcher(options(Date.now));
    for (let i = 0; i < 7; i++) b.push(change(1, i), 10);
    b.commit(checkpointAt(1));
    b.end();
    const out: ChangeBatch[] = [];
    for await (const x of b.batches()) out.push(x);
    expect(out.map((x) => [x.events.length, x.checkpoint ? txOf(x.checkpoint) : null])).toEqual([
      [3, null],
      [3, null],
      [1, 1],
    ]);
  });

  it('cuts after the last complete transaction and leaves the open one for later', async () => {
    const b = new CommitBatcher({ ...options(Date.now), batch: { max_events: 10, max_bytes: 1000, max_wait_ms: 0 } });
    b.push(change(1, 0), 10);
    b.push(change(1, 1), 10);
    b.commit(checkpointAt(1));
    b.push(change(2, 0), 10);
    const first = (await b.next())!;
    expect(first.events.map(txOfEvent)).toEqual([1, 1]);
    expect(txOf(first.checkpoint!)).toBe(1);
    b.commit(checkpointAt(2));
    const second = (await b.next())!;
    expect(second.events.map(txOfEvent)).toEqual([2]);
    expect(txOf(second.checkpoint!)).toBe(2);
  });

  it("a split transaction's commit goes out at once in a batch of its own, before the next transaction", async () => {
    const b = new CommitBatcher(options(Date.now));
    for (let i = 0; i < 3; i++) b.push(change(1, i), 10);
    expect((await b.next())!.checkpoint).toBeNull();
    b.commit(checkpointAt(1));
    b.push(change(2, 0), 10);
    b.commit(checkpointAt(2));
    const next = (await b.next())!;
    expect(next.events).toEqual([]);
    expect(txOf(next.checkpoint!)).toBe(1);
    expect(txOf((await b.next())!.checkpoint!)).toBe(2);
  });

  it('turns idle marks into at most one heartbeat batch per heartbeat interval, the newest', async () => {
    let t = 0;
    const b = new CommitBatcher({ ...options(() => t), heartbeatIntervalMs: 50 });
    const heartbeats: number[] = [];
    const consumer = (async () => {
      for await (const x of b.batches()) {
        expect(x.events).toEqual([]);
        heartbeats.push(txOf(x.checkpoint!));
      }
    })();
    // A keepalive after every saved checkpoint (the loop a target on the source server makes), 10 ms apart.
    for (let tx = 1; tx <= 30; tx++) {
      t += 10;
      b.commit(checkpointAt(tx));
      await new Promise((r) => setTimeout(r, 2));
    }
    b.end();
    await consumer;
    // 300 ms of fake time at one per 50 ms: 6, plus the newest flushed by end().
    expect(heartbeats.length).toBeLessThanOrEqual(7);
    expect(heartbeats.at(-1)).toBe(30);
    expect(heartbeats).toEqual([...heartbeats].sort((x, y) => x - y));
  });

  it('a batch ending on a commit takes a newer idle mark as its checkpoint instead of a heartbeat of its own', async () => {
    const b = new CommitBatcher({ ...options(Date.now), batch: { max_events: 10, max_bytes: 1000, max_wait_ms: 20 } });
    b.push(change(1, 0), 10);
    b.commit(checkpointAt(1));
    const pending = b.next();
    b.commit(checkpointAt(2)); // an empty transaction while the batch lingers
    const batch = (await pending)!;
    expect(batch.events).toHaveLength(1);
    expect(txOf(batch.checkpoint!)).toBe(2);
  });

  it('pauses the source above the queue bounds and resumes it below half', async () => {
    const calls: string[] = [];
    const b = new CommitBatcher({
      ...options(Date.now),
      maxQueuedEvents: 4,
      flow: { pause: () => calls.push('pause'), resume: () => calls.push('resume') },
    });
    for (let i = 0; i < 4; i++) b.push(change(1, i), 10);
    expect(calls).toEqual(['pause']);
    b.commit(checkpointAt(1));
    await b.next(); // 3 taken, 1 left: below half
    expect(calls).toEqual(['pause', 'resume']);
  });

  it('marks every change of a transaction at its commit only when none went out yet', async () => {
    const b = new CommitBatcher(options(Date.now));
    b.push(change(1, 0), 10);
    const seen: string[] = [];
    expect(b.forEachOpenChange((e) => seen.push(String(e.key?.id)))).toBe(true);
    expect(seen).toEqual(['1.0']);
    b.commit(checkpointAt(1));
    await b.next();
    for (let i = 0; i < 4; i++) b.push(change(2, i), 10);
    await b.next(); // the first three changes of tx 2
    expect(b.forEachOpenChange(() => undefined)).toBe(false);
  });
});
