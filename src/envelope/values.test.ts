import { describe, expect, it } from 'vitest';
import type { ChangeEvent, TableSchema } from '../core/change-event.ts';
import { UNCHANGED } from '../core/change-event.ts';
import { SchemaMismatchError } from '../errors.ts';
import { type EncodedRecord, EnvelopeEncoder, lsnToDecimal } from './encoder.ts';
import {
  arrayToJson,
  boolToJson,
  bytesToJson,
  converterFor,
  dateToJson,
  floatToJson,
  intervalToJson,
  intToJson,
  stringToJson,
  timestampToJson,
  timestamptzToJson,
  timetzToJson,
} from './values.ts';

const keep = { zeroDates: 'keep' as const };
const nul = { zeroDates: 'null' as const };

describe('value conversion', () => {
  it('integers stay exact at the int8 and unsigned bigint limits', () => {
    expect(intToJson('18446744073709551615')).toBe('18446744073709551615');
    expect(intToJson('-9223372036854775808')).toBe('-9223372036854775808');
    expect(intToJson('0')).toBe('0');
    expect(intToJson('-0')).toBe('0');
    expect(intToJson('007')).toBe('7');
    expect(intToJson('-007')).toBe('-7');
    expect(intToJson('12abc')).toBe('"12abc"');
    expect(JSON.parse(`[${intToJson('18446744073709551615')}]`)).toHaveLength(1);
  });

  it('floats: numbers, NaN and infinities as strings', () => {
    expect(floatToJson('3.14')).toBe('3.14');
    expect(floatToJson('1e+308')).toBe('1e+308');
    expect(floatToJson('-0')).toBe('-0');
    expect(floatToJson('NaN')).toBe('"NaN"');
    expect(floatToJson('Infinity')).toBe('"Infinity"');
    expect(floatToJson('-Infinity')).toBe('"-Infinity"');
    expect(floatToJson('.5')).toBe('0.5');
    expect(floatToJson('inf')).toBe('"Infinity"');
  });

  it('decimals are exact strings, NaN and infinities included', () => {
    const dec = converterFor('decimal', undefined, nul);
    expect(dec('12345678901234567890.000000000001')).toBe('"12345678901234567890.000000000001"');
    expect(dec('NaN')).toBe('"NaN"');
    expect(dec('-Infinity')).toBe('"-Infinity"');
  });

  it('booleans and bytes', () => {
    expect(boolToJson('t')).toBe('true');
    expect(boolToJson('f')).toBe('false');
    expect(bytesToJson('\\xdeadbeef')).toBe('"3q2+7w=="');
    expect(bytesToJson('\\x')).toBe('""');
  });

  it('json, uuid, text, enum, set, bits, geometry, time are JSON strings', () => {
    expect(converterFor('json', undefined, nul)('{"a": 1}')).toBe('"{\\"a\\": 1}"');
    for (const kind of ['uuid', 'text', 'enum', 'set', 'bits', 'geometry', 'other', 'time'] as const) {
      expect(converterFor(kind, undefined, nul)('a,b')).toBe('"a,b"');
    }
    expect(stringToJson('line\nbreak\u0001')).toBe('"line\\nbreak\\u0001"');
  });

  it('dates: ISO, BC as astronomical years, infinity, MySQL zero dates', () => {
    expect(dateToJson(nul)('2024-01-02')).toBe('"2024-01-02"');
    expect(dateToJson(nul)('0001-01-01 BC')).toBe('"0000-01-01"');
    expect(dateToJson(nul)('0044-03-15 BC')).toBe('"-0043-03-15"');
    expect(dateToJson(nul)('infinity')).toBe('"infinity"');
    expect(dateToJson(nul)('0000-00-00')).toBe('null');
    expect(dateToJson(nul)('2024-00-10')).toBe('null');
    expect(dateToJson(keep)('0000-00-00')).toBe('"0000-00-00"');
  });

  it('timestamps keep microseconds; timestamptz in UTC ends with Z', () => {
    expect(timestampToJson(nul)('2024-01-02 03:04:05.123456')).toBe('"2024-01-02T03:04:05.123456"');
    expect(timestampToJson(nul)('0010-01-02 03:04:05 BC')).toBe('"-0009-01-02T03:04:05"');
    expect(timestampToJson(nul)('0000-00-00 00:00:00')).toBe('null');
    expect(timestamptzToJson(nul)('2024-01-02 03:04:05.123456+00')).toBe('"2024-01-02T03:04:05.123456Z"');
    expect(timestamptzToJson(nul)('2024-01-02 03:04:05+05:30')).toBe('"2024-01-02T03:04:05+05:30"');
    expect(timestamptzToJson(nul)('2024-01-02 03:04:05-08')).toBe('"2024-01-02T03:04:05-08:00"');
    expect(timestamptzToJson(nul)('infinity')).toBe('"infinity"');
    expect(timestamptzToJson(nul)('-infinity')).toBe('"-infinity"');
  });

  it('timetz converts to UTC', () => {
    expect(timetzToJson('03:04:05.123456+00')).toBe('"03:04:05.123456Z"');
    expect(timetzToJson('01:00:00+02')).toBe('"23:00:00Z"');
    expect(timetzToJson('23:30:00-01:30')).toBe('"01:00:00Z"');
  });

  it('intervals become ISO-8601 durations', () => {
    expect(intervalToJson('1 year 2 mons 3 days 04:05:06.789')).toBe('"P1Y2M3DT4H5M6.789S"');
    expect(intervalToJson('00:00:00')).toBe('"P0Y0M0DT0H0M0S"');
    expect(intervalToJson('-1 days +02:03:00')).toBe('"P0Y0M-1DT2H3M0S"');
    expect(intervalToJson('-00:00:01.5')).toBe('"P0Y0M0DT0H0M-1.5S"');
    expect(intervalToJson('3 mons')).toBe('"P0Y3M0DT0H0M0S"');
    expect(intervalToJson('weird')).toBe('"weird"');
  });

  it('arrays: nesting, NULL, quoted and escaped elements, dimension decoration', () => {
    const int = converterFor('int', undefined, nul);
    const text = converterFor('text', undefined, nul);
    expect(arrayToJson('{1,NULL,-9223372036854775808}', int)).toBe('[1,null,-9223372036854775808]');
    expect(arrayToJson('{}', int)).toBe('[]');
    expect(arrayToJson('{{1,2},{3,4}}', int)).toBe('[[1,2],[3,4]]');
    expect(arrayToJson('{"a b","NULL",NULL,"q\\"x","b\\\\s"}', text)).toBe('["a b","NULL",null,"q\\"x","b\\\\s"]');
    expect(arrayToJson('[0:1]={7,8}', int)).toBe('[7,8]');
    expect(arrayToJson('{ a , b }', text)).toBe('["a","b"]');
    const ts = converterFor('array', 'timestamptz', nul);
    expect(ts('{"2024-01-02 03:04:05+00",NULL}')).toBe('["2024-01-02T03:04:05Z",null]');
    const bools = converterFor('array', 'bool', nul);
    expect(bools('{t,f}')).toBe('[true,false]');
    expect(() => arrayToJson('{1,2', int)).toThrow();
  });

  it('LSNs become exact decimal strings', () => {
    expect(lsnToDecimal('0/1926A58')).toBe(String(0x1926a58));
    expect(lsnToDecimal('00000000/01926A28')).toBe(String(0x1926a28));
    expect(lsnToDecimal('FFFFFFFF/FFFFFFFF')).toBe('18446744073709551615');
    expect(lsnToDecimal('16/B374D848')).toBe((0x16n * 2n ** 32n + 0xb374d848n).toString());
  });
});

