/**
 * Kafka's record batch (magic v2), encoded in one buffer: the records straight from their strings, no per-record
 * objects. This is the unit the broker stores and checks against a topic's `max.message.bytes`; the producer
 * (producer.ts) only adds the producer id, epoch and sequence it was given.
 *
 *   baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8 (2), crc uint32 (CRC-32C of the rest),
 *   attributes int16, lastOffsetDelta int32, baseTimestamp int64, maxTimestamp int64, producerId int64,
 *   producerEpoch int16, baseSequence int32, recordCount int32, records
 *   record: length varint, attributes int8, timestampDelta varlong, offsetDelta varint, key, value (varint length
 *   then bytes, -1 for null), header count varint, headers (key and value the same way)
 */
import { gzipSync } from 'node:zlib';
import { RECORD_BATCH_OVERHEAD } from './record-size.ts';

export interface BatchRecord {
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

export interface BatchProducer {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
}

export type BatchCompression = 'none' | 'gzip';

/** The compression codec in the low three bits of the batch attributes. */
const CODEC: Record<BatchCompression, number> = { none: 0, gzip: 1 };

/** Where the CRC-covered part starts: after baseOffset, batchLength, partitionLeaderEpoch, magic and crc. */
const CRC_START = 21;

/**
 * Encodes `records` as one record batch. `sizes[i]` is an upper bound of record i's encoded size (record-size.ts):
 * the buffer is allocated once from their sum.
 */
export function encodeRecordBatch(
  records: readonly BatchRecord[],
  sizes: readonly number[],
  producer: BatchProducer,
  timestampMs: number,
  compression: BatchCompression = 'none',
): Buffer {
  let capacity = RECORD_BATCH_OVERHEAD;
  for (let i = 0; i < sizes.length; i++) capacity += sizes[i]!;
  const buf = Buffer.allocUnsafe(capacity);
  let off = RECORD_BATCH_OVERHEAD;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    // The record's length comes first but is known only at its end: room for the widest it can be, moved up after.
    const lengthWidth = varintSize(sizes[i]!);
    const start = off + lengthWidth;
    let p = start;
    buf[p++] = 0; // attributes
    buf[p++] = 0; // timestampDelta: every record carries the batch's timestamp
    p = writeVarint(buf, p, i);
    p = writeString(buf, p, r.key);
    p = writeString(buf, p, r.value);
    const headers = r.headers;
    let count = 0;
    for (const _ in headers) count++;
    p = writeVarint(buf, p, count);
    for (const name in headers) {
      p = writeString(buf, p, name);
      p = writeString(buf, p, headers[name]!);
    }
    const length = p - start;
    const width = varintSize(length);
    if (width !== lengthWidth) buf.copyWithin(off + width, start, p);
    writeVarint(buf, off, length);
    off += width + length;
  }
  if (compression !== 'none') {
    // The records, compressed as one block, follow the same header.
    const packed = gzipSync(buf.subarray(RECORD_BATCH_OVERHEAD, off));
    const out = Buffer.allocUnsafe(RECORD_BATCH_OVERHEAD + packed.length);
    packed.copy(out, RECORD_BATCH_OVERHEAD);
    return finishBatch(out, out.length, records.length, producer, timestampMs, CODEC[compression]);
  }
  return finishBatch(buf, off, records.length, producer, timestampMs, 0);
}

/** Writes the batch header in front of the records (buf[61..end)) and returns the batch. */
function finishBatch(
  buf: Buffer,
  end: number,
  count: number,
  producer: BatchProducer,
  timestampMs: number,
  attributes: number,
): Buffer {
  const off = end;
  buf.writeBigInt64BE(0n, 0); // baseOffset: assigned by the broker
  buf.writeInt32BE(off - 12, 8);
  buf.writeInt32BE(-1, 12); // partitionLeaderEpoch: set by the broker
  buf.writeInt8(2, 16);
  buf.writeInt16BE(attributes, 21); // compression codec; create time, not transactional
  buf.writeInt32BE(count - 1, 23);
  const ts = BigInt(timestampMs);
  buf.writeBigInt64BE(ts, 27);
  buf.writeBigInt64BE(ts, 35);
  buf.writeBigInt64BE(producer.producerId, 43);
  buf.writeInt16BE(producer.producerEpoch, 51);
  buf.writeInt32BE(producer.baseSequence, 53);
  buf.writeInt32BE(count, 57);
  buf.writeUInt32BE(crc32c(buf, CRC_START, off), 17);
  return buf.subarray(0, off);
}

/** Bytes of a zigzag varint. */
export function varintSize(value: number): number {
  let z = ((value << 1) ^ (value >> 31)) >>> 0;
  let n = 1;
  while (z > 0x7f) {
    n++;
    z >>>= 7;
  }
  return n;
}

function writeVarint(buf: Buffer, off: number, value: number): number {
  let z = ((value << 1) ^ (value >> 31)) >>> 0;
  while (z > 0x7f) {
    buf[off++] = (z & 0x7f) | 0x80;
    z >>>= 7;
  }
  buf[off++] = z;
  return off;
}

/** A varint length and the UTF-8 bytes; -1 for null. The length's room is that of the widest encoding, moved up after. */
function writeString(buf: Buffer, off: number, s: string | null): number {
  if (s === null) {
    buf[off] = 1; // zigzag(-1)
    return off + 1;
  }
  const reserved = varintSize(s.length * 3);
  const n = buf.write(s, off + reserved);
  const width = varintSize(n);
  if (width !== reserved) buf.copyWithin(off + width, off + reserved, off + reserved + n);
  writeVarint(buf, off, n);
  return off + width + n;
}

/** CRC-32C (Castagnoli), slicing by 8, as the record batch's crc field needs. */
export function crc32c(buf: Uint8Array, start: number, end: number): number {
  const t = CRC32C_TABLE;
  let crc = -1;
  let i = start;
  const stop = end - ((end - start) & 7);
  for (; i < stop; i += 8) {
    const a = (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)) ^ crc;
    crc =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + buf[i + 4]!]! ^
      t[512 + buf[i + 5]!]! ^
      t[256 + buf[i + 6]!]! ^
      t[buf[i + 7]!]!;
  }
  for (; i < end; i++) crc = t[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

const CRC32C_TABLE = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();
