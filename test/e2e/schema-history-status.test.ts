import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tributary } from '../harness/cli.ts';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { ReplicatorProcess } from '../harness/replicator-process.ts';

/**
 * `tributary status --json` shows the schema history a pipeline keeps with its checkpoint: per table, its columns
 * by identity. Judged against the source's own catalog (PostgreSQL pg_attribute, MySQL/MariaDB
 * INFORMATION_SCHEMA.COLUMNS), after a drop, an add and a rename that the pipeline read, and again after a restart
 * (the history comes from the checkpoint, not from memory).
 */

interface StatusJson {
  name: string;
  schema_history?: { table: string; columns: string[] }[];
}

async function statusJson(configFile: string): Promise<StatusJson> {
  const { code, stdout, stderr } = await tributary(['status', '-c', configFile, '--json']);
  expect(code, stdout + stderr).toBe(0);
  const parsed = JSON.parse(stdout) as StatusJson[] | { pipelines: StatusJson[] };
  const list = Array.isArray(parsed) ? parsed : parsed.pipelines;
  return list[0]!;
}

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('status --json shows the schema history (PostgreSQL source)', () => {
  let server: PgServer;
  let dir: string;
  let configFile: string;
  let out: string;

  beforeAll(async () => {
    server = await startPostgres();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-history-'));
    const url = await server.createDatabase('hist_src');
    await server.query('hist_src', 'create table t (id int primary key, a text, b int, c text)');
    await server.query('hist_src', "insert into t values (1, 'one', 1, 'x')");
    out = path.join(dir, 'out.jsonl');
    configFile = path.join(dir, 'tributary.yaml');
    fs.writeFileSync(
      configFile,
      `pipelines:
  - name: hist
    source: { type: postgres, url: "${url}", tables: [public.t] }
    target: { type: jsonl, path: "${out}" }
    checkpoints: { type: file, path: hist.checkpoint.json }
`,
    );
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The table's live columns as the catalog numbers them: `attnum:name`. */
  const catalog = async () =>
    (
      await server.query<{ col: string }>(
        'hist_src',
        `select attnum || ':' || attname as col from pg_attribute
          where attrelid = 'public.t'::regclass and attnum > 0 and not attisdropped order by attnum`,
      )
    ).map((r) => r.col);
  const lines = () => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).length : 0);

  it('per table, columns by attribute number as of the checkpoint, across schema changes and restarts', async () => {
    const replicator = new ReplicatorProcess(configFile, path.join(dir, 'run.log'));
    replicator.start();
    try {
      await waitUntil('the snapshot row', () => lines() >= 1);
      await replicator.stop();
      const before = await statusJson(configFile);
      expect(before.schema_history).toEqual([{ table: 'public.t', columns: await catalog() }]);
      expect(before.schema_history?.[0]?.columns).toEqual(['1:id', '2:a', '3:b', '4:c']);

      // Changes made while stopped: read after the restart, from the stream.
      await server.query('hist_src', 'alter table t drop column b');
      await server.query('hist_src', 'alter table t rename column c to c2');
      await server.query('hist_src', 'alter table t add column b int');
      await server.query('hist_src', "insert into t values (2, 'two', 'y', 2)");
      const seen = lines();
      replicator.start();
      await waitUntil(
        'the row after the changes',
        () => lines() > seen && fs.readFileSync(out, 'utf8').includes('"two"'),
      );
      await replicator.stop();
      const after = await statusJson(configFile);
      // b (attnum 3) dropped and added again as attnum 5; c renamed in place (still attnum 4).
      expect(after.schema_history).toEqual([{ table: 'public.t', columns: await catalog() }]);
      expect(after.schema_history?.[0]?.columns).toEqual(['1:id', '2:a', '4:c2', '5:b']);
    } finally {
      if (replicator.running) await replicator.stop();
    }
  });
});

