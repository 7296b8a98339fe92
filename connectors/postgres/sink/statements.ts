/**
 * SQL text for applying runs of rows to one target table. Every statement takes one `text[]` parameter per column
 * (unnest), so a statement's text depends only on the table's shape, whatever the row count: it is prepared once per
 * connection, and the 65,535 bind-parameter limit never applies. Values are cast from their canonical text to the
 * column's type without modifiers; the assignment then checks lengths and precisions (an explicit cast would
 * truncate silently).
 */

import { type Row, UNCHANGED } from '../../../src/core/change-event.ts';
import type { SqlTargetTable } from '../../sql/transactional-sql-target.ts';
import { quoteIdent } from '../identifiers.ts';

export interface TargetColumn {
  name: string;
  /** format_type with modifiers, e.g. `numeric(10,2)`. */
  type: string;
  /** Type values are cast to (no modifiers). */
  cast: string;
}

/** A synced target table: what the shared shell and planner need (key, identity, foreign keys), and its columns. */
export interface TargetTable extends SqlTargetTable {
  schema: string;
  name: string;
  /** Quoted `"schema"."name"`. */
  qname: string;
  columns: Map<string, TargetColumn>;
}

function castOf(table: TargetTable, column: string): string {
  const c = table.columns.get(column);
  if (!c) throw new Error(`column ${column} is not known for ${table.qname}`);
  return c.cast;
}

function unnestFrom(count: number): string {
  const params = Array.from({ length: count }, (_, i) => `$${i + 1}::text[]`).join(', ');
  const names = Array.from({ length: count }, (_, i) => `x${i + 1}`).join(', ');
  return `unnest(${params}) as u(${names})`;
}

/** Upsert by primary key; `columns` must include every key column. */
export function upsertSql(table: TargetTable, columns: string[]): string {
  const list = columns.map(quoteIdent).join(', ');
  const select = columns.map((c, i) => `u.x${i + 1}::${castOf(table, c)}`).join(', ');
  const keys = new Set(table.keyColumns);
  const rest = columns.filter((c) => !keys.has(c));
  const action =
    rest.length === 0
      ? 'do nothing'
      : `do update set ${rest.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(', ')}`;
  return `insert into ${table.qname} as t (${list}) select ${select} from ${unnestFrom(columns.length)} on conflict (${table.keyColumns.map(quoteIdent).join(', ')}) ${action}`;
}

/**
 * Plain multi-row insert (tables without a key). A table with no columns takes the row count as its one parameter.
 */
export function insertSql(table: TargetTable, columns: string[]): string {
  if (columns.length === 0) return `insert into ${table.qname} select from generate_series(1, $1::int)`;
  const list = columns.map(quoteIdent).join(', ');
  const select = columns.map((c, i) => `u.x${i + 1}::${castOf(table, c)}`).join(', ');
  return `insert into ${table.qname} (${list}) select ${select} from ${unnestFrom(columns.length)}`;
}

/** Delete by key; a missing row is no error. Parameters: one array per key column. */
export function deleteSql(table: TargetTable): string {
  const where = table.keyColumns.map((c, i) => `t.${quoteIdent(c)} = u.x${i + 1}::${castOf(table, c)}`).join(' and ');
  return `delete from ${table.qname} as t using ${unnestFrom(table.keyColumns.length)} where ${where}`;
}

/**
 * Updates the given columns of rows found by key. Parameters: one array per set column, then one per key column
 * (the old key, which differs from the new one when the update changes the key).
 */
export function updateSql(table: TargetTable, setColumns: string[]): string {
  const n = setColumns.length;
  const set = setColumns.map((c, i) => `${quoteIdent(c)} = u.x${i + 1}::${castOf(table, c)}`).join(', ');
  const where = table.keyColumns
    .map((c, i) => `t.${quoteIdent(c)} = u.x${n + i + 1}::${castOf(table, c)}`)
    .join(' and ');
  return `update ${table.qname} as t set ${set} from ${unnestFrom(n + table.keyColumns.length)} where ${where}`;
}

/** NULL-safe match of one whole row, compared as text (json and geometric types have no equality operator). */
function rowMatch(table: TargetTable, matchColumns: string[], firstParam: number): string {
  if (matchColumns.length === 0) return 'true';
  return matchColumns
    .map((c, i) => `${quoteIdent(c)}::text is not distinct from $${firstParam + i}::text::${castOf(table, c)}::text`)
    .join(' and ');
}

/** Deletes exactly one row equal to the old row (tables without a key, REPLICA IDENTITY FULL). */
export function deleteOneSql(table: TargetTable, matchColumns: string[]): string {
  return `delete from ${table.qname} where ctid = (select ctid from ${table.qname} where ${rowMatch(table, matchColumns, 1)} limit 1)`;
}

/** Updates exactly one row equal to the old row. Parameters: set values, then the old row's values. */
export function updateOneSql(table: TargetTable, setColumns: string[], matchColumns: string[]): string {
  const set = setColumns.map((c, i) => `${quoteIdent(c)} = $${i + 1}::text::${castOf(table, c)}`).join(', ');
  return `update ${table.qname} set ${set} where ctid = (select ctid from ${table.qname} where ${rowMatch(table, matchColumns, setColumns.length + 1)} limit 1)`;
}

export function truncateSql(tables: TargetTable[], restartIdentity: boolean): string {
  return `truncate ${tables.map((t) => t.qname).join(', ')}${restartIdentity ? ' restart identity' : ''}`;
}

/** Column-major text arrays for an unnest statement. */
export function columnArrays(columns: string[], rows: Row[]): (string | null)[][] {
  return columns.map((c) =>
    rows.map((r) => {
      const v = r[c];
      return v === undefined || v === null || v === UNCHANGED ? null : v;
    }),
  );
}
