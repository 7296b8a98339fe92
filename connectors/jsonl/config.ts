import { z } from 'zod';

export const jsonlTargetConfig = z.strictObject({
  type: z.literal('jsonl'),
  path: z.string().describe('File to append change events to, one JSON envelope per line; `-` for stdout.'),
});
export type JsonlTargetConfig = z.infer<typeof jsonlTargetConfig>;
