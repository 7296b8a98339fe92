import { describe, expect, it } from 'vitest';
import { MemorySource, MemoryStore, MemoryTarget, transientError } from '../../test/fakes/memory-parts.ts';
import type { ChangeBatch } from '../core/change-batch.ts';
import { type Checkpoint, parseLsn } from '../core/checkpoint.ts';
import type { WriteResult } from '../core/target.ts';
import { TributaryError } from '../errors.ts';
import { createLogger } from '../observability/logger.ts';
import { Checkpointer } from './checkpointer.ts';
import { Pipeline } from './pipeline.ts';

const logger = createLogger({ level: 'silent', pretty: false });
const lsnOf = (c: Checkpoint) => Number(parseLsn((c.position as { lsn: string }).lsn));

function pipeline(source: MemorySource, targets: MemoryTarget[], store: MemoryStore, maxInFlight = 4) {
  let i = 0;
  return new Pipeline({
    name: 'p',
    createParts: () => ({ source, target: targets[Math.min(i++, targets.length - 1)]!, store }),
    maxInFlight,
    maxInFlightBytes: 1 << 30,
    initialBackoffMs: 1,
    maxBackoffMs: 5,
    logger,
  });
}

async function runUntil(p: Pipeline, done: () => boolean, timeoutMs = 10_000) {
  const running = p.run();
  const started = Date.now();
  while (!done()) {
    if (Date.now() - started > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
  p.stop();
  await running;
}

describe('Checkpointer', () => {
  it('releases a checkpoint only when every earlier batch is durable', () => {
    const c = new Checkpointer();
    const cp = (n: number) => ({
      pipeline: 'p',
      phase: 'stream' as const,
      position: { kind: 'postgres' as const, lsn: `0/${n}` },
    });
    c.track({ seq: 0, events: [], bytes: 0, checkpoint: cp(1) });
    c.track({ seq: 1, events: [], bytes: 0, checkpoint: null });
    c.track({ seq: 2, events: [], bytes: 0, checkpoint: cp(3) });
    expect(c.markDurable(2)).toBeNull();
    expect(c.markDurable(1)).toBeNull();
    expect(c.markDurable(0)).toEqual(cp(3));
    expect(c.inFlight).toBe(0);
  });
});

describe('Pipeline', () => {
  it('saves checkpoints in order when batches finish out of order, and commits only saved ones', async () => {
    const source = new MemorySource('p', 200, 3);
    // Later batches often finish before earlier ones.
    const target = new MemoryTarget({ delayMs: () => Math.floor(Math.random() * 8) });
    const store = new MemoryStore();
    const durableAtSave: number[][] = [];
    const save = store.save.bind(store);
    store.save = async (cp) => {
      durableAtSave.push([...target.durable]);
      return save(cp);
    };
    await runUntil(
      pipeline(source, [target], store),
      () => source.committed.length > 0 && lsnOf(source.committed.at(-1)!) === 200,
    );

    const saved = store.saved.map(lsnOf);
    expect(saved).toEqual([...saved].sort((a, b) => a - b));
    expect(target.maxInFlight).toBeGreaterThan(1);
    // When transaction n's checkpoint was saved, batches 0..n-1 were all durable.
    store.saved.forEach((cp, i) => {
      const n = lsnOf(cp);
      const durable = new Set(durableAtSave[i]);
      for (let seq = 0; seq < n; seq++) expect(durable.has(seq)).toBe(true);
    });
    // Every acknowledgement to the source was saved first.
    const savedSet = new Set(saved);
    for (const cp of source.committed) expect(savedSet.has(lsnOf(cp))).toBe(true);
    expect(target.rows.size).toBe(600);
  });

  it('restarts after a target failure from the last saved checkpoint, losing nothing', async () => {
    const source = new MemorySource('p', 100, 2);
    const failing = new MemoryTarget({ failAt: { write: 30, error: transientError() }, delayMs: () => 1 });
    const healthy = new MemoryTarget();
    const store = new MemoryStore();
    const p = pipeline(source, [failing, healthy], store);
    await runUntil(p, () => source.committed.length > 0 && lsnOf(source.committed.at(-1)!) === 100);

    expect(p.state.restarts).toBe(1);
    expect(source.opens).toHaveLength(2);
    const resumedFrom = source.opens[1]!;
    expect(resumedFrom).toEqual(store.saved.find((cp) => lsnOf(cp) === lsnOf(resumedFrom!)));
    // The failed write (transaction 30) was never acknowledged before the failure.
    expect(lsnOf(resumedFrom!)).toBeLessThan(30);
    const all = new Map([...failing.rows, ...healthy.rows]);
    expect(all.size).toBe(200);
    // The restarted run redelivered only transactions after the checkpoint.
    for (const tx of healthy.rows.values()) expect(Number(tx)).toBeGreaterThan(lsnOf(resumedFrom!));
  });

  it('starts again from a checkpoint another instance saved while the source opened (waiting for its lock)', async () => {
    const source = new MemorySource('p', 40, 1);
    const store = new MemoryStore();
    const at = (n: number): Checkpoint => ({
      pipeline: 'p',
      phase: 'stream',
      position: { kind: 'postgres', lsn: `0/${n.toString(16)}` },
    });
    store.saved.push(at(10));
    // The other instance saves transaction 20 while this one's source waits in open() for the lock it held.
    const open = source.open.bind(source);
    let first = true;
    source.open = async (from) => {
      await open(from);
      if (first) store.saved.push(at(20));
      first = false;
    };
    const target = new MemoryTarget();
    const p = pipeline(source, [target], store);
    await runUntil(p, () => source.committed.length > 0 && lsnOf(source.committed.at(-1)!) === 40);
    expect(source.opens.map((cp) => (cp ? lsnOf(cp) : null))).toEqual([10, 20]);
    // Nothing the other instance had delivered was delivered again.
    for (const tx of target.rows.values()) expect(Number(tx)).toBeGreaterThan(20);
  });

  it("asks the source's and target's engine classifier about an error their client threw", async () => {
    const deadlock = Object.assign(new Error('Deadlock found'), { code: 'ER_LOCK_DEADLOCK' });
    const source = new MemorySource('p', 20, 1);
    const failing = Object.assign(new MemoryTarget({ failAt: { write: 5, error: deadlock } }), {
      classifyError: (err: unknown) =>
        (err as { code?: string }).code === 'ER_LOCK_DEADLOCK' ? 'retryable' : undefined,
    });
    const healthy = new MemoryTarget();
    const p = pipeline(source, [failing, healthy], new MemoryStore());
    await runUntil(p, () => source.committed.length > 0 && lsnOf(source.committed.at(-1)!) === 20);
    expect(p.state.restarts).toBe(1);
    expect(p.state.lastError?.kind).toBe('retryable');
    // Without an engine that knows it, the same error is fatal.
    const alone = pipeline(
      new MemorySource('p', 20, 1),
      [new MemoryTarget({ failAt: { write: 5, error: deadlock } })],
      new MemoryStore(),
    );
    await expect(alone.run()).rejects.toThrow('Deadlock found');
    expect(alone.state.lastError?.kind).toBe('fatal');
  });

  it('stops with the error when the failure needs an operator', async () => {
    const source = new MemorySource('p', 10, 1);
    const target = new MemoryTarget({
      failAt: { write: 3, error: new TributaryError('operator', 'permission denied') },
    });
    const p = pipeline(source, [target], new MemoryStore());
    await expect(p.run()).rejects.toThrow('permission denied');
    expect(p.state.status).toBe('failed');
    expect(p.state.restarts).toBe(0);
  });

  it('stops, saving nothing, when the target reports a batch that ends a transaction applied but not durable', async () => {
    const source = new MemorySource('p', 10, 1);
    const target = new (class extends MemoryTarget {
      override async write(batch: ChangeBatch): Promise<WriteResult> {
        await super.write(batch);
        return 'applied';
      }
    })();
    const store = new MemoryStore();
    const p = pipeline(source, [target], store);
    await expect(p.run()).rejects.toThrow('not durable');
    expect(p.state.lastError?.kind).toBe('fatal');
    expect(store.saved).toHaveLength(0);
    expect(source.committed).toHaveLength(0);
  });

  it('never acknowledges when the checkpoint cannot be saved', async () => {
    const source = new MemorySource('p', 10, 1);
    const store = new MemoryStore();
    store.failSaves = true;
    const p = pipeline(source, [new MemoryTarget()], store);
    await expect(p.run()).rejects.toThrow('disk full');
    expect(source.committed).toHaveLength(0);
  });

  it('keeps memory bounded when the target is slow', async () => {
    const source = new MemorySource('p', 60, 10);
    const target = new MemoryTarget({ delayMs: () => 10 });
    await runUntil(pipeline(source, [target], new MemoryStore(), 3), () => target.durable.length === 60);
    expect(target.maxInFlight).toBeLessThanOrEqual(3);
    // The source never ran further ahead of the acknowledged position than the in-flight window plus the one batch
    // being pulled and a save in progress.
    expect(source.maxAhead).toBeLessThanOrEqual(3 + 2);
  });

  it('drains on stop: what was in flight becomes durable and its checkpoint is saved and acknowledged', async () => {
    const source = new MemorySource('p', 1000, 1);
    const target = new MemoryTarget({ delayMs: () => 20 });
    const store = new MemoryStore();
    const p = pipeline(source, [target], store);
    const running = p.run();
    await new Promise((r) => setTimeout(r, 100));
    p.stop();
    await running;
    const lastDurable = Math.max(...target.durable);
    expect(lsnOf(store.saved.at(-1)!)).toBe(lastDurable + 1);
    expect(lsnOf(source.committed.at(-1)!)).toBe(lastDurable + 1);
    expect(p.state.status).toBe('stopped');
  });
});

describe('Pipeline with a separate checkpoint store', () => {
  it("resumes after the target's own checkpoint when the separate store lags behind it", async () => {
    const source = new MemorySource('p', 20, 1);
    const target = new MemoryTarget();
    const ownStore = new MemoryStore();
    ownStore.saved.push({ pipeline: 'p', phase: 'stream', position: { kind: 'postgres', lsn: '0/C' } });
    Object.assign(target, { transactional: true, checkpointStore: ownStore });
    const lagging = new MemoryStore();
    lagging.saved.push({ pipeline: 'p', phase: 'stream', position: { kind: 'postgres', lsn: '0/5' } });
    await runUntil(pipeline(source, [target], lagging), () => target.durable.length === 8);
    expect(lsnOf(source.opens[0]!)).toBe(12);
    expect([...target.rows.values()].map(Number).sort((a, b) => a - b)[0]).toBe(13);
  });

  it('a transactional target without a separate store: the pipeline loads its checkpoints and saves none itself', async () => {
    const source = new MemorySource('p', 20, 1);
    const ownStore = new MemoryStore();
    ownStore.saved.push({ pipeline: 'p', phase: 'stream', position: { kind: 'postgres', lsn: '0/C' } });
    const target = Object.assign(new MemoryTarget(), { transactional: true as const, checkpointStore: ownStore });
    const p = new Pipeline({
      name: 'p',
      createParts: () => ({ source, target }),
      maxInFlight: 4,
      maxInFlightBytes: 1 << 30,
      initialBackoffMs: 1,
      maxBackoffMs: 5,
      logger,
    });
    await runUntil(p, () => target.durable.length === 8);
    expect(lsnOf(source.opens[0]!)).toBe(12);
    expect(ownStore.saved).toHaveLength(1);
    expect(source.committed.length).toBeGreaterThan(0);
  });
});
