/**
 * Values as Debezium 3.6 writes them (Kafka Connect's JsonConverter), per column, in each of Debezium's handling
 * modes: the converter from our canonical text to JSON text, and the column's Connect schema.
 *
 * Defaults are Debezium's: decimal.handling.mode=precise, time.precision.mode=adaptive,
 * binary.handling.mode=bytes, interval.handling.mode=numeric, bigint.unsigned.handling.mode=long. Where Debezium
 * cannot represent a value (numeric NaN, date infinity, years past what int64 microseconds hold, 2-D arrays,
 * geometric types other than point, ranges and composites) we keep the exact value; docs/event-format.md lists
 * each such difference.
 */
import type { ColumnInfo, ValueKind } from '../core/change-event.ts';
import {
  arrayToJson,
  boolToJson,
  dateToJson,
  floatToJson,
  intervalToJson,
  intToJson,
  stringToJson,
  timestampToJson,
  timetzToJson,
  type ValueOptions,
  type ValueToJson,
} from './values.ts';

export interface DebeziumModes {
  decimal: 'precise' | 'string' | 'double';
  time: 'adaptive' | 'adaptive_time_microseconds' | 'connect' | 'isostring';
  binary: 'bytes' | 'base64' | 'base64-url-safe' | 'hex';
  interval: 'numeric' | 'string';
  bigintUnsigned: 'long' | 'precise';
}

export const DEFAULT_MODES: DebeziumModes = {
  decimal: 'precise',
  time: 'adaptive',
  binary: 'bytes',
  interval: 'numeric',
  bigintUnsigned: 'long',
};

/** How one column appears in a Debezium event: its value converter and its Connect schema (`"type":...`, no braces). */
export interface DebeziumColumn {
  convert: ValueToJson;
  schema: string;
}

const quote = JSON.stringify as (s: string) => string;

const ISO_OPTS: ValueOptions = { zeroDates: 'null' };

export type Connector = 'postgresql' | 'mysql';

export function debeziumColumn(
  column: Pick<ColumnInfo, 'kind' | 'type' | 'elementKind'>,
  modes: DebeziumModes,
  connector: Connector = 'postgresql',
): DebeziumColumn {
  if (connector === 'mysql') {
    const mysql = mysqlColumn(column.kind, column.type.toLowerCase(), modes, column.type);
    if (mysql) return mysql;
  }
  return columnFor(column.kind, column.type, column.elementKind, modes);
}

/**
 * MySQL columns where Debezium's MySQL connector differs from its PostgreSQL one: DATETIME, TIME and TIMESTAMP
 * default to precision 0; TIME is always microseconds (its default adaptive_time_microseconds) and may be negative;
 * JSON is compact; geometries are WKB.
 */
function mysqlColumn(kind: ValueKind, t: string, modes: DebeziumModes, typeName: string): DebeziumColumn | null {
  const precision = precisionOf(t, 0);
  switch (kind) {
    case 'timestamp':
      return timestampColumn(precision, modes);
    case 'timestamptz':
      return {
        convert: zonedTimestampToJson(precision),
        schema: named('string', 'io.debezium.time.ZonedTimestamp'),
      };
    case 'time':
      if (modes.time === 'isostring') return null;
      return {
        convert: (text) => {
          const us = parseSignedTimeMicros(text);
          if (us === null) return keptText(text);
          return String(modes.time === 'connect' ? Math.trunc(us / 1000) : us);
        },
        schema:
          modes.time === 'connect'
            ? '"type":"int32","name":"org.apache.kafka.connect.data.Time","version":1'
            : named('int64', 'io.debezium.time.MicroTime'),
      };
    case 'json':
      return { convert: (text) => quote(compactJson(text)), schema: named('string', 'io.debezium.data.Json') };
    case 'geometry':
      return geometryColumn(t);
    case 'int':
      return t.startsWith('year') ? { convert: intToJson, schema: named('int32', 'io.debezium.time.Year') } : null;
    case 'enum':
    case 'set': {
      // The labels are in the column type: enum('a','b') / set('x','y').
      const labels = [...typeName.matchAll(/'((?:[^']|'')*)'/g)].map((m) => m[1]!.replace(/''/g, "'"));
      const name = kind === 'enum' ? 'io.debezium.data.Enum' : 'io.debezium.data.EnumSet';
      return {
        convert: stringToJson,
        schema: named('string', name, `,"parameters":{"allowed":${quote(labels.join(','))}}`),
      };
    }
    default:
      return null;
  }
}

