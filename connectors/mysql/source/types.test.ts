import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MYSQL_TYPES_COLUMNS, MYSQL_TYPES_DDL, MYSQL_TYPES_VALUES } from '../../../test/fixtures/mysql-types.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { events, gtidPattern, makeSource, Puller, session, snapshotDone } from './source.test-support.ts';

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
      await puller.until((b) => b.some((x) => snapshotDone(x)));
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

      // The snapshot's column types (the catalog's) and the table map's name the same types: nothing is copied again.
      expect(inserts[0]!.schema.columns.filter((c) => c.retyped).map((c) => [c.name, c.type])).toEqual([]);
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

  /** JSON documents of every kind MySQL's binary JSON holds (the first one as the adversarial trial found it). */
  const jsonDocs = (server: MysqlServer) => [
    "json_object('dec', CAST(1.50 AS DECIMAL(10,2)))",
    `json_object('decimals', json_array(CAST(-1.500 AS DECIMAL(5,3)), CAST(0 AS DECIMAL(5,2)), CAST(-0.001 AS DECIMAL(6,3)),
       CAST('12345678901234567890.123456789' AS DECIMAL(40,9)), CAST(7 AS DECIMAL(3,0))),
     'doubles', json_array(1e0, 1e20, 1.5e-7, 0.1, 123456789012345678e0, 1e15, 123456789012345e0, 1e-15, 1.2e-16,
       -2.5e300, 5e-324),
     'ints', json_array(0, -1, 32767, -32768, 65535, 2147483647, -2147483648, 4294967295, 9223372036854775807,
       -9223372036854775808, 18446744073709551615),
     'literals', json_array(true, false, null),
     'strings', json_array('', 'é😀 ✓', '"quoted" \\ back/slash', CONVERT(CHAR(1, 9, 10, 13, 31) USING utf8mb4)),
     'times', json_array(CAST('2024-02-29' AS DATE), CAST('-838:59:59' AS TIME), CAST('12:34:56.5' AS TIME(1)),
       CAST('2024-01-02 03:04:05.123456' AS DATETIME(6)), CAST('9999-12-31 23:59:59' AS DATETIME),
       TIMESTAMP'2038-01-19 03:14:07'),
     'opaque', json_array(x'00ff', CAST(x'616263' AS BINARY(4))),
     'nested', json_object('b', json_object('cc', json_array(json_object(), json_array()), 'a', 1)))`,
    // Large format (offsets of 4 bytes): over 64 KiB, with an array of many elements.
    `json_object('big', REPEAT('x', 70000), 'many', (SELECT json_arrayagg(seq) FROM ${server.series(1, 5000)}),
       'inline', json_array(1, 70000, -70000, true))`,
    // Deeply nested.
    `json_array(${'json_array('.repeat(60)}1${')'.repeat(60)})`,
  ];

  it.runIf(flavor.name === 'mysql')(
    "binary JSON: snapshot and stream give the server's own text for every kind (DECIMAL, doubles, dates, large)",
    async () => {
      await server.createDatabase('json_db');
      const conn = await session(server, 'json_db');
      await conn.query('CREATE TABLE j (id INT PRIMARY KEY, doc JSON)');
      const docs = jsonDocs(server);
      for (const [i, d] of docs.entries()) await conn.query(`INSERT INTO j VALUES (${i + 1}, ${d})`);
      const source = makeSource(server, 'json', { databases: ['json_db'] });
      await source.open(null);
      const puller = new Puller(source);
      try {
        await puller.until((b) => b.some((x) => snapshotDone(x)));
        for (const [i, d] of docs.entries()) await conn.query(`INSERT INTO j VALUES (${i + 101}, ${d})`);
        await puller.until((b) => events(b).filter((e) => e.op === 'insert').length >= docs.length);
        // Judged by the server's own text of each document.
        const [rows] = await conn.query('SELECT id, CAST(doc AS CHAR) AS text FROM j WHERE id < 100 ORDER BY id');
        const printed = (rows as { id: number; text: string }[]).map((r) => r.text);
        const read = events(puller.batches)
          .filter((e) => e.op === 'read')
          .map((e) => e.after!.doc);
        const streamed = events(puller.batches)
          .filter((e) => e.op === 'insert')
          .map((e) => e.after!.doc);
        expect(printed[0]).toBe('{"dec": 1.50}');
        expect(read).toEqual(printed);
        expect(streamed).toEqual(printed);
      } finally {
        await puller.end();
        await source.close();
        await conn.end();
      }
    },
  );
});
