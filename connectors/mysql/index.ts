import { TributaryError } from '../../src/errors.ts';
import type { SourceConnector, TargetConnector } from '../../src/registry.ts';
import type { MysqlSourceConfig } from './source/config.ts';
import { MysqlSource, preflightMysqlSource } from './source/index.ts';
import type { MysqlTargetConfig } from './target/config.ts';

/** The MySQL/MariaDB connector as the registry sees it. */
export const source: SourceConnector<MysqlSourceConfig> = {
  create: (config, ctx, options) => new MysqlSource(config, ctx, options),
  preflight: preflightMysqlSource,
};

export const target: TargetConnector<MysqlTargetConfig> = {
  create: () => {
    throw new TributaryError('operator', 'the MySQL target is not available yet', {
      hint: 'Use a postgres, jsonl or kafka target for now.',
    });
  },
};
