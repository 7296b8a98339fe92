import { describe, expect, it } from 'vitest';
import type { Row } from '../../../src/core/change-event.ts';
import { CopyTextError, CopyTextParser, unescapeField } from './copy-text.ts';

function parseAll(columns: string[], pieces: Buffer[], linePrefix = 0): { rows: Row[]; chars: number } {
  const parser = new CopyTextParser(columns, linePrefix);
  const rows: Row[] = [];
  let chars = 0;
  for (const piece of pieces) {
    const out = parser.push(piece);
    rows.push(...out.rows);
    chars += out.chars;
  }
  parser.end();
  return { rows, chars };
}

const unesc = (s: string) => unescapeField(s, 0, s.length);

describe('COPY text parser', () => {
  it('unescapes every backslash sequence', () => {
    expect(unesc('a\\tb\\nc\\rd\\\\e')).toBe('a\tb\nc\rd\\e');
    expect(unesc('\\b\\f\\v')).toBe('\b\f\v');
    expect(unesc('\\N')).toBe('N'); // as part of a longer field, or unescaped alone: the letter
    expect(unesc('x\\Ny')).toBe('xNy');
    expect(unesc('\\101\\1\\12')).toBe('A\u0001\n');
    expect(unesc('\\x41\\x4a\\x4')).toBe('AJ\u0004');
    expect(unesc('\\xg')).toBe('xg');
    expect(unesc('\\303\\251t\\xc3\\xa9')).toBe('été');
    expect(unesc('ü\\\\ö')).toBe('ü\\ö');
    expect(() => unesc('a\\')).toThrow(CopyTextError);
  });

  it('parses NULL, empty strings and escaped fields into rows', () => {
    const text = 'a\t\\N\t\n\\\\N\t\\\\\t\\t\n\t\t\\N\n';
    const { rows, chars } = parseAll(['x', 'y', 'z'], [Buffer.from(text)]);
    expect(rows).toEqual([
      { x: 'a', y: null, z: '' },
      { x: '\\N', y: '\\', z: '\t' },
      { x: '', y: '', z: null },
    ]);
    expect(chars).toBe(text.length);
    expect(Object.keys(rows[0]!)).toEqual(['x', 'y', 'z']);
  });

  it('gives the same rows however the input is split (rows and UTF-8 characters across pieces)', () => {
    const text = '1\tünïcødé 😀\t\\N\n2\ttab\\there\t{"a\\\\"b",NULL}\n3\t\t\\\\x00\n';
    const whole = Buffer.from(text);
    const expected = parseAll(['id', 't', 'u'], [whole]);
    expect(expected.rows).toEqual([
      { id: '1', t: 'ünïcødé 😀', u: null },
      { id: '2', t: 'tab\there', u: '{"a\\"b",NULL}' },
      { id: '3', t: '', u: '\\x00' },
    ]);
    for (let i = 0; i <= whole.length; i++) {
      for (const j of [i, Math.min(whole.length, i + 1), Math.min(whole.length, i + 7)]) {
        const pieces = [whole.subarray(0, i), whole.subarray(i, j), whole.subarray(j)];
        expect(parseAll(['id', 't', 'u'], pieces).rows).toEqual(expected.rows);
      }
    }
    // One byte at a time.
    const bytes = [...whole].map((b) => Buffer.from([b]));
    expect(parseAll(['id', 't', 'u'], bytes).rows).toEqual(expected.rows);
  });

  it('skips a fixed prefix of every line (the blanked protocol header)', () => {
    const plain = parseAll(['a', 'b'], [Buffer.from('     1\tx\n     2\t\\N\n')], 5).rows;
    expect(plain).toEqual([
      { a: '1', b: 'x' },
      { a: '2', b: null },
    ]);
    expect(() => parseAll(['a'], [Buffer.from('  1\n')], 5)).toThrow(/not 1 fields/);
  });

  it('tables without columns give one empty row per line', () => {
    expect(parseAll([], [Buffer.from('\n\n')]).rows).toEqual([{}, {}]);
  });

  it('rejects rows with the wrong number of fields and a truncated last row', () => {
    expect(() => parseAll(['a', 'b'], [Buffer.from('1\n')])).toThrow(/not 2 fields/);
    expect(() => parseAll(['a', 'b'], [Buffer.from('1\t2\t3\n')])).toThrow(/not 2 fields/);
    expect(() => parseAll(['a', 'b'], [Buffer.from('1\\t\t2\t3\n')])).toThrow(/not 2 fields/);
    expect(() => parseAll([], [Buffer.from('x\n')])).toThrow(/not 0 fields/);
    expect(() => parseAll(['a', 'b'], [Buffer.from('1\t2\n3\t')])).toThrow(/ended inside a row/);
  });
});
