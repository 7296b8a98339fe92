/** `validate` check of a Kafka target: it connects to the brokers as it would to write (TLS and SASL included). */
import type { ConnectorContext, PreflightProblem } from '../../src/core/connector-context.ts';
import type { KafkaTargetConfig } from './config.ts';
import { KafkaTarget } from './target.ts';

export async function preflightKafkaTarget(
  config: KafkaTargetConfig,
  ctx: ConnectorContext,
): Promise<PreflightProblem[]> {
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
}
