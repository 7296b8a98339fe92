/**
 * Hand-built change events for the golden-file tests of the envelope encoder and the JSON targets.
 * Every column kind appears in the PostgreSQL and MySQL tables below, with edge values (int8 and unsigned bigint
 * limits, NaN/Infinity, BC dates, MySQL zero dates, quoted array elements, unchanged TOAST values).
 */
import type { ChangeEvent, Row, SourceInfo, TableSchema } from '../../src/core/change-event.ts';
import { UNCHANGED } from '../../src/core/change-event.ts';

export const FIXED_NOW = 1_700_000_000_123;

export const pgAllKinds: TableSchema = {
  table: { schema: 'public', name: 'all_kinds' },
  columns: [
    { name: 'id', type: 'bigint', kind: 'int', isKey: true, nullable: false },
    { name: 'b', type: 'boolean', kind: 'bool', isKey: false },
    { name: 'i2', type: 'smallint', kind: 'int', isKey: false },
    { name: 'i4', type: 'integer', kind: 'int', isKey: false },
    { name: 'n', type: 'numeric(26,6)', kind: 'decimal', isKey: false },
    { name: 'nn', type: 'numeric', kind: 'decimal', isKey: false },
    { name: 'f4', type: 'real', kind: 'float', isKey: false },
    { name: 'f8', type: 'double precision', kind: 'float', isKey: false },
    { name: 'f8z', type: 'double precision', kind: 'float', isKey: false },
    { name: 't', type: 'text', kind: 'text', isKey: false },
    { name: 'by', type: 'bytea', kind: 'bytes', isKey: false },
    { name: 'j', type: 'jsonb', kind: 'json', isKey: false },
    { name: 'u', type: 'uuid', kind: 'uuid', isKey: false },
    { name: 'd', type: 'date', kind: 'date', isKey: false },
    { name: 'dbc', type: 'date', kind: 'date', isKey: false },
    { name: 'dinf', type: 'date', kind: 'date', isKey: false },
    { name: 'tm', type: 'time without time zone', kind: 'time', isKey: false },
    { name: 'ttz', type: 'time with time zone', kind: 'timetz', isKey: false },
    { name: 'ts', type: 'timestamp without time zone', kind: 'timestamp', isKey: false },
    { name: 'tstz', type: 'timestamp with time zone', kind: 'timestamptz', isKey: false },
    { name: 'tsinf', type: 'timestamp with time zone', kind: 'timestamptz', isKey: false },
    { name: 'iv', type: 'interval', kind: 'interval', isKey: false },
    { name: 'bits', type: 'bit varying(8)', kind: 'bits', isKey: false },
    { name: 'arr', type: 'bigint[]', kind: 'array', elementKind: 'int', isKey: false },
    { name: 'tarr', type: 'text[]', kind: 'array', elementKind: 'text', isKey: false },
    { name: 'mood', type: 'mood', kind: 'enum', isKey: false },
    { name: 'g', type: 'point', kind: 'geometry', isKey: false },
    { name: 'o', type: 'ltree', kind: 'other', isKey: false },
    { name: 'big', type: 'text', kind: 'text', isKey: false },
  ],
  keyColumns: ['id'],
  beforeImage: 'key',
};

export const pgAllKindsRow: Row = {
  id: '9223372036854775807',
  b: 't',
  i2: '-32768',
  i4: '2147483647',
  n: '12345678901234567890.000001',
  nn: 'NaN',
  f4: '3.14',
  f8: 'Infinity',
  f8z: '-0',
  t: 'he said "hi"\n\u00e9\u{1f600}\\',
  by: '\\xdeadbeef',
  j: '{"a": [1, 2.50, 18446744073709551615]}',
  u: '0e2ac0a4-1c1f-4b5e-9a41-8a8f0c4f3b11',
  d: '2024-01-02',
  dbc: '0044-03-15 BC',
  dinf: 'infinity',
  tm: '03:04:05.123456',
  ttz: '01:04:05.5+02',
  ts: '2024-01-02 03:04:05.123456',
  tstz: '2024-01-02 03:04:05.123456+00',
  tsinf: '-infinity',
  iv: '1 year 2 mons -3 days 04:05:06.789',
  bits: '10110',
  arr: '{1,NULL,-9223372036854775808}',
  tarr: '{{a,"b c"},{"NULL",NULL},{"q\\"uote","back\\\\slash"}}',
  mood: 'happy',
  g: '(1,2)',
  o: 'a.b.c',
  big: 'x'.repeat(40),
};

