import { describe, expect, it } from 'vitest';
import { crc32c, encodeRecordBatch, encodeRecordContent } from './record-batch.ts';
import { type RecordText, readRecordBatch, readRecordContent } from './record-reader.test-support.ts';

const records: RecordText[] = [
  { key: '{"id":1}', value: '{"v":"a"}', headers: { 'tributary.lsn': '0/16B3748' } },
  { key: null, value: null, headers: {} },
  // Lengths on both sides of the one-byte varint limit (63 and 64 bytes), and multi-byte UTF-8.
  { key: 'k'.repeat(63), value: 'v'.repeat(64), headers: { ä: 'ü'.repeat(40) } },
  { key: '{"id":"日本"}', value: 'x'.repeat(5000), headers: { a: '', b: 'c' } },
];
const contents = () => records.map((r) => ({ content: encodeRecordContent(r.key, r.value, r.headers) }));

describe('record batch', () => {
  it('CRC-32C equals the standard check value and its bit-by-bit definition', () => {
    expect(crc32c(Buffer.from('123456789'), 0, 9)).toBe(0xe3069283);
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

  it('a record content holds key, value and headers exactly', () => {
    for (const r of records) expect(readRecordContent(encodeRecordContent(r.key, r.value, r.headers))).toEqual(r);
  });

  it('encodes every record behind a header the broker checks', () => {
    const batch = encodeRecordBatch(
      contents(),
      { producerId: 42n, producerEpoch: 3, baseSequence: 7 },
      1_700_000_000_000,
    );
    const { header, records: got, end } = readRecordBatch(batch);
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
    expect(got.map((r) => [r.attributes, r.timestampDelta, r.offsetDelta])).toEqual([
      [0, 0, 0],
      [0, 0, 1],
      [0, 0, 2],
      [0, 0, 3],
    ]);
    expect(got.map(({ key, value, headers }) => ({ key, value, headers }))).toEqual(records);
  });

  it('with gzip the records are one compressed block behind the same header', () => {
    const batch = encodeRecordBatch(contents(), { producerId: 1n, producerEpoch: 0, baseSequence: 0 }, 0, 'gzip');
    const { header, records: got } = readRecordBatch(batch);
    expect(header.attributes).toBe(1);
    expect(header.crc).toBe(crc32c(batch, 21, batch.length));
    expect(got.map(({ key, value, headers }) => ({ key, value, headers }))).toEqual(records);
  });
});
