import type { TestProject } from 'vitest/node';
import { type KafkaBroker, kafkaToolingMissing, startKafkaBroker } from './kafka-broker.ts';

/**
 * Global setup of the `kafka` test project (vitest.config.ts): one broker for the whole run. KAFKA_BROKERS, when
 * set, names a broker to use instead. Without java or mvn the Kafka tests skip with the reason, unless
 * TRIBUTARY_REQUIRE_KAFKA=1 (CI), where that is an error.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const given = process.env.KAFKA_BROKERS;
  if (given) {
    project.provide('kafkaBrokers', given);
    return undefined;
  }
  const missing = kafkaToolingMissing();
  if (missing) {
    if (process.env.TRIBUTARY_REQUIRE_KAFKA === '1') throw new Error(`TRIBUTARY_REQUIRE_KAFKA=1 but ${missing}`);
    console.warn(`Kafka tests are skipped: ${missing}`);
    project.provide('kafkaSkipReason', missing);
    return undefined;
  }
  const started = Date.now();
  const broker: KafkaBroker = await startKafkaBroker();
  console.info(`Kafka broker ${broker.bootstrap} started for this run in ${Date.now() - started} ms`);
  project.provide('kafkaBrokers', broker.bootstrap);
  return () => broker.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** host:port[,host:port] of the run's Kafka broker. */
    kafkaBrokers?: string;
    /** Why there is no broker (the Kafka tests skip). */
    kafkaSkipReason?: string;
  }
}
