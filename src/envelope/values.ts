/**
 * Canonical text (docs/value-forms.md) -> JSON text, per column kind.
 *
 * Every converter returns a complete JSON value as text, never going through a JS number for integers or decimals,
 * so int8 / unsigned bigint / numeric stay exact. The results are concatenated by the envelope encoder.
 */
import type { ValueKind } from '../core/change-event.ts';

/** Converts one non-null canonical value to JSON text. */
export type ValueToJson = (text: string) => string;

export interface ValueOptions {
  /** MySQL zero dates (`0000-00-00`, months or days of `00`): `null` like Debezium, or kept as the source's text. */
  zeroDates: 'null' | 'keep';
}

const quote = JSON.stringify as (s: string) => string;

const INT_RE = /^-?\d+$/;
const JSON_NUMBER_RE = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

export function intToJson(text: string): string {
  if (INT_RE.test(text)) {
    // JSON forbids leading zeros: strip them without a numeric round trip.
    if (text.length > 1 && (text.charCodeAt(0) === 48 || (text.charCodeAt(0) === 45 && text.charCodeAt(1) === 48))) {
      const neg = text.charCodeAt(0) === 45;
      const digits = (neg ? text.slice(1) : text).replace(/^0+(?=\d)/, '');
      return neg && digits !== '0' ? `-${digits}` : digits;
    }
    return text;
  }
  // Not an integer literal (should not happen): keep the text rather than emit invalid JSON.
  return quote(text);
}

export function floatToJson(text: string): string {
  if (JSON_NUMBER_RE.test(text)) return text;
  if (text === 'NaN' || text === 'Infinity' || text === '-Infinity') return quote(text);
  const n = Number(text);
  if (text.trim() !== '' && Number.isFinite(n)) return String(n);
  if (/^[+-]?inf(inity)?$/i.test(text)) return text.startsWith('-') ? '"-Infinity"' : '"Infinity"';
  if (/^[+-]?nan$/i.test(text)) return '"NaN"';
  return quote(text);
}

export function boolToJson(text: string): string {
  switch (text) {
    case 't':
    case 'true':
    case '1':
      return 'true';
    case 'f':
    case 'false':
    case '0':
      return 'false';
    default:
      return quote(text);
  }
}

export function bytesToJson(text: string): string {
  if (text.length >= 2 && text.charCodeAt(0) === 92 && (text.charCodeAt(1) === 120 || text.charCodeAt(1) === 88)) {
    return `"${Buffer.from(text.slice(2), 'hex').toString('base64')}"`;
  }
  // PostgreSQL `escape` bytea output or raw text: encode the characters' bytes.
  return `"${Buffer.from(text, 'latin1').toString('base64')}"`;
}

/** `YYYY-MM-DD[ BC]` -> ISO-8601 date; BC years become astronomical years (1 BC = 0000, 44 BC = -0043). */
function isoDateText(text: string, zeroDates: ValueOptions['zeroDates']): string | null {
  if (text === 'infinity' || text === '-infinity') return text;
  if (zeroDates === 'null' && isZeroDate(text)) return null;
  if (text.endsWith(' BC')) return bcDate(text.slice(0, -3));
  return text;
}

function isZeroDate(text: string): boolean {
  // 0000-00-00, or MySQL's partial zero dates such as 2024-00-10 / 2024-05-00.
  return (
    text.startsWith('0000-00-00') ||
    (text.length >= 10 && ((text[5] === '0' && text[6] === '0') || (text[8] === '0' && text[9] === '0')))
  );
}

function bcDate(text: string): string {
  // text starts with the year (4+ digits), then '-MM-DD...'.
  const dash = text.indexOf('-');
  const year = Number(text.slice(0, dash));
  const astronomical = 1 - year; // 1 BC -> 0, 2 BC -> -1
  const rest = text.slice(dash);
  if (astronomical === 0) return `0000${rest}`;
  return `-${String(-astronomical).padStart(4, '0')}${rest}`;
}

export function dateToJson(opts: ValueOptions): ValueToJson {
  return (text) => {
    const iso = isoDateText(text, opts.zeroDates);
    return iso === null ? 'null' : quote(iso);
  };
}

