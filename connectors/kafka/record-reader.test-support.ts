import { gunzipSync } from 'node:zlib';

/**
 * Reads records back field by field, as the broker's DefaultRecordBatch does: for tests of what the target encoded
 * (the in-memory cluster keeps messages as text through it).
 */

export interface RecordText {
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

class Cursor {
  constructor(
    readonly buf: Buffer,
    public off = 0,
  ) {}
  varint(): number {
    let shift = 0;
    let raw = 0;
    for (;;) {
      const b = this.buf[this.off++]!;
      raw |= (b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7;
    }
    return (raw >>> 1) ^ -(raw & 1);
  }
  text(): string | null {
    const n = this.varint();
    if (n < 0) return null;
    const s = this.buf.toString('utf8', this.off, this.off + n);
    this.off += n;
    return s;
  }
  content(): RecordText {
    const key = this.text();
    const value = this.text();
    const headers: Record<string, string> = {};
    const n = this.varint();
    for (let h = 0; h < n; h++) headers[this.text()!] = this.text()!;
    return { key, value, headers };
  }
}

/** A record's content (key, value, headers) as encodeRecordContent wrote it. */
export function readRecordContent(content: Buffer): RecordText {
  const c = new Cursor(content);
  const out = c.content();
  if (c.off !== content.length) throw new Error(`record content has ${content.length - c.off} bytes left over`);
  return out;
}

/** A whole record batch: its header fields and records, each record's declared length checked. */
export function readRecordBatch(batch: Buffer) {
  const header = {
    baseOffset: batch.readBigInt64BE(0),
    length: batch.readInt32BE(8),
    magic: batch.readInt8(16),
    crc: batch.readUInt32BE(17),
    attributes: batch.readInt16BE(21),
    lastOffsetDelta: batch.readInt32BE(23),
    producerId: batch.readBigInt64BE(43),
    producerEpoch: batch.readInt16BE(51),
    baseSequence: batch.readInt32BE(53),
    count: batch.readInt32BE(57),
  };
  const body = header.attributes & 7 ? Buffer.concat([batch.subarray(0, 61), gunzipSync(batch.subarray(61))]) : batch;
  const c = new Cursor(body, 61);
  const records = [];
  for (let i = 0; i < header.count; i++) {
    const length = c.varint();
    const start = c.off;
    const attributes = body[c.off++];
    const timestampDelta = c.varint();
    const offsetDelta = c.varint();
    const content = c.content();
    if (c.off - start !== length) throw new Error(`record ${i} is ${c.off - start} bytes, its length says ${length}`);
    records.push({ attributes, timestampDelta, offsetDelta, ...content });
  }
  return { header, records, end: c.off, size: body.length };
}
