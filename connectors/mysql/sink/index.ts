import type { TargetConnector } from '../../../src/core/connector.ts';
import { checkpointTableOf } from './checkpoint-location.ts';
import { MysqlCheckpointStore } from './checkpoint-store.ts';
import type { MysqlTargetConfig } from './config.ts';
import { preflightMysqlTarget } from './preflight.ts';
import { MysqlTarget } from './target.ts';

export { MysqlCheckpointStore } from './checkpoint-store.ts';
export { type MysqlTargetConfig, mysqlTargetConfig } from './config.ts';
export { MysqlTarget } from './target.ts';

/** The MySQL/MariaDB target as the registry sees it. */
export const target: TargetConnector<MysqlTargetConfig> = {
  create: (config, ctx) => new MysqlTarget(config, ctx),
  preflight: preflightMysqlTarget,
  checkpointStore: (config) =>
    new MysqlCheckpointStore(config.url, checkpointTableOf(config), config.connect_timeout_ms),
};
