import { z } from 'zod';

export const postgresTargetConfig = z.strictObject({
  type: z.literal('postgres'),
  url: z.string().describe('Connection URL of the target database.'),
});
export type PostgresTargetConfig = z.infer<typeof postgresTargetConfig>;
