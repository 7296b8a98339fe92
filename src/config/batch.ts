import { z } from 'zod';

/**
 * How changes are grouped into batches and how many batches may be in flight. One schema and one set of defaults:
 * the sources' batcher and the pipeline both read these.
 */
export const batchConfig = z.strictObject({
  max_events: z.number().int().positive().default(5000).describe('Most events in one batch.'),
  max_bytes: z
    .number()
    .int()
    .positive()
    .default(8 * 1024 * 1024)
    .describe('Most bytes (approximate) in one batch.'),
  max_wait_ms: z
    .number()
    .int()
    .nonnegative()
    .default(10)
    .describe(
      'Longest a partly filled batch waits for more transactions before it is sent: the latency a quiet source adds; under load batches fill by max_events first.',
    ),
  max_in_flight: z
    .number()
    .int()
    .positive()
    .default(4)
    .describe(
      'Most batches of changes handed to the target and not yet durable (batches of initial-snapshot rows are bounded by max_in_flight_bytes alone).',
    ),
  max_in_flight_bytes: z
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024)
    .describe('Most bytes (approximate) in batches handed to the target and not yet durable.'),
});
export type BatchConfig = z.infer<typeof batchConfig>;

/** The bounds a source's batcher cuts batches by. */
export type BatchOptions = Pick<BatchConfig, 'max_events' | 'max_bytes' | 'max_wait_ms'>;

export const DEFAULT_BATCH_OPTIONS: BatchOptions = batchConfig.parse({});
