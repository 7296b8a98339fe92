import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tributary } from '../harness/cli.ts';
import { freePort } from '../harness/free-port.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { ReplicatorProcess } from '../harness/replicator-process.ts';
import { waitForEqualTables } from '../harness/table-digest.ts';

/** An operator's day: validate, run, watch status and metrics, stop cleanly, tear down. */
describe('operating a PostgreSQL pipeline through the CLI', () => {
  let server: PgServer;
  let dir: string;
  let configFile: string;
  let sourceUrl: string;
  let targetUrl: string;
  let listen: string;

  beforeAll(async () => {
    server = await startPostgres();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-ops-'));
    sourceUrl = await server.createDatabase('ops_src');
    targetUrl = await server.createDatabase('ops_dst');
    await server.query('ops_src', 'create table accounts (id bigint primary key, owner text, balance numeric(12,2))');
    await server.query(
      'ops_src',
      "insert into accounts select g, 'owner ' || g, g * 1.5 from generate_series(1, 1000) g",
    );
    listen = `127.0.0.1:${await freePort()}`;
    configFile = path.join(dir, 'ops.yaml');
    fs.writeFileSync(
      configFile,
      `http: { listen: "${listen}" }
pipelines:
  - name: ops
    source: { type: postgres, url: "${sourceUrl}", tables: [public.accounts] }
    target: { type: postgres, url: "${targetUrl}" }
`,
    );
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('validate checks the servers and says ok', async () => {
    const { code, stdout, stderr } = await tributary(['validate', '-c', configFile]);
    expect(code, stdout + stderr).toBe(0);
    expect(stdout).toContain('pipeline ops: ok');
  });

  it('validate names a server that is not set up for logical decoding', async () => {
    const replicaOnly = await startPostgres({ throwaway: true, settings: { wal_level: 'replica' } });
    try {
      const file = path.join(dir, 'bad-server.yaml');
      fs.writeFileSync(
        file,
        `pipelines:
  - name: bad
    source: { type: postgres, url: "${replicaOnly.url('postgres')}" }
    target: { type: jsonl, path: "${path.join(dir, 'out.jsonl')}" }
`,
      );
      const { code, stdout } = await tributary(['validate', '-c', file]);
      expect(code).toBe(1);
      expect(stdout).toContain('wal_level');
      expect(stdout).toContain('fix:');
    } finally {
      await replicaOnly.stop();
    }
  });

  it('runs, reports status and metrics while running, stops cleanly, and tears down', async () => {
    const replicator = new ReplicatorProcess(configFile, path.join(dir, 'ops.log'));
    replicator.start();
    try {
      const first = await waitForEqualTables(sourceUrl, targetUrl, ['public.accounts'], 60_000);
      expect(first.equal, replicator.log()).toBe(true);
      await server.query('ops_src', 'update accounts set balance = balance + 1 where id <= 10');
      expect((await waitForEqualTables(sourceUrl, targetUrl, ['public.accounts'], 30_000)).equal).toBe(true);

      const live = await tributary(['status', '-c', configFile, '--json']);
      const report = JSON.parse(live.stdout).pipelines[0];
      expect(report).toMatchObject({ name: 'ops', status: 'running', phase: 'stream' });
      expect(report.checkpoint.kind).toBe('postgres');
      expect(typeof report.retained_bytes).toBe('number');

      const metrics = await (await fetch(`http://${listen}/metrics`)).text();
      expect(metrics).toMatch(/tributary_events_total\{pipeline="ops",table="public.accounts",op="read"\} 1000/);
      expect(metrics).toMatch(/tributary_events_total\{pipeline="ops",table="public.accounts",op="update"\} 10/);
      expect(metrics).toContain('tributary_target_write_seconds_bucket');
      expect((await fetch(`http://${listen}/healthz`)).status).toBe(200);

      const verified = await tributary(['verify', '-c', configFile]);
      expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    } finally {
      expect(await replicator.stop()).toBe(0);
    }
    expect(replicator.log()).toContain('"event":"stopped"');

    const stopped = await tributary(['status', '-c', configFile]);
    expect(stopped.stdout).toMatch(/ops: not running, phase stream, checkpoint/);

    const dry = await tributary(['teardown', '-c', configFile]);
    expect(dry.stdout).toContain('would drop');
    expect(await server.query('ops_src', 'select 1 from pg_replication_slots')).toHaveLength(1);
    const { code } = await tributary(['teardown', '-c', configFile, '--yes']);
    expect(code).toBe(0);
    expect(await server.query('ops_src', 'select 1 from pg_replication_slots')).toHaveLength(0);
    expect(await server.query('ops_dst', 'select 1 from tributary.checkpoints')).toHaveLength(0);
  });
});
