/**
 * MySQL/MariaDB type names: the one table of which names exist and what family each belongs to, read by the source
 * (value kinds), the MySQL target (value encoders) and the PostgreSQL target (column types for MySQL columns).
 */
import type { ValueKind } from '../../src/core/change-event.ts';

export const MYSQL_INT_TYPES: readonly string[] = [
  'tinyint',
  'smallint',
  'mediumint',
  'int',
  'integer',
  'bigint',
  'year',
];
export const MYSQL_DECIMAL_TYPES: readonly string[] = ['decimal', 'numeric'];
export const MYSQL_FLOAT_TYPES: readonly string[] = ['float', 'double', 'real'];
/** Character strings (ENUM and SET are strings too, with kinds of their own). */
export const MYSQL_CHAR_TYPES: readonly string[] = ['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext'];
export const MYSQL_BINARY_TYPES: readonly string[] = [
  'binary',
  'varbinary',
  'tinyblob',
  'blob',
  'mediumblob',
  'longblob',
];
export const MYSQL_GEOMETRY_TYPES: readonly string[] = [
  'geometry',
  'point',
  'linestring',
  'polygon',
  'multipoint',
  'multilinestring',
  'multipolygon',
  'geometrycollection',
  'geomcollection',
];

/** Value kind of each type name (docs/value-forms.md); names not here are `other`. */
const KINDS = new Map<string, ValueKind>([
  ...MYSQL_INT_TYPES.map((t) => [t, 'int'] as const),
  ...MYSQL_DECIMAL_TYPES.map((t) => [t, 'decimal'] as const),
  ...MYSQL_FLOAT_TYPES.map((t) => [t, 'float'] as const),
  ['bit', 'bits'],
  ...MYSQL_CHAR_TYPES.map((t) => [t, 'text'] as const),
  // MariaDB's address types read as their text.
  ['inet4', 'text'],
  ['inet6', 'text'],
  ...MYSQL_BINARY_TYPES.map((t) => [t, 'bytes'] as const),
  ['json', 'json'],
  ['uuid', 'uuid'],
  ['date', 'date'],
  ['datetime', 'timestamp'],
  ['timestamp', 'timestamptz'],
  ['time', 'time'],
  ['enum', 'enum'],
  ['set', 'set'],
  ...MYSQL_GEOMETRY_TYPES.map((t) => [t, 'geometry'] as const),
]);

/** Kind of a MySQL type text (`bigint unsigned`, `decimal(10,2)`, ...). */
export function mysqlTypeKind(type: string): ValueKind {
  return KINDS.get(/^[a-z0-9_]+/.exec(type)?.[0] ?? '') ?? 'other';
}

export interface MysqlType {
  base: string;
  args: number[];
  unsigned: boolean;
}

/** `decimal(10,2) unsigned` -> base `decimal`, args [10, 2], unsigned. ENUM/SET labels are not parsed. */
export function parseMysqlType(type: string): MysqlType {
  const t = type.trim().toLowerCase();
  const base = /^[a-z0-9_]+/.exec(t)?.[0] ?? t;
  if (base === 'enum' || base === 'set') return { base, args: [], unsigned: false };
  const m = /^[a-z0-9_]+\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)/.exec(t);
  const args = m ? [Number(m[1]), ...(m[2] !== undefined ? [Number(m[2])] : [])] : [];
  return { base, args, unsigned: /\bunsigned\b/.test(t) };
}
