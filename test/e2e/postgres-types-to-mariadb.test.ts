import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { Daemon } from '../../src/daemon.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { TYPE_ROWS, TYPES_DDL } from '../fixtures/postgres-types.ts';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';

/**
 * The type table of the PostgreSQL source (test/fixtures/postgres-types.ts, table `alltypes`) replicates
 * PostgreSQL -> MariaDB through the real pipeline, and every MariaDB column holds what docs/type-mapping.md ("From
 * PostgreSQL to MySQL / MariaDB") says for that PostgreSQL value: snapshot rows 1-4 and the same rows streamed as
 * 11-14. Values that MySQL cannot hold are configured to degrade as documented: unconstrained numeric as text
 * (`numeric_overflow: text`, NaN and Infinity kept), float NaN/Infinity as NULL (`float_nonfinite: "null"`), infinite,
 * BC and year > 9999 dates and timestamps as NULL (`date_out_of_range: "null"`). The `ext` table (hstore, citext) is
 * not replicated: the mapping names extension types only as text in general.
 */

const COLUMNS = (
  'i2 i4 i8 n n2 f4 f8 b c vc t ba u j jb d tm ttz ts ts3 tstz iv ai at mood pi ir fr pr inet cidr mac bt vb m x tv pt ' +
  'ln bx pg ci ls pa'
).split(' ');

type Row = Record<string, string | null>;

/** Columns that are NULL unless a row says otherwise. */
const NULLS: Row = Object.fromEntries(COLUMNS.map((c) => [c, null]));

/**
 * Per source row id: column -> the value as read from MariaDB (text as the server sends it; BLOB and BIT as hex;
 * POINT as ST_AsText). Stated here, not derived from the source, so that the test states the mapping.
 */
const EXPECTED: Record<number, Row> = {
  1: {
    i2: '-32768',
    i4: '-2147483648',
    i8: '-9223372036854775808',
    n: '12345678901234567890.123456789012345678901234567890', // LONGTEXT (numeric_overflow: text): the exact text
    n2: '12.50', // DECIMAL(10,2)
    f4: null, // NaN -> NULL (float_nonfinite: "null")
    f8: '0', // -0 reads back as 0 (docs/type-mapping.md)
    b: '1', // TINYINT(1)
    c: 'ab', // CHAR(5): trailing spaces not read back
    vc: 'varchar',
    t: "multi\nline 'quoted' ünïcødé",
    ba: 'deadbeef', // LONGBLOB
    u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', // CHAR(36)
    j: '{"a": [1, 2.50]}', // MariaDB keeps the JSON text
    jb: '{"b": {"c": null}}', // jsonb's text
    d: null, // 4713-01-01 BC -> NULL (date_out_of_range: "null")
    tm: '23:59:59.999999',
    ttz: '04:30:00.500000', // 10:00:00.5+05:30 in UTC, TIME(6)
    ts: '2024-02-29 12:34:56.123456',
    ts3: '2024-01-01 00:00:00.123', // DATETIME(3)
    tstz: '2024-06-01 10:00:00.000001', // UTC
    iv: '1 year 2 mons 3 days 04:05:06.789',
    ai: '[1,null,3]', // JSON array
    at: '[["a","b"],["c d",null]]',
    mood: 'happy',
    pi: '7',
    ir: '[1,10)',
    fr: '[1.5,2.5]',
    pr: '(1,"x y")',
    inet: '192.168.0.1/24',
    cidr: '10.0.0.0/8',
    mac: '08:00:2b:01:02:03',
    bt: '0a', // BIT(4) b'1010'
    vb: '10101', // bit varying: 0/1 text
    m: '$1,234.56',
    x: '<a>x</a>',
    tv: "'a' 'cat' 'fat'",
    pt: 'POINT(1.5 2)',
    ln: '{1,2,3}',
    bx: '(1,1),(0,0)',
    pg: '((0,0),(1,0),(1,1))',
    ci: '<(0,0),2>',
    ls: '[(0,0),(1,1)]',
    pa: '[(0,0),(1,1),(2,0)]',
  },
  2: {
    i2: '32767',
    i4: '2147483647',
    i8: '9223372036854775807',
    n: 'NaN', // text keeps NaN
    n2: '-0.01',
    f4: null, // Infinity -> NULL
    f8: null, // -Infinity -> NULL
    b: '0',
    c: 'abcde',
    vc: '',
    t: '',
    ba: '',
    u: '00000000-0000-0000-0000-000000000000',
    j: '[]',
    jb: '[]',
    d: null, // infinity -> NULL
    tm: '00:00:00.000000',
    ttz: '12:00:00.000000', // 00:00:00-12 in UTC
    ts: null, // -infinity
    ts3: null, // infinity
    tstz: null, // infinity
    iv: '-178000000 years',
    ai: '[]',
    at: '[]',
    mood: 'sad',
    pi: '1',
    ir: 'empty',
    fr: '(,)',
    pr: '(,)',
    inet: '::1',
    cidr: '::/0',
    mac: 'ff:ff:ff:ff:ff:ff',
    bt: '00',
    vb: '',
    m: '-$0.01',
    x: '',
    tv: '',
    pt: 'POINT(0 0)',
    ln: '{1,-1,0}',
    bx: '(0,0),(0,0)',
    pg: '((0,0))',
    ci: '<(0,0),0>',
    ls: '[(0,0),(0,0)]',
    pa: '((0,0))',
  },
  3: {
    ...NULLS,
    i2: '0',
    i4: '0',
    i8: '0',
    n: '-Infinity',
    f4: '1e-45', // the smallest float4, in a DOUBLE column

    f8: '1.7976931348623157e308',
    j: 'null', // the JSON null, not SQL NULL
    jb: `1${'0'.repeat(100)}`, // jsonb prints 1e100 in full
    d: null, // -infinity
    tm: '24:00:00.000000',
    ts: null, // year 294276
    tstz: null, // BC
    iv: '-1 days',
    ai: '[[1,2],[3,4]]',
    at: '[null]',
  },
  4: {
    ...NULLS,
    n: '0.000000000000000000000000000001',
    n2: '99999999.99',
    f4: '3.4028235e38', // the largest float4, which a MySQL FLOAT column would refuse
    f8: '5e-324',
    b: '1',
    t: 'long '.repeat(50),
    d: '2000-01-01',
    ts: '2000-01-01 00:00:00.000000',
    iv: '-1 years -2 mons +3 days -04:05:06',
    ai: '[-1]',
    at: '["\\\\\\"q\\""]',
    mood: 'ok',
    m: '-$92,233,720,368,547,758.08',
  },
};

