/**
 * Kafka's record batch (magic v2), encoded by us: the unit the broker stores and checks against a topic's
 * `max.message.bytes`. The producer (producer.ts) only adds the producer id, epoch and sequence it was given.
 *
 *   baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8 (2), crc uint32 (CRC-32C of the rest),
 *   attributes int16, lastOffsetDelta int32, baseTimestamp int64, maxTimestamp int64, producerId int64,
 *   producerEpoch int16, baseSequence int32, recordCount int32, records
 *   record: length varint, attributes int8, timestampDelta varlong, offsetDelta varint, then its content:
 *   key, value (varint length then bytes, -1 for null), header count varint, headers (key and value the same way)
 *
 * A record's content does not depend on its place in a batch, so it is encoded once, when the message is made
 * (`encodeRecordContent`), into shared slabs outside the JavaScript heap; a batch copies it behind a short prefix.
 */
import { gzipSync } from 'node:zlib';
import { RECORD_BATCH_OVERHEAD, RECORD_PREFIX_MAX } from './record-size.ts';

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

/** Contents are cut from slabs of this size (a larger one gets a buffer of its own). */
const SLAB_BYTES = 256 * 1024;
let slab = Buffer.allocUnsafe(0);
let slabUsed = 0;

/** Encodes a record's content: key, value (null: a tombstone) and headers. */
export function encodeRecordContent(
  key: string | null,
  value: string | null,
  headers: Readonly<Record<string, string>>,
): Buffer {
  // Room for the widest encoding: 3 UTF-8 bytes per UTF-16 unit, 5 bytes per varint.
  let bound = 15 + 3 * ((key?.length ?? 0) + (value?.length ?? 0));
  for (const name in headers) bound += 10 + 3 * (name.length + headers[name]!.length);
  if (slab.length - slabUsed < bound) {
    slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, bound));
    slabUsed = 0;
  }
  const start = slabUsed;
  let p = writeString(slab, start, key);
  p = writeString(slab, p, value);
  let count = 0;
  for (const _ in headers) count++;
  p = writeVarint(slab, p, count);
  for (const name in headers) {
    p = writeString(slab, p, name);
    p = writeString(slab, p, headers[name]!);
  }
  slabUsed = p;
  return slab.subarray(start, p);
}

/** Encodes records (their contents, in order) as one record batch. */
export function encodeRecordBatch(
  records: readonly { content: Buffer }[],
  producer: BatchProducer,
  timestampMs: number,
  compression: BatchCompression = 'none',
): Buffer {
  let capacity = RECORD_BATCH_OVERHEAD;
  for (let i = 0; i < records.length; i++) capacity += RECORD_PREFIX_MAX + records[i]!.content.length;
  const buf = Buffer.allocUnsafe(capacity);
  let off = RECORD_BATCH_OVERHEAD;
  for (let i = 0; i < records.length; i++) {
    const content = records[i]!.content;
    const length = 2 + varintSize(i) + content.length;
    off = writeVarint(buf, off, length);
    buf[off++] = 0; // attributes
    buf[off++] = 0; // timestampDelta: every record carries the batch's timestamp
    off = writeVarint(buf, off, i);
    off += content.copy(buf, off);
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
  buf.writeBigInt64BE(0n, 0); // baseOffset: assigned by the broker
  buf.writeInt32BE(end - 12, 8);
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
  buf.writeUInt32BE(crc32c(buf, CRC_START, end), 17);
  return buf.subarray(0, end);
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

/** A varint length and the UTF-8 bytes; -1 for null. */
function writeString(buf: Buffer, off: number, s: string | null): number {
  if (s === null) {
    buf[off] = 1; // zigzag(-1)
    return off + 1;
  }
  const length = s.length;
  if (length < 64) {
    // Short text (header names and values, most keys), nearly always ASCII: copied here, cheaper than a call into
    // the runtime; anything else takes the general path.
    let p = off + 1;
    let i = 0;
    for (; i < length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[p++] = c;
    }
    if (i === length) {
      buf[off] = length << 1; // zigzag, one byte below 64
      return p;
    }
  }
  // The length's room is that of the widest encoding, moved up after.
  const reserved = varintSize(length * 3);
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
