/**
 * Source column types -> MySQL/MariaDB column types, and canonical values (docs/value-forms.md) -> SQL literals.
 * The one place where cross-engine type decisions live; docs/type-mapping.md describes the same table.
 *
 * Two halves:
 * - `columnType` picks the type of a column the target creates, from the source's ColumnInfo.
 * - `encoderFor` turns a canonical value into a SQL literal for the column as it exists on the target (created by
 *   us or by hand), so a hand-made text column for a numeric simply receives the exact text.
 */
import mysql from 'mysql2';
import type { ColumnInfo, ValueKind } from '../../../src/core/change-event.ts';
import { arrayToJson, boolToJson, floatToJson, intToJson, stringToJson } from '../../../src/envelope/values.ts';
import { MYSQL_BINARY_TYPES, MYSQL_CHAR_TYPES, MYSQL_GEOMETRY_TYPES, MYSQL_INT_TYPES } from '../type-names.ts';

export type SourceEngine = 'postgresql' | 'mysql';

export interface MappingOptions {
  numericOverflow: 'error' | 'text';
  floatNonfinite: 'error' | 'null';
  dateOutOfRange: 'error' | 'null';
}

export interface ColumnTypeChoice {
  /** MySQL column type for CREATE TABLE / ADD COLUMN. */
  sql: string;
  /** What the mapping loses, when it loses anything (logged when the column is created). */
  lossy?: string;
}

/** A value the target cannot hold as configured. The caller adds table, column and key. */
export class ValueConversionError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** A value replaced by NULL because the configuration says so (float_nonfinite / date_out_of_range: "null"). */
export const NULLED = Symbol('nulled');

/** Converts one non-null canonical value to a SQL literal (or NULLED). */
export type Encoder = (text: string) => string | typeof NULLED;

const INNODB_KEY_BYTES = 3072;
/** utf8mb4 characters take up to 4 bytes. */
const UTF8MB4 = 4;
/** Longest VARCHAR (characters) kept as VARCHAR; longer ones become LONGTEXT (the 65,535-byte row limit). */
const MAX_VARCHAR_CHARS = 16_383;
/** The budget for VARCHAR bytes in one created row; the widest VARCHARs beyond it become LONGTEXT. */
const ROW_VARCHAR_BYTES = 60_000;

interface ParsedType {
  base: string;
  args: number[];
  array: boolean;
}

