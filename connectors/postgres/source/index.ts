export { type PostgresSourceConfig, postgresSourceConfig } from './config.ts';
export {
  HEARTBEAT_PREFIX,
  PostgresSource,
  preflightPostgresSource,
  replicationNames,
  teardownPostgresSource,
} from './source.ts';