describe.each(mysqlFlavors())('status --json shows the schema history (MySQL source, $name)', (flavor) => {
  let server: MysqlServer;
  let dir: string;
  let configFile: string;
  let out: string;

  beforeAll(async () => {
    server = await flavor.start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-history-mysql-'));
    await server.createDatabase('hist');
    await server.query('CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10), b INT, c VARCHAR(10))', [], 'hist');
    await server.query('CREATE TABLE u (id INT PRIMARY KEY, v INT)', [], 'hist');
    await server.query("INSERT INTO t VALUES (1, 'one', 1, 'x')", [], 'hist');
    await server.query('INSERT INTO u VALUES (1, 1)', [], 'hist');
    out = path.join(dir, 'out.jsonl');
    configFile = path.join(dir, 'tributary.yaml');
    fs.writeFileSync(
      configFile,
      `pipelines:
  - name: hist
    source: { type: mysql, url: "${server.url()}", databases: [hist] }
    target: { type: jsonl, path: "${out}" }
    checkpoints: { type: file, path: hist.checkpoint.json }
`,
    );
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A table's column names as the server's catalog orders them. */
  const catalog = async (table: string) =>
    (
      await server.query<{ name: string }>(
        "SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'hist' AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        [table],
      )
    ).map((r) => r.name);
  /** The ids of the rows the pipeline wrote for a table. */
  const ids = (table: string): number[] =>
    fs.existsSync(out)
      ? fs
          .readFileSync(out, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line).value)
          .filter((v) => v?.source?.table === table && v.after)
          .map((v) => Number(v.after.id))
      : [];
  /** The history as status shows it: per table, column name to identity; and the names in history order. */
  const history = async () => {
    const shown = (await statusJson(configFile)).schema_history ?? [];
    return new Map(
      shown.map((t) => {
        const columns = t.columns.map((c) => {
          const [id, ...name] = c.split(':');
          return { id: Number(id), name: name.join(':') };
        });
        return [t.table, { names: columns.map((c) => c.name), id: new Map(columns.map((c) => [c.name, c.id])) }];
      }),
    );
  };

  it('per table, columns by an identity of their own: kept by a rename, new after a drop and add, new for a table created again', async () => {
    const replicator = new ReplicatorProcess(configFile, path.join(dir, 'run.log'));
    replicator.start();
    try {
      await waitUntil('the snapshot rows', () => ids('t').includes(1) && ids('u').includes(1));
      await replicator.stop();
      const before = await history();
      expect([...before.keys()].sort()).toEqual(['hist.t', 'hist.u']);
      expect(before.get('hist.t')!.names).toEqual(await catalog('t'));
      expect(before.get('hist.u')!.names).toEqual(await catalog('u'));
      const t0 = before.get('hist.t')!.id;
      const u0 = before.get('hist.u')!.id;
      const seen = new Set([...t0.values(), ...u0.values()]);
      expect(seen.size).toBe(6);

      // Stopped and behind: read after the restart, from the binlog.
      await server.query('ALTER TABLE t RENAME COLUMN c TO c2', [], 'hist');
      await server.query('ALTER TABLE t DROP COLUMN b', [], 'hist');
      await server.query('ALTER TABLE t ADD COLUMN b INT', [], 'hist');
      await server.query("INSERT INTO t VALUES (2, 'two', 'y', 2)", [], 'hist');
      replicator.start();
      await waitUntil('the row after the changes', () => ids('t').includes(2));
      await replicator.stop();
      const behind = await history();
      const t1 = behind.get('hist.t')!;
      expect(t1.names).toEqual(await catalog('t'));
      expect(t1.names).toEqual(['id', 'a', 'c2', 'b']);
      // c renamed in place; b dropped and added again: a new column.
      expect(t1.id.get('id')).toBe(t0.get('id'));
      expect(t1.id.get('a')).toBe(t0.get('a'));
      expect(t1.id.get('c2')).toBe(t0.get('c'));
      expect(seen.has(t1.id.get('b')!)).toBe(false);
      for (const id of t1.id.values()) seen.add(id);

      // Streaming: t dropped and created again under its name, u renamed.
      replicator.start();
      await server.query("INSERT INTO t VALUES (3, 'three', 'z', 3)", [], 'hist');
      await waitUntil('the streamed row', () => ids('t').includes(3));
      await server.query('DROP TABLE t', [], 'hist');
      await server.query('CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10), z INT)', [], 'hist');
      await server.query("INSERT INTO t VALUES (4, 'four', 4)", [], 'hist');
      await server.query('RENAME TABLE u TO u2', [], 'hist');
      await server.query('INSERT INTO u2 VALUES (2, 2)', [], 'hist');
      await waitUntil('the rows after the changes', () => ids('t').includes(4) && ids('u2').includes(2));
      await replicator.stop();
      const streamed = await history();
      expect([...streamed.keys()].sort()).toEqual(['hist.t', 'hist.u2']);
      const t2 = streamed.get('hist.t')!;
      expect(t2.names).toEqual(await catalog('t'));
      // A new table: no column keeps an identity of the old one, not even those of the same name.
      for (const id of t2.id.values()) expect(seen.has(id)).toBe(false);
      const u2 = streamed.get('hist.u2')!;
      expect(u2.names).toEqual(await catalog('u2'));
      expect([...u2.id]).toEqual([...u0]);
    } finally {
      if (replicator.running) await replicator.stop();
    }
  });
});
