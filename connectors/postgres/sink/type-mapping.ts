/**
 * MySQL / MariaDB source columns -> PostgreSQL column types, and the few canonical values (docs/value-forms.md) a
 * PostgreSQL column of the mapped type does not accept. Used when an event's `source.connector` is `mysql`; the one
 * place where this direction's type decisions live (docs/type-mapping.md has the same table).
 *
 * Two halves:
 * - `pgColumnType` picks the PostgreSQL type for a column from the source's ColumnInfo (MySQL type text and kind);
 *   `mappedSchema` gives a TableSchema whose column types are those, for creating and checking target tables.
 * - `MysqlValueConverter` converts the values that need it. Per TableSchema it keeps (WeakMap) the list of columns
 *   that need work; a table without such columns costs one map lookup per event, and columns whose text passes
 *   unchanged are never looked at.
 */
import type { ColumnInfo, Row, TableSchema, ValueKind } from '../../../src/core/change-event.ts';
import { SchemaMismatchError } from '../../../src/errors.ts';
import { MYSQL_GEOMETRY_TYPES, parseMysqlType } from '../../mysql/type-names.ts';

export type ZeroDatePolicy = 'error' | 'null';

export interface PgTypeChoice {
  /** PostgreSQL type for CREATE TABLE / ADD COLUMN (its format_type spelling). */
  type: string;
  /** What the mapping loses, when it loses anything (logged once when a table is first seen). */
  lossy?: string;
}

/** Fractional-second digits of a MySQL temporal type (0 when not given), within PostgreSQL's 0..6. */
function fsp(args: number[]): number {
  return Math.min(Math.max(args[0] ?? 0, 0), 6);
}

/** The PostgreSQL type a MySQL column is created as. */
export function pgColumnType(col: Pick<ColumnInfo, 'type' | 'kind'>): PgTypeChoice {
  if (col.kind === 'json') return { type: 'json' };
  if (col.kind === 'uuid') return { type: 'uuid' };
  const { base, args, unsigned } = parseMysqlType(col.type);
  switch (base) {
    case 'tinyint':
      return { type: 'smallint' };
    case 'smallint':
      return { type: unsigned ? 'integer' : 'smallint' };
    case 'mediumint':
      return { type: 'integer' };
    case 'int':
    case 'integer':
      return { type: unsigned ? 'bigint' : 'integer' };
    case 'bigint':
      return { type: unsigned ? 'numeric(20,0)' : 'bigint' };
    case 'decimal':
    case 'numeric':
    case 'fixed':
      return { type: `numeric(${args[0] ?? 10},${args[1] ?? 0})` };
    case 'float':
      return { type: 'real' };
    case 'double':
    case 'real':
      return { type: 'double precision' };
    case 'bit':
      return { type: `bit(${args[0] ?? 1})` };
    case 'char':
    case 'varchar':
      return { type: `character varying(${Math.max(args[0] ?? 1, 1)})` };
    case 'tinytext':
    case 'text':
    case 'mediumtext':
    case 'longtext':
      return { type: 'text' };
    case 'binary':
    case 'varbinary':
    case 'tinyblob':
    case 'blob':
    case 'mediumblob':
    case 'longblob':
      return { type: 'bytea' };
    case 'enum':
      return { type: 'text', lossy: 'ENUM as text: the label set and the labels’ order are not kept' };
    case 'set':
      return { type: 'text', lossy: 'SET as text (labels joined by ","): the label set is not kept' };
    case 'json':
      return { type: 'json' };
    case 'date':
      return { type: 'date', lossy: 'zero dates are stored per mysql_zero_dates' };
    case 'datetime':
      return { type: `timestamp(${fsp(args)}) without time zone`, lossy: 'zero dates are stored per mysql_zero_dates' };
    case 'timestamp':
      return { type: `timestamp(${fsp(args)}) with time zone`, lossy: 'zero dates are stored per mysql_zero_dates' };
    case 'time':
      return {
        type: `interval(${fsp(args)})`,
        lossy: 'TIME as interval: fractional seconds read back without trailing zeros',
      };
    case 'year':
      return { type: 'smallint', lossy: 'YEAR as smallint: the zero year 0000 reads back as 0' };
    default:
      if (MYSQL_GEOMETRY_TYPES.includes(base)) {
        return { type: 'text', lossy: 'geometry as WKT text: not a spatial type, SRID dropped' };
      }
      return { type: 'text', lossy: `${col.type} as text` };
  }
}

