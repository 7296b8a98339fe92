import type { SourceConnector } from '../../../src/core/connector.ts';
import type { MysqlSourceConfig } from './config.ts';
import { preflightMysqlSource } from './preflight.ts';
import { requestMysqlSnapshot } from './snapshot-request.ts';
import { MysqlSource } from './source.ts';
import { mysqlSourceStatus } from './status.ts';
import { teardownMysqlSource } from './teardown.ts';

export { type MysqlSourceConfig, mysqlSourceConfig } from './config.ts';
export { preflightMysqlSource } from './preflight.ts';
export { MysqlSource } from './source.ts';

/** The MySQL/MariaDB source as the registry sees it. */
export const source: SourceConnector<MysqlSourceConfig> = {
  create: (config, ctx, options) => new MysqlSource(config, ctx, options),
  preflight: preflightMysqlSource,
  teardown: teardownMysqlSource,
  status: mysqlSourceStatus,
  requestSnapshot: requestMysqlSnapshot,
};
