/**
 * `tributary snapshot` for a PostgreSQL source: writes a re-snapshot request into the WAL as a logical message
 * (prefix REQUEST_PREFIX). The pipeline reads it from its own stream, in order, and records it in its checkpoint, so
 * a request made while the pipeline is stopped is carried out when it starts; no signal table is needed.
 */
import type { ConnectorContext } from '../../../src/core/connector-context.ts';
import { TributaryError } from '../../../src/errors.ts';
import { quoteTable } from '../identifiers.ts';
import { connect } from './catalog.ts';
import { type PostgresSourceConfig, type PostgresSourceConfigInput, postgresSourceConfig } from './config.ts';
import { REQUEST_PREFIX } from './incremental-snapshot.ts';
import { replicationNames } from './replication-names.ts';

export interface SnapshotRequest {
  /** `schema.table` (or `table` in schema public). */
  table: string;
  /** An SQL condition on the table's columns: only matching rows are copied (and nothing is emptied first). */
  where?: string;
}

/** Checks the request against the source (the table is published, the condition runs) and writes it. */
export async function requestPostgresSnapshot(
  config: PostgresSourceConfig | PostgresSourceConfigInput,
  ctx: ConnectorContext,
  request: SnapshotRequest,
): Promise<string> {
  const cfg = postgresSourceConfig.parse(config);
  const names = replicationNames(cfg, ctx.pipeline);
  const table = request.table.includes('.') ? request.table : `public.${request.table}`;
  const dot = table.indexOf('.');
  const ref = { schema: table.slice(0, dot), name: table.slice(dot + 1) };
  const client = await connect(cfg);
  try {
    const published = await client.query(
      'select 1 from pg_publication_tables where pubname = any($1) and schemaname = $2 and tablename = $3',
      [[names.publication, names.insertOnlyPublication], ref.schema, ref.name],
    );
    if (published.rows.length === 0)
      throw new TributaryError('operator', `pipeline ${ctx.pipeline} does not replicate ${table}`, {
        hint: `Name a table of its publication ${names.publication} (schema.table), or add it to tables and restart the pipeline: an added table is copied on the next start.`,
      });
    if (request.where) {
      const keyed = await client.query(
        `select 1 from pg_index i join pg_class c on c.oid = i.indrelid
          where c.oid = $1::regclass and (i.indisprimary or i.indisreplident) and c.relreplident in ('d', 'i', 'f')`,
        [quoteTable(ref)],
      );
      if (keyed.rows.length === 0)
        throw new TributaryError('operator', `${table} has no primary key: --where cannot be used`, {
          hint: 'A table without a key is copied whole (its target table is emptied first); run the command without --where.',
        });
      try {
        await client.query(`select 1 from ${quoteTable(ref)} where (${request.where}) limit 0`);
      } catch (err) {
        throw new TributaryError('operator', `--where does not run on ${table}: ${(err as Error).message}`, {
          hint: 'Give an SQL condition on the columns of the table, e.g. --where "created_at >= \'2024-01-01\'".',
        });
      }
    }
    const content = JSON.stringify({ slot: names.slot, table, ...(request.where ? { where: request.where } : {}) });
    const r = await client.query<{ lsn: string }>('select pg_logical_emit_message(true, $1, $2)::text as lsn', [
      REQUEST_PREFIX,
      content,
    ]);
    return `re-snapshot of ${table}${request.where ? ` where ${request.where}` : ''} requested at WAL position ${r.rows[0]!.lsn}; pipeline ${ctx.pipeline} starts it when its stream reaches that position`;
  } finally {
    await client.end().catch(() => undefined);
  }
}