function pgSource(lsn: string, extra: Partial<SourceInfo> = {}, commitLsn = '0/3000100'): SourceInfo {
  return {
    connector: 'postgresql',
    db: 'app',
    position: { kind: 'postgres', lsn, commitLsn, lastCommitLsn: '0/2FFFF00' },
    txId: '771',
    commitTimeMs: 1_699_999_999_000,
    snapshot: false,
    ...extra,
  };
}

const pgTable = pgAllKinds.table;

/** A PostgreSQL sequence: snapshot read, insert, update with an unchanged TOAST column, key change, delete, truncate, messages. */
export function postgresEvents(): ChangeEvent[] {
  const row = pgAllKindsRow;
  const updated: Row = { ...row, i4: '-2147483648', big: UNCHANGED, b: 'f', arr: '{}', j: 'null', t: null };
  return [
    {
      op: 'read',
      table: pgTable,
      schema: pgAllKinds,
      key: { id: row.id! },
      before: null,
      after: row,
      source: {
        ...pgSource('0/2FFFF00', { snapshot: 'first' }),
        txId: '770',
        position: { kind: 'postgres', lsn: '0/2FFFF00' },
      },
    },
    {
      op: 'insert',
      table: pgTable,
      schema: pgAllKinds,
      key: { id: '-9223372036854775808' },
      before: null,
      after: { ...row, id: '-9223372036854775808' },
      source: pgSource('0/3000000'),
    },
    {
      op: 'update',
      table: pgTable,
      schema: pgAllKinds,
      key: { id: row.id! },
      before: null,
      after: updated,
      source: pgSource('0/3000040'),
    },
    {
      op: 'update',
      table: pgTable,
      schema: pgAllKinds,
      key: { id: '42' },
      before: { id: row.id! },
      after: { ...updated, id: '42' },
      source: pgSource('0/3000080'),
    },
    {
      op: 'delete',
      table: pgTable,
      schema: pgAllKinds,
      key: { id: '42' },
      before: { id: '42' },
      after: null,
      source: pgSource('0/30000C0'),
    },
    {
      op: 'message',
      table: { schema: '', name: '' },
      schema: pgAllKinds,
      key: null,
      before: null,
      after: null,
      source: pgSource('0/30000E0'),
      message: { prefix: 'audit', contentBase64: Buffer.from('hello').toString('base64'), transactional: true },
    },
    {
      op: 'truncate',
      table: pgTable,
      schema: pgAllKinds,
      key: null,
      before: null,
      after: null,
      source: pgSource('0/4000000', { txId: '772' }, '0/4000100'),
      truncate: { cascade: false, restartIdentity: true },
    },
    {
      op: 'message',
      table: { schema: '', name: '' },
      schema: pgAllKinds,
      key: null,
      before: null,
      after: null,
      source: { ...pgSource('FFFFFFFF/FFFFFFFF'), txId: undefined },
      message: { prefix: 'ping', contentBase64: '', transactional: false },
    },
  ];
}