/** `-838:59:59`, `12:34:56.789012` -> signed microseconds. */
function parseSignedTimeMicros(text: string): number | null {
  const m = /^(-)?(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?$/.exec(text);
  if (!m) return null;
  const us = ((Number(m[2]) * 60 + Number(m[3])) * 60 + Number(m[4])) * 1_000_000 + Number((m[5] ?? '').padEnd(6, '0'));
  return m[1] ? -us : us;
}

/** JSON text without whitespace outside strings (numbers keep their exact text). */
export function compactJson(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c !== ' ' && c !== '\n' && c !== '\t' && c !== '\r') out += c;
  }
  return out;
}

function geometryColumn(t: string): DebeziumColumn {
  const point = t === 'point';
  return {
    convert: (text) => {
      const wkb = wktToWkb(text);
      if (!wkb) return keptText(text);
      const b64 = wkb.toString('base64');
      if (!point) return `{"wkb":"${b64}","srid":null}`;
      return `{"x":${floatToJson(String(wkb.readDoubleLE(5)))},"y":${floatToJson(String(wkb.readDoubleLE(13)))},"wkb":"${b64}","srid":null}`;
    },
    schema: point
      ? '"type":"struct","fields":[{"type":"double","optional":false,"field":"x"},{"type":"double","optional":false,"field":"y"},{"type":"bytes","optional":true,"field":"wkb"},{"type":"int32","optional":true,"field":"srid"}],"name":"io.debezium.data.geometry.Point","version":1,"doc":"Geometry (POINT)"'
      : '"type":"struct","fields":[{"type":"bytes","optional":false,"field":"wkb"},{"type":"int32","optional":true,"field":"srid"}],"name":"io.debezium.data.geometry.Geometry","version":1,"doc":"Geometry"',
  };
}

const WKB_TYPES: Record<string, number> = {
  POINT: 1,
  LINESTRING: 2,
  POLYGON: 3,
  MULTIPOINT: 4,
  MULTILINESTRING: 5,
  MULTIPOLYGON: 6,
  GEOMETRYCOLLECTION: 7,
};

/** WKT (as the MySQL source writes it) -> little-endian WKB, or null when it is not WKT. */
export function wktToWkb(text: string): Buffer | null {
  const parts: Buffer[] = [];
  let i = 0;
  const u8 = (v: number) => parts.push(Buffer.from([v]));
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    parts.push(b);
  };
  const f64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    parts.push(b);
  };
  const expect = (c: string) => {
    if (text[i] !== c) throw new Error(`expected ${c}`);
    i++;
  };
  const word = () => {
    const m = /^[A-Z]+/.exec(text.slice(i));
    if (!m) throw new Error('expected a geometry type');
    i += m[0].length;
    return m[0];
  };
  const coordinate = () => {
    const m = /^\s*(\S+?)\s+([^\s,)]+)/.exec(text.slice(i));
    if (!m) throw new Error('expected a coordinate');
    i += m[0].length;
    f64(Number(m[1]));
    f64(Number(m[2]));
  };
  const list = (item: () => void) => {
    expect('(');
    const at = parts.length;
    u32(0);
    let n = 0;
    for (;;) {
      item();
      n++;
      if (text[i] === ',') {
        i++;
        continue;
      }
      expect(')');
      parts[at]!.writeUInt32LE(n);
      return;
    }
  };
  const header = (type: number) => {
    u8(1);
    u32(type);
  };
  const geometry = (): void => {
    const name = word();
    const type = WKB_TYPES[name];
    if (type === undefined) throw new Error(`unknown geometry ${name}`);
    header(type);
    const ring = () => list(coordinate);
    if (type === 1) {
      expect('(');
      coordinate();
      expect(')');
    } else if (type === 2) ring();
    else if (type === 3) list(ring);
    else if (type === 4)
      list(() => {
        header(1);
        const paren = text[i] === '(';
        if (paren) i++;
        coordinate();
        if (paren) expect(')');
      });
    else if (type === 5)
      list(() => {
        header(2);
        ring();
      });
    else if (type === 6)
      list(() => {
        header(3);
        list(ring);
      });
    else list(geometry);
  };
  try {
    geometry();
    return i === text.length ? Buffer.concat(parts) : null;
  } catch {
    return null;
  }
}

