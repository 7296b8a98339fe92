/**
 * Reads a table for the initial snapshot with `COPY (SELECT ...) TO STDOUT` in text format, parsed by
 * copy-text.ts into rows of canonical text values (the same strings pgoutput streams). pg-copy-streams is used here
 * only.
 *
 * Keyed tables are read in keyset chunks (`WHERE (k1, k2) > (last) ORDER BY k1, k2 LIMIT n`, never OFFSET); the last
 * row of a chunk gives the next chunk's bound. Keyless tables are one COPY of the whole table. Rows are parsed as they
 * arrive and handed out per received piece: nothing is read from the server while the caller does not ask for more
 * (the COPY stream stops reading the socket), so memory does not depend on the chunk size.
 */
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Row, TableSchema } from '../../../src/core/change-event.ts';
import { quoteIdent, quoteTable, type SourceTable } from './catalog.ts';
import { type CopyRows, CopyTextParser } from './copy-text.ts';

/** A string literal of `value` (untyped, like a text bind parameter: the server infers the column's type). */
export function quoteLiteral(value: string): string {
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** The rows of one `COPY (query) TO STDOUT`, piece by piece. */
async function* copyRows(client: pg.Client, query: string, columns: readonly string[]): AsyncGenerator<CopyRows> {
  const parser = new CopyTextParser(columns);
  const stream = client.query(copyTo(`copy (${query}) to stdout`));
  let complete = false;
  try {
    for await (const chunk of stream) {
      const parsed = parser.push(chunk as Buffer);
      if (parsed.rows.length > 0) yield parsed;
    }
    parser.end();
    complete = true;
  } finally {
    // Abandoned (or failed) mid-COPY: the connection stays in COPY mode, unusable; ending the client closes its
    // socket (pg does so while a query is active) without reading the rest.
    if (!complete) stream.destroy();
  }
}

/**
 * The rows of a table: keyset chunks of `chunkRows` rows on `keyCols`, or one COPY for a keyless table. Row objects
 * have the schema's column names as keys, in column order.
 */
export async function* readTable(
  client: pg.Client,
  t: SourceTable,
  schema: TableSchema,
  keyCols: readonly string[],
  chunkRows: number,
): AsyncGenerator<CopyRows> {
  const names = schema.columns.map((c) => c.name);
  const cols = names.map(quoteIdent).join(', ');
  const table = quoteTable(t.table);
  if (keyCols.length === 0) {
    yield* copyRows(client, `select ${cols} from ${table}`, names);
    return;
  }
  const keyList = keyCols.map(quoteIdent).join(', ');
  let last: Row | null = null;
  for (;;) {
    let where = '';
    if (last) {
      const bound = keyCols.map((k) => {
        const v = last![k];
        if (typeof v !== 'string') throw new Error(`key column ${k} of ${table} read ${String(v)}`);
        return quoteLiteral(v);
      });
      where = keyCols.length === 1 ? `where ${keyList} > ${bound[0]}` : `where (${keyList}) > (${bound.join(', ')})`;
    }
    let count = 0;
    for await (const piece of copyRows(
      client,
      `select ${cols} from ${table} ${where} order by ${keyList} limit ${chunkRows}`,
      names,
    )) {
      count += piece.rows.length;
      last = piece.rows[piece.rows.length - 1]!;
      yield piece;
    }
    if (count < chunkRows) return;
  }
}
