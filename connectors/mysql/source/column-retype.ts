/**
 * Whether a MySQL/MariaDB column type change (`ALTER TABLE ... MODIFY` / `CHANGE`) keeps every value its rows hold.
 *
 * The server converts existing rows in place when a column changes type (DECIMAL(10,2) -> DECIMAL(10,1) rounds,
 * DATETIME(6) -> DATETIME rounds the fraction, FLOAT -> INT rounds, INT -> VARCHAR changes the value's kind), and the
 * binlog carries no row events for that: the source copies the table again unless the change is a widening that
 * keeps every value as it reads (its canonical text, docs/value-forms.md, but for the fractional digits of a time,
 * which the targets' own columns print as they print them). Only widenings the targets follow by widening their column
 * count as keeping values: FLOAT -> DOUBLE (0.1 reads 0.10000000149011612 after) and a larger DECIMAL scale (1.25 reads
 * 1.2500) do not. Anything else, and any type text not understood, counts as rewriting them (an extra copy, never a
 * stale value).
 *
 * Type texts come from three places, compared here by meaning rather than spelling: the binlog's table maps
 * (`decimal(10,2)`, `datetime`, `int unsigned`, `enum('a','b')`), INFORMATION_SCHEMA.COLUMNS as the snapshot read it
 * (display widths dropped, see normalizeColumnType), and a MODIFY/CHANGE definition as written (`DEC(10,1)`,
 * `INTEGER(11) UNSIGNED`, `DOUBLE PRECISION`, `DATETIME`).
 */

import { MYSQL_GEOMETRY_TYPES } from '../type-names.ts';

/** A type reduced to what decides the values it holds. */
interface ColumnType {
  base: string;
  /** Length, precision, or fractional digits; (precision, scale) for DECIMAL. */
  args: number[];
  unsigned: boolean;
  /** ENUM / SET labels. */
  labels?: string[];
}

const INT_BITS = new Map([
  ['tinyint', 8],
  ['smallint', 16],
  ['mediumint', 24],
  ['int', 32],
  ['bigint', 64],
]);

const ALIASES = new Map([
  ['integer', 'int'],
  ['int1', 'tinyint'],
  ['int2', 'smallint'],
  ['int3', 'mediumint'],
  ['middleint', 'mediumint'],
  ['int4', 'int'],
  ['int8', 'bigint'],
  ['dec', 'decimal'],
  ['numeric', 'decimal'],
  ['fixed', 'decimal'],
  ['real', 'double'],
  ['float8', 'double'],
  ['float4', 'float'],
  ['character', 'char'],
  ['nchar', 'char'],
  ['nvarchar', 'varchar'],
  ['long', 'mediumtext'],
]);

/**
 * Spatial types count as one: their values (WKB) are kept when the type changes, and the binlog does not always tell
 * which one a column is (a table map may say `geometry` where the catalog says `point`).
 */
const GEOMETRY = new Set(MYSQL_GEOMETRY_TYPES);

/** Text types by size, and binary ones. */
const TEXT_RANK = ['tinytext', 'text', 'mediumtext', 'longtext'];
const BLOB_RANK = ['tinyblob', 'blob', 'mediumblob', 'longblob'];
/** The most bytes each holds, and the most a character can take (utf8mb4). */
const TEXT_BYTES = [255, 65535, 16777215, 4294967295];
const MAX_CHAR_BYTES = 4;

/** Reads a type text; null when it is not understood. */
function parseType(text: string): ColumnType | null {
  let t = text
    .trim()
    .toLowerCase()
    .replace(/\/\*.*?\*\//g, ' ')
    .trim();
  const name = /^[a-z_][a-z0-9_]*(\s+precision)?/.exec(t);
  if (!name) return null;
  let base = name[0].replace(/\s+precision$/, '');
  t = t.slice(name[0].length).trim();
  base = ALIASES.get(base) ?? base;
  if (GEOMETRY.has(base)) return { base: 'geometry', args: [], unsigned: false };
  if (base === 'bool' || base === 'boolean') return { base: 'tinyint', args: [], unsigned: false };
  if (base === 'serial') return { base: 'bigint', args: [], unsigned: true };
  if (base === 'enum' || base === 'set') {
    const labels = parseLabels(t);
    return labels ? { base, args: [], unsigned: false, labels } : null;
  }
  let args: number[] = [];
  const m = /^\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)/.exec(t);
  if (m) {
    args = [Number(m[1]), ...(m[2] !== undefined ? [Number(m[2])] : [])];
    t = t.slice(m[0].length).trim();
  } else if (t.startsWith('(')) return null;
  const unsigned = /\b(unsigned|zerofill)\b/.test(t);
  if (INT_BITS.has(base)) return { base, args: [], unsigned };
  if (base === 'year') return { base, args: [], unsigned: false };
  if (base === 'decimal') {
    const precision = args[0] ?? 10;
    return { base, args: [precision, args[1] ?? 0], unsigned };
  }
  if (base === 'float') {
    // FLOAT(p) with p above 24 is a DOUBLE; FLOAT(m,d) and DOUBLE(m,d) only round what is written to them.
    const double = args.length === 1 && args[0]! > 24;
    return { base: double ? 'double' : 'float', args: [], unsigned };
  }
  if (base === 'double') return { base, args: [], unsigned };
  if (base === 'char' || base === 'binary' || base === 'bit') return { base, args: [args[0] ?? 1], unsigned: false };
  if (base === 'varchar' || base === 'varbinary') return args.length === 1 ? { base, args, unsigned: false } : null;
  // TEXT(n) / BLOB(n) pick the smallest type that holds n: which one depends on the character set.
  if (TEXT_RANK.includes(base) || BLOB_RANK.includes(base)) return args.length === 0 ? { base, args, unsigned } : null;
  if (base === 'datetime' || base === 'timestamp' || base === 'time') return { base, args: [args[0] ?? 0], unsigned };
  return { base, args, unsigned };
}

