import { z } from 'zod';
import type { TargetTraits } from '../../src/core/connector.ts';
import { envelopeKeys } from '../../src/envelope/config.ts';

export const jsonlTargetConfig = z.strictObject({
  type: z.literal('jsonl'),
  path: z
    .string()
    .describe(
      'File to append change events to, one line per message: {"key": <key>, "value": <envelope>}; `-` for stdout.',
    ),
  ...envelopeKeys,
  tombstones: z
    .boolean()
    .default(false)
    .describe('After each delete, also write a tombstone line {"key": <key>, "value": null}.'),
  server_name: z
    .string()
    .min(1)
    .optional()
    .describe('The source.name field of every event (Debezium topic.prefix); default: the pipeline name.'),
  fsync: z
    .boolean()
    .default(true)
    .describe('fsync the file before a write is acknowledged; off only for throwaway output (a crash may lose lines).'),
});
export type JsonlTargetConfig = z.infer<typeof jsonlTargetConfig>;

/** Cannot keep checkpoints: a pipeline to it keeps them in a file or a PostgreSQL store. */
export const jsonlTargetTraits: TargetTraits = { holdsCheckpoints: false };
