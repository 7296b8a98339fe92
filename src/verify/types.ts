/** Shared shapes of `tributary verify`: tables, columns, differences and the report. */

export type Engine = 'postgres' | 'mysql';

/** A table as schema (PostgreSQL) or database (MySQL) plus name. */
export interface TableName {
  schema: string;
  name: string;
}

export function tableLabel(t: TableName): string {
  return `${t.schema}.${t.name}`;
}

/**
 * What a column holds, as far as comparing goes. Decides the canonical text each side hashes (see docs/verify.md).
 */
export type Kind =
  | 'bool'
  | 'int'
  | 'decimal'
  | 'float'
  | 'text'
  | 'bytes'
  | 'json'
  | 'uuid'
  | 'date'
  | 'time'
  /** PostgreSQL interval: compared as a MySQL TIME when paired with one (MySQL TIME replicates into interval). */
  | 'interval'
  | 'timestamp'
  | 'timestamptz'
  | 'bits'
  /** PostgreSQL array: compared as JSON when paired with a JSON column (arrays replicate into MySQL JSON). */
  | 'array'
  | 'other';

export interface ColumnDef {
  name: string;
  /** The server's type name, for messages (`numeric(12,2)`, `varchar(20)`). */
  type: string;
  kind: Kind;
  /** Collation name of a text column; PostgreSQL `default` is resolved to the database collation. */
  collation?: string;
  /** MySQL tinyint(1) / bit(1): compared as a boolean when the other side's column is one. */
  maybeBool?: boolean;
  /** MySQL bit(n) width. */
  bitWidth?: number;
}

export interface TableDef {
  table: TableName;
  columns: ColumnDef[];
  /** Primary-key column names in key order; empty when the table has none. */
  primaryKey: string[];
}

/** A primary-key value: the canonical text of each key column. */
export type KeyValue = string[];

export type DifferenceKind = 'missing_at_target' | 'extra_at_target' | 'different';

export interface Difference {
  kind: DifferenceKind;
  /** Key column -> canonical value (tables with a key). */
  key?: Record<string, string>;
  /** Columns whose values differ (kind `different`). */
  columns?: string[];
  /** Canonical values of the differing columns (or of the whole row for keyless tables), per side. */
  source?: Record<string, string | null>;
  target?: Record<string, string | null>;
  /** Keyless tables: how often the row occurs on each side. */
  source_count?: number;
  target_count?: number;
}

export type TableStatus = 'equal' | 'different' | 'error';

export interface TableReport {
  source: string;
  target: string;
  status: TableStatus;
  /** Primary-key columns, or null for a table compared as a multiset of rows. */
  key: string[] | null;
  source_rows?: number;
  target_rows?: number;
  /** Key ranges (or hash buckets for keyless tables) compared, and how many of them differed. */
  ranges?: number;
  differing_ranges?: number;
  /** Columns compared loosely (floats rounded, json without whitespace...). */
  loose_columns?: string[];
  /** Schema-level findings: columns missing at the target (a difference), extra columns at the target (ignored). */
  schema_notes?: string[];
  differences: Difference[];
  /** True when more differences exist than were listed (--max-diffs). */
  truncated?: boolean;
  error?: string;
  seconds?: number;
}

export interface PipelineReport {
  name: string;
  status: TableStatus;
  error?: string;
  tables: TableReport[];
}

export interface VerifyReport {
  status: TableStatus;
  pipelines: PipelineReport[];
}
