import fs from 'node:fs';
import path from 'node:path';
import { configDefaults, defineConfig } from 'vitest/config';

/** Test files that need a Kafka broker: the `kafka` project starts one for the run (test/harness/kafka-global-setup.ts). */
const KAFKA_BROKER_TESTS = ['connectors/kafka/**/*.integration.test.ts', 'test/**/*kafka*.test.ts'];

/**
 * Tests beside the code that start a real server (a database, a broker) are the ones that reach the test harness,
 * directly or through a test-only file beside the code (`*.test-support.ts`: helpers and stand-ins; the build leaves
 * them out by that name) that does. Everything else there is a unit test: `npm run test:unit` runs those
 * alone, in seconds, with nothing installed but Node. Found by reading the files, so a new server test can never land
 * in the unit project by being forgotten in a list.
 */
function testsBesideCodeThatNeedServers(): string[] {
  const found: string[] = [];
  const reachesHarness = (file: string): boolean => {
    const text = fs.readFileSync(file, 'utf8');
    if (/harness\//.test(text)) return true;
    return [...text.matchAll(/from '(\.[^']*\.test-support\.ts)'/g)].some((m) =>
      reachesHarness(path.join(path.dirname(file), m[1]!)),
    );
  };
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.test.ts') && reachesHarness(file)) found.push(file.split(path.sep).join('/'));
    }
  };
  for (const root of ['src', 'connectors']) walk(root);
  return found;
}

const needsServers = testsBesideCodeThatNeedServers();

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Integration tests start their own servers; two cores do not like many at once.
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'connectors/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...needsServers, ...KAFKA_BROKER_TESTS],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: [...needsServers, 'test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...KAFKA_BROKER_TESTS],
          // Builds the MySQL server tree (debootstrap) once before the tests that start MySQL servers.
          globalSetup: ['test/harness/mysql-global-setup.ts'],
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
