import type { OutgoingMessage } from './client.ts';

/**
 * Upper bounds on the bytes Kafka counts against `max.message.bytes`, which applies to a whole record batch (the
 * unit of one partition in one produce request), not to one record.
 */

/** A v2 record batch's header, log overhead included (offset, length, epoch, magic, crc, ... record count). */
export const RECORD_BATCH_OVERHEAD = 61;

/**
 * What a record adds in a batch to its encoded content (record-batch.ts): its length (varint, at most 5 bytes),
 * attributes (1), timestamp delta (1: always 0) and offset delta (varint, at most 5).
 */
export const RECORD_PREFIX_MAX = 12;

/** The most bytes the record of this message can take inside a record batch. */
export function recordSize(m: OutgoingMessage): number {
  return RECORD_PREFIX_MAX + m.content.length;
}

/**
 * Bytes of records one record batch may carry under a topic's `max.message.bytes`. With gzip the broker checks the
 * compressed batch, which for incompressible data may exceed the input by a few bytes per 16 KiB block: the
 * uncompressed size with that margin is a safe bound.
 */
export function recordBatchBudget(maxMessageBytes: number, compressed: boolean): number {
  const margin = compressed ? Math.ceil(maxMessageBytes / 2048) + 64 : 0;
  return maxMessageBytes - RECORD_BATCH_OVERHEAD - margin;
}
