import type { TargetConnector } from '../../src/core/connector.ts';
import type { KafkaTargetConfig } from './config.ts';
import { preflightKafkaTarget } from './preflight.ts';
import { KafkaTarget } from './target.ts';

export { KafkaTarget };

/** The Kafka target as the registry sees it. */
export const target: TargetConnector<KafkaTargetConfig> = {
  create: (config, ctx) => new KafkaTarget(config, ctx),
  preflight: preflightKafkaTarget,
};
