import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { type Row, UNCHANGED } from '../../../src/core/change-event.ts';
import { quoteIdent } from '../identifiers.ts';
import type { TargetTable } from './statements.ts';

/**
 * Streams rows into a table with `COPY ... FROM STDIN` (text format). The only place that knows pg-copy-streams.
 *
 * Values travel in their canonical text form, which is what each column type's input function reads, so they go
 * through unchanged apart from the text format's escapes. COPY reads into the column's own type (with its
 * modifiers), which checks lengths and precisions the way an assignment does.
 */

/** Bytes per chunk handed to the connection: large enough to keep per-message overhead low, small enough to stream. */
const CHUNK_CHARS = 256 * 1024;

const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPES = /[\\\t\n\r]/g;
const ESCAPED: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One value in COPY text format: NULL is `\N`; backslash, tab, newline and carriage return are escaped. */
export function copyValue(v: Row[string] | undefined): string {
  if (v === null || v === undefined || v === UNCHANGED) return '\\N';
  return NEEDS_ESCAPE.test(v) ? v.replace(ESCAPES, (c) => ESCAPED[c]!) : v;
}

/** The COPY text of `rows` for `columns`, in chunks of about CHUNK_CHARS (one row is never split). */
export function* copyChunks(columns: string[], rows: Row[]): Generator<string> {
  let chunk = '';
  const last = columns.length - 1;
  for (const row of rows) {
    for (let i = 0; i < last; i++) chunk += `${copyValue(row[columns[i]!])}\t`;
    chunk += `${copyValue(row[columns[last]!])}\n`;
    if (chunk.length >= CHUNK_CHARS) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk.length > 0) yield chunk;
}

export function copySql(table: TargetTable, columns: string[]): string {
  return `copy ${table.qname} (${columns.map(quoteIdent).join(', ')}) from stdin`;
}

export interface CopyOptions {
  /** Statements sent in the same query string before and after the COPY: no extra round trip for them. */
  before?: string;
  after?: string;
}

/**
 * Runs one COPY of `rows` into `table`; resolves with the rows the server loaded. A server error (a constraint, a
 * value the type does not accept) rejects with the server's error and leaves the connection usable, with the
 * transaction aborted as after any failed statement (statements after the COPY do not run).
 */
export async function copyRows(
  client: pg.Client,
  table: TargetTable,
  columns: string[],
  rows: Row[],
  options: CopyOptions = {},
): Promise<number> {
  const sql = [options.before, copySql(table, columns), options.after].filter(Boolean).join('; ');
  const stream = client.query(copyStreams.from(sql));
  await pipeline(Readable.from(copyChunks(columns, rows), { objectMode: false }), stream);
  return stream.rowCount;
}

/**
 * Runs one `COPY ... FROM STDIN` (text format) fed with CopyData messages as they are (`pieces`: whole messages, one
 * row each, as a PostgreSQL source's `COPY ... TO STDOUT` sent them): the server reads them exactly as the ones it
 * sent, so no row is decoded or encoded here. Resolves with the rows loaded; a server error rejects with it and
 * leaves the connection usable, as `copyRows`.
 */
export function copyMessages(
  client: pg.Client,
  table: TargetTable,
  columns: readonly string[],
  pieces: readonly Buffer[],
): Promise<number> {
  return new Promise((resolve, reject) => {
    client.query(
      new CopyInMessages(copySql(table, [...columns]), pieces, resolve, reject) as unknown as pg.Submittable,
    );
  });
}

interface DriverConnection {
  stream: NodeJS.WritableStream;
  query(text: string): void;
}

/** A pg Submittable: the COPY statement, then the pieces and CopyDone once the server asks for data. */
class CopyInMessages {
  private failure: unknown = null;
  private rows = 0;

  constructor(
    readonly text: string,
    private readonly pieces: readonly Buffer[],
    private readonly resolve: (rows: number) => void,
    private readonly reject: (err: unknown) => void,
  ) {}

  submit(connection: DriverConnection): void {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: DriverConnection): void {
    void this.send(connection.stream);
  }

  private async send(stream: NodeJS.WritableStream): Promise<void> {
    for (const piece of this.pieces) {
      // After an error the server drops what follows until CopyDone: nothing more is worth sending.
      if (this.failure) return;
      if (!stream.write(piece)) await new Promise((resolve) => stream.once('drain', resolve));
    }
    stream.write(COPY_DONE);
  }

  handleCommandComplete(msg: { text?: string }): void {
    this.rows = Number(/COPY (\d+)/.exec(msg?.text ?? '')?.[1] ?? 0);
  }

  /** The driver queues the next query until the server is ready again, and then calls nothing more here. */
  handleError(err: unknown): void {
    this.failure ??= err;
    this.reject(err);
  }

  handleReadyForQuery(): void {
    this.resolve(this.rows);
  }
}

const COPY_DONE = Buffer.from([0x63, 0, 0, 0, 4]);