/** `timestamp(3) with time zone` -> base `timestamp with time zone`, args [3]; `numeric(10,2)` -> [10, 2]. */
export function parsePgType(type: string): ParsedType {
  let t = type.trim().toLowerCase();
  const array = t.endsWith('[]');
  while (t.endsWith('[]')) t = t.slice(0, -2);
  const m = /^([^(]*?)\s*\(\s*(-?\d+)\s*(?:,\s*(-?\d+)\s*)?\)\s*(.*)$/.exec(t);
  if (!m) return { base: t.replace(/\s+/g, ' '), args: [], array };
  const args = [Number(m[2])];
  if (m[3] !== undefined) args.push(Number(m[3]));
  const base = `${m[1]}${m[4] ? ` ${m[4]}` : ''}`.replace(/\s+/g, ' ').trim();
  return { base, args, array };
}

function pgIntType(base: string): string {
  switch (base) {
    case 'smallint':
    case 'int2':
      return 'SMALLINT';
    case 'integer':
    case 'int':
    case 'int4':
      return 'INT';
    case 'bigint':
    case 'int8':
      return 'BIGINT';
    case 'oid':
    case 'xid':
    case 'cid':
    case 'regproc':
      return 'INT UNSIGNED';
    case 'xid8':
      return 'BIGINT UNSIGNED';
    default:
      return 'DECIMAL(65,0)';
  }
}

function fsp(args: number[]): number {
  const p = args[0];
  return p === undefined ? 6 : Math.max(0, Math.min(6, p));
}

/**
 * The MySQL type for a column the target creates. `keyChars` is the VARCHAR length used for an unbounded text key
 * column (a MySQL primary key cannot be TEXT or BLOB).
 */
export function columnType(
  col: ColumnInfo,
  engine: SourceEngine,
  options: MappingOptions,
  keyChars = INNODB_KEY_BYTES / UTF8MB4,
): ColumnTypeChoice {
  if (engine === 'mysql') {
    if (col.kind === 'json') return { sql: 'JSON' };
    return { sql: col.type.trim() };
  }
  const { base, args, array } = parsePgType(col.type);
  const isKey = col.isKey;
  const unboundedText = (lossy?: string): ColumnTypeChoice =>
    isKey
      ? { sql: `VARCHAR(${keyChars})`, lossy: `key column as VARCHAR(${keyChars}): longer values are rejected` }
      : lossy
        ? { sql: 'LONGTEXT', lossy }
        : { sql: 'LONGTEXT' };
  if (array || col.kind === 'array') {
    return { sql: 'JSON', lossy: 'array as a JSON array: lower bounds and the element type are not kept' };
  }
  switch (col.kind) {
    case 'bool':
      return { sql: 'TINYINT(1)' };
    case 'int':
      return { sql: pgIntType(base) };
    case 'decimal': {
      const [p, s = 0] = args;
      if (base !== 'numeric' && base !== 'decimal') return unboundedText(`${base} as its text`);
      if (p !== undefined && p <= 65 && s >= 0 && s <= 30) return { sql: `DECIMAL(${p},${s})` };
      if (options.numericOverflow === 'text') {
        return unboundedText('numeric as exact text (not a number type on the target)');
      }
      if (p === undefined) {
        return {
          sql: 'DECIMAL(65,30)',
          lossy:
            'unconstrained numeric as DECIMAL(65,30): read back with 30 decimals; values beyond 35 integer or 30 fraction digits, NaN and Infinity stop the pipeline',
        };
      }
      return {
        sql: `DECIMAL(${Math.min(p, 65)},${Math.max(0, Math.min(s, 30))})`,
        lossy: `numeric(${p},${s}) beyond DECIMAL(65,30): values that do not fit stop the pipeline`,
      };
    }
    case 'float':
      // real -> DOUBLE, not FLOAT: MySQL parses the float4's shortest text as a double, and the largest float4
      // (3.4028235e38) is then out of FLOAT's range; every float4 value is exact in a DOUBLE and reads back as the same text.
      return { sql: 'DOUBLE' };
    case 'text': {
      const [n] = args;
      if (base === 'character varying' || base === 'varchar') {
        if (n !== undefined && n <= MAX_VARCHAR_CHARS && (!isKey || n <= keyChars)) return { sql: `VARCHAR(${n})` };
        return unboundedText();
      }
      if (base === 'character' || base === 'char' || base === 'bpchar') {
        const len = n ?? 1;
        if (len <= 255) return { sql: `CHAR(${len})`, lossy: 'character(n): trailing spaces are not read back' };
        return len <= MAX_VARCHAR_CHARS ? { sql: `VARCHAR(${len})` } : unboundedText();
      }
      if (base === 'name') return { sql: 'VARCHAR(63)' };
      if (base === '"char"') return { sql: 'CHAR(1)' };
      return unboundedText();
    }
    case 'bytes':
      return isKey
        ? {
            sql: `VARBINARY(${keyChars * UTF8MB4})`,
            lossy: `bytea key as VARBINARY(${keyChars * UTF8MB4}): longer values are rejected`,
          }
        : { sql: 'LONGBLOB' };
    case 'json':
      return { sql: 'JSON' };
    case 'uuid':
      return { sql: 'CHAR(36)', lossy: 'uuid as CHAR(36) text' };
    case 'date':
      return { sql: 'DATE', lossy: 'date: infinity and BC dates cannot be stored' };
    case 'time':
      return { sql: `TIME(${fsp(args)})` };
    case 'timetz':
      return { sql: `TIME(${fsp(args)})`, lossy: 'time with time zone converted to UTC; the offset is dropped' };
    case 'timestamp':
      return { sql: `DATETIME(${fsp(args)})`, lossy: 'timestamp: infinity, BC and years after 9999 cannot be stored' };
    case 'timestamptz':
      return {
        sql: `DATETIME(${fsp(args)})`,
        lossy:
          'timestamp with time zone as a UTC DATETIME (the column does not say it is UTC); infinity/BC cannot be stored',
      };
    case 'interval':
      return { sql: 'VARCHAR(255)', lossy: 'interval as its PostgreSQL text (no interval arithmetic on the target)' };
    case 'bits': {
      const [n] = args;
      if ((base === 'bit' || base === 'bit varying' || base === 'varbit') && n !== undefined) {
        if (base === 'bit' && n <= 64) return { sql: `BIT(${n})` };
        return { sql: `VARCHAR(${n})`, lossy: 'bit string as text of 0/1 characters' };
      }
      return unboundedText('bit string as text of 0/1 characters');
    }
    case 'enum':
      return { sql: 'VARCHAR(255)', lossy: 'enum as VARCHAR: the label set is not enforced on the target' };
    case 'set':
      return unboundedText();
    case 'geometry':
      if (base === 'point') return { sql: 'POINT', lossy: 'point as a MySQL POINT (SRID 0)' };
      return unboundedText(`${base} as its PostgreSQL text`);
    default:
      return unboundedText(`${base} as its text`);
  }
}

/** Bytes a key column of this type takes in an InnoDB index (an upper bound). */
function keyBytes(sql: string): number {
  const m = /^(VAR)?(CHAR|BINARY)\((\d+)\)$/.exec(sql);
  if (m) return Number(m[3]) * (m[2] === 'CHAR' ? UTF8MB4 : 1);
  if (sql.startsWith('DECIMAL')) return 30;
  return 8;
}

/**
 * Types for the columns of one created table: VARCHARs beyond the row size limit become LONGTEXT (widest first), and
 * unbounded text keys share the InnoDB key length.
 */
export function tableColumnTypes(
  columns: ColumnInfo[],
  engine: SourceEngine,
  options: MappingOptions,
): ColumnTypeChoice[] {
  if (engine !== 'postgresql') return columns.map((c) => columnType(c, engine, options));
  // Unbounded text keys share what the other key columns leave of InnoDB's key length.
  const first = columns.map((c) => columnType(c, engine, options, 0));
  let fixedKeyBytes = 0;
  let unbounded = 0;
  columns.forEach((c, i) => {
    if (!c.isKey) return;
    if (/^VAR(CHAR|BINARY)\(0\)$/.test(first[i]!.sql)) unbounded++;
    else fixedKeyBytes += keyBytes(first[i]!.sql);
  });
  const keyChars = Math.max(1, Math.floor((INNODB_KEY_BYTES - fixedKeyBytes) / UTF8MB4 / Math.max(1, unbounded)));
  const types = columns.map((c, i) =>
    /^VAR(CHAR|BINARY)\(0\)$/.test(first[i]!.sql) ? columnType(c, engine, options, keyChars) : first[i]!,
  );
  const varcharBytes = (t: ColumnTypeChoice) => {
    const m = /^VARCHAR\((\d+)\)$/.exec(t.sql);
    return m ? Number(m[1]) * UTF8MB4 + 2 : 0;
  };
  let total = types.reduce((sum, t) => sum + varcharBytes(t), 0);
  const order = types
    .map((t, i) => ({ i, bytes: varcharBytes(t) }))
    .filter((x) => x.bytes > 0 && !columns[x.i]!.isKey)
    .sort((a, b) => b.bytes - a.bytes);
  for (const { i, bytes } of order) {
    if (total <= ROW_VARCHAR_BYTES) break;
    types[i] = { sql: 'LONGTEXT', lossy: `${types[i]!.sql} as LONGTEXT (the row would exceed MySQL's row size limit)` };
    total -= bytes;
  }
  return types;
}

// ---- values -------------------------------------------------------------------------------------------------------

/** The target column as the server describes it (information_schema.COLUMNS). */
export interface TargetColumnType {
  /** DATA_TYPE, lower case: `int`, `decimal`, `varchar`, `longtext`, `json`, `bit`, `point`, ... */
  dataType: string;
  /** COLUMN_TYPE, lower case: `decimal(10,2)`, `bigint(20) unsigned`, `varchar(20)`. */
  columnType: string;
}

const quote = (s: string): string => mysql.escape(s);

const INT_RE = /^-?\d+$/;
const DECIMAL_RE = /^(-?)(\d+)(?:\.(\d+))?$/;
const FLOAT_RE = /^-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;
const HEX_RE = /^\\x([0-9a-fA-F]*)$/;

const TEXT_TYPES = new Set([...MYSQL_CHAR_TYPES, 'enum', 'set']);
const INT_TYPES = new Set(MYSQL_INT_TYPES);
const BINARY_TYPES = new Set(MYSQL_BINARY_TYPES);
const GEOMETRY_TYPES = new Set(MYSQL_GEOMETRY_TYPES);

export function isTextType(dataType: string): boolean {
  return TEXT_TYPES.has(dataType);
}

function decimalArgs(columnType: string): [number, number] {
  const m = /\((\d+)(?:,(\d+))?\)/.exec(columnType);
  return m ? [Number(m[1]), Number(m[2] ?? 0)] : [10, 0];
}

/** Exact decimal text into DECIMAL(p,s), or a conversion error: never rounded, never truncated. */
function decimalEncoder(columnType: string, options: MappingOptions): Encoder {
  const [p, s] = decimalArgs(columnType);
  const hint =
    options.numericOverflow === 'error'
      ? `Widen the target column, or set numeric_overflow: text and recreate the table so such values are kept as exact text.`
      : 'Widen the target column (or make it a text column, which receives the exact value).';
  return (text) => {
    const m = DECIMAL_RE.exec(text);
    if (!m) {
      if (text === 'NaN' || /^-?Infinity$/.test(text)) {
        throw new ValueConversionError(`${text} cannot be stored in ${columnType.toUpperCase()}`, hint);
      }
      throw new ValueConversionError(`${JSON.stringify(text)} is not an exact decimal`, hint);
    }
    const intDigits = m[2]!.replace(/^0+/, '').length;
    const frac = (m[3] ?? '').replace(/0+$/, '');
    if (intDigits > p - s || frac.length > s) {
      throw new ValueConversionError(
        `${text} does not fit ${columnType.toUpperCase()} exactly (${intDigits} integer and ${frac.length} fraction digits)`,
        hint,
      );
    }
    return text;
  };
}

function floatEncoder(options: MappingOptions): Encoder {
  return (text) => {
    if (FLOAT_RE.test(text)) return text;
    if (text === 'NaN' || /^-?Infinity$/.test(text)) {
      if (options.floatNonfinite === 'null') return NULLED;
      throw new ValueConversionError(
        `${text} cannot be stored in a MySQL FLOAT/DOUBLE column`,
        'Set float_nonfinite: "null" to store NULL instead (a warning is logged), or fix the value at the source.',
      );
    }
    throw new ValueConversionError(`${JSON.stringify(text)} is not a number`, 'Check the source column type.');
  };
}

const OUT_OF_RANGE_HINT =
  'Set date_out_of_range: "null" to store NULL instead (a warning is logged), or fix the value at the source.';

/** Dates and timestamps MySQL cannot hold: infinity, BC, years above 9999. */
function outOfRange(text: string): boolean {
  return text === 'infinity' || text === '-infinity' || text.endsWith(' BC') || /^\d{5,}-/.test(text);
}

function dateEncoder(options: MappingOptions, convert: (text: string) => string = (t) => t): Encoder {
  return (text) => {
    if (outOfRange(text)) {
      if (options.dateOutOfRange === 'null') return NULLED;
      throw new ValueConversionError(`${text} is outside what MySQL dates can hold`, OUT_OF_RANGE_HINT);
    }
    return quote(convert(text));
  };
}

const TSTZ_RE = /^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(\.\d+)?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?$/;

/** `2024-01-02 03:04:05.123456+00` -> `2024-01-02 03:04:05.123456`; other offsets are converted to UTC. */
export function timestamptzToUtc(text: string): string {
  const m = TSTZ_RE.exec(text);
  if (!m) throw new ValueConversionError(`${JSON.stringify(text)} is not a timestamp`, 'Check the source column type.');
  const frac = m[7] ?? '';
  const offsetSec = m[8]
    ? (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0))
    : 0;
  if (offsetSec === 0) return `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}${frac}`;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  const d = new Date(ms - offsetSec * 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${frac}`;
}

/** `12:30:00.5+02` -> `10:30:00.5` (wrapping around midnight). */
export function timetzToUtc(text: string): string {
  const m = /^(\d\d):(\d\d):(\d\d)(\.\d+)?([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?$/.exec(text);
  if (!m)
    throw new ValueConversionError(
      `${JSON.stringify(text)} is not a time with time zone`,
      'Check the source column type.',
    );
  const offset = (m[5] === '-' ? -1 : 1) * (Number(m[6]) * 3600 + Number(m[7] ?? 0) * 60 + Number(m[8] ?? 0));
  let secs = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) - offset;
  secs = ((secs % 86_400) + 86_400) % 86_400;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(secs / 3600))}:${pad(Math.floor((secs % 3600) / 60))}:${pad(secs % 60)}${m[4] ?? ''}`;
}

/** NaN or an infinity inside an array: JSON has no number for it (a string would change the element's type). */
class NonfiniteElement extends Error {
  constructor(readonly value: string) {
    super(`${value} inside an array`);
  }
}

const NONFINITE_RE = /^[+-]?(?:NaN|Infinity)$/i;

/** JSON for one array element of the given kind (numbers stay numbers, JSON elements stay JSON). */
function elementToJson(kind: ValueKind | undefined): (text: string) => string {
  switch (kind) {
    case 'int':
      return intToJson;
    case 'float':
      return (t) => {
        if (NONFINITE_RE.test(t)) throw new NonfiniteElement(t);
        return floatToJson(t);
      };
    case 'bool':
      return boolToJson;
    case 'decimal':
      return (t) => {
        if (DECIMAL_RE.test(t)) return t.replace(/^(-?)0+(?=\d)/, '$1');
        if (NONFINITE_RE.test(t)) throw new NonfiniteElement(t);
        return stringToJson(t);
      };
    case 'json':
      return (t) => t;
    default:
      return stringToJson;
  }
}

/** PostgreSQL point `(1,2)` or WKT -> a geometry expression. */
function geometryEncoder(engine: SourceEngine): Encoder {
  return (text) => {
    const point = /^\(\s*([^,()\s]+)\s*,\s*([^,()\s]+)\s*\)$/.exec(text);
    if (engine === 'postgresql' && point) {
      if (!FLOAT_RE.test(point[1]!) || !FLOAT_RE.test(point[2]!)) {
        throw new ValueConversionError(`point ${text} has no finite coordinates`, 'MySQL points need finite numbers.');
      }
      return `ST_GeomFromText(${quote(`POINT(${point[1]} ${point[2]})`)})`;
    }
    if (engine === 'postgresql') {
      throw new ValueConversionError(
        `${JSON.stringify(text)} cannot be stored in a MySQL geometry column`,
        'Only PostgreSQL points map to MySQL geometry; make the target column a text column.',
      );
    }
    return `ST_GeomFromText(${quote(text)})`;
  };
}

/**
 * The encoder of one column: from the source column's kind to the target column's type. Returns null when the
 * target column cannot hold the source kind at all (the caller reports a SchemaMismatchError).
 */
export function encoderFor(
  col: ColumnInfo,
  engine: SourceEngine,
  target: TargetColumnType,
  options: MappingOptions,
): Encoder | null {
  const dt = target.dataType;
  const kind = col.kind;
  if (TEXT_TYPES.has(dt)) {
    // Text columns take the canonical text (enum, interval, uuid, arrays, ...), with the same conversions as the
    // dedicated types where the meaning would otherwise change.
    if (kind === 'timestamptz') return dateEncoder(options, timestamptzToUtc);
    if (kind === 'timetz') return (t) => quote(timetzToUtc(t));
    if (kind === 'bytes') return null;
    return quote;
  }
  if (dt === 'json') {
    if (kind === 'json') return quote;
    if (kind === 'array' || engine === 'postgresql') {
      const el = elementToJson(col.elementKind);
      return (t) => {
        try {
          return quote(arrayToJson(t, el));
        } catch (err) {
          if (err instanceof NonfiniteElement) {
            // As a scalar NaN in a FLOAT/DOUBLE column: stop, or NULL for the whole value when configured.
            if (options.floatNonfinite === 'null') return NULLED;
            throw new ValueConversionError(
              `${err.value} inside an array cannot be stored in a MySQL JSON column`,
              'Set float_nonfinite: "null" to store NULL for such arrays instead (a warning is logged), or fix the value at the source.',
            );
          }
          throw new ValueConversionError((err as Error).message, 'Check the source column type.');
        }
      };
    }
    return null;
  }
  if (INT_TYPES.has(dt)) {
    if (kind === 'bool') {
      return (t) => {
        if (t === 't' || t === 'true' || t === '1') return '1';
        if (t === 'f' || t === 'false' || t === '0') return '0';
        throw new ValueConversionError(`${JSON.stringify(t)} is not a boolean`, 'Check the source column type.');
      };
    }
    if (kind !== 'int') return null;
    return (t) => {
      if (INT_RE.test(t)) return t;
      throw new ValueConversionError(`${JSON.stringify(t)} is not an integer`, 'Check the source column type.');
    };
  }
  if (dt === 'decimal' || dt === 'numeric') {
    if (kind !== 'decimal' && kind !== 'int') return null;
    return decimalEncoder(target.columnType, options);
  }
  if (dt === 'float' || dt === 'double' || dt === 'real') {
    if (kind !== 'float' && kind !== 'int' && kind !== 'decimal') return null;
    return floatEncoder(options);
  }
  if (dt === 'bit') {
    if (kind !== 'bits' && kind !== 'bool' && kind !== 'int') return null;
    if (kind === 'bool') return (t) => (t === 't' || t === '1' ? "b'1'" : "b'0'");
    if (kind === 'int') return (t) => (INT_RE.test(t) ? t : quote(t));
    return (t) => {
      if (!/^[01]*$/.test(t))
        throw new ValueConversionError(`${JSON.stringify(t)} is not a bit string`, 'Check the source column type.');
      return t === '' ? "b'0'" : `b'${t}'`;
    };
  }
  if (BINARY_TYPES.has(dt)) {
    if (kind !== 'bytes') return kind === 'text' || kind === 'json' || kind === 'other' ? quote : null;
    return (t) => {
      const m = HEX_RE.exec(t);
      if (!m) throw new ValueConversionError('a bytes value is not in \\x hex form', 'Check the source column type.');
      return `X'${m[1]}'`;
    };
  }
  if (dt === 'date') {
    if (kind !== 'date' && kind !== 'timestamp' && kind !== 'timestamptz') return null;
    return dateEncoder(options, kind === 'timestamptz' ? timestamptzToUtc : (t) => t);
  }
  if (dt === 'datetime' || dt === 'timestamp') {
    if (kind === 'timestamptz') return dateEncoder(options, timestamptzToUtc);
    if (kind === 'timestamp' || kind === 'date') return dateEncoder(options);
    return null;
  }
  if (dt === 'time') {
    if (kind === 'time') return quote;
    if (kind === 'timetz') return (t) => quote(timetzToUtc(t));
    return null;
  }
  if (GEOMETRY_TYPES.has(dt)) {
    if (kind !== 'geometry') return null;
    return geometryEncoder(engine);
  }
  // MariaDB UUID / INET4 / INET6 and anything else: the text form.
  return quote;
}
