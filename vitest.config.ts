import { configDefaults, defineConfig } from 'vitest/config';

/** Test files that need a Kafka broker: the `kafka` project starts one for the run (test/harness/kafka-global-setup.ts). */
const KAFKA_BROKER_TESTS = ['connectors/kafka/**/*.integration.test.ts', 'test/**/*kafka*.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Integration tests start their own servers; two cores do not like many at once.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: process.env.CI ? ['default'] : ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['src/**/*.test.ts', 'connectors/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...KAFKA_BROKER_TESTS],
        },
      },
      {
        extends: true,
        test: {
          name: 'kafka',
          include: KAFKA_BROKER_TESTS,
          globalSetup: ['test/harness/kafka-global-setup.ts'],
        },
      },
    ],
  },
});