function columnFor(
  kind: ValueKind,
  typeName: string,
  elementKind: ValueKind | undefined,
  modes: DebeziumModes,
): DebeziumColumn {
  const t = typeName.toLowerCase();
  switch (kind) {
    case 'bool':
      return { convert: boolToJson, schema: '"type":"boolean"' };
    case 'int':
      return intColumn(t, modes);
    case 'float':
      return {
        convert: floatToJson,
        schema: /^(real|float4|float)\b/.test(t) && !t.includes('double') ? '"type":"float"' : '"type":"double"',
      };
    case 'decimal':
      return decimalColumn(t, modes);
    case 'bytes':
      return binaryColumn(modes);
    case 'json':
      return { convert: stringToJson, schema: named('string', 'io.debezium.data.Json') };
    case 'uuid':
      return { convert: stringToJson, schema: named('string', 'io.debezium.data.Uuid') };
    case 'enum':
      return { convert: stringToJson, schema: named('string', 'io.debezium.data.Enum') };
    case 'set':
      return { convert: stringToJson, schema: named('string', 'io.debezium.data.EnumSet') };
    case 'date':
      return dateColumn(modes);
    case 'time':
      return timeColumn(precisionOf(t, 6), modes);
    case 'timetz':
      return { convert: timetzToJson, schema: named('string', 'io.debezium.time.ZonedTime') };
    case 'timestamp':
      return timestampColumn(precisionOf(t, 6), modes);
    case 'timestamptz':
      return {
        convert: zonedTimestampToJson(precisionOf(t, 6)),
        schema: named('string', 'io.debezium.time.ZonedTimestamp'),
      };
    case 'interval':
      return modes.interval === 'string'
        ? { convert: intervalToJson, schema: named('string', 'io.debezium.time.Interval') }
        : { convert: intervalToMicros, schema: named('int64', 'io.debezium.time.MicroDuration') };
    case 'bits':
      return bitsColumn(t);
    case 'geometry':
      if (t === 'point')
        return {
          convert: pointToJson,
          schema:
            '"type":"struct","fields":[{"type":"double","optional":false,"field":"x"},{"type":"double","optional":false,"field":"y"},{"type":"bytes","optional":true,"field":"wkb"},{"type":"int32","optional":true,"field":"srid"}],"name":"io.debezium.data.geometry.Point","version":1,"doc":"Geometry (POINT)"',
        };
      // Debezium leaves box, circle, line, lseg, path and polygon out of the event: we keep PostgreSQL's text.
      return { convert: stringToJson, schema: '"type":"string"' };
    case 'array': {
      const elementType = t.endsWith('[]') ? t.slice(0, -2) : t.replace(/^_/, '');
      const element = columnFor(elementKind ?? 'text', elementType, undefined, modes);
      return {
        convert: (text: string) => arrayToJson(text, element.convert),
        schema: `"type":"array","items":{${withOptional(element.schema, true)}}`,
      };
    }
    default:
      return otherColumn(t, modes);
  }
}

/**
 * A Connect schema (`"type":...`) with `"optional"` where Kafka Connect writes it: before the schema's own `name`
 * (after a struct's fields or an array's items), or at the end when it has no name.
 */
export function withOptional(schema: string, optional: boolean): string {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < schema.length; i++) {
    const c = schema[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (depth === 0 && schema.startsWith(',"name":', i))
      return `${schema.slice(0, i)},"optional":${optional}${schema.slice(i)}`;
  }
  return `${schema},"optional":${optional}`;
}

