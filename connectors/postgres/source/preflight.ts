import type pg from 'pg';
import type { ConnectorContext, PreflightProblem } from '../../../src/core/connector-context.ts';
import { TributaryError } from '../../../src/errors.ts';
import { checkServer, connect, connectFailure } from './catalog.ts';
import { type PostgresSourceConfig, type PostgresSourceConfigInput, postgresSourceConfig } from './config.ts';
import { replicationNames } from './replication-names.ts';

/** Preflight for `tributary validate`: every problem with its fix; an unreachable server is one problem. */
export async function preflightPostgresSource(
  config: PostgresSourceConfig | PostgresSourceConfigInput,
  ctx: ConnectorContext,
): Promise<PreflightProblem[]> {
  const cfg = postgresSourceConfig.parse(config);
  let client: pg.Client;
  try {
    client = await connect(cfg);
  } catch (err) {
    const e = err instanceof TributaryError ? err : connectFailure(cfg.url, err);
    return [{ message: e.message, hint: e.hint ?? '' }];
  }
  try {
    return await checkServer(client, cfg, replicationNames(cfg, ctx.pipeline));
  } finally {
    await client.end().catch(() => undefined);
  }
}
