import type { ChangeEvent, Row, SourceInfo, TableRef, TableSchema } from '../../../src/core/change-event.ts';
import type { RowBlock } from '../../../src/core/row-block.ts';
import { CopyTextParser } from './copy-text.ts';

/** A CopyData message's header: its code and length. */
const HEADER = 5;
const BLANK = 0x20;

/**
 * Rows of the initial snapshot as the CopyData messages the server sent for a `COPY ... TO STDOUT` in text format
 * (see src/core/row-block.ts). A PostgreSQL target sends `data` as it is into its `COPY ... FROM STDIN`, whose
 * CopyData messages have the same form; `events()` parses it into the same `read` events the row-by-row path makes:
 * the key columns as the event key, Debezium's snapshot markers on the first and last rows when given.
 */
export class CopyTextBlock implements RowBlock {
  readonly format = 'postgres-copy-data';
  readonly table: TableRef;
  readonly columns: readonly string[];
  /** The first row's source block when it carries a marker (`first`, `first_in_data_collection`). */
  firstSource: SourceInfo | null = null;
  /** The last row's source block when it carries a marker (`last`, `last_in_data_collection`). */
  lastSource: SourceInfo | null = null;

  constructor(
    readonly schema: TableSchema,
    readonly data: Buffer,
    readonly rows: number,
    readonly source: SourceInfo,
  ) {
    this.table = schema.table;
    this.columns = schema.columns.map((c) => c.name);
  }

  events(): ChangeEvent[] {
    // The parser reads lines: a copy with each message's header blanked (a length byte may be a line end).
    const text = Buffer.from(this.data);
    for (let i = 0; i < text.length; ) {
      const end = i + 1 + text.readUInt32BE(i + 1);
      text.fill(BLANK, i, i + HEADER);
      i = end;
    }
    const parser = new CopyTextParser(this.columns, HEADER);
    const { rows } = parser.push(text);
    parser.end();
    if (rows.length !== this.rows)
      throw new Error(`a COPY text block of ${this.rows} rows of ${this.table.name} parsed into ${rows.length}`);
    const keyCols = this.schema.keyColumns;
    const key0 = keyCols.length === 1 ? keyCols[0]! : null;
    const events: ChangeEvent[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      let key: Row | null = null;
      if (key0 !== null) {
        key = { [key0]: row[key0] ?? null };
      } else if (keyCols.length > 0) {
        key = {};
        for (const k of keyCols) key[k] = row[k] ?? null;
      }
      let source = this.source;
      if (i === 0 && this.firstSource) source = this.firstSource;
      if (i === rows.length - 1 && this.lastSource) source = this.lastSource;
      events[i] = { op: 'read', table: this.table, schema: this.schema, key, before: null, after: row, source };
    }
    return events;
  }
}

/** CopyData messages cut into parts of at most `maxRows` messages (a batch holds at most max_events rows). */
export function* rowsAtMost(data: Buffer, rows: number, maxRows: number): Generator<{ data: Buffer; rows: number }> {
  if (rows <= maxRows) {
    yield { data, rows };
    return;
  }
  let start = 0;
  let left = rows;
  while (left > maxRows) {
    let end = start;
    for (let i = 0; i < maxRows; i++) end += 1 + data.readUInt32BE(end + 1);
    yield { data: data.subarray(start, end), rows: maxRows };
    start = end;
    left -= maxRows;
  }
  yield { data: data.subarray(start), rows: left };
}