/** Target columns of JSON type (MariaDB keeps their text; MySQL stores binary JSON). */
const JSON_COLUMNS = ['j', 'jb', 'ai', 'at'];

/**
 * JSON text as MySQL prints its binary JSON: numbers as doubles (`2.50` is `2.5`, `1e+100` is `1e100`), `, ` and `: `
 * separators, object
 * keys ordered by length, then bytes.
 */
function mysqlJsonText(text: string): string {
  const print = (v: unknown): string => {
    if (Array.isArray(v)) return `[${v.map(print).join(', ')}]`;
    if (v && typeof v === 'object') {
      const keys = Object.keys(v).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
      return `{${keys.map((k) => `${JSON.stringify(k)}: ${print((v as Record<string, unknown>)[k])}`).join(', ')}}`;
    }
    return typeof v === 'number' ? String(v).replace('e+', 'e') : JSON.stringify(v);
  };
  return print(JSON.parse(text));
}

function expectedOn(server: MysqlServer, id: number): Row {
  const row = { ...EXPECTED[id]! };
  if (server.flavor === 'mysql') for (const c of JSON_COLUMNS) if (row[c] != null) row[c] = mysqlJsonText(row[c]!);
  return row;
}

describe.each(mysqlFlavors())(
  'PostgreSQL -> MariaDB maps every type as docs/type-mapping.md says ($name)',
  (flavor) => {
    let pgServer: PgServer;
    let myServer: MysqlServer;
    beforeAll(async () => {
      [pgServer, myServer] = await Promise.all([startPostgres(), flavor.start()]);
    });
    afterAll(async () => {
      await Promise.all([pgServer?.stop(), myServer?.stop()]);
    });

    it('snapshot and streamed rows hold the documented values', async () => {
      const sourceUrl = await pgServer.createDatabase('types_src');
      await pgServer.query('types_src', TYPES_DDL);
      await pgServer.query('types_src', TYPE_ROWS);
      const loaded = parseConfig(
        `pipelines:
  - name: types
    source: { type: postgres, url: "${sourceUrl}", tables: [public.alltypes] }
    target:
      type: mysql
      url: "${myServer.url()}"
      database: types_replica
      numeric_overflow: text
      float_nonfinite: "null"
      date_out_of_range: "null"
`,
        'types.yaml',
      );
      const daemon = new Daemon(loaded, createLogger({ level: 'warn', pretty: false }));
      const running = daemon.run();
      const conn = await mysql.createConnection({
        uri: myServer.url(),
        dateStrings: true,
        supportBigNumbers: true,
        bigNumberStrings: true,
        timezone: 'Z',
        // Numbers and JSON as the text the server sends (no JS number or JSON.parse in between).
        jsonStrings: true,
        typeCast: (field, next) =>
          ['TINY', 'SHORT', 'LONG', 'LONGLONG', 'FLOAT', 'DOUBLE', 'NEWDECIMAL'].includes(field.type)
            ? field.string()
            : next(),
      });
      const read = async (): Promise<Record<number, Row>> => {
        const select = COLUMNS.map((c) => (c === 'pt' ? 'ST_AsText(pt) AS pt' : `\`${c}\``)).join(', ');
        const [rows] = await conn
          .query(`SELECT id, ${select} FROM types_replica.alltypes ORDER BY id`)
          .catch(() => [[]]);
        return Object.fromEntries(
          (rows as Record<string, unknown>[]).map(({ id, ...r }) => [
            Number(id),
            Object.fromEntries(
              Object.entries(r).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('hex') : (v as string | null)]),
            ),
          ]),
        );
      };
      const waitFor = async (ids: number[]) => {
        const deadline = Date.now() + 30_000;
        let rows: Record<number, Row> = {};
        while (Date.now() < deadline) {
          rows = await read();
          if (ids.every((id) => rows[id])) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        return rows;
      };
      try {
        const snapshot = await waitFor([1, 2, 3, 4]);
        for (const id of [1, 2, 3, 4]) expect({ id, ...snapshot[id] }).toEqual({ id, ...expectedOn(myServer, id) });
        // Streamed: the same rows inserted again under id + 10.
        await pgServer.query('types_src', `insert into alltypes select id + 10, ${COLUMNS.join(', ')} from alltypes`);
        const streamed = await waitFor([11, 12, 13, 14]);
        for (const id of [1, 2, 3, 4]) {
          expect({ id: id + 10, ...streamed[id + 10] }).toEqual({ id: id + 10, ...expectedOn(myServer, id) });
        }
      } finally {
        await conn.end();
        daemon.stop();
        await running;
      }
    });
  },
);
