/**
 * What the PostgreSQL target tests share beyond the engine-neutral builders of test/fixtures/change-events.ts: one
 * throwaway server per test file, and targets opened on a fresh database of it (closed when the file ends).
 */
import { afterAll, beforeAll } from 'vitest';
import type { ConnectorContext } from '../../../src/core/connector-context.ts';
import { EventSource, testContext } from '../../../test/fixtures/change-events.ts';
import { type PgServer, startPostgres } from '../../../test/harness/postgres.ts';
import { type PostgresTargetConfig, postgresTargetConfig } from './config.ts';
import { PostgresTarget } from './target.ts';

/** Registers the server's beforeAll/afterAll; call once at the top of a test file. */
export function postgresTargetSuite() {
  let server: PgServer | undefined;
  const open: PostgresTarget[] = [];

  beforeAll(async () => {
    server = await startPostgres({ throwaway: true });
  });
  afterAll(async () => {
    for (const t of open) await t.close().catch(() => undefined);
    await server?.stop();
  });

  const running = (): PgServer => {
    if (!server) throw new Error('the PostgreSQL test server is not started (use it inside a test)');
    return server;
  };

  /** Opens one more target; it is closed when the file ends. */
  async function openTarget(config: PostgresTargetConfig, ctx: ConnectorContext): Promise<PostgresTarget> {
    const target = new PostgresTarget(config, ctx);
    open.push(target);
    await target.open();
    return target;
  }

  /** A fresh database `db`, an open target on it, a query helper and an event source. */
  async function setup(db: string, extra: Record<string, unknown> = {}) {
    const url = await running().createDatabase(db);
    const ctx = testContext('test');
    const config = postgresTargetConfig.parse({ type: 'postgres', url, ...extra });
    const target = await openTarget(config, ctx);
    const q = <T extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]) =>
      running().query<T>(db, sql, params);
    const reopen = () => openTarget(config, ctx);
    return { url, ctx, target, q, reopen, src: new EventSource('test') };
  }

  return {
    get server(): PgServer {
      return running();
    },
    openTarget,
    setup,
  };
}
