import { z } from 'zod';
import type { DebeziumModes } from './debezium-values.ts';
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
  // Debezium's own options, under their own names and values (format: debezium).
  'decimal.handling.mode': z
    .enum(['precise', 'string', 'double'])
    .default('precise')
    .describe(
      "Debezium's decimal.handling.mode: `precise` (base64 of the unscaled integer, scale in the schema; unconstrained numeric as {scale, value}), `string` (the exact decimal text) or `double` (may round). Also applies to money.",
    ),
  'time.precision.mode': z
    .enum(['adaptive', 'adaptive_time_microseconds', 'connect', 'isostring'])
    .default('adaptive')
    .describe(
      "Debezium's time.precision.mode: `adaptive` (dates as epoch days, times and timestamps in ms or µs by the column's precision), `adaptive_time_microseconds` (times always µs), `connect` (Kafka Connect's Date/Time/Timestamp, ms) or `isostring` (ISO-8601 text).",
    ),
  'binary.handling.mode': z
    .enum(['bytes', 'base64', 'base64-url-safe', 'hex'])
    .default('bytes')
    .describe(
      "Debezium's binary.handling.mode for bytea / BLOB columns: `bytes` (base64 in JSON, bytes schema), `base64`, `base64-url-safe` or `hex` (strings).",
    ),
  'interval.handling.mode': z
    .enum(['numeric', 'string'])
    .default('numeric')
    .describe(
      "Debezium's interval.handling.mode: `numeric` (microseconds, a month counted as 30.4375 days) or `string` (ISO-8601 duration such as P1Y2M3DT4H5M6.789S).",
    ),
  'bigint.unsigned.handling.mode': z
    .enum(['long', 'precise'])
    .default('long')
    .describe(
      "Debezium's bigint.unsigned.handling.mode for MySQL BIGINT UNSIGNED: `long` (int64; values above 2^63-1 are written exactly, where Debezium wraps them negative) or `precise` (a Decimal with scale 0).",
    ),
};

export function envelopeOptions(
  config: {
    format: 'debezium' | 'native';
    schemas: boolean;
    unavailable_value_placeholder: string;
    transaction_metadata: boolean;
    'decimal.handling.mode': DebeziumModes['decimal'];
    'time.precision.mode': DebeziumModes['time'];
    'binary.handling.mode': DebeziumModes['binary'];
    'interval.handling.mode': DebeziumModes['interval'];
    'bigint.unsigned.handling.mode': DebeziumModes['bigintUnsigned'];
  },
  serverName: string,
  tombstones: boolean,
): EnvelopeOptions {
  return {
    format: config.format,
    schemas: config.schemas,
    unavailableValue: config.unavailable_value_placeholder,
    transactionMetadata: config.transaction_metadata,
    modes: {
      decimal: config['decimal.handling.mode'],
      time: config['time.precision.mode'],
      binary: config['binary.handling.mode'],
      interval: config['interval.handling.mode'],
      bigintUnsigned: config['bigint.unsigned.handling.mode'],
    },
    serverName,
    tombstones,
  };
}