function named(type: string, name: string, extra = ''): string {
  return `"type":"${type}","name":"${name}","version":1${extra}`;
}

function precisionOf(t: string, fallback: number): number {
  const m = /\((\d+)\)/.exec(t);
  return m ? Number(m[1]) : fallback;
}

// --- integers -------------------------------------------------------------------------------------------------

function intColumn(t: string, modes: DebeziumModes): DebeziumColumn {
  const unsigned = t.includes('unsigned');
  if (/^(smallint|int2|smallserial|tinyint)\b/.test(t))
    return { convert: intToJson, schema: `"type":"${unsigned && t.startsWith('smallint') ? 'int32' : 'int16'}"` };
  if (/^(mediumint|year)\b/.test(t)) return { convert: intToJson, schema: '"type":"int32"' };
  if (/^(integer|int4|int|serial)\b/.test(t))
    return { convert: intToJson, schema: `"type":"${unsigned ? 'int64' : 'int32'}"` };
  if (/^(bigint|int8|bigserial)\b/.test(t) && unsigned) {
    if (modes.bigintUnsigned === 'precise')
      return {
        convert: (text) => decimalBytesJson(text, 0),
        schema: named(
          'bytes',
          'org.apache.kafka.connect.data.Decimal',
          ',"parameters":{"scale":"0","connect.decimal.precision":"20"}',
        ),
      };
    // long mode: Debezium wraps values above 2^63-1 to negative numbers; we keep the exact value (documented).
    return { convert: intToJson, schema: '"type":"int64"' };
  }
  return { convert: intToJson, schema: '"type":"int64"' };
}

// --- decimals -------------------------------------------------------------------------------------------------

/** `numeric(p,s)` / `decimal(p,s)` -> [precision, scale]; null without a declared scale. */
function declaredScale(t: string): [number, number] | null {
  const m = /^(?:numeric|decimal)(?:\s+unsigned)?\((\d+)(?:,\s*(\d+))?\)/.exec(t);
  if (!m) return null;
  return [Number(m[1]), Number(m[2] ?? 0)];
}

function decimalColumn(t: string, modes: DebeziumModes): DebeziumColumn {
  const ps = declaredScale(t);
  if (modes.decimal === 'string') return { convert: decimalPlainString, schema: '"type":"string"' };
  if (modes.decimal === 'double') return { convert: decimalToDouble, schema: '"type":"double"' };
  if (ps) {
    const [precision, scale] = ps;
    return {
      convert: (text) => decimalBytesJson(text, scale),
      schema: named(
        'bytes',
        'org.apache.kafka.connect.data.Decimal',
        `,"parameters":{"scale":"${scale}","connect.decimal.precision":"${precision}"}`,
      ),
    };
  }
  return {
    convert: variableDecimalJson,
    schema:
      '"type":"struct","fields":[{"type":"int32","optional":false,"field":"scale"},{"type":"bytes","optional":false,"field":"value"}],"name":"io.debezium.data.VariableScaleDecimal","version":1,"doc":"Variable scaled decimal"',
  };
}

const DECIMAL_RE = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/** Decimal text -> unscaled integer and scale; null for NaN / Infinity and other non-numbers. */
export function decimalParts(text: string): { unscaled: bigint; scale: number } | null {
  const m = DECIMAL_RE.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return null;
  const frac = m[3] ?? '';
  const unscaled = BigInt(`${m[2] || '0'}${frac}`);
  return { unscaled: m[1] === '-' ? -unscaled : unscaled, scale: frac.length };
}

/** Java BigInteger.toByteArray: minimal two's-complement big-endian bytes (zero is one 0x00 byte). */
export function twosComplementBytes(v: bigint): Buffer {
  let n = 1;
  while (v >= 1n << BigInt(8 * n - 1) || v < -(1n << BigInt(8 * n - 1))) n++;
  const x = v < 0n ? (1n << BigInt(8 * n)) + v : v;
  return Buffer.from(x.toString(16).padStart(2 * n, '0'), 'hex');
}