export const myItems: TableSchema = {
  table: { schema: 'shop', name: 'items' },
  columns: [
    { name: 'id', type: 'bigint unsigned', kind: 'int', isKey: true, nullable: false },
    { name: 'ti', type: 'tinyint', kind: 'int', isKey: false },
    { name: 'mi', type: 'mediumint', kind: 'int', isKey: false },
    { name: 'iu', type: 'int unsigned', kind: 'int', isKey: false },
    { name: 'price', type: 'decimal(10,2)', kind: 'decimal', isKey: false },
    { name: 'f', type: 'float', kind: 'float', isKey: false },
    { name: 'dbl', type: 'double', kind: 'float', isKey: false },
    { name: 'name', type: 'varchar(64)', kind: 'text', isKey: false },
    { name: 'e', type: "enum('a','b')", kind: 'enum', isKey: false },
    { name: 's', type: "set('x','y','z')", kind: 'set', isKey: false },
    { name: 'j', type: 'json', kind: 'json', isKey: false },
    { name: 'bl', type: 'blob', kind: 'bytes', isKey: false },
    { name: 'dt', type: 'datetime(6)', kind: 'timestamp', isKey: false },
    { name: 'dtz', type: 'datetime', kind: 'timestamp', isKey: false },
    { name: 'ts', type: 'timestamp(3)', kind: 'timestamptz', isKey: false },
    { name: 'd', type: 'date', kind: 'date', isKey: false },
    { name: 'tm', type: 'time', kind: 'time', isKey: false },
    { name: 'yr', type: 'year', kind: 'int', isKey: false },
    { name: 'bt', type: 'bit(4)', kind: 'bits', isKey: false },
    { name: 'geo', type: 'geometry', kind: 'geometry', isKey: false },
  ],
  keyColumns: ['id'],
  beforeImage: 'full',
};

export const myRow: Row = {
  id: '18446744073709551615',
  ti: '-128',
  mi: '8388607',
  iu: '4294967295',
  price: '19.99',
  f: '1.5',
  dbl: '2.5e-10',
  name: 'caf\u00e9 \t "x"',
  e: 'b',
  s: 'x,z',
  j: '{"k": "v"}',
  bl: '\\x00ff',
  dt: '2024-01-02 03:04:05.500000',
  dtz: '0000-00-00 00:00:00',
  ts: '2024-01-02 03:04:05.123+00',
  d: '0000-00-00',
  tm: '-838:59:59',
  yr: '2024',
  bt: '1010',
  geo: 'POINT(1 2)',
};

function mySource(pos: number, row = 0, extra: Partial<SourceInfo> = {}): SourceInfo {
  return {
    connector: 'mysql',
    db: 'shop',
    position: {
      kind: 'mysql',
      file: 'binlog.000003',
      pos,
      row,
      serverId: 1,
      gtid: '3e11fa47-71ca-11e1-9e33-c80aa9429562:23',
    },
    txId: '3e11fa47-71ca-11e1-9e33-c80aa9429562:23',
    commitTimeMs: 1_699_999_999_000,
    snapshot: false,
    ...extra,
  };
}

/** A MySQL sequence: snapshot read (last), insert, update, key change, delete. */
export function mysqlEvents(): ChangeEvent[] {
  const t = myItems.table;
  const updated: Row = { ...myRow, price: '0.01', s: '', e: null, name: '' };
  return [
    {
      op: 'read',
      table: t,
      schema: myItems,
      key: { id: myRow.id! },
      before: null,
      after: myRow,
      source: {
        ...mySource(154),
        snapshot: 'last',
        txId: undefined,
        position: { kind: 'mysql', file: 'binlog.000003', pos: 154, row: 0, serverId: 1 },
      },
    },
    {
      op: 'insert',
      table: t,
      schema: myItems,
      key: { id: '0' },
      before: null,
      after: { ...myRow, id: '0' },
      source: mySource(1000, 0),
    },
    {
      op: 'update',
      table: t,
      schema: myItems,
      key: { id: '0' },
      before: { ...myRow, id: '0' },
      after: { ...updated, id: '0' },
      source: mySource(1000, 1),
    },
    {
      op: 'update',
      table: t,
      schema: myItems,
      key: { id: '7' },
      before: { ...updated, id: '0' },
      after: { ...updated, id: '7' },
      source: mySource(1000, 2),
    },
    {
      op: 'delete',
      table: t,
      schema: myItems,
      key: { id: '7' },
      before: { ...updated, id: '7' },
      after: null,
      source: mySource(1200, 0),
    },
  ];
}
