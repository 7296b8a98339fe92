/**
 * MySQL's binary JSON (the JSON column as the binlog carries it) to the exact text the server prints for it, so a
 * streamed value reads like the same value in the snapshot: DECIMAL as a number with its scale (`1.50`), doubles as
 * MySQL writes them (`1.0`, `1e17`, `0.00000015`), dates and times as MySQL's strings, other opaque values as
 * `base64:typeN:...`, object keys in stored order, `, ` and `: ` separators. Format: MySQL's json_binary.h.
 */

const SMALL_OBJECT = 0x00;
const LARGE_OBJECT = 0x01;
const SMALL_ARRAY = 0x02;
const LARGE_ARRAY = 0x03;
const LITERAL = 0x04;
const INT16 = 0x05;
const UINT16 = 0x06;
const INT32 = 0x07;
const UINT32 = 0x08;
const INT64 = 0x09;
const UINT64 = 0x0a;
const DOUBLE = 0x0b;
const STRING = 0x0c;
const OPAQUE = 0x0f;

/** Field types of opaque values that MySQL prints as something other than base64. */
const MYSQL_TYPE_TIMESTAMP = 7;
const MYSQL_TYPE_DATE = 10;
const MYSQL_TYPE_TIME = 11;
const MYSQL_TYPE_DATETIME = 12;
const MYSQL_TYPE_NEWDECIMAL = 246;

export function mysqlBinaryJsonToText(buf: Buffer): string {
  if (buf.length === 0) return 'null';
  return value(buf, buf[0]!, 1);
}

/** A value of type `type` whose data starts at `at`. */
function value(buf: Buffer, type: number, at: number): string {
  switch (type) {
    case SMALL_OBJECT:
      return container(buf, at, false, true);
    case LARGE_OBJECT:
      return container(buf, at, true, true);
    case SMALL_ARRAY:
      return container(buf, at, false, false);
    case LARGE_ARRAY:
      return container(buf, at, true, false);
    case LITERAL:
      return literal(buf[at]!);
    case INT16:
      return String(buf.readInt16LE(at));
    case UINT16:
      return String(buf.readUInt16LE(at));
    case INT32:
      return String(buf.readInt32LE(at));
    case UINT32:
      return String(buf.readUInt32LE(at));
    case INT64:
      return buf.readBigInt64LE(at).toString();
    case UINT64:
      return buf.readBigUInt64LE(at).toString();
    case DOUBLE:
      return mysqlDouble(buf.readDoubleLE(at));
    case STRING: {
      const [length, start] = varLength(buf, at);
      return JSON.stringify(buf.toString('utf8', start, start + length));
    }
    case OPAQUE: {
      const fieldType = buf[at]!;
      const [length, start] = varLength(buf, at + 1);
      return opaque(fieldType, buf.subarray(start, start + length));
    }
    default:
      throw new Error(`binary JSON: unknown value type ${type}`);
  }
}

function literal(b: number): string {
  if (b === 0) return 'null';
  if (b === 1) return 'true';
  if (b === 2) return 'false';
  throw new Error(`binary JSON: unknown literal ${b}`);
}

/** An object or array whose header starts at `at`; offsets inside are relative to `at`. */
function container(buf: Buffer, at: number, large: boolean, object: boolean): string {
  const n = large ? 4 : 2;
  const read = (p: number) => (large ? buf.readUInt32LE(p) : buf.readUInt16LE(p));
  const count = read(at);
  const keyEntries = at + 2 * n;
  const valueEntries = keyEntries + (object ? count * (n + 2) : 0);
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    const entry = valueEntries + i * (1 + n);
    const type = buf[entry]!;
    // Literals and 16-bit integers (and 32-bit ones in the large format) are inlined in the entry.
    const inlined =
      type === LITERAL || type === INT16 || type === UINT16 || (large && (type === INT32 || type === UINT32));
    const text = value(buf, type, inlined ? entry + 1 : at + read(entry + 1));
    if (object) {
      const keyEntry = keyEntries + i * (n + 2);
      const keyAt = at + read(keyEntry);
      const keyLength = buf.readUInt16LE(keyEntry + n);
      parts.push(`${JSON.stringify(buf.toString('utf8', keyAt, keyAt + keyLength))}: ${text}`);
    } else parts.push(text);
  }
  return object ? `{${parts.join(', ')}}` : `[${parts.join(', ')}]`;
}

