export { PostgresCheckpointStore } from './checkpoint-store.ts';
export { type PostgresTargetConfig, postgresTargetConfig } from './config.ts';
export { PostgresTarget } from './target.ts';
