import type { TargetConnector } from '../../../src/core/connector.ts';
import { PostgresCheckpointStore } from './checkpoint-store.ts';
import type { PostgresTargetConfig } from './config.ts';
import { preflightPostgresTarget } from './preflight.ts';
import { PostgresTarget } from './target.ts';

export { PostgresCheckpointStore } from './checkpoint-store.ts';
export { type PostgresTargetConfig, postgresTargetConfig } from './config.ts';
export { PostgresTarget } from './target.ts';

/** The PostgreSQL target as the registry sees it. */
export const target: TargetConnector<PostgresTargetConfig> = {
  create: (config, ctx) => new PostgresTarget(config, ctx),
  preflight: preflightPostgresTarget,
  checkpointStore: (config) => new PostgresCheckpointStore(config.url, { connectTimeoutMs: config.connect_timeout_ms }),
};
