import { z } from 'zod';

const tableName = z.string().regex(/^[^.\s]+\.[^.\s]+$/, 'expected schema.table, e.g. public.accounts');

export const postgresSourceConfig = z.strictObject({
  type: z.literal('postgres'),
  url: z.string().describe('Connection URL of the source database (postgres://user:password@host:port/db).'),
  tables: z
    .array(tableName)
    .min(1)
    .optional()
    .describe('Tables to replicate as schema.table; omitted means every table the user can publish.'),
  snapshot: z
    .enum(['initial', 'never', 'initial_only'])
    .default('initial')
    .describe('initial: copy existing rows then stream; never: stream only; initial_only: copy and stop.'),
});
export type PostgresSourceConfig = z.infer<typeof postgresSourceConfig>;
