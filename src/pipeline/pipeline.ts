import { laterCheckpoint } from '../checkpoint-order.ts';
import type { ChangeBatch } from '../core/change-batch.ts';
import { type Checkpoint, isSnapshotProgress } from '../core/checkpoint.ts';
import type { CheckpointStore } from '../core/checkpoint-store.ts';
import type { Source } from '../core/source.ts';
import type { Target, TransactionalTarget, WriteResult } from '../core/target.ts';
import { describeError, type ErrorKind, errorKind, TributaryError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { PipelineMetrics } from '../observability/metrics.ts';
import type { SnapshotProgress } from '../observability/snapshot-progress.ts';
import { backoffDelayMs, sleep } from './backoff.ts';
import { Checkpointer } from './checkpointer.ts';
import { InFlightWindow } from './in-flight-window.ts';

/** Longest a clean stop keeps pulling from a draining source. */
const DRAIN_MS = 5000;

/**
 * What one run moves changes with. Without `store` the target is transactional and keeps the checkpoints with its
 * data (exactly-once effect): the pipeline loads them from there and saves none itself. With `store` the pipeline
 * saves each released checkpoint there (a transactional target still keeps its own, and the later of both is resumed
 * from).
 */
export type PipelineParts =
  | { source: Source; target: TransactionalTarget; store?: undefined }
  | { source: Source; target: Target; store: CheckpointStore };

export interface PipelineOptions {
  name: string;
  /** Builds fresh parts for every (re)start: a failed source or target is never reused. */
  createParts: () => PipelineParts | Promise<PipelineParts>;
  maxInFlight: number;
  maxInFlightBytes: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  logger: Logger;
  metrics?: PipelineMetrics;
}

export type PipelineStatus = 'starting' | 'running' | 'retrying' | 'stopping' | 'stopped' | 'failed';

/** What `status` and /status report for a pipeline. */
export interface PipelineState {
  name: string;
  status: PipelineStatus;
  phase: Checkpoint['phase'] | 'unknown';
  checkpoint: Checkpoint | null;
  checkpointSavedAtMs: number | null;
  /** Seconds between the source commit of the last durable change and the moment it became durable. */
  lagSeconds: number | null;
  restarts: number;
  lastError: { kind: ErrorKind; message: string } | null;
  /** Per-table snapshot progress, when the daemon watches it. */
  snapshot?: SnapshotProgress;
}

/**
 * Moves batches from one source to one target under the one rule: a checkpoint is saved only once every batch up to
 * it is durable, and acknowledged to the source only once saved. A failure ends the run; retryable failures restart
 * from the stored checkpoint after a backoff, others stop the pipeline.
 */
export class Pipeline {
  readonly state: PipelineState;
  private readonly stopController = new AbortController();
  /** The engines' verdicts on errors their clients threw: those of the last run's source and target. */
  private classifyError: (err: unknown) => ErrorKind | undefined = () => undefined;

  constructor(private readonly options: PipelineOptions) {
    this.state = {
      name: options.name,
      status: 'starting',
      phase: 'unknown',
      checkpoint: null,
      checkpointSavedAtMs: null,
      lagSeconds: null,
      restarts: 0,
      lastError: null,
    };
  }

  /** Runs until stop() (resolves) or a failure that needs an operator (rejects). */
  async run(): Promise<void> {
    const { logger } = this.options;
    let attempt = 0;
    while (!this.stopController.signal.aborted) {
      try {
        // A retry that is under way still reads as retrying: the pipeline waits for a part until it runs again.
        this.state.status = attempt > 0 ? 'retrying' : 'starting';
        const progressed = await this.runOnce();
        if (progressed) attempt = 0;
        if (!this.stopController.signal.aborted) {
          // The source ended on its own (e.g. snapshot only): the pipeline is done.
          logger.info({ event: 'pipeline_finished', pipeline: this.options.name }, 'pipeline finished');
          break;
        }
      } catch (err) {
        const kind = (err instanceof TributaryError ? undefined : this.classifyError(err)) ?? errorKind(err);
        this.state.lastError = { kind, message: describeError(err) };
        this.options.metrics?.errors.inc({ pipeline: this.options.name, kind });
        if (kind === 'retryable' && this.stopController.signal.aborted) {
          // Asked to stop while a part could not be reached: a stop, not a failure.
          logger.info(
            { event: 'pipeline_stopped_while_retrying', pipeline: this.options.name },
            `stopped while retrying: ${describeError(err)}`,
          );
          break;
        }
        if (kind !== 'retryable') {
          this.state.status = 'failed';
          logger.error({ event: 'pipeline_failed', pipeline: this.options.name, kind, err }, describeError(err));
          throw err;
        }
        const delay = backoffDelayMs(attempt++, this.options.initialBackoffMs, this.options.maxBackoffMs);
        this.state.status = 'retrying';
        this.state.restarts += 1;
        logger.warn(
          { event: 'pipeline_retrying', pipeline: this.options.name, delay_ms: delay, err },
          `${describeError(err)} (retrying in ${delay} ms)`,
        );
        await sleep(delay, this.stopController.signal);
      }
    }
    this.state.status = 'stopped';
  }

  /** Stops pulling, drains what is in flight, saves and acknowledges the last checkpoint. */
  stop(): void {
    this.state.status = 'stopping';
    this.stopController.abort();
  }

  /** One run from the stored checkpoint. Returns whether any checkpoint was saved. */
  private async runOnce(): Promise<boolean> {
    const { name, logger, metrics } = this.options;
    const parts = await this.options.createParts();
    const { source, target } = parts;
    const targetSavesCheckpoints = parts.store === undefined;
    const store = parts.store ?? parts.target.checkpointStore;
    this.classifyError = (err) => source.classifyError?.(err) ?? target.classifyError?.(err);
    const checkpointer = new Checkpointer();
    const window = new InFlightWindow(this.options.maxInFlight, this.options.maxInFlightBytes);
    let failure: unknown;
    let failed = false;
    let progressed = false;
    let released: Checkpoint | null = null;
    let saving: Promise<void> = Promise.resolve();
    const failedSignal = new AbortController();
    let forgetStop = () => {};

    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      failure = err;
      failedSignal.abort();
    };

    // What the target remembers across runs travels in the checkpoints this pipeline stores for it.
    const withTargetState = (checkpoint: Checkpoint): Checkpoint =>
      target.checkpointState
        ? { ...checkpoint, state: { ...checkpoint.state, target: target.checkpointState() } }
        : checkpoint;
    // Saves run one at a time, in order; a later checkpoint supersedes one still waiting.
    const saveAndCommit = (checkpoint: Checkpoint) => {
      released = checkpoint;
      saving = saving.then(async () => {
        if (failed || released !== checkpoint) return;
        const withTarget = withTargetState(checkpoint);
        if (!targetSavesCheckpoints) await store.save(withTarget);
        this.state.checkpoint = withTarget;
        this.state.phase = phaseOf(checkpoint);
        this.state.checkpointSavedAtMs = Date.now();
        progressed = true;
        logger.debug({ event: 'checkpoint_saved', pipeline: name, position: checkpoint.position }, 'checkpoint saved');
        await source.commit(checkpoint);
      });
      saving.catch(fail);
    };

    try {
      // A target that cannot be reached yet may retry inside open(); a stop does not wait for it (close() ends it).
      const opened = await raceAbort(
        target.open().then(() => true),
        this.stopController.signal,
      );
      if (!opened) return false;
      // A target that keeps its own checkpoint with its data may be ahead of a separate store that failed or lagged:
      // it holds that data durably, so resume after it rather than deliver it again.
      const stored = async () =>
        laterCheckpoint(
          await store.load(name),
          !targetSavesCheckpoints && target.transactional ? await target.checkpointStore.load(name) : null,
        );
      const from = await stored();
      target.resume?.(from?.state?.target as Record<string, unknown> | undefined);
      this.state.checkpoint = from;
      this.state.phase = from ? phaseOf(from) : 'unknown';
      logger.info(
        { event: 'pipeline_starting', pipeline: name, from: from?.position ?? null, phase: from?.phase ?? null },
        from ? 'resuming from checkpoint' : 'starting without checkpoint',
      );
      await source.open(from);
      // A source may wait in open() for a lock another instance of the pipeline holds (the MySQL binlog reader's): a
      // checkpoint that instance saved meanwhile is where this one must start, or it delivers that stretch again.
      const now = await stored();
      if (now && laterCheckpoint(from, now) === now && JSON.stringify(now) !== JSON.stringify(from)) {
        throw new TributaryError(
          'retryable',
          'the checkpoint moved while the source opened (another instance of the pipeline saved one): starting again from it',
        );
      }
      const start = from ? null : (source.startCheckpoint?.() ?? null);
      if (start) {
        // Durable before the pipeline counts as running: a stop before the first change must not lose the changes
        // made until the next start.
        await store.save(withTargetState(start));
        this.state.checkpoint = start;
        this.state.phase = phaseOf(start);
        this.state.checkpointSavedAtMs = Date.now();
        logger.info(
          { event: 'start_position_saved', pipeline: name, position: start.position },
          'start position saved',
        );
      }
      this.state.status = 'running';

      // On stop, a source that can drain hands out what it holds complete (its newest position included) and ends;
      // pulling stops at the latest after DRAIN_MS. Other sources stop being pulled at once.
      const drainOver = new AbortController();
      const pullWhile = source.drain
        ? AbortSignal.any([failedSignal.signal, drainOver.signal])
        : AbortSignal.any([this.stopController.signal, failedSignal.signal]);
      const onStop = () => {
        source.drain?.();
        setTimeout(() => drainOver.abort(), DRAIN_MS).unref();
      };
      if (this.stopController.signal.aborted) onStop();
      else this.stopController.signal.addEventListener('abort', onStop, { once: true });
      forgetStop = () => this.stopController.signal.removeEventListener('abort', onStop);
      const iterator = source.batches()[Symbol.asyncIterator]();
      while (!pullWhile.aborted) {
        const next = await raceAbort(iterator.next(), pullWhile);
        if (next === undefined || next.done) break;
        const batch = next.value;
        // Snapshot row blocks: bounded by bytes alone (see in-flight-window.ts).
        const counted = !batch.blocks;
        if (!(await window.acquire(batch.bytes, pullWhile, counted))) break;
        checkpointer.track(batch);
        metrics?.recordBatch(name, batch);
        this.write(target, batch)
          .then((result) => {
            if (batch.checkpoint && result !== 'durable') {
              fail(
                new TributaryError(
                  'fatal',
                  `the target reported batch ${batch.seq} ${result}, not durable, though it ends a transaction`,
                ),
              );
              return;
            }
            const checkpoint = checkpointer.markDurable(batch.seq);
            if (checkpoint) saveAndCommit(checkpoint);
            this.recordLag(batch);
          }, fail)
          .finally(() => window.release(batch.bytes, counted));
      }
      // Drain: every batch handed to the target finishes (or fails), then the last save completes.
      await window.drained();
      await saving.catch(fail);
      if (failed) throw failure;
      return progressed;
    } catch (err) {
      fail(err);
      await target.reset?.().catch(() => undefined);
      throw failure;
    } finally {
      forgetStop();
      await source.close().catch((err) => logger.warn({ event: 'source_close_failed', pipeline: name, err }));
      await target.close().catch((err) => logger.warn({ event: 'target_close_failed', pipeline: name, err }));
      await store.close?.().catch(() => undefined);
    }
  }

  private async write(target: Target, batch: ChangeBatch): Promise<WriteResult> {
    const started = performance.now();
    const result = await target.write(batch);
    this.options.metrics?.writeSeconds.observe({ pipeline: this.options.name }, (performance.now() - started) / 1000);
    return result;
  }

  private recordLag(batch: ChangeBatch): void {
    const last = batch.blocks ? batch.blocks[batch.blocks.length - 1] : batch.events[batch.events.length - 1];
    const sourceTime = last?.source.commitTimeMs ?? batch.checkpoint?.sourceTimeMs;
    if (sourceTime === undefined) return;
    this.state.lagSeconds = Math.max(0, (Date.now() - sourceTime) / 1000);
    this.options.metrics?.lagSeconds.set({ pipeline: this.options.name }, this.state.lagSeconds);
  }
}

/** Resolves with the promise's value, or with undefined as soon as the signal aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** What a pipeline at this checkpoint does: an initial snapshot still copying saves stream checkpoints as it goes. */
function phaseOf(checkpoint: Checkpoint): Checkpoint['phase'] {
  return isSnapshotProgress(checkpoint) ? 'snapshot' : checkpoint.phase;
}
