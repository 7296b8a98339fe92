import type { SourceConnector } from '../../src/core/connector.ts';
import type { MysqlSourceConfig } from './source/config.ts';
import { MysqlSource, preflightMysqlSource } from './source/index.ts';

/** The MySQL/MariaDB connector as the registry sees it. */
export const source: SourceConnector<MysqlSourceConfig> = {
  create: (config, ctx, options) => new MysqlSource(config, ctx, options),
  preflight: preflightMysqlSource,
};

export { target } from './sink/index.ts';
