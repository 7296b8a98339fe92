import type http from 'node:http';
import path from 'node:path';
import type { LoadedConfig } from './config/load.ts';
import type { PipelineConfig } from './config/schema.ts';
import type { ConnectorContext } from './core/connector-context.ts';
import { startHttpServer } from './observability/http.ts';
import type { Logger } from './observability/logger.ts';
import { PipelineMetrics } from './observability/metrics.ts';
import { Pipeline } from './pipeline/pipeline.ts';
import { checkpointStoreFor, loadConnectors } from './registry.ts';

/** Runs every pipeline of a config until stopped; serves the HTTP endpoint. */
export class Daemon {
  readonly pipelines: Pipeline[] = [];
  readonly metrics = new PipelineMetrics();
  private server?: http.Server;

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
    this.metrics.checkpointSavedAt = () =>
      this.pipelines.map((p) => ({ pipeline: p.state.name, atMs: p.state.checkpointSavedAtMs }));
    if (config.http) {
      this.server = await startHttpServer(config.http.listen, this.metrics, () => this.pipelines.map((p) => p.state));
      this.logger.info(
        { event: 'http_listening', listen: config.http.listen },
        `metrics and status on http://${config.http.listen}`,
      );
    }
    try {
      const results = await Promise.allSettled(this.pipelines.map((p) => p.run()));
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) throw failure.reason;
    } finally {
      await new Promise((resolve) => (this.server ? this.server.close(resolve) : resolve(undefined)));
    }
  }

  /** Asks every pipeline to drain and stop. */
  stop(): void {
    for (const p of this.pipelines) p.stop();
  }

  private async createPipeline(config: PipelineConfig, configDir: string): Promise<Pipeline> {
    const connectors = await loadConnectors(config);
    const ctx: ConnectorContext = { pipeline: config.name, logger: this.logger.child({ pipeline: config.name }) };
    return new Pipeline({
      name: config.name,
      createParts: async () => {
        const target = connectors.target.create(config.target, ctx);
        const store = await checkpointStoreFor(config, configDir, target.checkpointStore);
        const source = connectors.source.create(config.source, ctx, { batch: config.batch });
        return { source, target, store };
      },
      maxInFlight: config.batch.max_in_flight,
      maxInFlightBytes: config.batch.max_in_flight_bytes,
      initialBackoffMs: config.retry.initial_backoff_ms,
      maxBackoffMs: config.retry.max_backoff_ms,
      logger: ctx.logger,
      metrics: this.metrics,
    });
  }
}
