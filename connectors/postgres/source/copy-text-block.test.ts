import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { SourceInfo, TableSchema } from '../../../src/core/change-event.ts';
import { seededIntegers } from '../../../test/fixtures/seeded-random.ts';
import { CopyTextBlock, rowsAtMost } from './copy-text-block.ts';
import { type CopyMessages, CopyOut } from './snapshot-reader.ts';

const schema: TableSchema = {
  table: { schema: 'public', name: 't' },
  columns: [
    { name: 'id', type: 'integer', kind: 'int', isKey: true },
    { name: 'v', type: 'text', kind: 'text', isKey: false },
  ],
  keyColumns: ['id'],
  beforeImage: 'key',
};
const source = (snapshot: SourceInfo['snapshot']): SourceInfo => ({
  connector: 'postgresql',
  db: 'd',
  position: { kind: 'postgres', lsn: '0/10' },
  commitTimeMs: 0,
  snapshot,
});

function message(code: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = code.charCodeAt(0);
  header.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** Lines of varied lengths: some messages' length bytes read as a line end (0x0a) or a tab. */
const LINES = Array.from({ length: 300 }, (_, i) => {
  const v = i % 7 === 0 ? '\\N' : i % 5 === 0 ? 'tab\\there\\nline' : 'x'.repeat((i * 37) % 300);
  return `${i}\t${v}\n`;
});
LINES.push('1\t\n', '2\tab\n');
const DATA = Buffer.concat(LINES.map((l) => message('d', Buffer.from(l))));

/** Deterministic, so a failing seed can be replayed. */
const random = seededIntegers;

class FakeSocket extends EventEmitter {
  pause(): void {}
  resume(): void {}
}

/** Feeds the server's bytes to a raw COPY reader in the given cuts; returns its pieces and what the driver got back. */
async function readRaw(bytes: Buffer, cuts: number[]): Promise<{ pieces: CopyMessages[]; driver: Buffer }> {
  const stream = new FakeSocket();
  const driver: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => driver.push(chunk));
  const copy = new CopyOut<CopyMessages>('copy (select 1) to stdout', null);
  copy.submit({ stream: stream as never, query: () => undefined });
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    // Each read is a buffer of its own, as the socket gives them.
    if (cut > at) stream.emit('data', Buffer.from(bytes.subarray(at, cut)));
    at = cut;
  }
  copy.handleReadyForQuery();
  const pieces: CopyMessages[] = [];
  for await (const piece of copy.rows()) pieces.push(piece);
  return { pieces, driver: Buffer.concat(driver) };
}

describe('COPY reader, raw messages', () => {
  const start = message('H', Buffer.from([0, 0, 2, 0, 0, 0, 0]));
  const notice = message('N', Buffer.from('Snotice\0\0'));
  const tail = Buffer.concat([
    message('c', Buffer.alloc(0)),
    message('C', Buffer.from('COPY 302\0')),
    message('Z', Buffer.from('I')),
  ]);
  const half = DATA.indexOf(message('d', Buffer.from(LINES[150]!)));
  const bytes = Buffer.concat([start, DATA.subarray(0, half), notice, DATA.subarray(half), tail]);

  for (let seed = 1; seed <= 40; seed++) {
    it(`seed ${seed}: reads cut anywhere give every message once, in order, whole; the rest goes back to the driver`, async () => {
      const rnd = random(seed);
      // Cuts at random places, some one byte apart (inside a header, right after it).
      const cuts = [...new Set(Array.from({ length: 5 + rnd(60) }, () => rnd(bytes.length)))].sort((a, b) => a - b);
      if (seed === 1) cuts.splice(0, cuts.length, ...Array.from({ length: bytes.length }, (_, i) => i));
      const { pieces, driver } = await readRaw(bytes, cuts);
      expect(Buffer.concat(pieces.map((p) => p.data)).equals(DATA)).toBe(true);
      expect(pieces.reduce((n, p) => n + p.rows, 0)).toBe(LINES.length);
      expect(driver.equals(tail)).toBe(true);
    });
  }
});

describe('CopyTextBlock', () => {
  it('decodes its messages into the read events the row path makes, markers on the first and last rows', () => {
    const block = new CopyTextBlock(schema, DATA, LINES.length, source('true'));
    block.firstSource = source('first');
    block.lastSource = source('last');
    const events = block.events();
    expect(events).toHaveLength(LINES.length);
    expect(events[0]).toEqual({
      op: 'read',
      table: schema.table,
      schema,
      key: { id: '0' },
      before: null,
      after: { id: '0', v: null },
      source: source('first'),
    });
    expect(events[5]!.after).toEqual({ id: '5', v: 'tab\there\nline' });
    expect(events[8]!.after).toEqual({ id: '8', v: 'x'.repeat(296) });
    expect(events[events.length - 2]!.after).toEqual({ id: '1', v: '' });
    expect(events[events.length - 1]!.source.snapshot).toBe('last');
    expect(events.slice(1, -1).every((e) => e.source.snapshot === 'true')).toBe(true);
    // Decoding leaves the messages as they were (a PostgreSQL target may still send them).
    expect(block.data.equals(DATA)).toBe(true);
  });

  it('cuts messages into parts of at most a batch of rows', () => {
    const parts = [...rowsAtMost(DATA, LINES.length, 64)];
    expect(parts.map((p) => p.rows)).toEqual([64, 64, 64, 64, 46]);
    expect(Buffer.concat(parts.map((p) => p.data)).equals(DATA)).toBe(true);
    const rows = parts.flatMap((p) => new CopyTextBlock(schema, p.data, p.rows, source('true')).events());
    expect(rows.map((e) => e.after!.id)).toEqual(LINES.map((l) => l.split('\t')[0]));
  });
});
