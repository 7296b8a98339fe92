/**
 * Parser of PostgreSQL's COPY text format (`COPY ... TO STDOUT`, default options: tab delimiter, `\N` for NULL, one
 * row per `\n`-terminated line). Each field is the column type's output function text with backslash escapes
 * (`\b \f \n \r \t \v \\`, `\NNN` octal and `\xHH` hex bytes, any other escaped character stands for itself), so the
 * unescaped values are exactly the canonical text forms that pgoutput streams.
 *
 * Input arrives in arbitrary pieces (a row, or a UTF-8 character, may span two): only complete lines are decoded. A
 * raw `\n` byte never occurs inside a field (COPY escapes it) nor inside a multi-byte UTF-8 sequence.
 */
import type { Row } from '../../../src/core/change-event.ts';

const NEWLINE = 0x0a;
const BACKSLASH = 92;

/** Rows parsed from one piece of input, and the characters of their lines (escapes and prefixes included). */
export interface CopyRows {
  rows: Row[];
  chars: number;
}

export class CopyTextError extends Error {}

export class CopyTextParser {
  /** Input after the last complete line so far. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /**
   * `columns`: the names of the selected columns, in order (the row objects' keys). `linePrefix`: characters to skip
   * at the start of every line (the blanked protocol header of each row, see snapshot-reader.ts).
   */
  constructor(
    private readonly columns: readonly string[],
    private readonly linePrefix = 0,
  ) {}

  /** Parses the rows completed by `chunk`; input after the last line is kept for the next call. */
  push(chunk: Buffer): CopyRows {
    const out: CopyRows = { rows: [], chars: 0 };
    const lastNewline = chunk.lastIndexOf(NEWLINE);
    if (lastNewline < 0) {
      if (chunk.length > 0) {
        this.pending.push(chunk);
        this.pendingBytes += chunk.length;
      }
      return out;
    }
    let start = 0;
    if (this.pending.length > 0) {
      // The row begun in earlier pieces: decoded on its own, so the rest of the chunk is not copied.
      const firstNewline = chunk.indexOf(NEWLINE);
      this.pending.push(chunk.subarray(0, firstNewline + 1));
      this.parseLines(Buffer.concat(this.pending, this.pendingBytes + firstNewline + 1).toString('utf8'), out);
      this.pending = [];
      this.pendingBytes = 0;
      start = firstNewline + 1;
    }
    if (start <= lastNewline) this.parseLines(chunk.toString('utf8', start, lastNewline + 1), out);
    if (lastNewline + 1 < chunk.length) {
      const rest = chunk.subarray(lastNewline + 1);
      this.pending.push(rest);
      this.pendingBytes = rest.length;
    }
    return out;
  }

  /** The input ended: a partial last line is an error. */
  end(): void {
    if (this.pendingBytes > 0)
      throw new CopyTextError(`COPY output ended inside a row (${this.pendingBytes} bytes without a line end)`);
  }

  private parseLines(s: string, out: CopyRows): void {
    out.chars += s.length;
    // Most pieces hold no backslash at all: no field needs unescaping, and the loop need not look for one.
    if (s.indexOf('\\') < 0) parsePlain(s, this.columns, this.linePrefix, out.rows);
    else parseEscaped(s, this.columns, this.linePrefix, out.rows);
  }
}

/** Rows of `s` (complete lines, none with a backslash). */
function parsePlain(s: string, names: readonly string[], prefix: number, rows: Row[]): void {
  const n = names.length;
  const len = s.length;
  // The next tab at or after the current field (-1: none left): the text is scanned once.
  let tab = s.indexOf('\t');
  let pos = 0;
  while (pos < len) {
    const eol = s.indexOf('\n', pos);
    if (eol - pos < prefix) throw malformedRow(s, pos, eol, n);
    pos += prefix;
    const row: Row = {};
    let p = pos;
    for (let i = 0; i < n; i++) {
      if (tab >= 0 && tab < p) tab = s.indexOf('\t', p);
      let end = eol;
      if (i + 1 < n) {
        if (tab < 0 || tab > eol) throw malformedRow(s, pos, eol, n);
        end = tab;
      } else if (tab >= 0 && tab < eol) {
        throw malformedRow(s, pos, eol, n);
      }
      row[names[i]!] = s.slice(p, end);
      p = end + 1;
    }
    if (n === 0 && eol !== pos) throw malformedRow(s, pos, eol, n);
    rows.push(row);
    pos = eol + 1;
  }
}

