import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'connectors/**/*.test.ts', 'test/**/*.test.ts'],
    // Builds the MySQL server tree (debootstrap) once before the tests that start MySQL servers.
    globalSetup: ['test/harness/mysql-global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Integration tests start their own servers; two cores do not like many at once.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
