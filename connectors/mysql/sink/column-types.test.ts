import { describe, expect, it } from 'vitest';
import { holds, isSafeMysqlType, takesLiteralDefault } from './column-types.ts';

describe('MySQL target column types', () => {
  it.each([
    // [have (information_schema COLUMN_TYPE), want (the type the source needs), verdict]
    ['int(11)', 'INT', true],
    ['int', 'integer', true],
    ['bigint(20)', 'int', true],
    ['int(11)', 'bigint', false],
    ['int(10) unsigned', 'int unsigned', true],
    ['int(10) unsigned', 'int', false],
    ['bigint(20)', 'int unsigned', true],
    ['int(11)', 'int unsigned', false],
    ['tinyint(1)', 'TINYINT(1)', true],
    ['decimal(12,2)', 'decimal(10,2)', true],
    ['decimal(10,2)', 'decimal(10,3)', false],
    ['varchar(20)', 'VARCHAR(10)', true],
    ['varchar(10)', 'varchar(20)', false],
    ['longtext', 'VARCHAR(255)', true],
    ['text', 'LONGTEXT', false],
    ['varbinary(16)', 'binary(16)', true],
    ["enum('a','b','c')", "enum('a','b')", true],
    ["enum('a')", "enum('a','b')", false],
    ['datetime(6)', 'DATETIME(3)', true],
    ['datetime', 'DATETIME(6)', false],
    ['bit(8)', 'BIT(1)', true],
    ['float', 'DOUBLE', false],
    ['double', 'DATE', undefined],
  ] as const)('a %s column holds %s: %s', (have, want, verdict) => {
    expect(holds(have, want)).toBe(verdict);
  });

  it('types with a literal DEFAULT: not TEXT, BLOB, JSON or geometries', () => {
    for (const t of ['tinytext', 'longtext', 'blob', 'mediumblob', 'json', 'point', 'geometry', 'geomcollection'])
      expect(takesLiteralDefault(t)).toBe(false);
    for (const t of ['int', 'varchar', 'char', 'varbinary', 'datetime', 'decimal', 'enum'])
      expect(takesLiteralDefault(t)).toBe(true);
  });

  it('type spellings safe in DDL', () => {
    expect(isSafeMysqlType("enum('a','it''s')")).toBe(true);
    expect(isSafeMysqlType('decimal(10,2) unsigned')).toBe(true);
    expect(isSafeMysqlType('int; drop table t')).toBe(false);
  });
});