function rescale(p: { unscaled: bigint; scale: number }, scale: number): bigint {
  if (p.scale === scale) return p.unscaled;
  if (p.scale < scale) return p.unscaled * 10n ** BigInt(scale - p.scale);
  // More digits than the column's scale (should not happen): truncate toward zero like BigDecimal.setScale(DOWN).
  return p.unscaled / 10n ** BigInt(p.scale - scale);
}

/** A value Debezium cannot hold in its type (numeric NaN, Infinity): PostgreSQL's own text, kept (documented). */
function keptText(text: string): string {
  return quote(text);
}

function decimalBytesJson(text: string, scale: number): string {
  const p = decimalParts(text);
  if (!p) return keptText(text);
  return `"${twosComplementBytes(rescale(p, scale)).toString('base64')}"`;
}

function variableDecimalJson(text: string): string {
  const p = decimalParts(text);
  if (!p) return keptText(text);
  // Debezium strips trailing zeros of an unconstrained numeric (BigDecimal.stripTrailingZeros), down to scale 0.
  let { unscaled, scale } = p;
  while (scale > 0 && unscaled % 10n === 0n) {
    unscaled /= 10n;
    scale--;
  }
  return `{"scale":${scale},"value":"${twosComplementBytes(unscaled).toString('base64')}"}`;
}

/** Debezium's names for the special values in decimal.handling.mode=string. */
const SPECIAL_DECIMALS: Record<string, string> = {
  NaN: '"NAN"',
  Infinity: '"POSITIVE_INFINITY"',
  '-Infinity': '"NEGATIVE_INFINITY"',
};

function decimalPlainString(text: string): string {
  return SPECIAL_DECIMALS[text] ?? quote(text);
}

function decimalToDouble(text: string): string {
  const p = decimalParts(text);
  if (!p) return floatToJson(text);
  return String(Number(text));
}

// --- binary, bits, money ----------------------------------------------------------------------------------------

/** Message content (base64) as binary.handling.mode writes bytes, with its Connect type. */
export function binaryContent(base64: string, modes: DebeziumModes): { json: string; type: string } {
  switch (modes.binary) {
    case 'hex':
      return { json: `"${Buffer.from(base64, 'base64').toString('hex')}"`, type: 'string' };
    case 'base64-url-safe':
      return { json: `"${Buffer.from(base64, 'base64').toString('base64url')}"`, type: 'string' };
    case 'base64':
      return { json: quote(base64), type: 'string' };
    default:
      return { json: quote(base64), type: 'bytes' };
  }
}

function hexOfBytea(text: string): string {
  if (text.length >= 2 && text.charCodeAt(0) === 92 && (text.charCodeAt(1) === 120 || text.charCodeAt(1) === 88)) {
    return text.slice(2).toLowerCase();
  }
  return Buffer.from(text, 'latin1').toString('hex');
}

function binaryColumn(modes: DebeziumModes): DebeziumColumn {
  switch (modes.binary) {
    case 'hex':
      return { convert: (text) => `"${hexOfBytea(text)}"`, schema: '"type":"string"' };
    case 'base64':
      return {
        convert: (text) => `"${Buffer.from(hexOfBytea(text), 'hex').toString('base64')}"`,
        schema: '"type":"string"',
      };
    case 'base64-url-safe':
      return {
        convert: (text) => `"${Buffer.from(hexOfBytea(text), 'hex').toString('base64url')}"`,
        schema: '"type":"string"',
      };
    default:
      return {
        convert: (text) => `"${Buffer.from(hexOfBytea(text), 'hex').toString('base64')}"`,
        schema: '"type":"bytes"',
      };
  }
}

function bitsColumn(t: string): DebeziumColumn {
  const m = /^bit\((\d+)\)/.exec(t);
  const length = m ? Number(m[1]) : /^bit$/.test(t) ? 1 : 2147483647;
  if (length === 1) return { convert: (text) => (text === '1' ? 'true' : 'false'), schema: '"type":"boolean"' };
  return {
    convert: bitsToJson,
    schema: named('bytes', 'io.debezium.data.Bits', `,"parameters":{"length":"${length}"}`),
  };
}

