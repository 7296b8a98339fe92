/**
 * Drives a real source and target through the real Pipeline, in this process, and measures one run: from the first
 * batch with events until the checkpoint covering the last expected event is saved and committed to the source.
 */
import pino from 'pino';
import { comparePositions } from '../../src/checkpoint-order.ts';
import { batchConfig, retryConfig } from '../../src/config/schema.ts';
import { type ChangeBatch, changeCount } from '../../src/core/change-batch.ts';
import type { Checkpoint } from '../../src/core/checkpoint.ts';
import type { CheckpointStore } from '../../src/core/checkpoint-store.ts';
import type { ConnectorContext } from '../../src/core/connector-context.ts';
import type { Source } from '../../src/core/source.ts';
import type { PlainTarget, Target, WriteResult } from '../../src/core/target.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { collectGarbage, cpuSecondsSince, RssSampler } from './measure.ts';

/** The product's default batch settings: what a user gets without tuning. */
export const BATCH = batchConfig.parse({});
const RETRY = retryConfig.parse({});

export function benchContext(pipeline: string): ConnectorContext {
  return { pipeline, logger: pino({ level: process.env.TRIBUTARY_BENCH_LOG ?? 'warn' }) };
}

/** A target whose writes resolve at once: measures the source and pipeline alone. */
export class NullTarget implements PlainTarget {
  async open(): Promise<void> {}
  async write(_batch: ChangeBatch): Promise<WriteResult> {
    return 'durable';
  }
  async close(): Promise<void> {}
}

/** Checkpoints in memory, starting from a given one (or none). */
export class MemoryStore implements CheckpointStore {
  constructor(private checkpoint: Checkpoint | null = null) {}
  async load(): Promise<Checkpoint | null> {
    return this.checkpoint;
  }
  async save(checkpoint: Checkpoint): Promise<void> {
    this.checkpoint = checkpoint;
  }
}

export interface RunResult {
  events: number;
  seconds: number;
  eventsPerSecond: number;
  cpuSeconds: number;
  eventsPerCpuSecond: number;
  /** Peak RSS of this process during the run, bytes. */
  peakRss: number;
  /** First batch until the last expected event was written. */
  eventsSeconds: number;
  /** First batch until the checkpoint covering the last expected event was saved and committed to the source. */
  checkpointSeconds: number;
}

export interface MeasuredRun {
  name: string;
  source: Source;
  target: Target;
  /** Defaults to the target's own checkpoint store, else an empty in-memory store. */
  store?: CheckpointStore;
  /** Events (insert/update/delete/read) the run must deliver. */
  expectedEvents: number;
  /**
   * What ends the measured interval: `checkpoint` (default) when the checkpoint covering the last event is saved,
   * `events` when the last event is written (the run still waits for the checkpoint, to report its delay).
   */
  measureTo?: 'checkpoint' | 'events';
  timeoutMs?: number;
}

const COUNTED = new Set(['insert', 'update', 'delete', 'read']);

export async function runMeasured(run: MeasuredRun): Promise<RunResult> {
  const { expectedEvents } = run;
  let delivered = 0;
  let firstBatchAt = 0;
  let cpuAtFirst: NodeJS.CpuUsage = process.cpuUsage();
  /** First checkpoint written at or after the batch that completed the expected events. */
  let finalCheckpoint: Checkpoint | null = null;
  let finishedAt = 0;
  let cpuSeconds = 0;
  let eventsAt = 0;
  let eventsCpuSeconds = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  collectGarbage();
  const sampler = new RssSampler(50);

  const inner = run.target;
  const wrapper = {
    open: () => inner.open(),
    close: () => inner.close(),
    reset: inner.reset ? () => inner.reset!() : undefined,
    async write(batch: ChangeBatch): Promise<WriteResult> {
      if (firstBatchAt === 0 && changeCount(batch) > 0) {
        firstBatchAt = performance.now();
        cpuAtFirst = process.cpuUsage();
      }
      const result = await inner.write(batch);
      // Snapshot row blocks are reads, counted without decoding them (a null target never does).
      if (batch.blocks) delivered += changeCount(batch);
      else for (const e of batch.events) if (COUNTED.has(e.op)) delivered++;
      if (eventsAt === 0 && delivered >= expectedEvents) {
        eventsAt = performance.now();
        eventsCpuSeconds = cpuSecondsSince(cpuAtFirst);
      }
      if (delivered >= expectedEvents && !finalCheckpoint && batch.checkpoint) finalCheckpoint = batch.checkpoint;
      return result;
    },
  };
  const target: Target = inner.transactional
    ? { ...wrapper, transactional: true, checkpointStore: inner.checkpointStore }
    : wrapper;
  const src = run.source;
  const source: Source = {
    open: (from) => src.open(from),
    batches: () => src.batches(),
    close: () => src.close(),
    async commit(checkpoint) {
      await src.commit(checkpoint);
      if (
        finishedAt === 0 &&
        finalCheckpoint &&
        checkpoint.phase === finalCheckpoint.phase &&
        comparePositions(checkpoint.position, finalCheckpoint.position) >= 0
      ) {
        finishedAt = performance.now();
        cpuSeconds = cpuSecondsSince(cpuAtFirst);
        resolveDone();
      }
    },
  };
  const store = run.store ?? (target.transactional ? undefined : new MemoryStore());
  const ctx = benchContext(run.name);
  let parts = 0;
  const pipeline = new Pipeline({
    name: run.name,
    createParts: () => {
      if (parts++ > 0) throw new Error('the pipeline restarted during the measurement');
      return target.transactional && !store ? { source, target } : { source, target, store: store! };
    },
    maxInFlight: BATCH.max_in_flight,
    maxInFlightBytes: BATCH.max_in_flight_bytes,
    initialBackoffMs: RETRY.initial_backoff_ms,
    maxBackoffMs: RETRY.max_backoff_ms,
    logger: ctx.logger,
  });
  const running = pipeline.run();
  const timeoutMs = run.timeoutMs ?? 600_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new Error(`${run.name}: timed out after ${timeoutMs} ms with ${delivered}/${expectedEvents} events`)),
      timeoutMs,
    );
  });
  try {
    // A run that ends or fails before the last checkpoint is a failure of the measurement.
    const ended = running.then(() => {
      if (finishedAt === 0)
        throw new Error(`${run.name}: the pipeline ended with ${delivered}/${expectedEvents} events delivered`);
    });
    await Promise.race([done, ended, timeout]);
  } finally {
    clearTimeout(timer);
    pipeline.stop();
    await running.catch(() => undefined);
  }
  const peakRss = sampler.stop();
  const checkpointSeconds = (finishedAt - firstBatchAt) / 1000;
  const eventsSeconds = (eventsAt - firstBatchAt) / 1000;
  const toEvents = run.measureTo === 'events';
  const seconds = toEvents ? eventsSeconds : checkpointSeconds;
  const cpu = toEvents ? eventsCpuSeconds : cpuSeconds;
  return {
    events: delivered,
    seconds,
    eventsPerSecond: delivered / seconds,
    cpuSeconds: cpu,
    eventsPerCpuSecond: delivered / cpu,
    peakRss,
    eventsSeconds,
    checkpointSeconds,
  };
}
