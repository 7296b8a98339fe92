/**
 * MySQL/MariaDB values to the canonical text forms of docs/value-forms.md (documented for MySQL in
 * connectors/mysql/README.md). Two entry points that must agree byte for byte on the same stored value:
 * `binlogValue` (what the binlog decoder returns) and `snapshotValue` (the raw bytes of a text-protocol result).
 */

import type { CellValue, ValueKind } from '../../../src/core/change-event.ts';
import { quoteIdent } from '../identifiers.ts';
import { MYSQL_FLOAT_TYPES, MYSQL_INT_TYPES, mysqlTypeKind, parseMysqlType } from '../type-names.ts';
import { mysqlBinaryJsonToText } from './binary-json.ts';

export interface MysqlColumn {
  name: string;
  /** MySQL type text without integer display widths: `bigint unsigned`, `decimal(65,30)`, `datetime(6)`, ... */
  type: string;
  kind: ValueKind;
}

/** Normalizes an INFORMATION_SCHEMA.COLUMNS.COLUMN_TYPE to the form the binlog metadata gives. */
export function normalizeColumnType(columnType: string): string {
  let t = columnType.trim().toLowerCase();
  const { base } = parseMysqlType(t);
  // Display widths of integers go (YEAR is left alone); INTEGER reads as INT and REAL as DOUBLE.
  if (MYSQL_INT_TYPES.includes(base) && base !== 'year')
    t = t.replace(/^(\w+)\(\d+\)/, '$1').replace(/^integer/, 'int');
  if (MYSQL_FLOAT_TYPES.includes(base)) t = t.replace(/^(\w+)\(\d+(,\d+)?\)/, '$1').replace(/^real/, 'double');
  t = t.replace(/\s+zerofill\b/, '');
  if (/^bool(ean)?$/.test(t)) t = 'tinyint';
  return t;
}

/** Kind of a MySQL type text (see docs/value-forms.md). */
export function kindOfType(type: string): ValueKind {
  return mysqlTypeKind(type);
}

/** Shortest decimal that reads back as the same 32-bit float. */
export function float32ToString(f: number): string {
  if (Object.is(f, -0)) return '-0';
  if (Number.isNaN(f)) return 'NaN';
  if (!Number.isFinite(f)) return f > 0 ? 'Infinity' : '-Infinity';
  for (let p = 1; p <= 9; p++) {
    const n = Number(f.toPrecision(p));
    if (Math.fround(n) === f) return String(n);
  }
  return String(f);
}

export function float64ToString(f: number): string {
  if (Object.is(f, -0)) return '-0';
  if (Number.isNaN(f)) return 'NaN';
  if (!Number.isFinite(f)) return f > 0 ? 'Infinity' : '-Infinity';
  return String(f);
}

function bitWidth(type: string): number {
  const m = /^bit\((\d+)\)/.exec(type);
  return m ? Number(m[1]) : 1;
}

function bitsOf(buf: Buffer, width: number): string {
  let s = '';
  for (const byte of buf) s += byte.toString(2).padStart(8, '0');
  if (s.length > width) s = s.slice(s.length - width);
  return s.padStart(width, '0');
}

function hex(buf: Buffer): string {
  return `\\x${buf.toString('hex')}`;
}

/** WKT of a geometry in MySQL's internal format (4-byte SRID, then WKB), as MariaDB's ST_AsText spells it. */
export function geometryToWkt(internal: Buffer): string {
  let offset = 4;
  const num = (x: number) => float64ToString(x);
  const read = (): string => {
    const le = internal.readUInt8(offset) === 1;
    offset += 1;
    const u32 = () => {
      const v = le ? internal.readUInt32LE(offset) : internal.readUInt32BE(offset);
      offset += 4;
      return v;
    };
    const f64 = () => {
      const v = le ? internal.readDoubleLE(offset) : internal.readDoubleBE(offset);
      offset += 8;
      return v;
    };
    const point = () => `${num(f64())} ${num(f64())}`;
    const points = () => {
      const n = u32();
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push(point());
      return out.join(',');
    };
    const rings = () => {
      const n = u32();
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push(`(${points()})`);
      return out.join(',');
    };
    const type = u32();
    switch (type) {
      case 1:
        return `POINT(${point()})`;
      case 2:
        return `LINESTRING(${points()})`;
      case 3:
        return `POLYGON(${rings()})`;
      case 4:
      case 5:
      case 6:
      case 7: {
        const n = u32();
        const parts: string[] = [];
        for (let i = 0; i < n; i++) parts.push(read());
        if (type === 7) return `GEOMETRYCOLLECTION(${parts.join(',')})`;
        const inner = parts.map((p) => p.slice(p.indexOf('(')));
        if (type === 4) return `MULTIPOINT(${inner.map((p) => p.slice(1, -1)).join(',')})`;
        return `${type === 5 ? 'MULTILINESTRING' : 'MULTIPOLYGON'}(${inner.join(',')})`;
      }
      default:
        throw new Error(`unknown WKB geometry type ${type}`);
    }
  };
  return read();
}

