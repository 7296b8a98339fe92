/**
 * The normalized change event every source produces and every target consumes.
 *
 * Values travel in their source's canonical text form (PostgreSQL's output format; for MySQL the forms documented in
 * connectors/mysql/README.md), described by the column's type. Text keeps meaning (int8, numeric, timestamps with
 * microseconds, infinity) and costs nothing to decode; encoders convert per type when they need JSON.
 */

export type Op = 'insert' | 'update' | 'delete' | 'truncate' | 'read' | 'message';

/** A PostgreSQL TOAST column that was not resent: the value did not change and is not known here. */
export const UNCHANGED: unique symbol = Symbol.for('tributary.unchanged');
export type Unchanged = typeof UNCHANGED;

export type CellValue = string | null | Unchanged;
export type Row = Record<string, CellValue>;

export interface TableRef {
  /** PostgreSQL schema, or MySQL database. */
  schema: string;
  name: string;
}

/** Broad family of a column's type, enough for encoders and cross-engine mapping to pick a representation. */
export type ValueKind =
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
  | 'timetz'
  | 'timestamp'
  | 'timestamptz'
  | 'interval'
  | 'bits'
  | 'array'
  | 'enum'
  | 'set'
  | 'geometry'
  | 'other';

export interface ColumnInfo {
  name: string;
  /** The source's own type name with modifiers, e.g. `numeric(10,2)`, `timestamp(3) with time zone`, `bigint unsigned`. */
  type: string;
  kind: ValueKind;
  /** PostgreSQL type OID when the source is PostgreSQL. */
  typeOid?: number;
  /** For arrays: the element's kind. */
  elementKind?: ValueKind;
  nullable?: boolean;
  /** Part of the primary key (or replica identity). */
  isKey: boolean;
  /**
   * The value (canonical text) that rows which existed before this column was added read for it, when the source
   * gave them one without writing them to its log (PostgreSQL 11+ `ADD COLUMN ... DEFAULT <constant>` keeps it in
   * `pg_attribute.attmissingval`). A target that adds the column gives existing rows this value. Absent or null:
   * existing rows read NULL (or the source does not know).
   */
  missingValue?: string | null;
  /**
   * Set with `missingValue` on a column added under the name of one dropped before: the target's column of that name
   * holds the dropped column's values and type, so it is dropped and added anew.
   */
  replacesDropped?: boolean;
  /**
   * The source changed this column's type with a rewrite its log does not carry and copies the table's rows again
   * (the copy empties the target table first): a target converts its column to the new type even where the old values
   * would not convert exactly, since they are replaced.
   */
  retyped?: boolean;
}

/**
 * A column change known by column identity (a source that tracks it: PostgreSQL attribute numbers). A rename is not
 * a drop and an add; a column dropped and added again under its name is a drop and an add.
 */
export type ColumnChange =
  | { kind: 'rename'; from: string; to: string }
  | { kind: 'drop'; column: string }
  | { kind: 'add'; column: string };

export interface TableSchema {
  table: TableRef;
  columns: ColumnInfo[];
  /**
   * How this shape differs from the table's previous one, when the source knows it by identity: a target applies these
   * (renames, drops) before adding columns by name. Absent: compare by name.
   */
  changes?: ColumnChange[];
  /** The table's previous name, when it was renamed at the source. */
  renamedFrom?: TableRef;
  /** Primary-key (or replica identity) column names, in key order; empty when the table has none. */
  keyColumns: string[];
  /** How much of the old row the source sends on update/delete: `full` for REPLICA IDENTITY FULL or a MySQL FULL image. */
  beforeImage: 'key' | 'full' | 'none';
}

export type SourcePosition =
  | {
      kind: 'postgres';
      /** LSN of this change (`X/Y`). */
      lsn: string;
      /** Commit end LSN of the transaction this change belongs to, when known. */
      commitLsn?: string;
      /**
       * LSN of the commit record of the transaction this change belongs to (from its Begin message): known for every
       * streamed change, and the same when the change is sent again after a restart.
       */
      commitRecordLsn?: string;
      /** End LSN of the previous committed transaction (Debezium's `sequence[0]`). */
      lastCommitLsn?: string;
    }
  | {
      kind: 'mysql';
      file: string;
      pos: number;
      /** GTID of the transaction (MySQL `uuid:n`, MariaDB `domain-server-seq`). */
      gtid?: string;
      serverId: number;
      /** Index of the row within its binlog rows event. */
      row: number;
    };

export interface SourceInfo {
  connector: 'postgresql' | 'mysql';
  /** Database name at the source. */
  db: string;
  position: SourcePosition;
  /** Transaction id (PostgreSQL xid, MySQL GTID when present). */
  txId?: string;
  /** Commit time at the source, milliseconds since the epoch. */
  commitTimeMs: number;
  /** The same instant in microseconds, when the source knows it that finely (PostgreSQL commit timestamps). */
  commitTimeUs?: number;
  /**
   * `false` for streamed changes; snapshot marker otherwise, as Debezium writes it: `first` / `last` for the first and
   * last read of the whole snapshot, `first_in_data_collection` / `last_in_data_collection` for a table's first and
   * last row, `true` in between.
   */
  snapshot: false | 'true' | 'first' | 'last' | 'first_in_data_collection' | 'last_in_data_collection';
}

export interface LogicalMessage {
  prefix: string;
  /** Message content, base64 (it may be binary). */
  contentBase64: string;
  transactional: boolean;
}

export interface ChangeEvent {
  op: Op;
  table: TableRef;
  /** Relation metadata in force for this event; shared between events of the same table, never copied per event. */
  schema: TableSchema;
  /** Key columns (null for truncate and messages, or when the table has no key). */
  key: Row | null;
  before: Row | null;
  after: Row | null;
  source: SourceInfo;
  /** Only for `op: 'message'`. */
  message?: LogicalMessage;
  /** Only for `op: 'truncate'`: PostgreSQL's CASCADE / RESTART IDENTITY options. */
  truncate?: { cascade: boolean; restartIdentity: boolean };
}

export function tableId(t: TableRef): string {
  return `${t.schema}.${t.name}`;
}