/** Rows of `s` (complete lines), unescaping fields with a backslash; `\N` alone is NULL. */
function parseEscaped(s: string, names: readonly string[], prefix: number, rows: Row[]): void {
  const n = names.length;
  const len = s.length;
  let tab = s.indexOf('\t');
  let bs = s.indexOf('\\');
  let pos = 0;
  while (pos < len) {
    const eol = s.indexOf('\n', pos);
    if (eol - pos < prefix) throw malformedRow(s, pos, eol, n);
    pos += prefix;
    const row: Row = {};
    let p = pos;
    for (let i = 0; i < n; i++) {
      if (tab >= 0 && tab < p) tab = s.indexOf('\t', p);
      let end = eol;
      if (i + 1 < n) {
        if (tab < 0 || tab > eol) throw malformedRow(s, pos, eol, n);
        end = tab;
      } else if (tab >= 0 && tab < eol) {
        throw malformedRow(s, pos, eol, n);
      }
      if (bs >= 0 && bs < p) bs = s.indexOf('\\', p);
      let value: string | null;
      if (bs < 0 || bs >= end) value = s.slice(p, end);
      else if (end - p === 2 && bs === p && s.charCodeAt(p + 1) === 78) value = null;
      else value = unescapeField(s, p, end);
      row[names[i]!] = value;
      p = end + 1;
    }
    if (n === 0 && eol !== pos) throw malformedRow(s, pos, eol, n);
    rows.push(row);
    pos = eol + 1;
  }
}

function malformedRow(s: string, from: number, to: number, n: number): CopyTextError {
  const line = JSON.stringify(s.slice(from, Math.min(to, from + 200)));
  return new CopyTextError(`unexpected COPY text row (not ${n} fields): ${line}`);
}

function isOctal(c: number): boolean {
  return c >= 48 && c <= 55;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** The value of the escaped field `s[from, to)`. Runs of `\NNN` / `\xHH` byte escapes are decoded as UTF-8. */
export function unescapeField(s: string, from: number, to: number): string {
  let out = '';
  let start = from;
  let bytes: number[] | null = null;
  const flushBytes = () => {
    if (bytes) {
      out += Buffer.from(bytes).toString('utf8');
      bytes = null;
    }
  };
  let i = from;
  while (i < to) {
    if (s.charCodeAt(i) !== BACKSLASH) {
      i++;
      continue;
    }
    if (i > start) {
      flushBytes();
      out += s.slice(start, i);
    }
    i++;
    if (i >= to)
      throw new CopyTextError(`COPY text field ends with a lone backslash: ${JSON.stringify(s.slice(from, to))}`);
    const c = s.charCodeAt(i);
    let byte = -1;
    let ch = '';
    switch (c) {
      case 98: // b
        ch = '\b';
        break;
      case 102: // f
        ch = '\f';
        break;
      case 110: // n
        ch = '\n';
        break;
      case 114: // r
        ch = '\r';
        break;
      case 116: // t
        ch = '\t';
        break;
      case 118: // v
        ch = '\v';
        break;
      case 120: {
        // x: one or two hex digits (otherwise a literal x)
        const h1 = i + 1 < to ? hexValue(s.charCodeAt(i + 1)) : -1;
        if (h1 < 0) {
          ch = 'x';
          break;
        }
        i++;
        byte = h1;
        const h2 = i + 1 < to ? hexValue(s.charCodeAt(i + 1)) : -1;
        if (h2 >= 0) {
          i++;
          byte = byte * 16 + h2;
        }
        break;
      }
      default:
        if (isOctal(c)) {
          byte = c - 48;
          for (let k = 0; k < 2 && i + 1 < to && isOctal(s.charCodeAt(i + 1)); k++) {
            i++;
            byte = byte * 8 + s.charCodeAt(i) - 48;
          }
          byte &= 0xff;
        } else {
          ch = s[i]!;
        }
    }
    if (byte >= 0) {
      bytes ??= [];
      bytes.push(byte);
    } else {
      flushBytes();
      out += ch;
    }
    i++;
    start = i;
  }
  flushBytes();
  if (start < to) out += s.slice(start, to);
  return out;
}
