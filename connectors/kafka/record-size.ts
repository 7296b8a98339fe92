import type { OutgoingMessage } from './client.ts';

/**
 * Upper bounds on the bytes Kafka counts against `max.message.bytes`, which applies to a whole record batch (the
 * unit of one partition in one produce request), not to one record.
 */

/** A v2 record batch's header, log overhead included (offset, length, epoch, magic, crc, ... record count). */
export const RECORD_BATCH_OVERHEAD = 61;

/** A record's framing at most: length, attributes, timestamp and offset deltas, key/value lengths, header count. */
const RECORD_FRAMING = 36;
/** A header's two length varints at most. */
const HEADER_FRAMING = 10;

/** The most bytes a record of this message can take inside a record batch (exact UTF-8 lengths, widest varints). */
export function recordSize(m: OutgoingMessage): number {
  let bytes = RECORD_FRAMING;
  if (m.key !== null) bytes += Buffer.byteLength(m.key);
  if (m.value !== null) bytes += Buffer.byteLength(m.value);
  for (const k in m.headers) bytes += HEADER_FRAMING + Buffer.byteLength(k) + Buffer.byteLength(m.headers[k]!);
  return bytes;
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
