import { z } from 'zod';
import type { TargetTraits } from '../../../src/core/connector.ts';
import { sqlTargetWriteKeys } from '../../sql/target-config.ts';

const tableName = z.string().regex(/^[^.\s]+\.[^.\s]+$/, 'expected database.table, e.g. shop.accounts');

export const mysqlTargetConfig = z.strictObject({
  type: z.literal('mysql'),
  url: z
    .string()
    .describe(
      'Connection URL of the target server (mysql://user:password@host:port/). TLS: add ?ssl-mode=VERIFY_IDENTITY&ssl-ca=ca.pem (and ssl-cert/ssl-key for a client certificate); see docs/security.md.',
    ),
  database: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Target database for every table (keeps the table name); omitted means the source schema (PostgreSQL) or database (MySQL) name.',
    ),
  tables: z
    .record(tableName, tableName)
    .optional()
    .describe('Renames: source schema.table -> target database.table. Takes precedence over database.'),
  create_tables: z
    .boolean()
    .default(true)
    .describe('Create missing databases and tables from the source table definition (docs/type-mapping.md).'),
  alter_tables: z
    .boolean()
    .default(true)
    .describe('Add columns that appear at the source and widen columns the source widened.'),
  numeric_overflow: z
    .enum(['error', 'text'])
    .default('error')
    .describe(
      'PostgreSQL numeric without precision (or beyond DECIMAL(65,30)): `error` creates DECIMAL(65,30) and stops on a value it cannot hold exactly (or NaN/Infinity); `text` creates a text column holding the exact value.',
    ),
  float_nonfinite: z
    .enum(['error', 'null'])
    .default('error')
    .describe(
      'A float NaN or Infinity, or one inside a float or numeric array (MySQL and JSON cannot store them): `error` stops naming table, column and key; `null` stores NULL for the value and logs a warning.',
    ),
  date_out_of_range: z
    .enum(['error', 'null'])
    .default('error')
    .describe(
      'A PostgreSQL date or timestamp MySQL cannot hold (infinity, BC, year above 9999): `error` stops naming table, column and key; `null` stores NULL and logs a warning.',
    ),
  checkpoint_table: tableName
    .optional()
    .describe(
      "database.table where checkpoints are kept, written in the same transaction as the data. Default: tributary_checkpoints in the target database (`database`, else the url's database), or tributary.tributary_checkpoints when neither names one. A checkpoint found in tributary.tributary_checkpoints (the default of earlier versions) is moved here at start.",
    ),
  ...sqlTargetWriteKeys({ statementMaxRows: 5_000 }),
  statement_max_bytes: z
    .number()
    .int()
    .positive()
    .default(4 * 1024 * 1024)
    .describe("Most bytes of SQL text in one statement; also kept below the server's max_allowed_packet."),
  connect_timeout_ms: z
    .number()
    .int()
    .positive()
    .default(10_000)
    .describe('Longest wait for a connection to the target server.'),
});
export type MysqlTargetConfig = z.infer<typeof mysqlTargetConfig>;

/** Checkpoints are kept in the `checkpoint_table` of the target server, in the transaction of the data (`checkpoints: type: target`). */
export const mysqlTargetTraits: TargetTraits = { holdsCheckpoints: true };
