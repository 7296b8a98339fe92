import { describe, expect, it } from 'vitest';
import { keepsValues } from './column-retype.ts';

describe('MySQL column type changes: which keep every value', () => {
  it('widenings keep values, whatever the spelling', () => {
    const kept: [string, string][] = [
      ['int', 'bigint'],
      ['int', 'INTEGER(11)'],
      ['tinyint unsigned', 'smallint'],
      ['int unsigned', 'bigint unsigned'],
      ['smallint', 'int4'],
      ['varchar(10)', 'varchar(20)'],
      ['varchar(10)', 'VARCHAR(10)'],
      ['char(5)', 'varchar(5)'],
      ['varchar(100)', 'text'],
      ['text', 'longtext'],
      ['varbinary(4)', 'blob'],
      ['decimal(8,2)', 'decimal(12,2)'],
      ['decimal(10,0)', 'dec'],
      ['datetime', 'datetime(6)'],
      ['datetime(3)', 'datetime(3)'],
      ['timestamp', 'timestamp(0)'],
      ['time(2)', 'time(6)'],
      ["enum('a','b')", "ENUM('a','b','c')"],
      ["set('x')", "set('x','y')"],
      ['bit(3)', 'bit(3)'],
      ['year(4)', 'year'],
      ['point', 'geometry'],
      ['tinyint', 'bool'],
    ];
    for (const [from, to] of kept) expect([from, to, keepsValues(from, to)]).toEqual([from, to, true]);
  });

  it('anything that may change a value, or is not understood, does not', () => {
    const changed: [string, string][] = [
      ['decimal(10,2)', 'decimal(10,1)'],
      ['decimal(10,2)', 'decimal(10,3)'],
      ['decimal(8,2)', 'numeric(12,4)'],
      ['float', 'double precision'],
      ['decimal(10,2)', 'decimal(10,2) unsigned'],
      ['datetime(6)', 'datetime'],
      ['timestamp(3)', 'timestamp(1)'],
      ['time(6)', 'time'],
      ['datetime', 'timestamp'],
      ['date', 'datetime'],
      ['float', 'int'],
      ['double', 'bigint'],
      ['double', 'float'],
      ['int', 'varchar(20)'],
      ['varchar(20)', 'int'],
      ['bigint', 'int'],
      ['int', 'int unsigned'],
      ['int unsigned', 'int'],
      ['int', 'double'],
      ['varchar(20)', 'varchar(10)'],
      ['varchar(5)', 'char(5)'],
      ['text', 'varchar(100)'],
      ['varchar(20000)', 'text'],
      ['binary(4)', 'binary(8)'],
      ['bit(3)', 'bit(8)'],
      ["enum('a','b')", "enum('b','a')"],
      ["enum('a','b')", "enum('a')"],
      ['text', 'text(100)'],
      ['longtext', 'json'],
      ['varchar(10)', 'something odd('],
    ];
    for (const [from, to] of changed) expect([from, to, keepsValues(from, to)]).toEqual([from, to, false]);
  });
});
