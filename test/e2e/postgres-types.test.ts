import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { Daemon } from '../../src/daemon.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { TYPE_ROWS, TYPES_DDL } from '../fixtures/postgres-types.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';

const rowsAsText = (server: PgServer, db: string, table: string) =>
  server
    .query<{ r: string }>(db, `select t::text as r from ${table} t order by id`)
    .then((rows) => rows.map((x) => x.r));

/**
 * The type table of the PostgreSQL source replicates PostgreSQL -> PostgreSQL through the real pipeline with every
 * value identical (`row::text` equal), for snapshot rows and for streamed inserts, updates and deletes.
 */
describe('PostgreSQL -> PostgreSQL keeps every value of every type', () => {
  let server: PgServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => server?.stop());

  it('row::text is equal on both sides', async () => {
    const sourceUrl = await server.createDatabase('types_src');
    const targetUrl = await server.createDatabase('types_dst');
    await server.query('types_src', TYPES_DDL);
    await server.query('types_src', TYPE_ROWS);
    // User-defined types and extensions are the operator's to create at the target (e.g. pg_dump --schema-only);
    // tables are created by the target.
    await server.query(
      'types_dst',
      TYPES_DDL.split('\n')
        .filter((line) => /^create (type|domain|extension)/.test(line))
        .join('\n'),
    );
    const loaded = parseConfig(
      `pipelines:
  - name: types
    source: { type: postgres, url: "${sourceUrl}", tables: [public.alltypes, public.ext] }
    target: { type: postgres, url: "${targetUrl}" }
`,
      'types.yaml',
    );
    const daemon = new Daemon(loaded, createLogger({ level: 'warn', pretty: false }));
    const running = daemon.run();
    try {
      const expectEqual = async (table: string) => {
        const deadline = Date.now() + 30_000;
        let source: string[] = [];
        let target: string[] = [];
        while (Date.now() < deadline) {
          source = await rowsAsText(server, 'types_src', table);
          target = await rowsAsText(server, 'types_dst', table).catch(() => []);
          if (JSON.stringify(source) === JSON.stringify(target)) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        expect(target).toEqual(source);
      };
      await expectEqual('alltypes');
      await expectEqual('ext');
      // Streamed: the same rows inserted again under new ids, one updated with every column changed, one deleted.
      await server.query(
        'types_src',
        'insert into alltypes select id + 10, i2, i4, i8, n, n2, f4, f8, b, c, vc, t, ba, u, j, jb, d, tm, ttz, ts, ts3, tstz, iv, ai, at, mood, pi, ir, fr, pr, inet, cidr, mac, bt, vb, m, x, tv, pt, ln, bx, pg, ci, ls, pa from alltypes',
      );
      await server.query(
        'types_src',
        `update alltypes t set (i2, i4, i8, n, n2, f4, f8, b, c, vc, t, ba, u, j, jb, d, tm, ttz, ts, ts3, tstz, iv, ai, at, mood, pi, ir, fr, pr, inet, cidr, mac, bt, vb, m, x, tv, pt, ln, bx, pg, ci, ls, pa) =
        (select i2, i4, i8, n, n2, f4, f8, b, c, vc, t, ba, u, j, jb, d, tm, ttz, ts, ts3, tstz, iv, ai, at, mood, pi, ir, fr, pr, inet, cidr, mac, bt, vb, m, x, tv, pt, ln, bx, pg, ci, ls, pa from alltypes where id = 2)
        where t.id = 11`,
      );
      await server.query('types_src', 'delete from alltypes where id = 13');
      await server.query(
        'types_src',
        "insert into ext select id + 10, h, ct, hs from ext; update ext set ct = 'NEW' where id = 11",
      );
      await expectEqual('alltypes');
      await expectEqual('ext');
    } finally {
      daemon.stop();
      await running;
    }
  });
});
