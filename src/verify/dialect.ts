import { parseQualifiedName } from '../config/table-name.ts';
import type { Db } from './db.ts';
import type { ColumnDef, Engine, Kind, TableDef, TableName } from './types.ts';

/**
 * The SQL one engine needs for verify: its catalog, the canonical text of a value, literals for key boundaries and
 * the hash aggregates. Everything verify compares is computed inside the database; Node only sees counts, sums and,
 * for small differing ranges, keys with row hashes.
 */
export interface Dialect {
  engine: Engine;
  /** Tables of the source scope (explicit list or every user table), in a stable order. */
  listTables(db: Db, scope: TableScope): Promise<TableName[]>;
  /** The table's columns and primary key, or undefined when it does not exist. */
  describeTable(db: Db, table: TableName): Promise<TableDef | undefined>;
  quoteTable(table: TableName): string;
  quoteIdent(name: string): string;
  /**
   * Canonical text of a non-null value of column `ref`. `kind` may differ from the column's own kind when the other
   * side's column asks for it (bool vs tinyint(1), json vs text, float vs decimal). `cross`: the other side is the
   * other engine (canonical forms); otherwise the plain text cast is enough.
   */
  canonical(ref: string, column: ColumnDef, kind: Kind, cross: boolean): string;
  /** SHA-256 (lowercase hex) over the pieces, each already null-safe text (MySQL 9.7 has no MD5()). */
  rowHash(pieces: string[]): string;
  /** `piece` for one value: a marker for null, else char length + ':' + text (unambiguous concatenation). */
  nullSafePiece(ref: string, canonical: string): string;
  /** count and sum of a 60-bit slice of the hex hash `h`, both as text, over `from`. */
  countAndSum(hashColumn: string): string;
  /** Comparison expression and literal for a key column, byte-order (binary) or native. */
  keyOrderExpr(ref: string, column: ColumnDef, canonical: string, binary: boolean): string;
  keyLiteral(value: string, column: ColumnDef, kind: Kind, binary: boolean): string;
  /** Row comparison of the key tuple with a literal tuple (`>` or `<=`). */
  tupleCompare(exprs: string[], literals: string[], op: '>' | '<='): string;
  /** Whether byte order is the native order of this text column (C collation, binary columns). */
  isByteOrdered(column: ColumnDef): boolean;
}

export interface TableScope {
  /** Explicit schema.table list of the source config. */
  tables?: string[];
  /** MySQL: databases to take entirely. */
  databases?: string[];
}

/** A configured `schema.table` (parts may be double-quoted); a bare name has no schema. */
export function parseTableName(text: string): TableName {
  return parseQualifiedName(text) ?? { schema: '', name: text };
}

/** Literal-safe text for SQL string literals: single quotes doubled (both engines, standard strings). */
export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

export function utf8Hex(value: string): string {
  return Buffer.from(value, 'utf8').toString('hex');
}

/** Key tuple comparison spelled out with OR/AND (range access on engines that do not optimize row constructors). */
export function expandedTupleCompare(exprs: string[], literals: string[], op: '>' | '<='): string {
  const strict = op === '>' ? '>' : '<';
  const last = op;
  const parts: string[] = [];
  for (let i = 0; i < exprs.length; i++) {
    const eqs = exprs.slice(0, i).map((e, j) => `${e} = ${literals[j]}`);
    const cmp = `${exprs[i]} ${i === exprs.length - 1 ? last : strict} ${literals[i]}`;
    parts.push(eqs.length ? `(${[...eqs, cmp].join(' AND ')})` : cmp);
  }
  return parts.length === 1 ? parts[0]! : `(${parts.join(' OR ')})`;
}
