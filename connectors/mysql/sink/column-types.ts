/**
 * What the MySQL target needs to know about MySQL column types (as column-types.ts is for the PostgreSQL target):
 * which type spellings are safe to put into DDL, which types take a literal DEFAULT, and whether a target column
 * holds every value of a source column. Type names are read with the one table in type-names.ts.
 */
import { MYSQL_BINARY_TYPES, MYSQL_CHAR_TYPES, MYSQL_GEOMETRY_TYPES, parseMysqlType } from '../type-names.ts';

/** A MySQL type spelling safe to paste into DDL (a source MySQL type, e.g. `enum('a','b')`, `decimal(10,2) unsigned`). */
export function isSafeMysqlType(type: string): boolean {
  return /^[a-z][a-z0-9_ ]*(\((?:[^()'\\;]|'(?:[^'\\]|''|\\.)*')*\))?[a-z ]*$/i.test(type.trim());
}

/** Types whose columns take no literal DEFAULT on MySQL (only an expression one, from 8.0.13). */
const NO_LITERAL_DEFAULT = new Set([
  ...[...MYSQL_CHAR_TYPES, ...MYSQL_BINARY_TYPES].filter((t) => /(blob|text)$/.test(t)),
  'json',
  ...MYSQL_GEOMETRY_TYPES,
]);

/** Whether a column of this DATA_TYPE (`longtext`, `int`, ...) may be added with a literal DEFAULT. */
export function takesLiteralDefault(dataType: string): boolean {
  return !NO_LITERAL_DEFAULT.has(dataType);
}

const INT_RANK: Record<string, number> = { tinyint: 1, smallint: 2, mediumint: 3, int: 4, integer: 4, bigint: 5 };
const TEXT_BYTES: Record<string, number> = {
  tinytext: 255,
  text: 65_535,
  mediumtext: 16_777_215,
  longtext: 4_294_967_295,
  tinyblob: 255,
  blob: 65_535,
  mediumblob: 16_777_215,
  longblob: 4_294_967_295,
};

/** Bytes a character/binary column holds, or undefined when it is not one. */
function capacity(base: string, args: number[]): number | undefined {
  if (base === 'varchar' || base === 'char') return (args[0] ?? 1) * 4;
  if (base === 'varbinary' || base === 'binary') return args[0] ?? 1;
  return TEXT_BYTES[base];
}

/** The labels of an `enum(...)` / `set(...)` type, as written (quotes undone). */
function enumLabels(type: string): string[] {
  return [...type.matchAll(/'((?:[^'\\]|''|\\.)*)'/g)].map((m) => m[1]!.replace(/''/g, "'"));
}

/**
 * Whether a column of type `have` holds every value of type `want` (compared by family and size). `undefined` when
 * the two are not comparable this way (different families): the encoder decides then.
 */
export function holds(have: string, want: string): boolean | undefined {
  const h = parseMysqlType(have);
  const w = parseMysqlType(want);
  if ((h.base === 'enum' || h.base === 'set') && h.base === w.base) {
    // Rows carry labels: the target holds them when it knows every label (a label added at the source widens it).
    const known = new Set(enumLabels(have));
    return enumLabels(want).every((l) => known.has(l));
  }
  if (h.base === w.base && h.args.join() === w.args.join() && h.unsigned === w.unsigned) return true;
  if (INT_RANK[h.base] && INT_RANK[w.base]) {
    if (h.unsigned === w.unsigned) return INT_RANK[h.base]! >= INT_RANK[w.base]!;
    return !h.unsigned && INT_RANK[h.base]! > INT_RANK[w.base]!;
  }
  if (h.base === 'decimal' && w.base === 'decimal') {
    const [hp = 10, hs = 0] = h.args;
    const [wp = 10, ws = 0] = w.args;
    return hp - hs >= wp - ws && hs >= ws;
  }
  const hc = capacity(h.base, h.args);
  const wc = capacity(w.base, w.args);
  if (hc !== undefined && wc !== undefined) return hc >= wc;
  if (['datetime', 'timestamp', 'time'].includes(h.base) && h.base === w.base) {
    return (h.args[0] ?? 0) >= (w.args[0] ?? 0);
  }
  if (h.base === 'bit' && w.base === 'bit') return (h.args[0] ?? 1) >= (w.args[0] ?? 1);
  if (h.base === 'float' && w.base === 'double') return false;
  return undefined;
}