/** `('a','it''s')` -> ['a', "it's"]; null when the text is not a plain label list. */
function parseLabels(t: string): string[] | null {
  if (!t.startsWith('(')) return null;
  const labels: string[] = [];
  let i = 1;
  for (;;) {
    while (t[i] === ' ') i++;
    const q = t[i];
    if (q !== "'" && q !== '"') return null;
    let label = '';
    i++;
    for (;;) {
      if (i >= t.length) return null;
      if (t[i] === '\\') return null; // escapes: not compared
      if (t[i] === q) {
        if (t[i + 1] === q) {
          label += q;
          i += 2;
          continue;
        }
        break;
      }
      label += t[i++];
    }
    labels.push(label);
    i++;
    while (t[i] === ' ') i++;
    if (t[i] === ',') {
      i++;
      continue;
    }
    return t[i] === ')' ? labels : null;
  }
}

function same(a: ColumnType, b: ColumnType): boolean {
  return (
    a.base === b.base &&
    a.unsigned === b.unsigned &&
    a.args.join(',') === b.args.join(',') &&
    (a.labels ?? []).join('\0') === (b.labels ?? []).join('\0')
  );
}

/** Whether the two texts name the same type (both understood). */
export function sameColumnType(from: string, to: string): boolean {
  const a = parseType(from);
  const b = parseType(to);
  return a !== null && b !== null && same(a, b);
}

/**
 * Whether changing a column from type `from` to type `to` leaves every value its rows can hold as it reads (a pure
 * widening, or the same type). False when either text is not understood.
 */
export function keepsValues(from: string, to: string): boolean {
  const a = parseType(from);
  const b = parseType(to);
  if (!a || !b) return false;
  if (same(a, b)) return true;
  const bitsA = INT_BITS.get(a.base);
  const bitsB = INT_BITS.get(b.base);
  if (bitsA !== undefined && bitsB !== undefined) {
    if (a.unsigned) return b.unsigned ? bitsB >= bitsA : bitsB > bitsA;
    return !b.unsigned && bitsB >= bitsA;
  }
  if (a.base === 'decimal' && b.base === 'decimal') {
    // A larger scale prints every value with more digits (1.25 -> 1.2500): the values' text changes.
    const [pa, sa] = a.args as [number, number];
    const [pb, sb] = b.args as [number, number];
    return sb === sa && pb >= pa && (!b.unsigned || a.unsigned);
  }
  const fractional = ['datetime', 'timestamp', 'time'];
  if (fractional.includes(a.base) && a.base === b.base) return b.args[0]! >= a.args[0]!;
  if ((a.base === 'char' || a.base === 'varchar') && (b.base === 'char' || b.base === 'varchar')) {
    // CHAR reads without its trailing spaces, which VARCHAR then keeps as they read; not the other way round.
    return b.args[0]! >= a.args[0]! && !(a.base === 'varchar' && b.base === 'char');
  }
  if (a.base === 'varchar' && TEXT_RANK.includes(b.base))
    return a.args[0]! * MAX_CHAR_BYTES <= TEXT_BYTES[TEXT_RANK.indexOf(b.base)]!;
  if (TEXT_RANK.includes(a.base) && TEXT_RANK.includes(b.base))
    return TEXT_RANK.indexOf(b.base) >= TEXT_RANK.indexOf(a.base);
  if (a.base === 'varbinary' && b.base === 'varbinary') return b.args[0]! >= a.args[0]!;
  if (a.base === 'varbinary' && BLOB_RANK.includes(b.base)) return a.args[0]! <= TEXT_BYTES[BLOB_RANK.indexOf(b.base)]!;
  if (BLOB_RANK.includes(a.base) && BLOB_RANK.includes(b.base))
    return BLOB_RANK.indexOf(b.base) >= BLOB_RANK.indexOf(a.base);
  if ((a.base === 'enum' || a.base === 'set') && a.base === b.base) {
    // Labels added at the end: every value keeps its label (and its index).
    const old = a.labels!;
    return old.length <= b.labels!.length && old.every((l, i) => b.labels![i] === l);
  }
  return false;
}
