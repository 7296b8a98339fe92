import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MysqlServer, startMariadb } from '../../../test/harness/mariadb.ts';
import { events, makeSource, Puller, session } from './test-support.ts';

const DDL = `CREATE TABLE types (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  d DECIMAL(65,30), d2 DECIMAL(10,2),
  f FLOAT, db DOUBLE,
  b1 BIT(1), b10 BIT(10), b64 BIT(64), bo BOOL,
  dt DATE, dtm0 DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6), ts0 TIMESTAMP NULL, ts6 TIMESTAMP(6) NULL,
  tm TIME, tm6 TIME(6), tmn TIME(3), yr YEAR, yr0 YEAR,
  c CHAR(5), vc VARCHAR(50), tx TEXT, l1 VARCHAR(20) CHARACTER SET latin1,
  bn BINARY(4), vb VARBINARY(10), bl BLOB,
  en ENUM('a','b','c'), st SET('x','y','z'),
  js JSON, g GEOMETRY, pt POINT, mp MULTIPOINT,
  zd DATE, zdt DATETIME, zts TIMESTAMP NULL
) CHARACTER SET utf8mb4`;

const VALUES = `(-128, 255, -32768, 65535, -8388608, 16777215,
  -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
  '12345678901234567890123456789012345.123456789012345678901234567890', -12.5,
  3.14, 0.30000000000000004,
  b'1', b'0101010101', b'1000000000000000000000000000000000000000000000000000000000000001', TRUE,
  '2024-02-29', '9999-12-31 23:59:59', '2024-01-02 03:04:05.678', '2024-01-02 03:04:05.123456',
  '2038-01-19 03:14:07', '2024-06-01 12:00:00.000001',
  '-838:59:59', '12:34:56.789012', '-01:02:03.400', 2155, 0,
  'ab', 'héllo 😀 ✓', 'long\\ttext\\nline2', 'café',
  X'DEADBE', X'00FF', X'0102',
  'b', 'z,x',
  '{"a": 1, "b": [true, null]}', ST_GeomFromText('LINESTRING(0 0,1 1.5)'), POINT(1, -2.25),
  ST_GeomFromText('MULTIPOINT(1 2,3 4)'),
  '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00')`;

const COLUMNS =
  'ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d, d2, f, db, b1, b10, b64, bo, dt, dtm0, dtm3, dtm6, ts0, ts6, ' +
  'tm, tm6, tmn, yr, yr0, c, vc, tx, l1, bn, vb, bl, en, st, js, g, pt, mp, zd, zdt, zts';

const EXPECTED: Record<string, string | null> = {
  ti: '-128',
  tiu: '255',
  si: '-32768',
  siu: '65535',
  mi: '-8388608',
  miu: '16777215',
  i: '-2147483648',
  iu: '4294967295',
  bi: '-9223372036854775808',
  biu: '18446744073709551615',
  d: '12345678901234567890123456789012345.123456789012345678901234567890',
  d2: '-12.50',
  f: '3.14',
  db: '0.30000000000000004',
  b1: '1',
  b10: '0101010101',
  b64: '1000000000000000000000000000000000000000000000000000000000000001',
  bo: '1',
  dt: '2024-02-29',
  dtm0: '9999-12-31 23:59:59',
  dtm3: '2024-01-02 03:04:05.678',
  dtm6: '2024-01-02 03:04:05.123456',
  ts0: '2038-01-19 03:14:07+00',
  ts6: '2024-06-01 12:00:00.000001+00',
  tm: '-838:59:59',
  tm6: '12:34:56.789012',
  tmn: '-01:02:03.400',
  yr: '2155',
  yr0: '0000',
  c: 'ab',
  vc: 'héllo 😀 ✓',
  tx: 'long\ttext\nline2',
  l1: 'café',
  bn: '\\xdeadbe00',
  vb: '\\x00ff',
  bl: '\\x0102',
  en: 'b',
  st: 'x,z',
  js: '{"a": 1, "b": [true, null]}',
  g: 'LINESTRING(0 0,1 1.5)',
  pt: 'POINT(1 -2.25)',
  mp: 'MULTIPOINT(1 2,3 4)',
  zd: '0000-00-00',
  zdt: '0000-00-00 00:00:00',
  zts: '0000-00-00 00:00:00+00',
};

const EXPECTED_TYPES: Record<string, [string, string]> = {
  biu: ['bigint unsigned', 'int'],
  d: ['decimal(65,30)', 'decimal'],
  dtm6: ['datetime(6)', 'timestamp'],
  ts6: ['timestamp(6)', 'timestamptz'],
  en: ["enum('a','b','c')", 'enum'],
  st: ["set('x','y','z')", 'set'],
  b10: ['bit(10)', 'bits'],
  bn: ['binary(4)', 'bytes'],
  js: ['longtext', 'json'],
  vc: ['varchar(50)', 'text'],
  g: ['geometry', 'geometry'],
};

describe('mysql source: value forms', () => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await startMariadb();
    await server.createDatabase('types_db');
    const conn = await session(server, 'types_db');
    await conn.query(DDL);
    await conn.query(`INSERT INTO types (id, ${COLUMNS}) VALUES (1, ${VALUES.slice(1)}`);
    await conn.query('INSERT INTO types (id) VALUES (2)');
    await conn.end();
  });
  afterAll(async () => server?.stop());

  it('snapshot and stream give the exact same canonical text for every type', async () => {
    const source = makeSource(server, 'types', { databases: ['types_db'] });
    await source.open(null);
    const puller = new Puller(source);
    try {
      await puller.until((b) => b.some((x) => x.checkpoint?.phase === 'stream'));
      const reads = events(puller.batches).filter((e) => e.op === 'read');
      expect(reads).toHaveLength(2);
      const conn = await session(server, 'types_db');
      await conn.query(`INSERT INTO types (id, ${COLUMNS}) VALUES (3, ${VALUES.slice(1)}`);
      await conn.query('INSERT INTO types (id) VALUES (4)');
      await conn.end();
      await puller.until((b) => events(b).filter((e) => e.op === 'insert').length >= 2);
      const inserts = events(puller.batches).filter((e) => e.op === 'insert');

      const snap = reads.find((e) => e.after?.id === '1')!.after!;
      const streamed = inserts.find((e) => e.after?.id === '3')!.after!;
      const { id: _a, ...snapValues } = snap;
      const { id: _b, ...streamValues } = streamed;
      expect(snapValues).toEqual(EXPECTED);
      expect(streamValues).toEqual(EXPECTED);

      const nullSnap = reads.find((e) => e.after?.id === '2')!.after!;
      const nullStream = inserts.find((e) => e.after?.id === '4')!.after!;
      for (const [k, v] of Object.entries(nullSnap)) if (k !== 'id') expect([k, v]).toEqual([k, null]);
      for (const [k, v] of Object.entries(nullStream)) if (k !== 'id') expect([k, v]).toEqual([k, null]);

      for (const schema of [reads[0]!.schema, inserts[0]!.schema]) {
        expect(schema.keyColumns).toEqual(['id']);
        for (const [name, [type, kind]] of Object.entries(EXPECTED_TYPES)) {
          const col = schema.columns.find((c) => c.name === name)!;
          expect([name, col.type, col.kind]).toEqual([name, type, kind]);
        }
      }
      expect(inserts[0]!.source.position).toMatchObject({ kind: 'mysql', serverId: 1 });
      expect(inserts[0]!.source.txId).toMatch(/^\d+-1-\d+$/);
    } finally {
      await puller.end();
      await source.close();
    }
  });
});