const mapped = new WeakMap<TableSchema, TableSchema>();

/** The source table with PostgreSQL column types (cached per TableSchema object, shared by its events). */
export function mappedSchema(schema: TableSchema): TableSchema {
  let m = mapped.get(schema);
  if (!m) {
    m = { ...schema, columns: schema.columns.map((c) => ({ ...c, type: pgColumnType(c).type })) };
    mapped.set(schema, m);
  }
  return m;
}

// ---- values ------------------------------------------------------------------------------------------------------

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * True when the date part (`YYYY-MM-DD...`) is a date PostgreSQL accepts. MySQL also stores zero dates
 * (`0000-00-00`), dates with zero parts (`2024-00-15`, year 0000) and, with ALLOW_INVALID_DATES, `2024-02-30`.
 */
export function isPgDate(text: string): boolean {
  const y = Number(text.slice(0, 4));
  const m = Number(text.slice(5, 7));
  const d = Number(text.slice(8, 10));
  if (!(y >= 1 && m >= 1 && m <= 12 && d >= 1)) return false;
  if (d <= 28) return true;
  if (m === 2 && d === 29) return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  return d <= DAYS_IN_MONTH[m - 1]!;
}

const DATE_KINDS = new Set<ValueKind>(['date', 'timestamp', 'timestamptz']);

interface ColumnWork {
  name: string;
  isKey: boolean;
}

/** A value replaced by NULL per `mysql_zero_dates: "null"` (reported by the caller: once per column, counted). */
export interface NulledValue {
  column: string;
  value: string;
  row: Row;
}

/**
 * Converts the values of MySQL rows that the mapped PostgreSQL types do not accept as they are. Today only dates:
 * every other mapped type takes the canonical text unchanged (TIME into interval, SET/ENUM/WKT into text, BIT into
 * bit(n), `\x` hex into bytea, YEAR `0000` into smallint).
 */
export class MysqlValueConverter {
  private readonly work = new WeakMap<TableSchema, ColumnWork[] | null>();

  constructor(
    private readonly zeroDates: ZeroDatePolicy,
    private readonly onNulled: (schema: TableSchema, nulled: NulledValue) => void,
  ) {}

  /** Columns of this table whose values need a look; null when none do. */
  columnsToConvert(schema: TableSchema): ColumnWork[] | null {
    let w = this.work.get(schema);
    if (w === undefined) {
      const cols = schema.columns.filter((c) => DATE_KINDS.has(c.kind)).map((c) => ({ name: c.name, isKey: c.isKey }));
      w = cols.length > 0 ? cols : null;
      this.work.set(schema, w);
    }
    return w;
  }

  /** The row as the target stores it: the same object when nothing changes, else a converted copy. */
  convertRow(schema: TableSchema, row: Row | null): Row | null {
    if (!row) return row;
    const work = this.columnsToConvert(schema);
    if (!work) return row;
    let out: Row | null = null;
    for (const c of work) {
      const v = row[c.name];
      if (typeof v !== 'string' || isPgDate(v)) continue;
      if (this.zeroDates !== 'null' || c.isKey) {
        const key =
          schema.keyColumns.length > 0
            ? JSON.stringify(Object.fromEntries(schema.keyColumns.map((k) => [k, row[k]])))
            : 'none';
        throw new SchemaMismatchError(
          `table ${schema.table.schema}.${schema.table.name} column ${c.name} (key ${key}): the MySQL date ${JSON.stringify(v)} does not exist in PostgreSQL${c.isKey ? ', and a column that is part of the primary key cannot be NULL' : ''}`,
          c.isKey
            ? 'Change the value at the source (mysql_zero_dates: "null" does not apply to primary-key columns).'
            : 'Set mysql_zero_dates: "null" in the target config to store such dates as NULL (logged once per column), or change the value at the source.',
        );
      }
      out ??= { ...row };
      out[c.name] = null;
      this.onNulled(schema, { column: c.name, value: v, row });
    }
    return out ?? row;
  }
}
