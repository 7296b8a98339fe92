import pg from 'pg';
import type { CheckpointStore } from '../../src/core/checkpoint-store.ts';
import type { PreflightProblem } from '../../src/core/connector-context.ts';
import type { SourceConnector, TargetConnector } from '../../src/registry.ts';
import type { PostgresSourceConfig } from './source/config.ts';
import { PostgresSource, preflightPostgresSource, teardownPostgresSource } from './source/index.ts';
import type { PostgresTargetConfig } from './target/config.ts';
import { PostgresCheckpointStore, PostgresTarget } from './target/index.ts';

/** The PostgreSQL connector as the registry sees it: source, target and checkpoint store. */
export const source: SourceConnector<PostgresSourceConfig> = {
  create: (config, ctx, options) => new PostgresSource(config, ctx, options),
  preflight: preflightPostgresSource,
  teardown: teardownPostgresSource,
  status: (config, ctx) => new PostgresSource(config, ctx).status(),
};

export const target: TargetConnector<PostgresTargetConfig> = {
  create: (config, ctx) => new PostgresTarget(config, ctx),
  preflight: preflightPostgresTarget,
  checkpointStore: (config) => new PostgresCheckpointStore(config.url, { connectTimeoutMs: config.connect_timeout_ms }),
};

export function postgresCheckpointStore(url: string): CheckpointStore {
  return new PostgresCheckpointStore(url);
}

/** The target database answers and the user may create the tables and the checkpoint table. */
async function preflightPostgresTarget(config: PostgresTargetConfig): Promise<PreflightProblem[]> {
  const client = new pg.Client({ connectionString: config.url, connectionTimeoutMillis: config.connect_timeout_ms });
  try {
    await client.connect();
  } catch (err) {
    return [
      {
        message: `cannot connect to the target database: ${(err as Error).message}`,
        hint: 'Check target.url (host, port, database, user, password) and that the server accepts connections.',
      },
    ];
  }
  try {
    const { rows } = await client.query<{ can_create: boolean }>(
      `select has_database_privilege(current_database(), 'CREATE') as can_create`,
    );
    if (!rows[0]?.can_create && config.create_tables) {
      return [
        {
          message: 'the target user may not create schemas in the target database',
          hint: 'GRANT CREATE ON DATABASE <db> TO <user>; or create the schemas and tables yourself and set create_tables: false.',
        },
      ];
    }
    return [];
  } finally {
    await client.end().catch(() => undefined);
  }
}
