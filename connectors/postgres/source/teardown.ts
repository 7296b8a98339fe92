import type pg from 'pg';
import type { ConnectorContext } from '../../../src/core/connector-context.ts';
import { ConnectionError, TributaryError } from '../../../src/errors.ts';
import { quoteIdent } from '../identifiers.ts';
import { connect } from './catalog.ts';
import { type PostgresSourceConfig, type PostgresSourceConfigInput, postgresSourceConfig } from './config.ts';
import { replicationNames } from './replication-names.ts';

/** Drops the slot and the publications (for `tributary teardown`); returns what existed and was dropped. */
export async function teardownPostgresSource(
  config: PostgresSourceConfig | PostgresSourceConfigInput,
  ctx: ConnectorContext,
): Promise<string[]> {
  const cfg = postgresSourceConfig.parse(config);
  const names = replicationNames(cfg, ctx.pipeline);
  const client = await connect(cfg);
  try {
    const slot = await client.query<{ active_pid: number | null }>(
      'select active_pid from pg_replication_slots where slot_name = $1',
      [names.slot],
    );
    if (slot.rows[0]?.active_pid) {
      throw new TributaryError(
        'operator',
        `replication slot ${names.slot} is in use by server process ${slot.rows[0].active_pid}: pipeline ${ctx.pipeline} is running`,
        { hint: 'Stop it first (SIGTERM to tributary run), then run teardown again.' },
      );
    }
    const publications = await client.query<{ pubname: string }>(
      'select pubname from pg_publication where pubname = any($1::text[]) order by pubname',
      [[names.publication, names.insertOnlyPublication]],
    );
    await dropSlotWithRetry(client, names.slot);
    await client.query(`drop publication if exists ${quoteIdent(names.publication)}`);
    await client.query(`drop publication if exists ${quoteIdent(names.insertOnlyPublication)}`);
    ctx.logger.info({
      event: 'source_teardown',
      pipeline: ctx.pipeline,
      slot: names.slot,
      publication: names.publication,
    });
    return [
      ...(slot.rows.length > 0 ? [`replication slot ${names.slot}`] : []),
      ...publications.rows.map((r) => `publication ${r.pubname}`),
    ];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Drops a replication slot, waiting while a connection that is going away still holds it. */
export async function dropSlotWithRetry(client: pg.Client, slot: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await client.query('select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1', [
        slot,
      ]);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '55006' || attempt >= 20) {
        throw new ConnectionError(
          `cannot drop replication slot ${slot}: ${err instanceof Error ? err.message : String(err)}`,
          'Another connection still uses the slot (a previous run may not have closed yet); the pipeline retries.',
          err,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
