import { z } from 'zod';
import type { TargetTraits } from '../../../src/core/connector.ts';
import { sqlTargetWriteKeys } from '../../sql/target-config.ts';

const tableName = z.string().regex(/^[^.\s]+\.[^.\s]+$/, 'expected schema.table, e.g. public.accounts');

export const postgresTargetConfig = z.strictObject({
  type: z.literal('postgres'),
  url: z
    .string()
    .describe(
      'Connection URL of the target database (postgres://user:password@host:port/db). TLS: add ?sslmode=verify-full&sslrootcert=ca.pem (and sslcert/sslkey for a client certificate); see docs/security.md.',
    ),
  schema: z
    .string()
    .min(1)
    .optional()
    .describe('Target schema for every table (keeps the table name); omitted means the source schema name.'),
  tables: z
    .record(tableName, tableName)
    .optional()
    .describe('Renames: source schema.table -> target schema.table. Takes precedence over schema.'),
  create_tables: z
    .boolean()
    .default(true)
    .describe('Create missing schemas and tables from the source table definition.'),
  alter_tables: z
    .boolean()
    .default(true)
    .describe('Add columns that appear at the source and widen column types the source widened.'),
  ...sqlTargetWriteKeys({ statementMaxRows: 10_000 }),
  copy_min_rows: z
    .number()
    .int()
    .positive()
    .default(1_000)
    .describe(
      'Fewest new rows (inserts, snapshot rows) of one table in a batch that are loaded with COPY instead of an INSERT statement. COPY costs less per row; small runs keep the single statement.',
    ),
  mysql_zero_dates: z
    .enum(['error', 'null'])
    .default('error')
    .describe(
      'MySQL source only: what to do with dates PostgreSQL has no value for (zero dates 0000-00-00, zero months or days, year 0000, invalid days such as 2024-02-30) in DATE, DATETIME and TIMESTAMP columns. error: stop the pipeline naming table, column and key. null: store NULL and log target_mysql_zero_date_nulled once per column and a count per column. Key columns always stop.',
    ),
  connect_timeout_ms: z
    .number()
    .int()
    .positive()
    .default(10_000)
    .describe('Longest wait for a connection to the target database.'),
});
export type PostgresTargetConfig = z.infer<typeof postgresTargetConfig>;

/** Checkpoints are kept in the table `tributary.checkpoints` of the target database, in the transaction of the data (`checkpoints: type: target`). */
export const postgresTargetTraits: TargetTraits = { holdsCheckpoints: true };

/** The target `schema` and `name` of a source table: a rename from `tables`, else `schema` or the source schema. */
export function targetTableName(
  config: Pick<PostgresTargetConfig, 'schema' | 'tables'>,
  t: { schema: string; name: string },
): { schema: string; name: string } {
  const mapped = config.tables?.[`${t.schema}.${t.name}`];
  if (mapped) {
    const dot = mapped.indexOf('.');
    return { schema: mapped.slice(0, dot), name: mapped.slice(dot + 1) };
  }
  return { schema: config.schema ?? t.schema, name: t.name };
}
