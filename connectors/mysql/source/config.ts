import { z } from 'zod';

export const mysqlSourceConfig = z.strictObject({
  type: z.literal('mysql'),
  url: z.string().describe('Connection URL of the source server (mysql://user:password@host:port/).'),
});
export type MysqlSourceConfig = z.infer<typeof mysqlSourceConfig>;