/** A length of 7 bits per byte, low bits first, high bit set while more bytes follow. Returns [length, data start]. */
function varLength(buf: Buffer, at: number): [number, number] {
  let length = 0;
  for (let i = 0; i < 5; i++) {
    const b = buf[at + i]!;
    length += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return [length, at + i + 1];
  }
  throw new Error('binary JSON: bad length');
}

function opaque(fieldType: number, data: Buffer): string {
  switch (fieldType) {
    case MYSQL_TYPE_NEWDECIMAL:
      return binaryDecimal(data.subarray(2), data[0]!, data[1]!);
    case MYSQL_TYPE_DATE:
      return JSON.stringify(packedDatetime(data.readBigInt64LE(0)).slice(0, 10));
    case MYSQL_TYPE_DATETIME:
    case MYSQL_TYPE_TIMESTAMP:
      return JSON.stringify(packedDatetime(data.readBigInt64LE(0)));
    case MYSQL_TYPE_TIME:
      return JSON.stringify(packedTime(data.readBigInt64LE(0)));
    default:
      return JSON.stringify(`base64:type${fieldType}:${data.toString('base64')}`);
  }
}

const pad = (n: number | bigint, width: number) => String(n).padStart(width, '0');

/** MySQL's packed DATETIME (my_time_packed): `YYYY-MM-DD hh:mm:ss.ffffff`, as JSON prints it (6 digits). */
function packedDatetime(packed: bigint): string {
  const p = packed < 0n ? -packed : packed;
  const frac = p % (1n << 24n);
  const ymdhms = p >> 24n;
  const ymd = ymdhms >> 17n;
  const ym = ymd >> 5n;
  const hms = ymdhms % (1n << 17n);
  return (
    `${pad(ym / 13n, 4)}-${pad(ym % 13n, 2)}-${pad(ymd % 32n, 2)} ` +
    `${pad(hms >> 12n, 2)}:${pad((hms >> 6n) % 64n, 2)}:${pad(hms % 64n, 2)}.${pad(frac, 6)}`
  );
}

/** MySQL's packed TIME: `[-]hh:mm:ss.ffffff`. */
function packedTime(packed: bigint): string {
  const negative = packed < 0n;
  const p = negative ? -packed : packed;
  const frac = p % (1n << 24n);
  const hms = p >> 24n;
  const hour = (hms >> 12n) % (1n << 10n);
  return `${negative ? '-' : ''}${pad(hour, 2)}:${pad((hms >> 6n) % 64n, 2)}:${pad(hms % 64n, 2)}.${pad(frac, 6)}`;
}

const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/** MySQL's binary DECIMAL(precision, scale) to its text with exactly `scale` fraction digits. */
export function binaryDecimal(data: Buffer, precision: number, scale: number): string {
  const buf = Buffer.from(data);
  const negative = (buf[0]! & 0x80) === 0;
  buf[0] = buf[0]! ^ 0x80;
  if (negative) for (let i = 0; i < buf.length; i++) buf[i] = ~buf[i]! & 0xff;
  const intg = precision - scale;
  let at = 0;
  const readBE = (bytes: number): number => {
    let n = 0;
    for (let i = 0; i < bytes; i++) n = n * 256 + buf[at + i]!;
    at += bytes;
    return n;
  };
  let int = '';
  const leading = intg % 9;
  if (leading > 0) int += String(readBE(DIG2BYTES[leading]!));
  for (let i = 0; i < Math.floor(intg / 9); i++) int += pad(readBE(4), 9);
  int = int.replace(/^0+/, '') || '0';
  let frac = '';
  for (let i = 0; i < Math.floor(scale / 9); i++) frac += pad(readBE(4), 9);
  const trailing = scale % 9;
  if (trailing > 0) frac += pad(readBE(DIG2BYTES[trailing]!), trailing);
  const text = scale > 0 ? `${int}.${frac}` : int;
  return negative && /[1-9]/.test(text) ? `-${text}` : text;
}

/**
 * A double as MySQL's JSON prints it: the shortest digits that read back as the same double; positional unless the
 * decimal point lies more than 15 digits after the first digit or 15 zeros before it (my_gcvt); a `.0` added to a
 * positional integer.
 */
export function mysqlDouble(x: number): string {
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [mantissa, exp] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const e = Number(exp);
  const decpt = e + 1;
  if (decpt > 15 || decpt <= -15) {
    return `${sign}${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ''}e${e}`;
  }
  if (decpt <= 0) return `${sign}0.${'0'.repeat(-decpt)}${digits}`;
  if (digits.length <= decpt) return `${sign}${digits}${'0'.repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}
