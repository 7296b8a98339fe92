import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { Daemon } from '../../src/daemon.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { tributary } from '../harness/cli.ts';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { mysqlRowDigest, pgRowDigest } from '../harness/table-digest.ts';

/**
 * `tributary teardown`, then `run`, is the documented way to start over: the new snapshot must leave the MySQL target
 * equal to the source. Rows deleted at the source while no pipeline ran must not stay, and a keyless table must not
 * gain a copy per re-snapshot (9 -> 18 -> 27). Judged by row digests each database computes.
 */
const COLUMNS = { keyed: ['id', 'v'], loose: ['a', 'b'] };

interface Run {
  daemon: Daemon;
  ended: Promise<unknown>;
}

function start(file: string): Run {
  const loaded = parseConfig(fs.readFileSync(file, 'utf8'), file);
  const daemon = new Daemon(loaded, createLogger({ level: 'error', pretty: false }));
  const ended = daemon.run().then(
    () => null,
    (err: unknown) => err ?? new Error('failed'),
  );
  return { daemon, ended };
}

describe.each(mysqlFlavors())('re-snapshot after teardown into a MySQL target ($name)', (flavor) => {
  let pgServer: PgServer;
  let myServer: MysqlServer;
  let dir: string;
  beforeAll(async () => {
    [pgServer, myServer] = await Promise.all([startPostgres(), flavor.start()]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-resnapshot-'));
  });
  afterAll(async () => {
    await Promise.all([pgServer?.stop(), myServer?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Waits until both tables have equal digests on both sides, failing early when the pipeline stops. */
  async function expectEqual(run: Run, source: (table: string) => Promise<unknown>, targetDb: string) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const sides = await Promise.all(
        Object.entries(COLUMNS).map(async ([table, cols]) => ({
          table,
          source: await source(table),
          target: await mysqlRowDigest((sql) => myServer.query(sql, [], targetDb), table, cols).catch(
            (err: Error) => err.message,
          ),
        })),
      );
      if (sides.every((s) => JSON.stringify(s.source) === JSON.stringify(s.target))) return;
      const failed = await Promise.race([run.ended, new Promise((r) => setTimeout(() => r(undefined), 300))]);
      if (failed !== undefined && failed !== null) throw failed;
      if (Date.now() > deadline) throw new Error(`not equal: ${JSON.stringify(sides)}`);
    }
  }

  /** Three rounds of run, teardown and deletes at the source while nothing runs, then a last run. */
  async function rounds(
    file: string,
    source: (table: string) => Promise<unknown>,
    deleteAtSource: (round: number) => Promise<void>,
    targetDb: string,
  ) {
    for (let round = 0; round < 3; round++) {
      const run = start(file);
      try {
        await expectEqual(run, source, targetDb);
      } finally {
        run.daemon.stop();
        expect(await run.ended).toBeNull();
      }
      const down = await tributary(['teardown', '-c', file, '--yes']);
      expect(down.code, down.stdout + down.stderr).toBe(0);
      expect(down.stdout).toContain('checkpoint');
      await deleteAtSource(round);
    }
    const last = start(file);
    try {
      await expectEqual(last, source, targetDb);
    } finally {
      last.daemon.stop();
      expect(await last.ended).toBeNull();
    }
    const loose = await mysqlRowDigest((sql) => myServer.query(sql, [], targetDb), 'loose', COLUMNS.loose);
    expect(loose.rows).toBe(6);
  }

  it('PostgreSQL source: deleted rows go, keyless rows stay single', { timeout: 150_000 }, async () => {
    const sourceUrl = await pgServer.createDatabase('rs_pg');
    await myServer.createDatabase('rs_pg_dst');
    await pgServer.query(
      'rs_pg',
      `create table keyed (id integer primary key, v text);
       create table loose (a integer, b text);
       alter table loose replica identity full;
       insert into keyed select g, 'v' || g from generate_series(1, 9) g;
       insert into loose select g % 3, 'b' || g from generate_series(1, 9) g`,
    );
    const file = path.join(dir, 'rs_pg.yaml');
    fs.writeFileSync(
      file,
      `pipelines:
  - name: rs_pg
    source: { type: postgres, url: "${sourceUrl}", tables: [public.keyed, public.loose] }
    target: { type: mysql, url: "${myServer.url()}", database: rs_pg_dst }
`,
    );
    await rounds(
      file,
      (table) => pgRowDigest(sourceUrl, `public.${table}`, COLUMNS[table as keyof typeof COLUMNS]),
      async (round) => {
        await pgServer.query(
          'rs_pg',
          `delete from keyed where id = ${round + 1}; delete from loose where b = 'b${round + 1}'`,
        );
      },
      'rs_pg_dst',
    );
  });

  it('MySQL source: deleted rows go, keyless rows stay single', { timeout: 150_000 }, async () => {
    await myServer.createDatabase('rs_my');
    await myServer.createDatabase('rs_my_dst');
    await myServer.query('CREATE TABLE keyed (id INT PRIMARY KEY, v VARCHAR(20))', [], 'rs_my');
    await myServer.query('CREATE TABLE loose (a INT, b VARCHAR(20))', [], 'rs_my');
    await myServer.query(`INSERT INTO keyed SELECT seq, CONCAT('v', seq) FROM ${myServer.series(1, 9)}`, [], 'rs_my');
    await myServer.query(
      `INSERT INTO loose SELECT seq % 3, CONCAT('b', seq) FROM ${myServer.series(1, 9)}`,
      [],
      'rs_my',
    );
    const file = path.join(dir, 'rs_my.yaml');
    fs.writeFileSync(
      file,
      `pipelines:
  - name: rs_my
    source: { type: mysql, url: "${myServer.url()}", databases: [rs_my] }
    target: { type: mysql, url: "${myServer.url()}", database: rs_my_dst }
`,
    );
    await rounds(
      file,
      (table) =>
        mysqlRowDigest((sql) => myServer.query(sql, [], 'rs_my'), table, COLUMNS[table as keyof typeof COLUMNS]),
      async (round) => {
        await myServer.query(`DELETE FROM keyed WHERE id = ${round + 1}`, [], 'rs_my');
        await myServer.query(`DELETE FROM loose WHERE b = 'b${round + 1}'`, [], 'rs_my');
      },
      'rs_my_dst',
    );
  });
});
