/**
 * Binlog row images (as the binlog library decodes them, keyed by column name) to rows of canonical text, the hot
 * path of the MySQL source: every streamed row passes here once per image.
 */
import type { CellValue, Row } from '../../../src/core/change-event.ts';
import { type BinlogConverter, binlogConverter, type MysqlColumn } from './values.ts';

/** Above this many columns rows are converted by a loop instead of a function generated for the layout. */
const MAX_GENERATED_COLUMNS = 256;

type DecodeFn = (raw: Record<string, unknown>) => Row;

/**
 * Decodes the rows of one table layout. Each column's conversion is decided once (`binlogConverter`, the same
 * result as `binlogValue`); for layouts of up to 256 columns a function generated for the layout builds each row as one
 * object literal (one allocation of a fixed shape, no per-column dispatch). Column names enter the generated code
 * only as JSON string literals.
 */
export class RowDecoder {
  private readonly keyNames: string[];
  /** Byte estimate of the row last decoded: per column its name's length + 16, plus the text's length (else 4). */
  bytes = 0;
  readonly decode: DecodeFn;

  constructor(columns: MysqlColumn[], keys: string[]) {
    this.keyNames = keys;
    const names = columns.map((c) => c.name);
    const converters = columns.map(binlogConverter);
    const fixedBytes = names.reduce((n, name) => n + name.length + 16, 0);
    const generate =
      names.length <= MAX_GENERATED_COLUMNS && !names.includes('__proto__') && new Set(names).size === names.length;
    this.decode = generate
      ? generatedDecode(this, columns, converters, fixedBytes)
      : loopDecode(this, names, converters, fixedBytes);
  }

  /** The key columns of a decoded row; null when the table has no key. */
  key(row: Row): Row | null {
    const keys = this.keyNames;
    if (keys.length === 0) return null;
    const key: Row = {};
    for (let i = 0; i < keys.length; i++) setOwn(key, keys[i]!, Object.hasOwn(row, keys[i]!) ? row[keys[i]!]! : null);
    return key;
  }
}

/** `row[name] = v`, also for a column named `__proto__` (an assignment would set the object's prototype). */
function setOwn(row: Row, name: string, v: CellValue): void {
  if (name === '__proto__')
    Object.defineProperty(row, name, { value: v, enumerable: true, writable: true, configurable: true });
  else row[name] = v;
}

function loopDecode(d: RowDecoder, names: string[], converters: BinlogConverter[], fixedBytes: number): DecodeFn {
  return (raw) => {
    const row: Row = {};
    let bytes = fixedBytes;
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      const v = converters[i]!(Object.hasOwn(raw, name) ? raw[name] : undefined);
      setOwn(row, name, v);
      bytes += typeof v === 'string' ? v.length : 4;
    }
    d.bytes = bytes;
    return row;
  };
}

/** The conversion of column `i` (raw value in `r<i>`) as an expression; the common kinds inline. */
function conversionExpr(col: MysqlColumn, i: number): string {
  const r = `r${i}`;
  if (col.kind === 'int' && !col.type.startsWith('year'))
    return `typeof ${r} === 'string' ? ${r} : ${r} === null || ${r} === undefined ? null : String(${r})`;
  if (converterIsText(col)) return `typeof ${r} === 'string' ? ${r} : c${i}(${r})`;
  return `c${i}(${r})`;
}

/** Kinds converted by `textOf` (strings pass through unchanged). */
function converterIsText(col: MysqlColumn): boolean {
  switch (col.kind) {
    case 'int':
    case 'enum':
    case 'float':
    case 'bits':
    case 'bytes':
    case 'geometry':
    case 'timestamptz':
    case 'json':
      return false;
    default:
      return true;
  }
}

function generatedDecode(
  d: RowDecoder,
  columns: MysqlColumn[],
  converters: BinlogConverter[],
  fixedBytes: number,
): DecodeFn {
  const lines: string[] = ['"use strict";'];
  columns.forEach((_, i) => {
    lines.push(`const c${i} = c[${i}];`);
  });
  lines.push('return function decode(raw) {');
  columns.forEach((col, i) => {
    lines.push(`  const r${i} = raw[${JSON.stringify(col.name)}];`);
    lines.push(`  const v${i} = ${conversionExpr(col, i)};`);
  });
  const sizes = columns.map((_, i) => `(typeof v${i} === 'string' ? v${i}.length : 4)`);
  lines.push(`  d.bytes = ${[String(fixedBytes), ...sizes].join(' + ')};`);
  lines.push(`  return { ${columns.map((col, i) => `${JSON.stringify(col.name)}: v${i}`).join(', ')} };`);
  lines.push('};');
  const make = new Function('c', 'd', lines.join('\n')) as (
    c: ((v: unknown) => CellValue)[],
    d: RowDecoder,
  ) => DecodeFn;
  return make(converters, d);
}
