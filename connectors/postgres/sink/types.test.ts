import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CellValue, ValueKind } from '../../../src/core/change-event.ts';
import { col, EventSource, tableSchema, testContext } from '../../../test/fixtures/change-events.ts';
import { type PgServer, startPostgres } from '../../../test/harness/postgres.ts';
import { postgresTargetConfig } from './config.ts';
import { PostgresTarget } from './target.ts';

/** Column type, kind, and values in the canonical text form (docs/value-forms.md). */
const TYPES: [string, ValueKind, string[]][] = [
  ['smallint', 'int', ['-32768', '32767']],
  ['integer', 'int', ['-2147483648', '0']],
  ['bigint', 'int', ['-9223372036854775808', '9223372036854775807']],
  ['numeric(10,2)', 'decimal', ['12345678.90', '-0.01']],
  ['numeric', 'decimal', ['12345678901234567890.000000000001', 'NaN']],
  ['real', 'float', ['3.14', '-0']],
  ['double precision', 'float', ['1e+308', 'Infinity']],
  ['double precision', 'float', ['0.1', '-Infinity']],
  ['boolean', 'bool', ['t', 'f']],
  ['text', 'text', ['quote \' double " back \\ tab \t nl \n', 'ünïcødé ✓ {a,b} NULL']],
  ['character varying(20)', 'text', ['', 'twenty characters!!!']],
  ['character(5)', 'text', ['ab   ', 'abcde']],
  ['bytea', 'bytes', ['\\xdeadbeef00', '\\x']],
  ['json', 'json', ['{"b": 1,  "a": [1, 2]}', '"x"']],
  ['jsonb', 'json', ['{"a": [1, 2], "b": {"c": null}}', '[]']],
  ['uuid', 'uuid', ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '00000000-0000-0000-0000-000000000000']],
  ['date', 'date', ['2024-02-29', '0044-03-15 BC']],
  ['date', 'date', ['infinity', '-infinity']],
  ['time without time zone', 'time', ['23:59:59.999999', '00:00:00']],
  ['time with time zone', 'timetz', ['12:34:56+05:30', '01:02:03.5-08']],
  ['timestamp without time zone', 'timestamp', ['2024-01-02 03:04:05.678901', '1999-12-31 23:59:59']],
  ['timestamp(3) without time zone', 'timestamp', ['2024-01-02 03:04:05.678', 'infinity']],
  ['timestamp with time zone', 'timestamptz', ['2024-01-02 03:04:05.678901+00', '0001-01-01 00:00:00+00 BC']],
  ['interval', 'interval', ['1 year 2 mons 3 days 04:05:06.789', '-00:00:01']],
  ['bit(4)', 'bits', ['1010', '0000']],
  ['bit varying(8)', 'bits', ['101', '']],
  ['integer[]', 'array', ['{1,NULL,3}', '{{1,2},{3,4}}']],
  ['text[]', 'array', ['{"a b","c\\"d",NULL,""}', '{}']],
  ['numeric[]', 'array', ['{1.5,NaN}', '{}']],
  ['inet', 'other', ['192.168.0.1/24', '::1']],
  ['cidr', 'other', ['10.0.0.0/8', '2001:db8::/32']],
  ['macaddr', 'other', ['08:00:2b:01:02:03', '00:00:00:00:00:00']],
  ['point', 'geometry', ['(1,2)', '(-1.5,0)']],
  ['box', 'geometry', ['(3,4),(1,2)', '(0,0),(0,0)']],
  ['int4range', 'other', ['[1,10)', 'empty']],
  ['tsvector', 'other', ["'a' 'b':2", "'fat':1 'rat':2"]],
  ['xml', 'other', ['<a x="1">t</a>', 'plain']],
  ['pg_lsn', 'other', ['0/1926A58', 'FFFFFFFF/FFFFFFFF']],
  ['oid', 'int', ['4294967295', '0']],
  ['"char"', 'text', ['x', '']],
];

let server: PgServer;
beforeAll(async () => {
  server = await startPostgres({ throwaway: true });
});
afterAll(async () => server?.stop());

describe('PostgresTarget values', () => {
  it('round-trips every built-in type exactly (output text equals the source text)', async () => {
    const url = await server.createDatabase('t_types');
    const target = new PostgresTarget(postgresTargetConfig.parse({ type: 'postgres', url }), testContext());
    await target.open();
    const columns = [col('id', 'integer', 'int', true), ...TYPES.map(([type, kind], i) => col(`c${i}`, type, kind))];
    const schema = tableSchema('public.types', columns);
    const rows: Record<string, CellValue>[] = [0, 1].map((r) => ({
      id: String(r),
      ...Object.fromEntries(TYPES.map(([, , values], i) => [`c${i}`, values[r]!])),
    }));
    rows.push({ id: '2', ...Object.fromEntries(TYPES.map((_, i) => [`c${i}`, null])) });
    const src = new EventSource('types');
    await target.write(
      src.batch(
        src.tx((t) => {
          for (const row of rows) t.insert(schema, row);
        }),
      ),
    );
    // The same rows again through the update (upsert) path.
    await target.write(
      src.batch(
        src.tx((t) => {
          for (const row of rows) t.update(schema, row);
        }),
      ),
    );

    // Values as the output functions print them (what record_out, and so row::text, is made of).
    const client = new pg.Client({ connectionString: url, types: { getTypeParser: () => (v: string) => v } });
    await client.connect();
    try {
      await client.query("set timezone to 'UTC'; set datestyle to 'ISO, MDY'; set intervalstyle to 'postgres'");
      await client.query('set extra_float_digits to 3');
      const select = TYPES.map((_, i) => `c${i}`).join(', ');
      const got = (await client.query(`select id, ${select} from types order by id`)).rows;
      const mismatches: string[] = [];
      for (const [r, row] of rows.entries()) {
        TYPES.forEach(([type], i) => {
          const want = row[`c${i}`];
          const have = got[r]?.[`c${i}`];
          if (want !== have)
            mismatches.push(`${type} row ${r}: sent ${JSON.stringify(want)}, got ${JSON.stringify(have)}`);
        });
      }
      expect(mismatches).toEqual([]);
      // Keyless full-identity matching works for types without an equality operator (json, point, xml).
      const keyless = tableSchema(
        'public.loose',
        TYPES.map(([type, kind], i) => col(`c${i}`, type, kind)),
        { beforeImage: 'full' },
      );
      const image = (r: number) => Object.fromEntries(TYPES.map(([, , values], i) => [`c${i}`, values[r]!]));
      await target.write(src.batch(src.tx((t) => t.insert(keyless, image(0)).insert(keyless, image(1)))));
      await target.write(src.batch(src.tx((t) => t.delete(keyless, image(0)))));
      const left = (await client.query(`select ${select} from loose`)).rows;
      expect(left).toEqual([image(1)]);
    } finally {
      await client.end();
      await target.close();
    }
  });
});
