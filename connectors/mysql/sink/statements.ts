/**
 * SQL text for the MySQL target. Values arrive as SQL literals already encoded per column (type-mapping.ts), so
 * statements carry any number of rows without the 65,535-placeholder limit of prepared statements.
 */

import { quoteIdent } from '../identifiers.ts';
import type { TargetColumn, TargetTable } from './table-sync.ts';

export function columnList(columns: string[]): string {
  return columns.map(quoteIdent).join(', ');
}

/** `INSERT INTO t (cols) VALUES ` (rows follow). */
export function insertPrefix(table: TargetTable, columns: string[]): string {
  return `INSERT INTO ${table.qname} (${columnList(columns)}) VALUES `;
}

/** ` ON DUPLICATE KEY UPDATE c = VALUES(c), ...`: every non-key column, or a no-op on the key when there is none. */
export function upsertSuffix(table: TargetTable, columns: string[]): string {
  const keys = new Set(table.keyColumns);
  const set = columns.filter((c) => !keys.has(c));
  const assign = (set.length > 0 ? set : [table.keyColumns[0]!]).map(
    (c) => `${quoteIdent(c)} = VALUES(${quoteIdent(c)})`,
  );
  return ` ON DUPLICATE KEY UPDATE ${assign.join(', ')}`;
}

/** A condition matching one key: `k = lit` or `(k1 = a AND k2 = b)`. */
export function keyCondition(table: TargetTable, literals: string[]): string {
  if (literals.length === 1) return `${quoteIdent(table.keyColumns[0]!)} = ${literals[0]}`;
  return `(${table.keyColumns.map((k, i) => `${quoteIdent(k)} = ${literals[i]}`).join(' AND ')})`;
}

/** `DELETE FROM t WHERE k IN (` ... `)` for one key column; OR-ed conditions for composite keys. */
export function deletePrefix(table: TargetTable): string {
  return table.keyColumns.length === 1
    ? `DELETE FROM ${table.qname} WHERE ${quoteIdent(table.keyColumns[0]!)} IN (`
    : `DELETE FROM ${table.qname} WHERE `;
}

export function deleteItem(table: TargetTable, literals: string[]): string {
  return table.keyColumns.length === 1 ? literals[0]! : keyCondition(table, literals);
}

export function deleteSeparator(table: TargetTable): string {
  return table.keyColumns.length === 1 ? ', ' : ' OR ';
}

export function deleteSuffix(table: TargetTable): string {
  return table.keyColumns.length === 1 ? ')' : '';
}

export function updateByKeySql(table: TargetTable, set: [string, string][], keyLiterals: string[]): string {
  return `UPDATE ${table.qname} SET ${set.map(([c, v]) => `${quoteIdent(c)} = ${v}`).join(', ')} WHERE ${keyCondition(table, keyLiterals)}`;
}

/**
 * NULL-safe equality of a column with a literal. MySQL's JSON type compares as JSON, so the literal is cast; a float
 * literal is cast to the column's precision, so a FLOAT holds exactly the value it is compared with (a decimal
 * literal such as 0.1 never equals the single-precision value stored from it).
 */
export function nullSafeMatch(column: TargetColumn, literal: string, flavor: 'mariadb' | 'mysql'): string {
  let rhs = literal;
  if (literal !== 'NULL') {
    if (flavor === 'mysql' && column.dataType === 'json') rhs = `CAST(${literal} AS JSON)`;
    else if (column.dataType === 'float') rhs = `CAST(${literal} AS FLOAT)`;
    else if (column.dataType === 'double' || column.dataType === 'real') rhs = `CAST(${literal} AS DOUBLE)`;
  }
  return `${quoteIdent(column.name)} <=> ${rhs}`;
}

export function deleteOneSql(table: TargetTable, match: string[]): string {
  return `DELETE FROM ${table.qname} WHERE ${match.join(' AND ')} LIMIT 1`;
}

export function updateOneSql(table: TargetTable, set: [string, string][], match: string[]): string {
  return `UPDATE ${table.qname} SET ${set.map(([c, v]) => `${quoteIdent(c)} = ${v}`).join(', ')} WHERE ${match.join(' AND ')} LIMIT 1`;
}
