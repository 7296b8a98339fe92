/**
 * Reads a table for the initial snapshot with `COPY (SELECT ...) TO STDOUT` in text format, parsed by
 * copy-text.ts into rows of canonical text values (the same strings pgoutput streams).
 *
 * Keyed tables are read in keyset chunks (`WHERE (k1, k2) > (last) ORDER BY k1, k2 LIMIT n`, never OFFSET); the last
 * row of a chunk gives the next chunk's bound. Keyless tables are one COPY of the whole table.
 *
 * The COPY is read from the connection's socket directly (as pg-copy-streams does, without a Buffer per row): while
 * it runs, the socket's bytes come here instead of to the driver's parser. PostgreSQL sends each row as one CopyData
 * message (`d`, length, the row's line); the 5 header bytes are overwritten with spaces in place, so a run of messages
 * is one piece of COPY text whose lines start with 5 blanks, decoded once per socket read. Other messages are skipped
 * (CopyOutResponse, notices) or, from CopyDone or an error on, handed back to the driver, which then completes the
 * query. Parsed pieces wait in a short queue; above it the socket is paused, so nothing more is read from the server
 * while the caller does not ask for rows, and memory does not depend on the chunk size.
 *
 * The initial snapshot takes the CopyData messages themselves instead of rows (`readTableMessages`, `readKeyRangeMessages`):
 * each socket read's run of complete messages is handed on as it came (a message the read cut is joined to the next
 * read), and the rows are decoded only by a target that does not load them as they are (see copy-text-block.ts).
 */
import type { Duplex } from 'node:stream';
import type pg from 'pg';
import type { Row, TableSchema } from '../../../src/core/change-event.ts';
import { quoteIdent, quoteTable } from '../identifiers.ts';
import { quoteLiteral } from '../literals.ts';
import type { SourceTable } from './catalog.ts';
import { type CopyRows, CopyTextError, CopyTextParser } from './copy-text.ts';

const COPY_DATA = 0x64; // d
const COPY_DONE = 0x63; // c
const COPY_OUT_RESPONSE = 0x48; // H
const NOTICE = 0x4e; // N
const PARAMETER_STATUS = 0x53; // S
const NOTIFICATION = 0x41; // A
const HEADER = 5;
const BLANK = 0x20;
/** Parsed pieces queued before the socket pauses (a piece is one socket read, up to about 64 KiB). */
const MAX_QUEUED = 4;

type State = 'code' | 'length' | 'body';

interface DriverConnection {
  stream: Duplex;
  query(text: string): void;
}

/** Complete CopyData messages as the server sent them (`d`, length, one row's line each), and how many. */
export interface CopyMessages {
  data: Buffer;
  rows: number;
}

/**
 * One `COPY (query) TO STDOUT` as a pg Submittable whose pieces are read with `rows()`: rows parsed for `columns`,
 * or (`columns` null) runs of whole CopyData messages as they came.
 */
export class CopyOut<P extends CopyRows | CopyMessages> {
  private connection: DriverConnection | null = null;
  private driverOnData: ((chunk: Buffer) => void) | null = null;
  private readonly onData = (chunk: Buffer) => this.receive(chunk);
  private state: State = 'code';
  private code = 0;
  private lengthBytes = 0;
  private length = 0;
  private remaining = 0;
  private readonly parser: CopyTextParser | null;
  private queue: P[] = [];
  /** Raw mode: the start of a message the last socket read cut. */
  private partial: Buffer | null = null;
  private paused = false;
  private detached = false;
  private finished = false;
  private failure: unknown = null;
  private wake: (() => void) | null = null;

  constructor(
    readonly text: string,
    columns: readonly string[] | null,
  ) {
    this.parser = columns ? new CopyTextParser(columns, HEADER) : null;
  }

  // --- pg Submittable