/** `YYYY-MM-DD HH:MM:SS[.ffffff][ BC]` -> `YYYY-MM-DDTHH:MM:SS[.ffffff]`. */
export function timestampToJson(opts: ValueOptions): ValueToJson {
  return (text) => {
    if (text === 'infinity' || text === '-infinity') return quote(text);
    if (opts.zeroDates === 'null' && isZeroDate(text)) return 'null';
    let t = text;
    let bc = false;
    if (t.endsWith(' BC')) {
      bc = true;
      t = t.slice(0, -3);
    }
    const space = t.indexOf(' ');
    if (space > 0) t = `${t.slice(0, space)}T${t.slice(space + 1)}`;
    return quote(bc ? bcDate(t) : t);
  };
}

/** `YYYY-MM-DD HH:MM:SS[.ffffff]+00[:MM[:SS]][ BC]` -> `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (or `+HH:MM` when not UTC). */
export function timestamptzToJson(opts: ValueOptions): ValueToJson {
  return (text) => {
    if (text === 'infinity' || text === '-infinity') return quote(text);
    if (opts.zeroDates === 'null' && isZeroDate(text)) return 'null';
    let t = text;
    let bc = false;
    if (t.endsWith(' BC')) {
      bc = true;
      t = t.slice(0, -3);
    }
    const space = t.indexOf(' ');
    if (space > 0) t = `${t.slice(0, space)}T${t.slice(space + 1)}`;
    // The zone starts at the last '+' or '-' after the time part.
    const timeStart = t.indexOf('T');
    let zoneAt = -1;
    for (let i = t.length - 1; i > timeStart; i--) {
      const c = t.charCodeAt(i);
      if (c === 43 || c === 45) {
        zoneAt = i;
        break;
      }
    }
    let out: string;
    if (zoneAt < 0) out = t.endsWith('Z') ? t : `${t}Z`;
    else out = t.slice(0, zoneAt) + isoZone(t.slice(zoneAt));
    return quote(bc ? bcDate(out) : out);
  };
}

/** `+00` -> `Z`; `+05` -> `+05:00`; `+05:30` kept; `-03:30:15` kept. */
function isoZone(zone: string): string {
  const body = zone.slice(1);
  if (/^0+(?::0+)*$/.test(body)) return 'Z';
  return body.length === 2 ? `${zone}:00` : zone;
}

/**
 * timetz `HH:MM:SS[.ffffff]+HH[:MM[:SS]]` -> UTC `HH:MM:SS[.ffffff]Z` (Debezium's ZonedTime form).
 * Fractions are kept as written.
 */
