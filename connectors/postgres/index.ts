import type { CheckpointStore } from '../../src/core/checkpoint-store.ts';
import type { SourceConnector, TargetConnector } from '../../src/core/connector.ts';
import type { PostgresTargetConfig } from './sink/config.ts';
import { PostgresCheckpointStore, PostgresTarget } from './sink/index.ts';
import { preflightPostgresTarget } from './sink/preflight.ts';
import type { PostgresSourceConfig } from './source/config.ts';
import { PostgresSource, preflightPostgresSource, teardownPostgresSource } from './source/index.ts';
import { requestPostgresSnapshot } from './source/snapshot-request.ts';

/** The PostgreSQL connector as the registry sees it: source, target and checkpoint store. */
export const source: SourceConnector<PostgresSourceConfig> = {
  create: (config, ctx, options) => new PostgresSource(config, ctx, options),
  preflight: preflightPostgresSource,
  teardown: teardownPostgresSource,
  requestSnapshot: requestPostgresSnapshot,
  status: (config, ctx) => new PostgresSource(config, ctx).status(),
};

export const target: TargetConnector<PostgresTargetConfig> = {
  create: (config, ctx) => new PostgresTarget(config, ctx),
  preflight: preflightPostgresTarget,
  checkpointStore: (config) => new PostgresCheckpointStore(config.url, { connectTimeoutMs: config.connect_timeout_ms }),
};

export function postgresCheckpointStore(url: string): CheckpointStore {
  return new PostgresCheckpointStore(url);
}
