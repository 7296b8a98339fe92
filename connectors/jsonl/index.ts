import type { TargetConnector } from '../../src/core/connector.ts';
import type { JsonlTargetConfig } from './config.ts';
import { preflightJsonlTarget } from './preflight.ts';
import { JsonlTarget } from './target.ts';

export { JsonlTarget };

/** The jsonl target as the registry sees it. */
export const target: TargetConnector<JsonlTargetConfig> = {
  create: (config, ctx) => new JsonlTarget(config, ctx),
  preflight: preflightJsonlTarget,
};