export function timetzToJson(text: string): string {
  const m = /^(\d{2}):(\d{2}):(\d{2})(\.\d+)?([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?$/.exec(text);
  if (!m) return quote(text);
  const sign = m[5] === '-' ? -1 : 1;
  const offset = sign * (Number(m[6]) * 3600 + Number(m[7] ?? 0) * 60 + Number(m[8] ?? 0));
  let secs = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) - offset;
  secs = ((secs % 86400) + 86400) % 86400;
  const h = Math.floor(secs / 3600);
  const mi = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  return `"${pad2(h)}:${pad2(mi)}:${pad2(s)}${m[4] ?? ''}Z"`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * PostgreSQL `postgres`-style interval (`1 year 2 mons -3 days 04:05:06.789`, `-00:00:01`, `1 day`) -> ISO-8601
 * duration with every component, the form Debezium's `interval.handling.mode=string` produces
 * (`P1Y2M-3DT4H5M6.789S`). Unparseable text is passed through.
 */
export function intervalToJson(text: string): string {
  let years = 0;
  let months = 0;
  let days = 0;
  let hours = 0;
  let minutes = 0;
  let seconds = '0';
  let rest = text.trim();
  const unitRe = /^([+-]?\d+) (years?|mons?|days?)\s*/;
  for (let m = unitRe.exec(rest); m; m = unitRe.exec(rest)) {
    const n = Number(m[1]);
    if (m[2]!.startsWith('year')) years = n;
    else if (m[2]!.startsWith('mon')) months = n;
    else days = n;
    rest = rest.slice(m[0].length);
  }
  if (rest !== '') {
    const t = /^([+-])?(\d+):(\d{2}):(\d{2})(\.\d+)?$/.exec(rest);
    if (!t) return quote(text);
    const neg = t[1] === '-';
    hours = Number(t[2]) * (neg ? -1 : 1);
    minutes = Number(t[3]) * (neg ? -1 : 1);
    let s = `${Number(t[4])}${t[5] ? t[5].replace(/0+$/, '') : ''}`;
    if (s.endsWith('.')) s = s.slice(0, -1);
    seconds = neg && s !== '0' ? `-${s}` : s;
    // -0 hours/minutes print as 0
    if (hours === 0) hours = 0;
    if (minutes === 0) minutes = 0;
  }
  return `"P${years}Y${months}M${days}DT${hours}H${minutes}M${seconds}S"`;
}

export function stringToJson(text: string): string {
  return quote(text);
}

/** Picks the converter for a kind. `elementKind` is used for arrays. */
export function converterFor(kind: ValueKind, elementKind: ValueKind | undefined, opts: ValueOptions): ValueToJson {
  switch (kind) {
    case 'bool':
      return boolToJson;
    case 'int':
      return intToJson;
    case 'float':
      return floatToJson;
    case 'bytes':
      return bytesToJson;
    case 'date':
      return dateToJson(opts);
    case 'timestamp':
      return timestampToJson(opts);
    case 'timestamptz':
      return timestamptzToJson(opts);
    case 'timetz':
      return timetzToJson;
    case 'interval':
      return intervalToJson;
    case 'array': {
      const element = converterFor(elementKind ?? 'text', undefined, opts);
      return (text) => arrayToJson(text, element);
    }
    // decimal (exact, Debezium's "string" decimal handling), json (as a string), uuid, text, enum, set, time, bits,
    // geometry, other: the canonical text as a JSON string.
    default:
      return stringToJson;
  }
}

/**
 * Parses a PostgreSQL array literal (`{1,NULL,3}`, `{{a,b},{c,d}}`, `{"x y","a\"b",NULL,"NULL"}`,
 * `[0:1]={1,2}`) and writes a JSON array, converting each element with `element`.
 * Unquoted `NULL` is null; quoted `"NULL"` is the string. Whitespace around unquoted elements is ignored.
 */
export function arrayToJson(text: string, element: ValueToJson, delimiter = ','): string {
  let i = 0;
  const n = text.length;
  // Optional dimension decoration: [1:3][1:2]=
  if (text.charCodeAt(0) === 91 /* [ */) {
    const eq = text.indexOf('=');
    if (eq < 0) throw new Error(`bad array literal: ${text}`);
    i = eq + 1;
  }
  const skipSpace = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const parseArray = (): string => {
    skipSpace();
    if (text[i] !== '{') throw new Error(`bad array literal at ${i}: ${text}`);
    i++;
    skipSpace();
    if (text[i] === '}') {
      i++;
      return '[]';
    }
    let out = '[';
    for (;;) {
      skipSpace();
      const c = text[i];
      if (c === '{') {
        out += parseArray();
      } else if (c === '"') {
        i++;
        let s = '';
        let start = i;
        while (i < n && text[i] !== '"') {
          if (text[i] === '\\') {
            s += text.slice(start, i);
            i++;
            start = i;
          }
          i++;
        }
        s += text.slice(start, i);
        if (i >= n) throw new Error(`unterminated quoted element in array literal: ${text}`);
        i++; // closing quote
        out += element(s);
      } else {
        const start = i;
        while (i < n && text[i] !== delimiter && text[i] !== '}') i++;
        const raw = text.slice(start, i).trim();
        out += raw === 'NULL' ? 'null' : element(raw);
      }
      skipSpace();
      if (text[i] === delimiter) {
        out += ',';
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return `${out}]`;
      }
      throw new Error(`bad array literal at ${i}: ${text}`);
    }
  };
  return parseArray();
}
