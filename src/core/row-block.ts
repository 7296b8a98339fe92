import type { ChangeEvent, SourceInfo, TableRef, TableSchema } from './change-event.ts';

/**
 * Snapshot rows of one table as their source read them in bulk, not yet one event each: a source that reads a table
 * in its server's bulk text (PostgreSQL's COPY) hands a chunk on as blocks, and a target that loads that text as it
 * is (a PostgreSQL target's COPY FROM) writes the bytes without decoding a row. Any other target asks for the
 * block's events, which are exactly the `read` events the source would otherwise have sent.
 */
export interface RowBlock {
  /**
   * How `data` is written; a target loads it as it is only when it reads this format. `postgres-copy-data`: the
   * CopyData messages of a PostgreSQL `COPY ... TO STDOUT` in text format, one row each.
   */
  readonly format: 'postgres-copy-data';
  readonly table: TableRef;
  readonly schema: TableSchema;
  /** The columns of each line's fields, in order. */
  readonly columns: readonly string[];
  /** Complete rows only. */
  readonly data: Buffer;
  readonly rows: number;
  /** The source block of the rows that carry no snapshot marker of their own. */
  readonly source: SourceInfo;
  /** The rows as read events (decoded on each call), with the first and last rows' snapshot markers. */
  events(): ChangeEvent[];
}