/** Bit string (`1010`) -> the number's bytes, least significant first, trailing zero bytes dropped (Java BitSet). */
export function bitsToJson(text: string): string {
  if (text === '' || !/^[01]+$/.test(text)) return text === '' ? '""' : quote(text);
  let v = BigInt(`0b${text}`);
  const bytes: number[] = [];
  while (v > 0n) {
    bytes.push(Number(v & 0xffn));
    v >>= 8n;
  }
  return `"${Buffer.from(bytes).toString('base64')}"`;
}

/** `$1,234.56` / `-$0.01` (lc_monetary C) -> decimal with scale 2 (Debezium's money.fraction.digits default). */
function moneyToDecimalText(text: string): string {
  const negative = text.includes('-') || text.startsWith('(');
  const digits = text.replace(/[^0-9.]/g, '');
  return negative ? `-${digits}` : digits;
}

function otherColumn(t: string, modes: DebeziumModes): DebeziumColumn {
  if (t === 'money') {
    if (modes.decimal === 'string') return { convert: (x) => quote(moneyToDecimalText(x)), schema: '"type":"string"' };
    if (modes.decimal === 'double')
      return { convert: (x) => String(Number(moneyToDecimalText(x))), schema: '"type":"double"' };
    return {
      convert: (x) => decimalBytesJson(moneyToDecimalText(x), 2),
      schema: named('bytes', 'org.apache.kafka.connect.data.Decimal', ',"parameters":{"scale":"2"}'),
    };
  }
  if (t === 'hstore') return { convert: hstoreToJson, schema: named('string', 'io.debezium.data.Json') };
  if (t === 'xml') return { convert: stringToJson, schema: named('string', 'io.debezium.data.Xml') };
  if (t === 'tsvector') return { convert: stringToJson, schema: named('string', 'io.debezium.data.Tsvector') };
  if (t === 'ltree') return { convert: stringToJson, schema: named('string', 'io.debezium.data.Ltree') };
  return { convert: stringToJson, schema: '"type":"string"' };
}

/** hstore text (`"a"=>"1", "b"=>NULL`) -> a JSON object as a string (hstore.handling.mode=json). */
export function hstoreToJson(text: string): string {
  const out: string[] = [];
  const re = /\s*"((?:[^"\\]|\\.)*)"\s*=>\s*(?:"((?:[^"\\]|\\.)*)"|(NULL))\s*,?/gy;
  let m = re.exec(text);
  let consumed = 0;
  while (m) {
    const key = m[1]!.replace(/\\(.)/g, '$1');
    const value = m[3] ? 'null' : quote(m[2]!.replace(/\\(.)/g, '$1'));
    out.push(`${quote(key)}:${value}`);
    consumed = re.lastIndex;
    m = re.exec(text);
  }
  if (text.slice(consumed).trim() !== '') return quote(text);
  return quote(`{${out.join(',')}}`);
}

// --- points ---------------------------------------------------------------------------------------------------

/** `(x,y)` -> `{"x":..,"y":..,"wkb":"<little-endian WKB point>","srid":null}`. */
export function pointToJson(text: string): string {
  const m = /^\(\s*([^,]+?)\s*,\s*([^)]+?)\s*\)$/.exec(text);
  if (!m) return quote(text);
  const x = Number(m[1]);
  const y = Number(m[2]);
  const wkb = Buffer.alloc(21);
  wkb.writeUInt8(1, 0);
  wkb.writeUInt32LE(1, 1);
  wkb.writeDoubleLE(x, 5);
  wkb.writeDoubleLE(y, 13);
  return `{"x":${floatToJson(m[1]!)},"y":${floatToJson(m[2]!)},"wkb":"${wkb.toString('base64')}","srid":null}`;
}

// --- dates and times ------------------------------------------------------------------------------------------

