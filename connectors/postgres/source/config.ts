import { z } from 'zod';
import { parseQualifiedName, TABLE_NAME_HELP } from '../../../src/config/table-name.ts';

const tableName = z.string().refine((t) => parseQualifiedName(t) !== undefined, TABLE_NAME_HELP);
const identifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a lowercase identifier (letters, digits, _), at most 63 characters');

export const postgresSourceConfig = z.strictObject({
  type: z.literal('postgres'),
  url: z
    .string()
    .describe(
      'Connection URL of the source database (postgres://user:password@host:port/db). TLS: add ?sslmode=verify-full&sslrootcert=ca.pem (and sslcert/sslkey for a client certificate); see docs/security.md.',
    ),
  tables: z
    .array(tableName)
    .min(1)
    .optional()
    .describe(
      'Tables to replicate as schema.table (quote a part holding a dot or a space: "my schema"."a.b"); omitted means every table the user can publish.',
    ),
  snapshot: z
    .enum(['initial', 'never', 'initial_only'])
    .default('initial')
    .describe('initial: copy existing rows then stream; never: stream only; initial_only: copy and stop.'),
  slot_name: identifier
    .optional()
    .describe('Logical replication slot to use; default tributary_<pipeline name> with - replaced by _.'),
  publication_name: identifier
    .optional()
    .describe(
      'Publication to use (created when missing); default tributary_<pipeline name>. Insert-only tables go to <publication_name>_insert_only.',
    ),
  keyless_tables: z
    .enum(['refuse', 'insert_only'])
    .default('refuse')
    .describe(
      'Tables without a primary key and with the default replica identity: refuse (stop with a hint to add a key or REPLICA IDENTITY FULL), or insert_only (publish only their inserts and truncates, so the application can still update and delete them).',
    ),
  heartbeat_interval_ms: z
    .number()
    .int()
    .positive()
    .default(10_000)
    .describe(
      'When no transaction arrived for this long, write a logical heartbeat message (pg_logical_emit_message) so an idle slot advances and WAL is released.',
    ),
  status_interval_ms: z
    .number()
    .int()
    .positive()
    .default(5_000)
    .describe('Interval of standby status updates (the last durable LSN only); must stay below wal_sender_timeout.'),
  snapshot_chunk_rows: z
    .number()
    .int()
    .positive()
    .default(100_000)
    .describe(
      'Rows per keyset query (one COPY each) during the initial snapshot; keyless tables are one COPY. Rows stream as they arrive, so memory does not grow with it.',
    ),
  snapshot_parallelism: z
    .number()
    .int()
    .min(1)
    .max(64)
    .default(4)
    .describe(
      'Connections that read the initial snapshot at once, all under one exported snapshot: several tables, and key-range chunks (snapshot_chunk_rows each) of one table, are read in parallel. Lowered to the connections the server has free.',
    ),
  read_ahead_events: z
    .number()
    .int()
    .positive()
    .default(20_000)
    .describe('Most decoded events buffered ahead of the pipeline before reading from the server pauses.'),
  read_ahead_bytes: z
    .number()
    .int()
    .positive()
    .default(32 * 1024 * 1024)
    .describe('Most bytes (approximate) of decoded events buffered ahead of the pipeline before reading pauses.'),
  on_slot_lost: z
    .enum(['fail', 'resnapshot'])
    .default('fail')
    .describe(
      'The slot disappeared although a streaming checkpoint exists: fail (stop for an operator) or resnapshot (recreate the slot and copy every table again, truncating first).',
    ),
  table_check_interval_ms: z
    .number()
    .int()
    .positive()
    .default(10_000)
    .describe(
      'While streaming, look this often for replicated tables dropped at the source (the target table is emptied at that point of the stream) and for new tables the pipeline publishes (tables omitted: every new table; tables listed: a listed table created again), which are added to the publication and copied while streaming.',
    ),
  connect_timeout_ms: z
    .number()
    .int()
    .positive()
    .default(10_000)
    .describe('Longest wait for a connection to the source server.'),
});
export type PostgresSourceConfig = z.infer<typeof postgresSourceConfig>;
/** What a caller may pass before zod applied defaults (tests, programmatic use). */
export type PostgresSourceConfigInput = z.input<typeof postgresSourceConfig>;

/** Default slot/publication name for a pipeline: tributary_<name> with - replaced by _ (lowercase). */
export function defaultReplicationName(pipeline: string): string {
  return `tributary_${pipeline.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}
