import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedPgBinDir, type PgServer, startPostgres } from './postgres.ts';

describe('postgres harness', () => {
  let server: PgServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => server?.stop());

  it('starts a server with logical decoding on', async () => {
    const rows = await server.query<{ wal_level: string }>('postgres', 'show wal_level');
    expect(rows[0]!.wal_level).toBe('logical');
    const url = await server.createDatabase('harness_check');
    expect(url).toContain('/harness_check');
  });

  it.runIf(embeddedPgBinDir())('starts the embedded (newer) PostgreSQL too', async () => {
    const other = await startPostgres({ flavor: 'embedded' });
    try {
      expect(other.major).toBeGreaterThanOrEqual(16);
    } finally {
      await other.stop();
    }
  });
});