  submit(connection: DriverConnection): void {
    this.connection = connection;
    const stream = connection.stream;
    const listeners = stream.listeners('data') as ((chunk: Buffer) => void)[];
    if (listeners.length !== 1)
      throw new Error(`COPY: expected one data listener on the socket, found ${listeners.length}`);
    this.driverOnData = listeners[0]!;
    stream.removeListener('data', this.driverOnData);
    stream.on('data', this.onData);
    connection.query(this.text);
  }

  handleError(err: unknown): void {
    this.failure ??= err;
    this.detach(null);
    this.notify();
  }

  handleCommandComplete(): void {}

  handleReadyForQuery(): void {
    this.finished = true;
    this.notify();
  }

  // --- consumer

  async *rows(): AsyncGenerator<P> {
    for (;;) {
      const piece = this.queue.shift();
      if (piece) {
        if (this.paused && this.queue.length < MAX_QUEUED / 2) {
          this.paused = false;
          this.connection?.stream.resume();
        }
        yield piece;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.finished) {
        this.parser?.end();
        if (this.partial)
          throw new CopyTextError(`COPY output ended inside a message (${this.partial.length} bytes of it)`);
        return;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  // --- socket

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private receive(chunk: Buffer): void {
    try {
      if (this.parser) this.parse(chunk);
      else this.parseRaw(chunk);
    } catch (err) {
      // Malformed data: stop reading; ending the client closes the socket.
      this.failure ??= err;
      this.connection?.stream.pause();
      this.notify();
    }
  }

  /** Raw mode: hands on each run of complete CopyData messages as it is; other messages as in `parse`. */
  private parseRaw(input: Buffer): void {
    const chunk = input;
    let i = 0;
    if (this.partial) {
      // The message the last read cut: its start and its rest from this read, joined (a copy of that message only).
      let start = this.partial;
      this.partial = null;
      if (start.length < HEADER) {
        const header = HEADER - start.length;
        if (header > input.length) {
          this.partial = Buffer.concat([start, input]);
          return;
        }
        start = Buffer.concat([start, input.subarray(0, header)]);
        i = header;
      }
      const need = 1 + start.readUInt32BE(1) - start.length;
      if (i + need > input.length) {
        this.partial = Buffer.concat([start, input.subarray(i)]);
        return;
      }
      this.parseRaw(Buffer.concat([start, input.subarray(i, i + need)]));
      i += need;
      if (this.detached) {
        // It ended the COPY: the rest is the driver's.
        if (i < input.length) this.driverOnData?.(input.subarray(i));
        return;
      }
    }
    const n = chunk.length;
    let run = -1;
    let rows = 0;
    const flush = (to: number) => {
      if (rows > 0) this.enqueue({ data: chunk.subarray(run, to), rows } as P);
      run = -1;
      rows = 0;
    };
    while (i < n) {
      if (n - i < HEADER) break;
      const code = chunk[i]!;
      const end = i + 1 + chunk.readUInt32BE(i + 1);
      if (code === COPY_DATA) {
        if (end > n) break;
        if (end - i <= HEADER) throw new CopyTextError('COPY: an empty CopyData message');
        if (chunk[end - 1] !== 0x0a)
          throw new CopyTextError(
            'COPY: a CopyData message does not end with a line end (one row per message expected)',
          );
        if (run < 0) run = i;
        rows++;
        i = end;
        continue;
      }
      flush(i);
      if (code === COPY_OUT_RESPONSE || code === NOTICE || code === PARAMETER_STATUS || code === NOTIFICATION) {
        if (end > n) break;
        i = end;
        continue;
      }
      // CopyDone, an error or anything unexpected: the driver takes it from here and ends the query.
      this.detach(chunk.subarray(i));
      return;
    }
    flush(i);
    if (i < n) this.partial = chunk.subarray(i);
  }

  private parse(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    // Start of the current run of CopyData bytes in this chunk (-1: none).
    let run = this.state !== 'code' && this.code === COPY_DATA ? 0 : -1;
    while (i < n) {
      if (this.state === 'body') {
        const take = Math.min(this.remaining, n - i);
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) {
          if (this.code === COPY_DATA && chunk[i - 1] !== 0x0a)
            throw new CopyTextError(
              'COPY: a CopyData message does not end with a line end (one row per message expected)',
            );
          this.state = 'code';
          if (this.code === COPY_DONE) {
            this.flushRun(chunk, run, i);
            this.detach(chunk.subarray(i));
            return;
          }
        }
        continue;
      }
      if (this.state === 'code') {
        const code = chunk[i]!;
        this.code = code;
        if (code === COPY_DATA) {
          if (run < 0) run = i;
          chunk[i] = BLANK;
        } else if (
          code === COPY_DONE ||
          code === COPY_OUT_RESPONSE ||
          code === NOTICE ||
          code === PARAMETER_STATUS ||
          code === NOTIFICATION
        ) {
          this.flushRun(chunk, run, i);
          run = -1;
        } else {
          // An error (or anything unexpected): the driver takes it from here and ends the query.
          this.flushRun(chunk, run, i);
          this.detach(chunk.subarray(i));
          return;
        }
        this.state = 'length';
        this.lengthBytes = 0;
        this.length = 0;
        i++;
        continue;
      }
      // length
      this.length = this.length * 256 + chunk[i]!;
      if (this.code === COPY_DATA) chunk[i] = BLANK;
      i++;
      if (++this.lengthBytes === 4) {
        this.remaining = this.length - 4;
        this.state = this.remaining > 0 ? 'body' : 'code';
        if (this.remaining === 0 && this.code === COPY_DATA) throw new CopyTextError('COPY: an empty CopyData message');
        if (this.remaining === 0 && this.code === COPY_DONE) {
          this.flushRun(chunk, run, i);
          this.detach(chunk.subarray(i));
          return;
        }
      }
    }
    this.flushRun(chunk, run, n);
  }

  private flushRun(chunk: Buffer, from: number, to: number): void {
    if (from < 0 || to <= from) return;
    const piece = this.parser!.push(chunk.subarray(from, to));
    if (piece.rows.length > 0) this.enqueue(piece as P);
  }

  private enqueue(piece: P): void {
    this.queue.push(piece);
    if (!this.paused && this.queue.length >= MAX_QUEUED) {
      this.paused = true;
      this.connection?.stream.pause();
    }
    this.notify();
  }

  /** Gives the socket back to the driver, with the bytes not consumed here. */
  private detach(rest: Buffer | null): void {
    if (this.detached || !this.connection || !this.driverOnData) return;
    this.detached = true;
    const stream = this.connection.stream;
    stream.removeListener('data', this.onData);
    stream.on('data', this.driverOnData);
    if (rest && rest.length > 0) this.driverOnData(rest);
    if (this.paused) {
      this.paused = false;
      stream.resume();
    }
  }
}

/** The rows of one `COPY (query) TO STDOUT`, piece by piece. */
function copyRows(client: pg.Client, query: string, columns: readonly string[]): AsyncGenerator<CopyRows> {
  const copy = new CopyOut<CopyRows>(`copy (${query}) to stdout`, columns);
  client.query(copy as unknown as pg.Submittable);
  return copy.rows();
}

/** The text of one `COPY (query) TO STDOUT`, in pieces of complete lines. */
function copyMessages(client: pg.Client, query: string): AsyncGenerator<CopyMessages> {
  const copy = new CopyOut<CopyMessages>(`copy (${query}) to stdout`, null);
  client.query(copy as unknown as pg.Submittable);
  return copy.rows();
}

/** A keyless table's whole COPY, as CopyData messages, in the schema's column order. */
export function readTableMessages(
  client: pg.Client,
  t: SourceTable,
  schema: TableSchema,
): AsyncGenerator<CopyMessages> {
  const cols = schema.columns.map((c) => quoteIdent(c.name)).join(', ');
  return copyMessages(client, `select ${cols} from ${quoteTable(t.table)}`);
}

/** `readKeyRange` as CopyData messages (COPY text format), in the schema's column order. */
export function readKeyRangeMessages(
  client: pg.Client,
  t: SourceTable,
  schema: TableSchema,
  keyCols: readonly string[],
  after: Row | null,
  limit: number,
): AsyncGenerator<CopyMessages> {
  return copyMessages(client, keyRangeQuery(t, schema, keyCols, after, limit));
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
  let last: Row | null = null;
  for (;;) {
    let count = 0;
    for await (const piece of readKeyRange(client, t, schema, keyCols, last, chunkRows)) {
      count += piece.rows.length;
      last = piece.rows[piece.rows.length - 1]!;
      yield piece;
    }
    if (count < chunkRows) return;
  }
}

/**
 * One keyset chunk: up to `limit` rows with a key after `after` (from the start when null), in key order, optionally
 * restricted by an SQL condition `where` (a partial snapshot).
 */
export function readKeyRange(
  client: pg.Client,
  t: SourceTable,
  schema: TableSchema,
  keyCols: readonly string[],
  after: Row | null,
  limit: number,
  where?: string,
): AsyncGenerator<CopyRows> {
  return copyRows(
    client,
    keyRangeQuery(t, schema, keyCols, after, limit, where),
    schema.columns.map((c) => c.name),
  );
}

function keyRangeQuery(
  t: SourceTable,
  schema: TableSchema,
  keyCols: readonly string[],
  after: Row | null,
  limit: number,
  where?: string,
): string {
  const cols = schema.columns.map((c) => quoteIdent(c.name)).join(', ');
  const table = quoteTable(t.table);
  const keyList = keyCols.map(quoteIdent).join(', ');
  return `select ${cols} from ${table} ${keyFilter(table, keyCols, after, where)} order by ${keyList} limit ${limit}`;
}

/** `where (key) > (after) [and (where)]`, or '' with neither. */
function keyFilter(table: string, keyCols: readonly string[], after: Row | null, where?: string): string {
  const keyList = keyCols.map(quoteIdent).join(', ');
  const conditions: string[] = [];
  if (after) {
    const bound = keyCols.map((k) => {
      const v = after[k];
      if (typeof v !== 'string') throw new Error(`key column ${k} of ${table} read ${String(v)}`);
      return quoteLiteral(v);
    });
    conditions.push(keyCols.length === 1 ? `${keyList} > ${bound[0]}` : `(${keyList}) > (${bound.join(', ')})`);
  }
  if (where) conditions.push(`(${where})`);
  return conditions.length > 0 ? `where ${conditions.join(' and ')}` : '';
}

/**
 * The key of the `rows`-th row after `after` in key order (the last key of the chunk `readKeyRange(after, rows)`
 * reads) and whether no row follows it, or null when fewer rows follow (that chunk is the table's last). An
 * index-only scan of the key: it plans the chunks of a parallel snapshot ahead of their reads. `client` must return
 * text values (rawValues).
 */
/** A planned chunk's last key, and whether it is the table's last chunk (no row after it). */
export interface ChunkBound<K = Row> {
  end: K;
  last: boolean;
}

export async function chunkEnd(
  client: pg.Client,
  t: SourceTable,
  keyCols: readonly string[],
  after: Row | null,
  rows: number,
): Promise<ChunkBound | null> {
  const table = quoteTable(t.table);
  const keyList = keyCols.map(quoteIdent).join(', ');
  // The row after the end too: a chunk with no row after it is the table's last, even when it is full.
  const result = await client.query<Row>(
    `select ${keyList} from ${table} ${keyFilter(table, keyCols, after)} order by ${keyList} offset ${rows - 1} limit 2`,
  );
  const end = result.rows[0];
  return end ? { end, last: result.rows.length < 2 } : null;
}
