import { defineConfig } from 'vitest/config';

/**
 * Tests beside the code that start a real server (a database, a broker). Everything else there is a unit test:
 * `npm run test:unit` runs those alone, in seconds, with nothing installed but Node.
 */
const needsServers = [
  'connectors/kafka/kafka.integration.test.ts',
  'connectors/mysql/source/{big-transaction,positions,preflight,schema-change,stream,types}.test.ts',
  'connectors/mysql/target/{bench,preflight,target,types}.test.ts',
  'connectors/postgres/source/{postgres-source,postgres-source.bulk,snapshot-reader}.test.ts',
  'connectors/postgres/target/{bench,checkpoint-store,copy,target,types}.test.ts',
  'src/verify/verify.{bench,cross,postgres}.test.ts',
];

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
          exclude: needsServers,
        },
      },
      {
        extends: true,
        test: { name: 'integration', include: [...needsServers, 'test/**/*.test.ts'] },
      },
    ],
  },
});
