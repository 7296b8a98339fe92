import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MYSQL_TYPES_COLUMNS, MYSQL_TYPES_DDL, MYSQL_TYPES_VALUES } from '../../../test/fixtures/mysql-types.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { events, gtidPattern, makeSource, Puller, session } from './test-support.ts';

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
  // MariaDB's JSON is LONGTEXT with a json_valid() check; MySQL's is its own binary type.
  js: ['longtext', 'json'],
  vc: ['varchar(50)', 'text'],
  g: ['geometry', 'geometry'],
};

describe.each(mysqlFlavors())('mysql source: value forms ($name)', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start();
    await server.createDatabase('types_db');
    const conn = await session(server, 'types_db');
    await conn.query(MYSQL_TYPES_DDL);
    await conn.query(`INSERT INTO types (id, ${MYSQL_TYPES_COLUMNS}) VALUES (1, ${MYSQL_TYPES_VALUES.slice(1)}`);
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
      await conn.query(`INSERT INTO types (id, ${MYSQL_TYPES_COLUMNS}) VALUES (3, ${MYSQL_TYPES_VALUES.slice(1)}`);
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
        const expectedTypes = { ...EXPECTED_TYPES, ...(server.flavor === 'mysql' ? { js: ['json', 'json'] } : {}) };
        for (const [name, [type, kind]] of Object.entries(expectedTypes)) {
          const col = schema.columns.find((c) => c.name === name)!;
          expect([name, col.type, col.kind]).toEqual([name, type, kind]);
        }
      }
      expect(inserts[0]!.source.position).toMatchObject({ kind: 'mysql', serverId: 1 });
      expect(inserts[0]!.source.txId).toMatch(gtidPattern(server));
    } finally {
      await puller.end();
      await source.close();
    }
  });
});
