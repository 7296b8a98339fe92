import { z } from 'zod';

export const mysqlTargetConfig = z.strictObject({
  type: z.literal('mysql'),
  url: z.string().describe('Connection URL of the target server.'),
});
export type MysqlTargetConfig = z.infer<typeof mysqlTargetConfig>;
