import type mysql from 'mysql2/promise';
import type { Row } from '../../../src/core/change-event.ts';
import { quoteIdent } from '../identifiers.ts';
import { type MysqlColumn, snapshotSelectExpr, snapshotValue } from './values.ts';

/** One chunk of a table read in primary-key order (keyset pagination). */
export interface Chunk {
  rows: Row[];
  /** The last row's key as query parameters for the next chunk (`WHERE (key) > (...)`), null when no row was read. */
  lastKey: unknown[] | null;
  /** Each row's key as such parameters (empty for a table without a key). */
  keys: unknown[][];
}

/** What a chunk read needs to know of the table. */
export interface ChunkTable {
  db: string;
  name: string;
  columns: MysqlColumn[];
  keyColumns: readonly string[];
}

/**
 * Reads up to `limit` rows after key `after` (null: from the start) in key order, or, for a table without a key,
 * `limit` rows at `offset` (null limit: the whole table). Values come as the server's text and are converted as the
 * binlog decoder converts them, so a snapshot row and a streamed row of the same content are equal.
 */
export async function readChunk(
  conn: mysql.Connection,
  table: ChunkTable,
  range: { after: unknown[] | null; limit: number | null; offset?: number; where?: string },
): Promise<Chunk> {
  const { columns, keyColumns } = table;
  const select = columns.map(snapshotSelectExpr).join(', ');
  const keyIdx = keyColumns.map((k) => columns.findIndex((c) => c.name === k));
  const order = keyColumns.map(quoteIdent).join(', ');
  let sql = `SELECT ${select} FROM ${quoteIdent(table.db)}.${quoteIdent(table.name)}`;
  const params: unknown[] = [];
  const conditions: string[] = range.where ? [`(${range.where})`] : [];
  if (keyColumns.length > 0 && range.after) {
    conditions.push(`(${order}) > (${keyColumns.map(() => '?').join(', ')})`);
    params.push(...range.after);
  }
  if (conditions.length > 0) sql += ` WHERE ${conditions.join(' AND ')}`;
  if (keyColumns.length > 0) {
    sql += ` ORDER BY ${order}`;
    if (range.limit !== null) sql += ` LIMIT ${range.limit}`;
  } else if (range.limit !== null) {
    sql += ` LIMIT ${range.limit} OFFSET ${range.offset ?? 0}`;
  }
  const [result] = await conn.query({
    sql,
    values: params,
    rowsAsArray: true,
    typeCast: (field: { buffer(): Buffer | null }) => field.buffer(),
  } as never);
  const raws = result as (Buffer | null)[][];
  const rows: Row[] = new Array(raws.length);
  const keys: unknown[][] = keyColumns.length > 0 ? new Array(raws.length) : [];
  for (let r = 0; r < raws.length; r++) {
    const raw = raws[r]!;
    const row: Row = {};
    for (let i = 0; i < columns.length; i++) row[columns[i]!.name] = snapshotValue(raw[i] ?? null, columns[i]!);
    rows[r] = row;
    if (keyColumns.length > 0) keys[r] = keyIdx.map((i) => keyParam(raw[i] ?? null, columns[i]!));
  }
  return { rows, lastKey: keys[keys.length - 1] ?? null, keys };
}

/**
 * The key of the `rows`-th row after key `after` (null: from the start) in key order, as readChunk's `lastKey` of
 * the chunk `{ after, limit: rows }` gives it, and whether no row follows it (`last`: a full chunk can be the
 * table's last); null when fewer rows follow (that chunk is the table's last too). Reads the
 * key columns only (InnoDB may scan a secondary index, which holds the key): it plans the chunks of a parallel
 * snapshot ahead of their reads, in the same consistent snapshot.
 */
export async function chunkEnd(
  conn: mysql.Connection,
  table: ChunkTable,
  after: unknown[] | null,
  rows: number,
): Promise<{ end: unknown[]; last: boolean } | null> {
  const keyCols = table.keyColumns.map((k) => table.columns.find((c) => c.name === k)!);
  const order = table.keyColumns.map(quoteIdent).join(', ');
  let sql = `SELECT ${keyCols.map(snapshotSelectExpr).join(', ')} FROM ${quoteIdent(table.db)}.${quoteIdent(table.name)}`;
  if (after) sql += ` WHERE (${order}) > (${keyCols.map(() => '?').join(', ')})`;
  // The row after the end too: a chunk with no row after it is the table's last, even when it is full.
  sql += ` ORDER BY ${order} LIMIT 2 OFFSET ${rows - 1}`;
  const [result] = await conn.query({
    sql,
    values: after ?? [],
    rowsAsArray: true,
    typeCast: (field: { buffer(): Buffer | null }) => field.buffer(),
  } as never);
  const found = result as (Buffer | null)[][];
  const raw = found[0];
  return raw ? { end: keyCols.map((c, i) => keyParam(raw[i] ?? null, c)), last: found.length < 2 } : null;
}

/** A key value as a query parameter: binary columns as bytes, everything else as the server's text. */
function keyParam(raw: Buffer | null, col: MysqlColumn): unknown {
  if (raw === null) return null;
  if (col.kind === 'bytes' || col.kind === 'bits') return raw;
  return raw.toString('utf8');
}

/** A key value as kept in a checkpoint (JSON): the server's text, or binary bytes as base64. */
export type KeyStateValue = string | { base64: string } | null;

/** A chunk's last key as JSON for a checkpoint. */
export function keyToState(key: readonly unknown[]): KeyStateValue[] {
  return key.map((v) => (v === null ? null : Buffer.isBuffer(v) ? { base64: v.toString('base64') } : String(v)));
}

/** The inverse of keyToState. */
export function keyFromState(key: readonly KeyStateValue[]): unknown[] {
  return key.map((v) => (v !== null && typeof v === 'object' ? Buffer.from(v.base64, 'base64') : v));
}
