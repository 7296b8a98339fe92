import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tributary } from '../harness/cli.ts';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { ReplicatorProcess } from '../harness/replicator-process.ts';

/** An operator's day with a MySQL/MariaDB pipeline: two instances of one pipeline, one config of several. */
describe.each(mysqlFlavors())('operating a $name pipeline through the CLI', (flavor) => {
  let server: MysqlServer;
  let dir: string;

  beforeAll(async () => {
    server = await flavor.start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-ops-mysql-'));
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A pipeline of `database`'s tables into a jsonl file beside the config (relative paths, as documented). */
  const pipelineYaml = (name: string, database: string) => `  - name: ${name}
    source: { type: mysql, url: "${server.url()}", databases: [${database}] }
    target: { type: jsonl, path: ${name}.jsonl }
    checkpoints: { type: file, path: ${name}.checkpoint.json }
`;
  const idsIn = (file: string): number[] =>
    fs.existsSync(file)
      ? fs
          .readFileSync(file, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line).value?.after?.id)
          .filter((id): id is number => typeof id === 'number')
      : [];

  it('a second instance says another instance reads the binlog, and where; it takes over when the first stops', async () => {
    await server.createDatabase('twice');
    await server.query('create table items (id int primary key)', [], 'twice');
    await server.query('insert into items values (1)', [], 'twice');
    const file = path.join(dir, 'twice.yaml');
    fs.writeFileSync(file, `pipelines:\n${pipelineYaml('twice', 'twice')}`);
    const out = path.join(dir, 'twice.jsonl');
    const first = new ReplicatorProcess(file, path.join(dir, 'twice-1.log'));
    const second = new ReplicatorProcess(file, path.join(dir, 'twice-2.log'));
    first.start();
    try {
      await waitFor('the snapshot row', () => idsIn(out).includes(1), 30_000, first);
      second.start();
      await waitFor(
        'the second says why it waits',
        () => second.log().includes('held by another instance'),
        60_000,
        second,
      );
      expect(second.log()).toMatch(
        /binlog reader id \d+ of pipeline twice is held by another instance \(connection \d+ from (127\.0\.0\.1|localhost) as root\)/,
      );
      expect(second.log()).toContain('"event":"pipeline_retrying"');
      // The first keeps streaming (without the lock, each reader's connect made the server drop the other's).
      await server.query('insert into items values (2)', [], 'twice');
      await waitFor('the first delivers row 2', () => idsIn(out).includes(2), 30_000, first);
      expect(await first.stop()).toBe(0);
      // The second takes over where the first stopped: each row once.
      await server.query('insert into items values (3)', [], 'twice');
      await waitFor('the second delivers row 3', () => idsIn(out).includes(3), 60_000, second);
      expect(idsIn(out)).toEqual([1, 2, 3]);
      expect(await second.stop()).toBe(0);
    } finally {
      await first.stop();
      await second.stop();
    }
  });

  it('run finds ./tributary.yaml (or $TRIBUTARY_CONFIG) without -c, and --pipeline runs only the one named', async () => {
    for (const db of ['one', 'two']) {
      await server.createDatabase(db);
      await server.query('create table items (id int primary key)', [], db);
      await server.query('insert into items values (10)', [], db);
    }
    const here = path.join(dir, 'workdir');
    fs.mkdirSync(here);
    fs.writeFileSync(
      path.join(here, 'tributary.yaml'),
      `pipelines:\n${pipelineYaml('one', 'one')}${pipelineYaml('two', 'two')}`,
    );
    const found = new ReplicatorProcess(
      null,
      path.join(dir, 'found.log'),
      { TRIBUTARY_CONFIG: '' },
      {
        cwd: here,
        args: ['--pipeline', 'two'],
      },
    );
    found.start();
    try {
      await waitFor(
        'pipeline two copies its table',
        () => idsIn(path.join(here, 'two.jsonl')).includes(10),
        30_000,
        found,
      );
      expect(await found.stop()).toBe(0);
    } finally {
      await found.stop();
    }
    // Only the pipeline named ran: the other wrote nothing and saved no checkpoint.
    expect(fs.existsSync(path.join(here, 'one.jsonl'))).toBe(false);
    expect(fs.existsSync(path.join(here, 'one.checkpoint.json'))).toBe(false);
    expect(fs.existsSync(path.join(here, 'two.checkpoint.json'))).toBe(true);

    // From elsewhere, $TRIBUTARY_CONFIG names the file; its relative paths still resolve beside it.
    const fromEnv = new ReplicatorProcess(
      null,
      path.join(dir, 'from-env.log'),
      { TRIBUTARY_CONFIG: path.join(here, 'tributary.yaml') },
      { cwd: os.tmpdir(), args: ['--pipeline', 'one'] },
    );
    fromEnv.start();
    try {
      await waitFor(
        'pipeline one copies its table',
        () => idsIn(path.join(here, 'one.jsonl')).includes(10),
        30_000,
        fromEnv,
      );
      expect(await fromEnv.stop()).toBe(0);
    } finally {
      await fromEnv.stop();
    }
    expect(fromEnv.log()).not.toContain('"pipeline":"two"');
  });

  it('status says how much binlog lies after the checkpoint, which connection reads it, and when the checkpoint file was purged', async () => {
    await server.createDatabase('behind');
    await server.query('create table items (id int primary key, pad varchar(200))', [], 'behind');
    const file = path.join(dir, 'behind.yaml');
    fs.writeFileSync(file, `pipelines:\n${pipelineYaml('behind', 'behind')}`);
    const statusJson = async () => {
      const r = await tributary(['status', '-c', file, '--json']);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { pipelines: Record<string, unknown>[] }).pipelines[0]!;
    };
    // The server's own figures, read beside the command's.
    const serverLogs = async () =>
      (await server.query<{ Log_name: string; File_size: number | string }>('SHOW BINARY LOGS')).map((l) => ({
        name: l.Log_name,
        size: Number(l.File_size),
      }));
    const run = new ReplicatorProcess(file, path.join(dir, 'behind.log'));
    run.start();
    try {
      await waitFor(
        'a streaming checkpoint',
        () => fs.existsSync(path.join(dir, 'behind.checkpoint.json')),
        30_000,
        run,
      );
      const running = await statusJson();
      const reader = (running.source_details as { readerConnection: number | null }).readerConnection;
      // One of the server's own connections, from the replicator's user.
      const ids = (
        await server.query<{ id: number | string }>('SELECT ID AS id FROM information_schema.PROCESSLIST')
      ).map((r) => Number(r.id));
      expect(ids).toContain(reader);
      expect(await run.stop()).toBe(0);
    } finally {
      await run.stop();
    }
    const stopped = await statusJson();
    expect((stopped.source_details as { readerConnection: number | null }).readerConnection).toBeNull();
    expect(stopped.binlog_behind_bytes).toBe(0);

    // Written while stopped: the binlog after the checkpoint grows by what the server wrote.
    const before = await serverLogs();
    for (let i = 0; i < 50; i++) await server.query('insert into items values (?, repeat(?, 200))', [i, 'x'], 'behind');
    const after = await serverLogs();
    const written = after.reduce((n, l) => n + l.size, 0) - before.reduce((n, l) => n + l.size, 0);
    expect(written).toBeGreaterThan(50 * 200);
    expect((await statusJson()).binlog_behind_bytes).toBe(written);
    const text = await tributary(['status', '-c', file]);
    expect(text.stdout).toMatch(/binlog after checkpoint \d+\.\d KiB/);

    // The checkpoint's file purged: status names it and the fix (run would stop on it).
    await server.query('FLUSH BINARY LOGS');
    const newest = (await serverLogs()).at(-1)!.name;
    // The server keeps a file a binlog dump thread still reads (one of an earlier test's stopped replicator can
    // linger until the server next writes to its closed socket), and MariaDB one whose transactions the engine has
    // not yet made durable on its own (the binlog checkpoint moves a moment later): purge until it took.
    for (const p of await server.query<{ Id: number; Command: string }>('SHOW PROCESSLIST'))
      if (String(p.Command).startsWith('Binlog Dump'))
        await server.query(`KILL ${Number(p.Id)}`).catch(() => undefined);
    await waitFor('the old binlog files purged', async () => {
      await server.query(`PURGE BINARY LOGS TO '${newest}'`);
      return (await serverLogs()).every((l) => l.name === newest);
    });
    const purged = await statusJson();
    expect(purged.source_warnings).toEqual([expect.stringContaining('is no longer on the server')]);
    expect((purged.source_warnings as string[])[0]).toContain('resnapshot_on_purged_binlog');
    const purgedText = await tributary(['status', '-c', file]);
    expect(purgedText.stdout).toMatch(/warning +the checkpoint's binlog file \S+ is no longer on the server/);
  });
});

async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  logOf?: ReplicatorProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${logOf?.log() ?? ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
