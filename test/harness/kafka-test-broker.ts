import { inject } from 'vitest';

/**
 * The run's Kafka broker as a test sees it (started by kafka-global-setup.ts): its bootstrap addresses, or why there
 * is none, for `describe.skipIf`. Files that need it must match the `kafka` project's pattern in vitest.config.ts.
 */
export function testKafkaBrokers():
  | { brokers: string[]; skipReason: undefined }
  | { brokers: undefined; skipReason: string } {
  const given = inject('kafkaBrokers');
  if (given) return { brokers: given.split(',').filter(Boolean), skipReason: undefined };
  const reason =
    inject('kafkaSkipReason') ??
    'no Kafka broker for this file: name it *kafka*.test.ts (test/) or *.integration.test.ts (connectors/kafka/) so the kafka project starts one';
  console.warn(`SKIPPED Kafka tests: ${reason}`);
  return { brokers: undefined, skipReason: reason };
}
