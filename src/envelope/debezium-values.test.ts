import { describe, expect, it } from 'vitest';
import type { ValueKind } from '../core/change-event.ts';
import { DEFAULT_MODES, type DebeziumModes, debeziumColumn, withOptional } from './debezium-values.ts';

/** Expected texts are what Debezium 3.6.1 wrote for the same PostgreSQL values (test/golden/debezium/). */
const json = (
  kind: ValueKind,
  type: string,
  text: string,
  modes: Partial<DebeziumModes> = {},
  elementKind?: ValueKind,
) => debeziumColumn({ kind, type, elementKind }, { ...DEFAULT_MODES, ...modes }).convert(text);

describe('Debezium value encodings (defaults)', () => {
  it('decimals: fixed scale as base64 unscaled bytes, unconstrained as {scale, value} without trailing zeros', () => {
    expect(json('decimal', 'numeric(10,2)', '12.50')).toBe('"BOI="');
    expect(json('decimal', 'numeric(10,2)', '-0.01')).toBe('"/w=="');
    expect(json('decimal', 'numeric(10,2)', '0.00')).toBe('"AA=="');
    expect(json('decimal', 'numeric(10,2)', '99999999.99')).toBe('"AlQL4/8="');
    expect(json('decimal', 'numeric', '0.000000000000000000000000000001')).toBe('{"scale":30,"value":"AQ=="}');
    expect(json('decimal', 'numeric', '12345678901234567890.123456789012345678901234567890')).toBe(
      '{"scale":29,"value":"ANg/8Fdd5Z+puzcLpeWtmCiuOYEV"}',
    );
    // Debezium writes null for these; we keep the value (docs/event-format.md)
    expect(json('decimal', 'numeric', 'NaN')).toBe('"NaN"');
  });

  it('decimal.handling.mode string and double', () => {
    expect(json('decimal', 'numeric(10,2)', '12.50', { decimal: 'string' })).toBe('"12.50"');
    expect(json('decimal', 'numeric(10,2)', '12.50', { decimal: 'double' })).toBe('12.5');
    expect(json('decimal', 'numeric', 'NaN', { decimal: 'string' })).toBe('"NAN"');
    expect(json('decimal', 'numeric', '-Infinity', { decimal: 'string' })).toBe('"NEGATIVE_INFINITY"');
    expect(json('other', 'money', '-$92,233,720,368,547,758.08', { decimal: 'string' })).toBe(
      '"-92233720368547758.08"',
    );
  });

  it('money as a decimal with scale 2', () => {
    expect(json('other', 'money', '$1,234.56')).toBe('"AeJA"');
    expect(json('other', 'money', '-$0.01')).toBe('"/w=="');
    expect(json('other', 'money', '-$92,233,720,368,547,758.08')).toBe('"gAAAAAAAAAA="');
  });

  it('bits: bytes least significant first, bit(1) a boolean', () => {
    expect(json('bits', 'bit(4)', '1010')).toBe('"Cg=="');
    expect(json('bits', 'bit varying', '10101')).toBe('"FQ=="');
    expect(json('bits', 'bit(4)', '0000')).toBe('""');
    expect(json('bits', 'bit varying', '1000000001')).toBe('"AQI="');
    expect(json('bits', 'bit(1)', '1')).toBe('true');
  });

  it('dates, times, timestamps', () => {
    expect(json('date', 'date', '2000-01-01')).toBe('10957');
    expect(json('date', 'date', '4713-01-01 BC')).toBe('-2440550');
    expect(json('date', 'date', '10000-01-01')).toBe('2932897');
    expect(json('date', 'date', 'infinity')).toBe('"infinity"');
    expect(json('time', 'time without time zone', '23:59:59.999999')).toBe('86399999999');
    expect(json('time', 'time without time zone', '24:00:00')).toBe('86400000000');
    expect(json('time', 'time(3) without time zone', '00:00:01.5')).toBe('1500');
    expect(json('timestamp', 'timestamp without time zone', '2024-02-29 12:34:56.123456')).toBe('1709210096123456');
    expect(json('timestamp', 'timestamp(3) without time zone', '2024-01-01 00:00:00.123')).toBe('1704067200123');
    expect(json('timestamp', 'timestamp without time zone', '10000-01-01 00:00:00')).toBe('253402300800000000');
    expect(json('timestamp', 'timestamp without time zone', '-infinity')).toBe('-9223372036832400000');
    expect(json('timestamp', 'timestamp(3) without time zone', 'infinity')).toBe('9223372036825200');
    expect(json('timestamp', 'timestamp without time zone', '1969-12-31 23:59:59.999999', { time: 'connect' })).toBe(
      '-1',
    );
    expect(json('timestamp', 'timestamp without time zone', '2024-01-01 00:00:00', { time: 'isostring' })).toBe(
      '"2024-01-01T00:00:00"',
    );
  });

  it('timestamptz in UTC with the column precision, + past 9999', () => {
    const tz = (text: string, type = 'timestamp with time zone') => json('timestamptz', type, text);
    expect(tz('2024-06-01 12:00:00.000001+02')).toBe('"2024-06-01T10:00:00.000001Z"');
    expect(tz('4714-11-24 00:00:00+00 BC')).toBe('"-4713-11-24T00:00:00.000000Z"');
    expect(tz('10000-01-01 00:00:00+00')).toBe('"+10000-01-01T00:00:00.000000Z"');
    expect(tz('2024-01-01 00:00:00+05:45')).toBe('"2023-12-31T18:15:00.000000Z"');
    expect(tz('2024-01-01 00:00:00.5+00', 'timestamp(0) with time zone')).toBe('"2024-01-01T00:00:00Z"');
    expect(tz('infinity')).toBe('"infinity"');
  });

  it('intervals: microseconds with 30.4375-day months, or ISO-8601', () => {
    expect(json('interval', 'interval', '1 year 2 mons 3 days 04:05:06.789')).toBe('37091106789000');
    expect(json('interval', 'interval', '-1 years -2 mons +3 days -04:05:06')).toBe('-36572706000000');
    expect(json('interval', 'interval', '1 day 00:00:01.5')).toBe('86401500000');
    expect(json('interval', 'interval', '1 day', { interval: 'string' })).toBe('"P0Y0M1DT0H0M0S"');
  });

  it('point, hstore, binary modes, arrays', () => {
    expect(json('geometry', 'point', '(1.5,2)')).toBe(
      '{"x":1.5,"y":2,"wkb":"AQEAAAAAAAAAAAD4PwAAAAAAAABA","srid":null}',
    );
    expect(json('other', 'hstore', '"a"=>"1", "b c"=>NULL')).toBe('"{\\"a\\":\\"1\\",\\"b c\\":null}"');
    expect(json('bytes', 'bytea', '\\xdeadbeef')).toBe('"3q2+7w=="');
    expect(json('bytes', 'bytea', '\\xdeadbeef', { binary: 'hex' })).toBe('"deadbeef"');
    expect(json('array', 'integer[]', '{{1,2},{3,4}}', {}, 'int')).toBe('[[1,2],[3,4]]');
    expect(json('array', 'hstore[]', '{"\\"x\\"=>\\"y\\""}', {}, 'other')).toBe('["{\\"x\\":\\"y\\"}"]');
  });

  it('bigint unsigned: exact in long mode, a Decimal in precise mode', () => {
    expect(json('int', 'bigint unsigned', '18446744073709551615')).toBe('18446744073709551615');
    expect(json('int', 'bigint unsigned', '18446744073709551615', { bigintUnsigned: 'precise' })).toBe(
      '"AP//////////"',
    );
  });

  it('schemas put "optional" before the schema name, after struct fields and array items', () => {
    expect(withOptional('"type":"int32","name":"io.debezium.time.Date","version":1', true)).toBe(
      '"type":"int32","optional":true,"name":"io.debezium.time.Date","version":1',
    );
    const hstoreArray = debeziumColumn({ kind: 'array', type: 'hstore[]', elementKind: 'other' }, DEFAULT_MODES).schema;
    expect(withOptional(hstoreArray, false)).toBe(
      '"type":"array","items":{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1},"optional":false',
    );
  });
});
