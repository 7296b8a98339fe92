import { z } from 'zod';
import type { RenamedConfigKeys } from '../../../src/core/connector.ts';

const tableName = z.string().regex(/^[^.\s]+\.[^.\s]+$/, 'expected database.table, e.g. shop.orders');

export const mysqlSourceConfig = z.strictObject({
  type: z.literal('mysql'),
  url: z
    .string()
    .describe(
      'Connection URL of the source server (mysql://user:password@host:port/). TLS: add ?ssl-mode=VERIFY_IDENTITY&ssl-ca=ca.pem (and ssl-cert/ssl-key for a client certificate); see docs/security.md.',
    ),
  databases: z
    .array(z.string().min(1))
    .min(1)
    .optional()
    .describe('Databases to replicate entirely; omitted (and no tables) means every non-system database.'),
  tables: z
    .array(tableName)
    .min(1)
    .optional()
    .describe('Tables to replicate as database.table (in addition to the databases list).'),
  snapshot: z
    .enum(['initial', 'never', 'initial_only'])
    .default('initial')
    .describe('initial: copy existing rows then stream; never: stream only; initial_only: copy and stop.'),
  snapshot_chunk_rows: z
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(5000)
    .describe('Rows read per keyset query during the snapshot (primary-key order).'),
  snapshot_parallelism: z
    .number()
    .int()
    .min(1)
    .max(64)
    .default(1)
    .describe(
      'Connections that read the initial snapshot at once (one more plans the chunks), all in transactions that see the same binlog position: several tables, and key-range chunks (snapshot_chunk_rows each) of one table, are read in parallel. Their transactions start under the global read lock (RELOAD privilege; held for the milliseconds the starts take), except on MySQL with GTIDs when no commit comes while they start. Where one position for several connections cannot be had (no RELOAD privilege, and on MySQL commits keep coming), or the server has too few connections free, the snapshot is read on one connection and the reason logged.',
    ),
  signal_table: tableName
    .optional()
    .describe(
      'database.table where `tributary snapshot` writes re-snapshot requests (created when missing); the pipeline ' +
        'reads them from the binlog, in order with its changes, and never replicates the table. The user of the ' +
        'command needs INSERT on it (and CREATE the first time); see docs/snapshots.md.',
    ),
  server_id: z
    .number()
    .int()
    .min(1)
    .max(4294967295)
    .optional()
    .describe(
      'Replica server id used by the binlog reader; must be unique among all replicas and differ from the ' +
        "server's own server_id. Default: derived from a hash of the pipeline name.",
    ),
  heartbeat_interval_ms: z
    .number()
    .int()
    .min(100)
    .default(10_000)
    .describe(
      'While no replicated change arrives but the binlog position moves (writes to other tables), emit an empty ' +
        'batch with a checkpoint at most this often, so checkpoints advance.',
    ),
  resnapshot_on_purged_binlog: z
    .boolean()
    .default(false)
    .describe(
      'When the checkpoint position is no longer in the binlog (purged), take a new snapshot instead of stopping ' +
        'with an error.',
    ),
  resume_by_gtid: z
    .boolean()
    .default(true)
    .describe('Resume from the checkpoint GTID set when it has one (survives failover); else binlog file and offset.'),
  connect_timeout_ms: z.number().int().min(100).default(10_000).describe('Timeout for opening a connection.'),
  read_ahead_events: z
    .number()
    .int()
    .min(100)
    .default(20_000)
    .describe(
      'Most decoded binlog rows buffered ahead of the pipeline before reading from the server pauses (backpressure).',
    ),
  read_ahead_bytes: z
    .number()
    .int()
    .min(1024 * 1024)
    .default(32 * 1024 * 1024)
    .describe(
      'Most bytes (approximate) of decoded changes buffered ahead of the pipeline before reading pauses (backpressure).',
    ),
});
export type MysqlSourceConfig = z.infer<typeof mysqlSourceConfig>;

/** The read-ahead bounds were named read_buffer_* here while the PostgreSQL source named the same bounds read_ahead_*. */
export const mysqlSourceRenamedKeys: RenamedConfigKeys = {
  read_buffer_events: 'read_ahead_events',
  read_buffer_bytes: 'read_ahead_bytes',
};
export type MysqlSourceConfigInput = z.input<typeof mysqlSourceConfig>;
