import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { type BatchRecord, crc32c, encodeRecordBatch } from './record-batch.ts';
import { recordSize } from './record-size.ts';

/** Reads a record batch back field by field, as the broker's DefaultRecordBatch does. */
function readBatch(buf: Buffer) {
  let off = 0;
  const varint = () => {
    let shift = 0;
    let raw = 0;
    for (;;) {
      const b = buf[off++]!;
      raw |= (b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7;
    }
    return (raw >>> 1) ^ -(raw & 1);
  };
  const bytes = () => {
    const n = varint();
    if (n < 0) return null;
    const s = buf.toString('utf8', off, off + n);
    off += n;
    return s;
  };
  const header = {
    baseOffset: buf.readBigInt64BE(0),
    length: buf.readInt32BE(8),
    magic: buf.readInt8(16),
    crc: buf.readUInt32BE(17),
    attributes: buf.readInt16BE(21),
    lastOffsetDelta: buf.readInt32BE(23),
    producerId: buf.readBigInt64BE(43),
    producerEpoch: buf.readInt16BE(51),
    baseSequence: buf.readInt32BE(53),
    count: buf.readInt32BE(57),
  };
  if (header.attributes & 7) buf = Buffer.concat([buf.subarray(0, 61), gunzipSync(buf.subarray(61))]);
  off = 61;
  const records = [];
  for (let i = 0; i < header.count; i++) {
    const length = varint();
    const start = off;
    const attributes = buf[off++];
    const timestampDelta = varint();
    const offsetDelta = varint();
    const key = bytes();
    const value = bytes();
    const headers: Record<string, string | null> = {};
    const n = varint();
    for (let h = 0; h < n; h++) headers[bytes()!] = bytes();
    expect(off - start, `record ${i} length`).toBe(length);
    records.push({ attributes, timestampDelta, offsetDelta, key, value, headers });
  }
  return { header, records, end: off };
}

const records: BatchRecord[] = [
  { key: '{"id":1}', value: '{"v":"a"}', headers: { 'tributary.lsn': '0/16B3748' } },
  { key: null, value: null, headers: {} },
  // Lengths on both sides of the one-byte varint limit (63 and 64 bytes), and multi-byte UTF-8.
  { key: 'k'.repeat(63), value: 'v'.repeat(64), headers: { ä: 'ü'.repeat(40) } },
  { key: '{"id":"日本"}', value: 'x'.repeat(5000), headers: { a: '', b: 'c' } },
];
const sizes = records.map((r) => recordSize({ topic: 't', partition: 0, ...r }));

describe('record batch', () => {
  it('CRC-32C equals the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'), 0, 9)).toBe(0xe3069283);
    // Every length and alignment against the plain bit-by-bit definition.
    const bitwise = (b: Uint8Array) => {
      let c = -1;
      for (const byte of b) {
        c ^= byte;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return (c ^ -1) >>> 0;
    };
    const data = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7919) & 0xff));
    for (const [start, end] of [
      [0, 0],
      [0, 1],
      [3, 20],
      [5, 300],
      [0, 299],
    ] as const)
      expect(crc32c(data, start, end)).toBe(bitwise(data.subarray(start, end)));
  });

  it('encodes every record, its key, value and headers, behind a header the broker checks', () => {
    const batch = encodeRecordBatch(
      records,
      sizes,
      { producerId: 42n, producerEpoch: 3, baseSequence: 7 },
      1_700_000_000_000,
    );
    const { header, records: got, end } = readBatch(batch);
    expect(end).toBe(batch.length);
    expect(header).toMatchObject({
      baseOffset: 0n,
      length: batch.length - 12,
      magic: 2,
      attributes: 0,
      lastOffsetDelta: 3,
      producerId: 42n,
      producerEpoch: 3,
      baseSequence: 7,
      count: 4,
    });
    expect(header.crc).toBe(crc32c(batch, 21, batch.length));
    expect(got.map((r) => r.offsetDelta)).toEqual([0, 1, 2, 3]);
    expect(got.map(({ key, value, headers }) => ({ key, value, headers }))).toEqual(records);
  });

  it('with gzip the records are one compressed block behind the same header', () => {
    const batch = encodeRecordBatch(records, sizes, { producerId: 1n, producerEpoch: 0, baseSequence: 0 }, 0, 'gzip');
    const { header, records: got } = readBatch(batch);
    expect(header.attributes).toBe(1);
    expect(header.crc).toBe(crc32c(batch, 21, batch.length));
    expect(got.map(({ key, value, headers }) => ({ key, value, headers }))).toEqual(records);
  });
});
