import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Row, TableSchema } from '../../../src/core/change-event.ts';
import { type PgServer, startPostgres } from '../../../test/harness/postgres.ts';
import { quoteLiteral } from '../literals.ts';
import type { SourceTable } from './catalog.ts';
import { readTable } from './snapshot-reader.ts';

const table = (name: string): SourceTable => ({
  oid: 0,
  table: { schema: 'public', name },
  hasPrimaryKey: true,
  replicaIdentity: 'd',
  canSelect: true,
  isOwner: true,
});

const schemaOf = (name: string, columns: string[], keyColumns: string[]): TableSchema => ({
  table: { schema: 'public', name },
  columns: columns.map((c) => ({ name: c, type: 'text', kind: 'text', isKey: keyColumns.includes(c) })),
  keyColumns,
  beforeImage: 'key',
});

describe('snapshot COPY reader', () => {
  let server: PgServer;
  const DB = 'snapshot_reader';
  const client = async () => {
    const c = new pg.Client({ connectionString: server.url(DB), types: { getTypeParser: () => (v: string) => v } });
    await c.connect();
    return c;
  };

  beforeAll(async () => {
    server = await startPostgres({ throwaway: true });
    await server.createDatabase(DB);
    await server.query(
      DB,
      `create table big (id int primary key, t text);
       insert into big select g, repeat(md5(g::text), 16) from generate_series(1, 50000) g;
       create table two (a text, b int, v text, primary key (a, b));
       insert into two select chr(65 + g % 3) || E'\\\\''', g, 'v' || g from generate_series(1, 20) g;`,
    );
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('quotes literals for any text', () => {
    expect(quoteLiteral("a'b\\c")).toBe("E'a''b\\\\c'");
  });

  it('reads every row once across keyset chunks, then the connection serves queries again', async () => {
    const c = await client();
    try {
      const rows: Row[] = [];
      for await (const piece of readTable(c, table('two'), schemaOf('two', ['a', 'b', 'v'], ['a', 'b']), ['a', 'b'], 3))
        rows.push(...piece.rows);
      const expected = (await c.query<Row>('select a, b, v from two order by a, b')).rows;
      expect(rows).toEqual(expected);
      let count = 0;
      for await (const piece of readTable(c, table('big'), schemaOf('big', ['id', 't'], ['id']), ['id'], 7000))
        count += piece.rows.length;
      expect(count).toBe(50000);
      expect((await c.query('select 1 as x')).rows).toEqual([{ x: '1' }]);
    } finally {
      await c.end();
    }
  });

  it('an abandoned COPY does not block ending the client', async () => {
    const c = await client();
    const it = readTable(c, table('big'), schemaOf('big', ['id', 't'], []), [], 100)[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    await it.return(undefined);
    const ended = await Promise.race([
      c.end().then(() => 'ended'),
      new Promise((r) => setTimeout(() => r('timeout'), 5000)),
    ]);
    expect(ended).toBe('ended');
  });

  it('a COPY that fails on the server rejects (backend terminated mid-COPY)', async () => {
    const c = await client();
    c.on('error', () => undefined);
    const pid = (await c.query<{ pid: string }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    const it = readTable(c, table('big'), schemaOf('big', ['id', 't'], []), [], 100)[Symbol.asyncIterator]();
    await it.next(); // the socket pauses after a few pieces: the server side is mid-COPY
    await server.query(DB, 'select pg_terminate_backend($1)', [Number(pid)]);
    await expect(
      (async () => {
        for (;;) if ((await it.next()).done) return 'done';
      })(),
    ).rejects.toThrow(/terminat/i);
    await c.end().catch(() => undefined);
  });

  it('a COPY that the server refuses rejects, and the connection stays usable', async () => {
    const c = await client();
    try {
      const missing = readTable(c, table('missing'), schemaOf('missing', ['x'], []), [], 100);
      await expect(
        (async () => {
          for await (const _ of missing);
        })(),
      ).rejects.toThrow(/does not exist/);
      expect((await c.query('select 2 as x')).rows).toEqual([{ x: '2' }]);
    } finally {
      await c.end();
    }
  });
});
