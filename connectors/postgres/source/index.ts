import type { SourceConnector } from '../../../src/core/connector.ts';
import type { PostgresSourceConfig } from './config.ts';
import { preflightPostgresSource } from './preflight.ts';
import { requestPostgresSnapshot } from './snapshot-request.ts';
import { PostgresSource } from './source.ts';
import { postgresSourceStatus } from './status.ts';
import { teardownPostgresSource } from './teardown.ts';

export { type PostgresSourceConfig, postgresSourceConfig } from './config.ts';
export { preflightPostgresSource } from './preflight.ts';
export { replicationNames } from './replication-names.ts';
export { HEARTBEAT_PREFIX, PostgresSource } from './source.ts';
export { teardownPostgresSource } from './teardown.ts';

/** The PostgreSQL source as the registry sees it. */
export const source: SourceConnector<PostgresSourceConfig> = {
  create: (config, ctx, options) => new PostgresSource(config, ctx, options),
  preflight: preflightPostgresSource,
  teardown: teardownPostgresSource,
  requestSnapshot: requestPostgresSnapshot,
  status: postgresSourceStatus,
};
