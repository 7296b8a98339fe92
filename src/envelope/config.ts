import { z } from 'zod';
import { DEFAULT_UNAVAILABLE_VALUE, type EnvelopeOptions } from './encoder.ts';

/** Envelope keys shared by the targets that write change events as JSON (jsonl, kafka). */
export const envelopeKeys = {
  format: z
    .enum(['debezium', 'native'])
    .default('debezium')
    .describe(
      'Event envelope: `debezium` (Debezium-compatible change events) or `native` (the same fields plus table and column types); see docs/event-format.md.',
    ),
  schemas: z
    .boolean()
    .default(false)
    .describe('Wrap key and value as {"schema": ..., "payload": ...} with Kafka Connect JSON schemas.'),
  unavailable_value_placeholder: z
    .string()
    .default(DEFAULT_UNAVAILABLE_VALUE)
    .describe('Written in place of an unchanged PostgreSQL TOAST value the source did not resend.'),
  transaction_metadata: z
    .boolean()
    .default(false)
    .describe('Add the transaction block (id, total_order, data_collection_order) to streamed change events.'),
};

export function envelopeOptions(
  config: {
    format: 'debezium' | 'native';
    schemas: boolean;
    unavailable_value_placeholder: string;
    transaction_metadata: boolean;
  },
  serverName: string,
  tombstones: boolean,
): EnvelopeOptions {
  return {
    format: config.format,
    schemas: config.schemas,
    unavailableValue: config.unavailable_value_placeholder,
    transactionMetadata: config.transaction_metadata,
    serverName,
    tombstones,
  };
}