const schema: TableSchema = {
  table: { schema: 'public', name: 't' },
  columns: [
    { name: 'id', type: 'integer', kind: 'int', isKey: true },
    { name: 'arr', type: 'integer[]', kind: 'array', elementKind: 'int', isKey: false },
    { name: 'doc', type: 'text', kind: 'text', isKey: false },
  ],
  keyColumns: ['id'],
  beforeImage: 'key',
};

function event(partial: Partial<ChangeEvent>): ChangeEvent {
  return {
    op: 'insert',
    table: schema.table,
    schema,
    key: null,
    before: null,
    after: null,
    source: {
      connector: 'postgresql',
      db: 'd',
      position: { kind: 'postgres', lsn: '0/10' },
      txId: '5',
      commitTimeMs: 1,
      snapshot: false,
    },
    ...partial,
  };
}

describe('envelope encoder', () => {
  const encoder = new EnvelopeEncoder({
    format: 'debezium',
    schemas: false,
    tombstones: false,
    unavailableValue: '__x__',
    transactionMetadata: false,
    serverName: 'srv',
    clock: () => 7,
  });

  it('names the table and column of a malformed array', () => {
    expect(() => encoder.encode(event({ after: { id: '1', arr: '{1,', doc: 'x' } }), [])).toThrow(SchemaMismatchError);
    expect(() => encoder.encode(event({ after: { id: '1', arr: '{1,', doc: 'x' } }), [])).toThrow(
      /public\.t, column arr/,
    );
  });

  it('writes unchanged TOAST values as the placeholder and keeps unknown columns as text', () => {
    const out: EncodedRecord[] = [];
    encoder.encode(event({ op: 'update', after: { id: '1', arr: null, doc: UNCHANGED, extra: 'v' } }), out);
    const value = JSON.parse(out[0]!.value!);
    expect(value.after).toEqual({ id: 1, arr: null, doc: '__x__', extra: 'v' });
    expect(value.op).toBe('u');
    expect(value.ts_ms).toBe(7);
  });

  it('derives the key from the row when the event carries none; no key for keyless tables', () => {
    const out: EncodedRecord[] = [];
    encoder.encode(event({ after: { id: '9', arr: '{}', doc: 'a' } }), out);
    expect(out[0]!.key).toBe('{"id":9}');
    const keyless: TableSchema = {
      ...schema,
      keyColumns: [],
      columns: schema.columns.map((c) => ({ ...c, isKey: false })),
    };
    encoder.encode(event({ schema: keyless, after: { id: '9', arr: '{}', doc: 'a' } }), out);
    expect(out[1]!.key).toBeNull();
    encoder.encode(event({ schema: keyless, key: { doc: 'a' }, after: { id: '9', arr: '{}', doc: 'a' } }), out);
    expect(out[2]!.key).toBe('{"doc":"a"}');
  });

  it('caches one compiled encoder per TableSchema object', () => {
    const out: EncodedRecord[] = [];
    const fresh = { ...schema, columns: [...schema.columns.slice(0, 1), { ...schema.columns[2]!, name: 'doc2' }] };
    encoder.encode(event({ after: { id: '1', arr: '{}', doc: 'a' } }), out);
    encoder.encode(event({ schema: fresh, after: { id: '1', doc2: 'b' } }), out);
    expect(JSON.parse(out[1]!.value!).after).toEqual({ id: 1, doc2: 'b' });
  });

  it('a key change without tombstones is a delete then a create, each pointing at the other key', () => {
    const out: EncodedRecord[] = [];
    encoder.encode(
      event({ op: 'update', key: { id: '2' }, before: { id: '1' }, after: { id: '2', arr: null, doc: 'x' } }),
      out,
    );
    expect(out.map((r) => [r.type, r.key, JSON.parse(r.value!).op])).toEqual([
      ['change', '{"id":1}', 'd'],
      ['change', '{"id":2}', 'c'],
    ]);
    expect(out[0]!.newKey).toBe('{"id":2}');
    expect(out[1]!.oldKey).toBe('{"id":1}');
  });
});