/**
 * A value as decoded from the binlog (numbers, exact strings beyond 2^53, strings, Buffers; dates already as strings;
 * geometry as its raw internal bytes) to canonical text.
 */
export function binlogValue(v: unknown, col: MysqlColumn): CellValue {
  if (v === null || v === undefined) {
    // An ENUM holding the empty "error" value (index 0) decodes to undefined.
    return v === undefined && col.kind === 'enum' ? '' : null;
  }
  switch (col.kind) {
    case 'int':
      if (col.type.startsWith('year')) return v === 1900 || v === 0 ? '0000' : String(v);
      return typeof v === 'bigint' ? v.toString() : String(v);
    case 'float':
      return col.type.startsWith('float') ? float32ToString(Number(v)) : float64ToString(Number(v));
    case 'bits':
      return bitsOf(v as Buffer, bitWidth(col.type));
    case 'bytes':
      return Buffer.isBuffer(v) ? hex(v) : hex(Buffer.from(String(v), 'utf8'));
    case 'geometry':
      return Buffer.isBuffer(v) ? (v.length === 0 ? null : geometryToWkt(v)) : String(v);
    case 'timestamptz':
      return `${String(v)}+00`;
    case 'json':
      if (typeof v === 'string') return v;
      // MySQL's JSON arrives as its binary form; MariaDB's (LONGTEXT) as text.
      if (Buffer.isBuffer(v)) return col.type === 'json' ? mysqlBinaryJsonToText(v) : v.toString('utf8');
      return JSON.stringify(v);
    default:
      if (Buffer.isBuffer(v)) return v.toString('utf8');
      return String(v);
  }
}

/** Converts one column's binlog values: `binlogValue` for that column, with the per-value type tests decided once. */
export type BinlogConverter = (v: unknown) => CellValue;

function textOf(v: unknown): CellValue {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return String(v);
}

/** `binlogValue` specialized to a column (same result for every value), for decoding many rows. */
export function binlogConverter(col: MysqlColumn): BinlogConverter {
  switch (col.kind) {
    case 'int':
      if (col.type.startsWith('year'))
        return (v) => (v === null || v === undefined ? null : v === 1900 || v === 0 ? '0000' : String(v));
      // Exact strings beyond 2^53 stay as they are; String() of a number or a bigint is its decimal text.
      return (v) => (typeof v === 'string' ? v : v === null || v === undefined ? null : String(v));
    case 'enum':
      // An ENUM holding the empty "error" value (index 0) decodes to undefined.
      return (v) => (v === undefined ? '' : textOf(v));
    case 'float':
    case 'bits':
    case 'bytes':
    case 'geometry':
    case 'timestamptz':
    case 'json':
      return (v) => binlogValue(v, col);
    default:
      return textOf;
  }
}

/**
 * A value of a text-protocol result, read as raw bytes (FLOAT columns selected as `CAST(col AS DOUBLE)`), to
 * canonical text.
 */
export function snapshotValue(raw: Buffer | null, col: MysqlColumn): CellValue {
  if (raw === null) return null;
  switch (col.kind) {
    case 'float': {
      const n = Number(raw.toString('latin1'));
      return col.type.startsWith('float') ? float32ToString(Math.fround(n)) : float64ToString(n);
    }
    case 'bits':
      return bitsOf(raw, bitWidth(col.type));
    case 'bytes':
      return hex(raw);
    case 'geometry':
      return raw.length === 0 ? null : geometryToWkt(raw);
    case 'timestamptz':
      return `${raw.toString('utf8')}+00`;
    default:
      return raw.toString('utf8');
  }
}

/** The SELECT expression that gives `snapshotValue` what it expects for a column. */
export function snapshotSelectExpr(col: MysqlColumn): string {
  const q = quoteIdent(col.name);
  if (col.kind === 'float' && col.type.startsWith('float')) return `CAST(${q} AS DOUBLE)`;
  return q;
}
