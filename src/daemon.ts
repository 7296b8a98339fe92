import type http from 'node:http';
import path from 'node:path';
import type { LoadedConfig } from './config/load.ts';
import type { PipelineConfig } from './config/schema.ts';
import type { ConnectorContext } from './core/connector-context.ts';
import { describeError, errorKind, TributaryError } from './errors.ts';
import { startHttpServer } from './observability/http.ts';
import type { Logger } from './observability/logger.ts';
import { PipelineMetrics } from './observability/metrics.ts';
import { SnapshotProgress } from './observability/snapshot-progress.ts';
import { Pipeline } from './pipeline/pipeline.ts';
import { loadConnectors, separateCheckpointStore } from './registry.ts';

/**
 * Pipelines that stopped on an error needing an operator (or a bug). Each was logged, with its hint, by its pipeline
 * when it happened; `summary` is what the process says last (not the error again), while `message` carries the
 * first failure's own text for callers that have no log.
 */
export class PipelinesFailedError extends TributaryError {
  readonly summary: string;

  constructor(readonly failures: { pipeline: string; error: unknown }[]) {
    const first = failures[0];
    super(
      failures.some((f) => errorKind(f.error) === 'fatal') ? 'fatal' : 'operator',
      `pipeline ${first?.pipeline ?? ''} stopped: ${first ? describeError(first.error) : ''}`,
      {
        hint:
          (failures.length === 1 && (first?.error as { hint?: string } | undefined)?.hint) ||
          'What happened and what to do is in the log lines above.',
      },
    );
    this.summary = `pipeline${failures.length === 1 ? '' : 's'} ${failures.map((f) => f.pipeline).join(', ')} stopped on an error`;
  }
}

/**
 * Runs every pipeline of a config until stopped; serves the HTTP endpoint. When one pipeline stops on an error that
 * needs an operator, the others drain, save their checkpoints and stop too, and the process exits: a process that
 * runs is a process whose pipelines all run, and a supervisor sees the failure.
 */
export class Daemon {
  readonly pipelines: Pipeline[] = [];
  readonly metrics = new PipelineMetrics();
  private server?: http.Server;
  private stopping = false;

  constructor(
    private readonly loaded: LoadedConfig,
    private readonly logger: Logger,
  ) {}

  /** Resolves when every pipeline has stopped; rejects with the first pipeline failure that needs an operator. */
  async run(): Promise<void> {
    const { config, file } = this.loaded;
    const configDir = path.dirname(path.resolve(file));
    for (const pipelineConfig of config.pipelines) {
      this.pipelines.push(await this.createPipeline(pipelineConfig, configDir));
    }
    this.metrics.pipelineStatuses = () =>
      this.pipelines.map((p) => ({ pipeline: p.state.name, status: p.state.status }));
    this.metrics.snapshotTables = () =>
      this.pipelines.map((p) => ({ pipeline: p.state.name, tables: p.state.snapshot?.report() ?? [] }));
    this.metrics.checkpointSavedAt = () =>
      this.pipelines.map((p) => ({ pipeline: p.state.name, atMs: p.state.checkpointSavedAtMs }));
    if (config.http) {
      this.server = await startHttpServer(config.http.listen, this.metrics, () => this.pipelines.map((p) => p.state), {
        bearerToken: config.http.bearer_token,
      });
      this.logger.info(
        { event: 'http_listening', listen: config.http.listen },
        `metrics and status on http://${config.http.listen}`,
      );
    }
    try {
      const failures: { pipeline: string; error: unknown }[] = [];
      await Promise.all(
        this.pipelines.map((p) =>
          p.run().catch((error: unknown) => {
            failures.push({ pipeline: p.state.name, error });
            const running = this.pipelines.filter((other) => other !== p && other.state.status !== 'failed');
            if (!this.stopping && running.length > 0) {
              this.logger.error(
                { event: 'stopping_other_pipelines', failed: p.state.name, stopping: running.map((o) => o.state.name) },
                `pipeline ${p.state.name} stopped on an error: stopping the others (they save their checkpoints)`,
              );
            }
            this.stop();
          }),
        ),
      );
      if (failures.length > 0) throw new PipelinesFailedError(failures);
    } finally {
      await new Promise((resolve) => (this.server ? this.server.close(resolve) : resolve(undefined)));
    }
  }

  /** Asks every pipeline to drain and stop. */
  stop(): void {
    this.stopping = true;
    for (const p of this.pipelines) if (p.state.status !== 'failed') p.stop();
  }

  private async createPipeline(config: PipelineConfig, configDir: string): Promise<Pipeline> {
    const connectors = await loadConnectors(config);
    const snapshotProgress = new SnapshotProgress();
    const ctx: ConnectorContext = {
      pipeline: config.name,
      logger: this.logger.child({ pipeline: config.name }),
      snapshotProgress,
    };
    const pipeline = new Pipeline({
      name: config.name,
      createParts: async () => {
        const target = connectors.target.create(config.target, ctx);
        const store = await separateCheckpointStore(config, configDir, target.transactional === true);
        const source = connectors.source.create(config.source, ctx, { batch: config.batch });
        if (store) return { source, target, store };
        if (!target.transactional) throw new Error(`pipeline ${config.name}: no checkpoint store`);
        return { source, target };
      },
      maxInFlight: config.batch.max_in_flight,
      maxInFlightBytes: config.batch.max_in_flight_bytes,
      initialBackoffMs: config.retry.initial_backoff_ms,
      maxBackoffMs: config.retry.max_backoff_ms,
      logger: ctx.logger,
      metrics: this.metrics,
    });
    pipeline.state.snapshot = snapshotProgress;
    return pipeline;
  }
}
