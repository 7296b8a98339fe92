import type { TargetConnector } from '../../src/core/connector.ts';
import type { KafkaTargetConfig } from './config.ts';
import { KafkaTarget } from './kafka-target.ts';

export { KafkaTarget };

export const target: TargetConnector<KafkaTargetConfig> = {
  create: (config, ctx) => new KafkaTarget(config, ctx),
  async preflight(config, ctx) {
    const t = new KafkaTarget(config, ctx);
    try {
      await t.open();
      return [];
    } catch (err) {
      return [
        {
          message: `kafka target: cannot connect to ${config.brokers.join(', ')}: ${(err as Error).message}`,
          hint: (err as { hint?: string }).hint ?? 'Check brokers, tls and sasl settings.',
        },
      ];
    } finally {
      await t.close().catch(() => {});
    }
  },
};
