import { describe, expect, it } from 'vitest';
import type { ValueKind } from '../../../src/core/change-event.ts';
import { col, tableSchema } from '../../../test/fixtures/change-events.ts';
import { isPgDate, MysqlValueConverter, mappedSchema, type NulledValue, pgColumnType } from './type-mapping.ts';

describe('MySQL -> PostgreSQL column types', () => {
  const cases: [string, ValueKind, string][] = [
    ['tinyint', 'int', 'smallint'],
    ['tinyint unsigned', 'int', 'smallint'],
    ['smallint', 'int', 'smallint'],
    ['smallint unsigned', 'int', 'integer'],
    ['mediumint', 'int', 'integer'],
    ['mediumint unsigned', 'int', 'integer'],
    ['int', 'int', 'integer'],
    ['int unsigned', 'int', 'bigint'],
    ['bigint', 'int', 'bigint'],
    ['bigint unsigned', 'int', 'numeric(20,0)'],
    ['decimal(65,30)', 'decimal', 'numeric(65,30)'],
    ['decimal(10,2) unsigned', 'decimal', 'numeric(10,2)'],
    ['float', 'float', 'real'],
    ['double', 'float', 'double precision'],
    ['bit(1)', 'bits', 'bit(1)'],
    ['bit(64)', 'bits', 'bit(64)'],
    ['char(5)', 'text', 'character varying(5)'],
    ['varchar(50)', 'text', 'character varying(50)'],
    ['tinytext', 'text', 'text'],
    ['mediumtext', 'text', 'text'],
    ['longtext', 'text', 'text'],
    ['longtext', 'json', 'json'],
    ['json', 'json', 'json'],
    ['binary(4)', 'bytes', 'bytea'],
    ['varbinary(16)', 'bytes', 'bytea'],
    ['longblob', 'bytes', 'bytea'],
    ["enum('a','b(c)')", 'enum', 'text'],
    ["set('x','y')", 'set', 'text'],
    ['date', 'date', 'date'],
    ['datetime', 'timestamp', 'timestamp(0) without time zone'],
    ['datetime(6)', 'timestamp', 'timestamp(6) without time zone'],
    ['timestamp', 'timestamptz', 'timestamp(0) with time zone'],
    ['timestamp(3)', 'timestamptz', 'timestamp(3) with time zone'],
    ['time', 'time', 'interval(0)'],
    ['time(6)', 'time', 'interval(6)'],
    ['year', 'int', 'smallint'],
    ['geometry', 'geometry', 'text'],
    ['point', 'geometry', 'text'],
    ['multipolygon', 'geometry', 'text'],
    ['uuid', 'uuid', 'uuid'],
    ['inet6', 'text', 'text'],
    ['vector(3)', 'other', 'text'],
  ];
  it.each(cases)('%s (%s) -> %s', (type, kind, expected) => {
    expect(pgColumnType({ type, kind }).type).toBe(expected);
  });

  it('names what a lossy mapping loses', () => {
    expect(pgColumnType({ type: "enum('a')", kind: 'enum' }).lossy).toMatch(/label set/);
    expect(pgColumnType({ type: 'geometry', kind: 'geometry' }).lossy).toMatch(/SRID/);
    expect(pgColumnType({ type: 'int', kind: 'int' }).lossy).toBeUndefined();
  });

  it('maps a schema once per TableSchema object', () => {
    const s = tableSchema('db.t', [col('id', 'int unsigned', 'int', true), col('d', 'datetime(3)', 'timestamp')]);
    const m = mappedSchema(s);
    expect(mappedSchema(s)).toBe(m);
    expect(m.columns.map((c) => c.type)).toEqual(['bigint', 'timestamp(3) without time zone']);
    expect(s.columns[0]!.type).toBe('int unsigned');
  });
});

describe('MySQL dates PostgreSQL has no value for', () => {
  it('tells valid dates from zero, zero-part and invalid ones', () => {
    for (const d of ['2024-02-29', '0001-01-01', '9999-12-31 23:59:59.999999', '2000-02-29', '2024-06-01 12:00:00+00'])
      expect([d, isPgDate(d)]).toEqual([d, true]);
    for (const d of ['0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00+00', '2024-00-15', '2024-05-00'])
      expect([d, isPgDate(d)]).toEqual([d, false]);
    for (const d of ['0000-01-01', '2023-02-29', '1900-02-29', '2024-04-31', '2024-13-01'])
      expect([d, isPgDate(d)]).toEqual([d, false]);
  });

  const schema = tableSchema('db.t', [
    col('id', 'int', 'int', true),
    col('d', 'date', 'date'),
    col('ts', 'timestamp', 'timestamptz'),
    col('name', 'varchar(5)'),
  ]);

  it('error (default): stops naming table, column, key and the fix', () => {
    const conv = new MysqlValueConverter('error', () => undefined);
    expect(() => conv.convertRow(schema, { id: '7', d: '0000-00-00', ts: null, name: 'a' })).toThrow(
      /table db\.t column d \(key \{"id":"7"\}\): the MySQL date "0000-00-00"/,
    );
  });

  it('null: nulls the value in a copy, reports it, leaves valid rows untouched', () => {
    const nulled: NulledValue[] = [];
    const conv = new MysqlValueConverter('null', (_s, n) => nulled.push(n));
    const ok = { id: '1', d: '2024-01-01', ts: '2024-01-01 00:00:00+00', name: 'a' };
    expect(conv.convertRow(schema, ok)).toBe(ok);
    const zero = { id: '2', d: '0000-00-00', ts: '0000-00-00 00:00:00+00', name: 'b' };
    expect(conv.convertRow(schema, zero)).toEqual({ id: '2', d: null, ts: null, name: 'b' });
    expect(zero.d).toBe('0000-00-00');
    expect(nulled.map((n) => [n.column, n.value])).toEqual([
      ['d', '0000-00-00'],
      ['ts', '0000-00-00 00:00:00+00'],
    ]);
  });

  it('a key column is never nulled', () => {
    const keyed = tableSchema('db.k', [col('d', 'date', 'date', true)]);
    const conv = new MysqlValueConverter('null', () => undefined);
    expect(() => conv.convertRow(keyed, { d: '0000-00-00' })).toThrow(/part of the primary key cannot be NULL/);
  });

  it('tables without date columns need no work', () => {
    const conv = new MysqlValueConverter('error', () => undefined);
    const s = tableSchema('db.n', [col('id', 'int', 'int', true), col('st', "set('a')", 'set')]);
    expect(conv.columnsToConvert(s)).toBeNull();
    const row = { id: '1', st: 'a' };
    expect(conv.convertRow(s, row)).toBe(row);
  });
});
