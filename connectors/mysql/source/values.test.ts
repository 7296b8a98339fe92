import { describe, expect, it } from 'vitest';
import { parseTruncate } from './source.ts';
import { binlogValue, float32ToString, geometryToWkt, kindOfType, normalizeColumnType } from './values.ts';

function wkbPoint(x: number, y: number): Buffer {
  const b = Buffer.alloc(21);
  b.writeUInt8(1, 0);
  b.writeUInt32LE(1, 1);
  b.writeDoubleLE(x, 5);
  b.writeDoubleLE(y, 13);
  return b;
}

function internal(wkb: Buffer): Buffer {
  return Buffer.concat([Buffer.alloc(4), wkb]);
}

describe('mysql value forms', () => {
  it('prints 32-bit floats as their shortest round-trip text', () => {
    expect(float32ToString(Math.fround(3.14))).toBe('3.14');
    expect(float32ToString(Math.fround(1.2345678))).toBe('1.2345678');
    expect(float32ToString(Math.fround(3.4028234663852886e38))).toBe('3.4028235e+38');
    expect(float32ToString(-0)).toBe('-0');
  });

  it('spells geometries as WKT', () => {
    expect(geometryToWkt(internal(wkbPoint(1, -2.25)))).toBe('POINT(1 -2.25)');
    const multi = Buffer.concat([Buffer.from([1, 4, 0, 0, 0, 2, 0, 0, 0]), wkbPoint(1, 2), wkbPoint(3, 4)]);
    expect(geometryToWkt(internal(multi))).toBe('MULTIPOINT(1 2,3 4)');
    const coll = Buffer.concat([Buffer.from([1, 7, 0, 0, 0, 1, 0, 0, 0]), wkbPoint(5, 6)]);
    expect(geometryToWkt(internal(coll))).toBe('GEOMETRYCOLLECTION(POINT(5 6))');
  });

  it('normalizes INFORMATION_SCHEMA types to the binlog spelling and picks kinds', () => {
    expect(normalizeColumnType('bigint(20) unsigned')).toBe('bigint unsigned');
    expect(normalizeColumnType('tinyint(1)')).toBe('tinyint');
    expect(normalizeColumnType('int(10) unsigned zerofill')).toBe('int unsigned');
    expect(normalizeColumnType('double(10,2)')).toBe('double');
    expect(kindOfType('timestamp(6)')).toBe('timestamptz');
    expect(kindOfType('datetime')).toBe('timestamp');
    expect(kindOfType("set('a')")).toBe('set');
    expect(kindOfType('multipolygon')).toBe('geometry');
  });

  it('converts binlog values', () => {
    expect(binlogValue(1900, { name: 'y', type: 'year', kind: 'int' })).toBe('0000');
    expect(binlogValue('18446744073709551615', { name: 'x', type: 'bigint unsigned', kind: 'int' })).toBe(
      '18446744073709551615',
    );
    expect(binlogValue(Buffer.from([0x01, 0x55]), { name: 'b', type: 'bit(10)', kind: 'bits' })).toBe('0101010101');
    expect(binlogValue(undefined, { name: 'e', type: "enum('a')", kind: 'enum' })).toBe('');
    expect(binlogValue(null, { name: 'e', type: "enum('a')", kind: 'enum' })).toBeNull();
  });

  it('recognizes TRUNCATE statements', () => {
    expect(parseTruncate('TRUNCATE TABLE t', 'db')).toEqual({ db: 'db', name: 't' });
    expect(parseTruncate('truncate `my db`.`odd``name`', 'x')).toEqual({ db: 'my db', name: 'odd`name' });
    expect(parseTruncate('TRUNCATE TABLE a.b;', 'x')).toEqual({ db: 'a', name: 'b' });
    expect(parseTruncate('ALTER TABLE t TRUNCATE PARTITION p0', 'x')).toBeNull();
  });
});
