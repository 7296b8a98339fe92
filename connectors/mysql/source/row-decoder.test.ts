import { describe, expect, it } from 'vitest';
import { RowDecoder } from './row-decoder.ts';
import { binlogValue, type MysqlColumn } from './values.ts';

/** A quote, a newline and a template placeholder. */
const NASTY = ["it's\n$", '{x}'].join('');

const COLUMNS: MysqlColumn[] = [
  { name: 'id', type: 'bigint', kind: 'int' },
  { name: 'u', type: 'bigint unsigned', kind: 'int' },
  { name: 'y', type: 'year', kind: 'int' },
  { name: 'd', type: 'decimal(10,2)', kind: 'decimal' },
  { name: 'f', type: 'float', kind: 'float' },
  { name: 'g', type: 'double', kind: 'float' },
  { name: 'bits', type: 'bit(10)', kind: 'bits' },
  { name: 'b', type: 'varbinary(10)', kind: 'bytes' },
  { name: 'ts', type: 'timestamp(3)', kind: 'timestamptz' },
  { name: 'dt', type: 'datetime', kind: 'timestamp' },
  { name: 'j', type: 'longtext', kind: 'json' },
  { name: 'e', type: "enum('a','b')", kind: 'enum' },
  { name: 's', type: "set('a','b')", kind: 'set' },
  { name: 'txt', type: 'varchar(20)', kind: 'text' },
  // Names that must not break the generated code.
  { name: 'a "quoted" \\ name`', type: 'int', kind: 'int' },
  { name: NASTY, type: 'varchar(5)', kind: 'text' },
  { name: '1', type: 'int', kind: 'int' },
  { name: 'constructor', type: 'varchar(5)', kind: 'text' },
];

const VALUES: Record<string, unknown[]> = {
  id: [1, -5, 0, null, '9223372036854775807', 12345678901234],
  u: ['18446744073709551615', 7, null],
  y: [1900, 0, 2024, null],
  d: ['-12.50', '0.00', null],
  f: [Math.fround(3.14), -0, Number.NaN, null],
  g: [0.1 + 0.2, Number.POSITIVE_INFINITY, null],
  bits: [Buffer.from([0x01, 0x55]), null],
  b: [Buffer.from([0, 255, 16]), 'ab', null],
  ts: ['2024-01-02 03:04:05.123', null],
  dt: ['0000-00-00 00:00:00', null],
  j: ['{"a":1}', Buffer.from('[1]'), { x: 1 }, null],
  e: ['a', undefined, null],
  s: ['a,b', '', null],
  txt: ['héllo', Buffer.from('bytes'), '', null, 42],
  'a "quoted" \\ name`': [3, null],
  [NASTY]: ['x', null],
  '1': [1, null],
  constructor: ['c', null],
};

function estimateBytes(row: Record<string, unknown>): number {
  let n = 0;
  for (const k in row) {
    const v = row[k];
    n += k.length + (typeof v === 'string' ? v.length : 4) + 16;
  }
  return n;
}

function check(columns: MysqlColumn[]): void {
  const decoder = new RowDecoder(columns, ['id', 'txt']);
  const rows = Math.max(...columns.map((c) => VALUES[c.name]?.length ?? 1));
  for (let r = 0; r < rows; r++) {
    const raw: Record<string, unknown> = {};
    for (const c of columns) {
      const vs = VALUES[c.name] ?? [7];
      Object.defineProperty(raw, c.name, { value: vs[r % vs.length], enumerable: true });
    }
    const expected: Record<string, unknown> = {};
    for (const c of columns)
      Object.defineProperty(expected, c.name, {
        value: binlogValue(raw[c.name], c),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    const row = decoder.decode(raw);
    expect(row).toStrictEqual(expected);
    expect(Object.keys(row)).toEqual(Object.keys(expected));
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(decoder.bytes).toBe(estimateBytes(expected));
    expect(decoder.key(row)).toStrictEqual({ id: expected.id ?? null, txt: expected.txt ?? null });
    if (columns.some((c) => c.name === '__proto__')) expect(Object.keys(row)).toContain('__proto__');
  }
}

describe('mysql binlog row decoder', () => {
  it('gives every column what binlogValue gives (generated per layout)', () => {
    check(COLUMNS);
  });

  it('gives the same with a loop for layouts it does not generate code for', () => {
    check([...COLUMNS, { name: '__proto__', type: 'int', kind: 'int' }]);
    const wide = Array.from({ length: 300 }, (_, i): MysqlColumn => ({ name: `c${i}`, type: 'int', kind: 'int' }));
    check([COLUMNS[0]!, COLUMNS[13]!, ...wide]);
  });

  it('has no key for a table without one', () => {
    const decoder = new RowDecoder(COLUMNS.slice(0, 2), []);
    expect(decoder.key(decoder.decode({ id: 1, u: 2 }))).toBeNull();
  });
});