/** Days since 1970-01-01 of a proleptic Gregorian date (astronomical year). */
export function epochDays(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Inverse of epochDays. */
export function civilDate(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [era * 400 + yoe + (m <= 2 ? 1 : 0), m, d];
}

const DATE_RE = /^(\d+)-(\d\d)-(\d\d)/;

/** MySQL's zero dates (`0000-00-00`, or a month or day of 00): Debezium writes null. */
function isZeroDate(text: string): boolean {
  const m = DATE_RE.exec(text);
  return m !== null && (m[2] === '00' || m[3] === '00');
}

/** `YYYY-MM-DD[...][ BC]` -> epoch days, or null when not a date. */
function parseDays(text: string): number | null {
  const m = DATE_RE.exec(text);
  if (!m) return null;
  let year = Number(m[1]);
  if (text.endsWith(' BC')) year = 1 - year;
  return epochDays(year, Number(m[2]), Number(m[3]));
}

const TIME_RE = /(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?/;

/** Microseconds since midnight of `HH:MM:SS[.ffffff]` (24:00:00 allowed). */
function parseTimeMicros(text: string): number | null {
  const m = TIME_RE.exec(text);
  if (!m) return null;
  const frac = Number((m[4] ?? '').padEnd(6, '0'));
  return ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1_000_000 + frac;
}

/** Debezium's values for PostgreSQL's infinite timestamps (the JDBC driver's constants), in ms and in µs. */
const INFINITY_MS = { '+': '9223372036825200', '-': '-9223372036832400' };
const INFINITY_US = { '+': '9223372036825200000', '-': '-9223372036832400000' };

function dateColumn(modes: DebeziumModes): DebeziumColumn {
  if (modes.time === 'isostring')
    return { convert: dateToJson(ISO_OPTS), schema: named('string', 'io.debezium.time.IsoDate') };
  const schema =
    modes.time === 'connect'
      ? '"type":"int32","name":"org.apache.kafka.connect.data.Date","version":1'
      : named('int32', 'io.debezium.time.Date');
  return {
    convert: (text) => {
      if (isZeroDate(text)) return 'null';
      const days = parseDays(text);
      // Debezium writes a meaningless number for infinity (it differs between snapshot and streaming): keep the text.
      return days === null ? keptText(text) : String(days);
    },
    schema,
  };
}

function timeColumn(precision: number, modes: DebeziumModes): DebeziumColumn {
  if (modes.time === 'isostring') return { convert: stringToJson, schema: named('string', 'io.debezium.time.IsoTime') };
  const millis = modes.time === 'connect' || (modes.time === 'adaptive' && precision <= 3);
  const schema =
    modes.time === 'connect'
      ? '"type":"int32","name":"org.apache.kafka.connect.data.Time","version":1'
      : millis
        ? named('int32', 'io.debezium.time.Time')
        : named('int64', 'io.debezium.time.MicroTime');
  return {
    convert: (text) => {
      const us = parseTimeMicros(text);
      if (us === null) return keptText(text);
      return String(millis ? Math.floor(us / 1000) : us);
    },
    schema,
  };
}

/** Epoch microseconds of `YYYY-MM-DD HH:MM:SS[.ffffff][ BC]` as decimal text (exact beyond 2^53 and int64). */
function timestampMicrosText(text: string): string | null {
  const days = parseDays(text);
  if (days === null) return null;
  const space = text.indexOf(' ');
  const tod = space > 0 ? parseTimeMicros(text.slice(space + 1)) : 0;
  if (tod === null) return null;
  if (Math.abs(days) < 100_000) return String(days * 86_400_000_000 + tod);
  return (BigInt(days) * 86_400_000_000n + BigInt(tod)).toString();
}

function microsToMillisText(us: string): string {
  const v = BigInt(us);
  // floor division, as Debezium truncates toward negative infinity for instants before the epoch
  const ms = v >= 0n ? v / 1000n : -((-v + 999n) / 1000n);
  return ms.toString();
}

function timestampColumn(precision: number, modes: DebeziumModes): DebeziumColumn {
  if (modes.time === 'isostring')
    return { convert: timestampToJson(ISO_OPTS), schema: named('string', 'io.debezium.time.IsoTimestamp') };
  const millis = modes.time === 'connect' || precision <= 3;
  const schema =
    modes.time === 'connect'
      ? '"type":"int64","name":"org.apache.kafka.connect.data.Timestamp","version":1'
      : millis
        ? named('int64', 'io.debezium.time.Timestamp')
        : named('int64', 'io.debezium.time.MicroTimestamp');
  return {
    convert: (text) => {
      if (text === 'infinity') return millis ? INFINITY_MS['+'] : INFINITY_US['+'];
      if (text === '-infinity') return millis ? INFINITY_MS['-'] : INFINITY_US['-'];
      if (isZeroDate(text)) return 'null';
      const us = timestampMicrosText(text);
      if (us === null) return keptText(text);
      return millis ? microsToMillisText(us) : us;
    },
    schema,
  };
}

const ZONE_RE = /([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?$/;

/** timestamptz text -> ISO-8601 in UTC with the column's fraction digits, `+` before years past 9999. */
export function zonedTimestampToJson(fractionDigits: number): ValueToJson {
  return (text) => {
    if (text === 'infinity' || text === '-infinity') return quote(text);
    if (isZeroDate(text)) return 'null';
    const bc = text.endsWith(' BC');
    const body = bc ? text.slice(0, -3) : text;
    const zone = ZONE_RE.exec(body.slice(body.indexOf(' ') + 1));
    const local = timestampMicrosText(`${zone ? body.slice(0, body.length - zone[0].length) : body}${bc ? ' BC' : ''}`);
    if (local === null) return quote(text);
    let us = BigInt(local);
    if (zone) {
      const offset = (Number(zone[2]) * 3600 + Number(zone[3] ?? 0) * 60 + Number(zone[4] ?? 0)) * 1_000_000;
      us -= BigInt(zone[1] === '-' ? -offset : offset);
    }
    return quote(isoInstant(us, fractionDigits));
  };
}

/** Epoch microseconds -> `YYYY-MM-DDTHH:MM:SS[.f]Z` as java.time prints it (`+` past 9999, `-` before year 0). */
export function isoInstant(us: bigint, fractionDigits: number): string {
  const dayUs = 86_400_000_000n;
  let days = us / dayUs;
  let rest = us % dayUs;
  if (rest < 0n) {
    rest += dayUs;
    days -= 1n;
  }
  const [y, mo, d] = civilDate(Number(days));
  const r = Number(rest);
  const secs = Math.floor(r / 1_000_000);
  const frac = String(r % 1_000_000).padStart(6, '0');
  const year = y > 9999 ? `+${y}` : y < 0 ? `-${String(-y).padStart(4, '0')}` : String(y).padStart(4, '0');
  const time = `${pad2(Math.floor(secs / 3600))}:${pad2(Math.floor((secs % 3600) / 60))}:${pad2(secs % 60)}`;
  const fraction = fractionDigits > 0 ? `.${frac.slice(0, fractionDigits).padEnd(fractionDigits, '0')}` : '';
  return `${year}-${pad2(mo)}-${pad2(d)}T${time}${fraction}Z`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Microseconds per month in Debezium's MicroDuration: 365.25 / 12 = 30.4375 days. */
const MONTH_US = 2_629_800_000_000n;
const DAY_US = 86_400_000_000n;

/** PostgreSQL interval text -> microseconds (interval.handling.mode=numeric), exact beyond int64. */
export function intervalToMicros(text: string): string {
  let months = 0n;
  let days = 0n;
  let us = 0n;
  let rest = text.trim();
  const unitRe = /^([+-]?\d+) (years?|mons?|days?)\s*/;
  for (let m = unitRe.exec(rest); m; m = unitRe.exec(rest)) {
    const n = BigInt(m[1]!);
    if (m[2]!.startsWith('year')) months += n * 12n;
    else if (m[2]!.startsWith('mon')) months += n;
    else days += n;
    rest = rest.slice(m[0].length);
  }
  if (rest !== '') {
    const t = /^([+-])?(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(rest);
    if (!t) return quote(text);
    const v =
      ((BigInt(t[2]!) * 60n + BigInt(t[3]!)) * 60n + BigInt(t[4]!)) * 1_000_000n + BigInt((t[5] ?? '').padEnd(6, '0'));
    us = t[1] === '-' ? -v : v;
  }
  return (months * MONTH_US + days * DAY_US + us).toString();
}
