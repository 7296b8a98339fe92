import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tributary, tributaryInTerminal } from '../harness/cli.ts';
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
      // The same shape as the daemon's own /status.
      const served = ((await (await fetch(`http://${listen}/status`)).json()) as { pipelines: object[] }).pipelines[0]!;
      expect(Object.keys(report).sort()).toEqual(Object.keys(served).sort());
      const readable = await tributary(['status', '-c', configFile]);
      expect(readable.stdout).toMatch(
        /^ops: running, phase stream\n\s+checkpoint\s+postgres lsn=[0-9A-F]+\/[0-9A-F]+\n/,
      );

      const busy = await tributary(['teardown', '-c', configFile, '--yes']);
      expect(busy.code, busy.stdout + busy.stderr).toBe(2);
      expect(busy.stderr).toContain('pipeline ops is running');
      expect(busy.stderr).toContain('Stop it first');

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
    expect(stopped.stdout).toMatch(/ops: not running, phase stream\n\s+checkpoint\s+postgres lsn=/);

    const dry = await tributary(['teardown', '-c', configFile]);
    expect(dry.stdout).toContain('would drop');
    expect(await server.query('ops_src', 'select 1 from pg_replication_slots')).toHaveLength(1);
    const dropped = await tributary(['teardown', '-c', configFile, '--yes']);
    expect(dropped.code).toBe(0);
    expect(dropped.stdout).toBe(
      'ops: dropped replication slot tributary_ops, publication tributary_ops, checkpoint (stream phase)\n',
    );
    expect(await server.query('ops_src', 'select 1 from pg_replication_slots')).toHaveLength(0);
    expect(await server.query('ops_dst', 'select 1 from tributary.checkpoints')).toHaveLength(0);
    const again = await tributary(['teardown', '-c', configFile, '--yes']);
    expect(again.stdout).toBe('ops: nothing to drop\n');
  });

  it('status warns, with the fix, when the slot of a stopped pipeline was dropped at the server', async () => {
    const file = path.join(dir, 'gone.yaml');
    fs.writeFileSync(
      file,
      `pipelines:
  - name: gone
    source: { type: postgres, url: "${sourceUrl}", tables: [public.accounts] }
    target: { type: jsonl, path: gone.jsonl }
    checkpoints: { type: file, path: gone.checkpoint.json }
`,
    );
    const run = new ReplicatorProcess(file, path.join(dir, 'gone.log'));
    run.start();
    try {
      const checkpoint = path.join(dir, 'gone.checkpoint.json');
      const deadline = Date.now() + 60_000;
      while (!(fs.existsSync(checkpoint) && JSON.parse(fs.readFileSync(checkpoint, 'utf8')).phase === 'stream')) {
        if (Date.now() > deadline) throw new Error(`no streaming checkpoint\n${run.log()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      expect(await run.stop()).toBe(0);
    }
    const healthy = JSON.parse((await tributary(['status', '-c', file, '--json'])).stdout).pipelines[0];
    expect(healthy.source_warnings).toEqual([]);
    expect(healthy.source_details).toMatchObject({ slot: 'tributary_gone', slotExists: true, active: false });

    await server.query('ops_src', "select pg_drop_replication_slot('tributary_gone')");
    const gone = JSON.parse((await tributary(['status', '-c', file, '--json'])).stdout).pipelines[0];
    expect(gone.source_details).toMatchObject({ slotExists: false });
    expect(gone.source_warnings).toEqual([expect.stringContaining('the replication slot tributary_gone is gone')]);
    const readable = await tributary(['status', '-c', file]);
    expect(readable.stdout).toMatch(/warning +the replication slot tributary_gone is gone .*on_slot_lost: resnapshot/);
    await tributary(['teardown', '-c', file, '--yes']);
  });
});

/** How the process stops: on a signal through npm, promptly, and as a whole when one pipeline needs an operator. */
describe('stopping the daemon', () => {
  let server: PgServer;
  let dir: string;
  let sourceUrl: string;

  beforeAll(async () => {
    server = await startPostgres();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-stop-'));
    sourceUrl = await server.createDatabase('stop_src');
    await server.query('stop_src', 'create table items (id int primary key, name text)');
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const pipelineYaml = (name: string, table: string) => `  - name: ${name}
    source: { type: postgres, url: "${sourceUrl}", tables: [${table}] }
    target: { type: jsonl, path: ${path.join(dir, `${name}.jsonl`)} }
    checkpoints: { type: file, path: ${name}.checkpoint.json }
`;
  const slotActive = async (slot: string) =>
    (
      await server.query<{ active: boolean }>(
        'stop_src',
        'select active from pg_replication_slots where slot_name = $1',
        [slot],
      )
    )[0]?.active ?? false;
  const waitFor = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };
  /** Processes whose command line names this file: what is still running of a test's daemon. */
  const processesNaming = (file: string) =>
    fs
      .readdirSync('/proc')
      .filter((pid) => /^\d+$/.test(pid))
      .filter((pid) => {
        try {
          return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(file);
        } catch {
          return false;
        }
      });

  it('one pipeline stopping for an operator error stops the process (exit 2), said once, no stack trace', async () => {
    const file = path.join(dir, 'one-fails.yaml');
    fs.writeFileSync(
      file,
      `pipelines:\n${pipelineYaml('healthy', 'public.items')}${pipelineYaml('broken', 'public.missing')}`,
    );
    const { code, output } = await tributaryInTerminal(['run', '-c', file]);
    expect(code, output).toBe(2);
    expect(output.match(/table public.missing does not exist/g), output).toHaveLength(1);
    expect(output).toContain('Create it or remove it from source.tables');
    expect(output).toContain('pipeline broken stopped on an error: stopping the others');
    expect(output).not.toMatch(/\n\s+at /);
    expect(output).not.toContain('internal error');
    // The healthy pipeline drained and let go of its slot: nothing runs on.
    expect(await slotActive('tributary_healthy')).toBe(false);
    expect(processesNaming(file)).toEqual([]);
  });

  it('npx tributary run stops on a SIGTERM sent to npx, releasing its slot', async () => {
    const file = path.join(dir, 'npx.yaml');
    fs.writeFileSync(file, `pipelines:\n${pipelineYaml('via_npx', 'public.items')}`);
    const logFile = path.join(dir, 'npx.log');
    const log = fs.openSync(logFile, 'w');
    const npx = spawn('npx', ['tributary', 'run', '-c', file], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    await waitFor('streaming', () => fs.readFileSync(logFile, 'utf8').includes('streaming_started'), 120_000);
    expect(await slotActive('tributary_via_npx')).toBe(true);
    npx.kill('SIGTERM');
    await waitFor('the daemon to exit', () => processesNaming(file).length === 0, 30_000);
    expect(fs.readFileSync(logFile, 'utf8')).toContain('"event":"stopped"');
    expect(await slotActive('tributary_via_npx')).toBe(false);
  });

  it('a target unreachable at start: the process waits and retries, and status says so', async () => {
    const listen = `127.0.0.1:${await freePort()}`;
    const file = path.join(dir, 'unreachable.yaml');
    fs.writeFileSync(
      file,
      `http: { listen: "${listen}" }
pipelines:
  - name: waiting
    source: { type: postgres, url: "${sourceUrl}", tables: [public.items] }
    target: { type: postgres, url: "postgres://nobody@127.0.0.1:1/none" }
`,
    );
    const replicator = new ReplicatorProcess(file, path.join(dir, 'waiting.log'));
    replicator.start();
    try {
      let report: { status: string; last_error: { message: string } | null } | undefined;
      await waitFor('status retrying', async () => {
        const { stdout } = await tributary(['status', '-c', file, '--json']);
        report = stdout ? JSON.parse(stdout).pipelines[0] : undefined;
        return report?.status === 'retrying' && report.last_error !== null;
      });
      expect(report!.last_error!.message).toContain('target');
      const readable = await tributary(['status', '-c', file]);
      expect(readable.stdout).toContain('waiting: retrying (waiting for a server; see last error)');
      expect(readable.stdout).toMatch(/last error\s+\(retryable\) .*target/);
      expect((await fetch(`http://${listen}/healthz`)).status).toBe(200);
    } finally {
      expect(await replicator.stop()).toBe(0);
    }
    const retries = replicator
      .log()
      .split('\n')
      .filter((l) => l.includes('"event":"pipeline_retrying"'));
    expect(retries.length).toBeGreaterThan(0);
  });

  it('a Kafka cluster unreachable at start: our own line per try, status says waiting, and a SIGTERM stops at once with exit 0', async () => {
    const file = path.join(dir, 'kafka-down.yaml');
    const listen = `127.0.0.1:${await freePort()}`;
    fs.writeFileSync(
      file,
      `http: { listen: "${listen}" }
pipelines:
  - name: kafkadown
    source: { type: postgres, url: "${sourceUrl}", tables: [public.items] }
    target: { type: kafka, brokers: ["127.0.0.1:1"], topic_prefix: down }
    checkpoints: { type: file, path: ${JSON.stringify(path.join(dir, 'kafka-down.json'))} }
`,
    );
    const replicator = new ReplicatorProcess(file, path.join(dir, 'kafka-down.log'));
    replicator.start();
    await waitFor('connecting', () => replicator.log().includes('"event":"kafka_connecting"'));
    let report: { status: string; last_error: { message: string } | null } | undefined;
    await waitFor('status retrying', async () => {
      const { stdout } = await tributary(['status', '-c', file, '--json']);
      report = stdout ? JSON.parse(stdout).pipelines[0] : undefined;
      return report?.status === 'retrying' && report.last_error !== null;
    });
    expect(report!.last_error!.message).toContain('cannot connect to Kafka brokers 127.0.0.1:1');
    const readable = await tributary(['status', '-c', file]);
    expect(readable.stdout).toContain('kafkadown: retrying (waiting for a server; see last error)');
    const retries = replicator
      .log()
      .split('\n')
      .filter((l) => l.includes('"event":"pipeline_retrying"'));
    expect(retries.length).toBeGreaterThan(0);
    expect(retries[0]).toMatch(/Kafka brokers 127\.0\.0\.1:1/);
    expect(retries[0]).toMatch(/"delay_ms":\d+/);
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // inside the client's own connection retries
    const asked = Date.now();
    expect(await replicator.stop()).toBe(0);
    // Before: the stop waited about a minute for the client's retries, then exited 2 as if the pipeline had failed.
    expect(Date.now() - asked).toBeLessThan(10_000);
    const log = replicator.log();
    expect(log).not.toContain('"event":"kafka_client_log"'); // the client's own error lines stay at debug
    expect(log).not.toContain('pipeline_failed');
  });

  it('a second instance of a running pipeline says another instance holds the slot, and where', async () => {
    const file = path.join(dir, 'twice.yaml');
    fs.writeFileSync(file, `pipelines:\n${pipelineYaml('twice', 'public.items')}`);
    const first = new ReplicatorProcess(file, path.join(dir, 'twice-1.log'));
    first.start();
    await waitFor('streaming', () => first.log().includes('streaming_started'));
    const second = new ReplicatorProcess(file, path.join(dir, 'twice-2.log'));
    second.start();
    try {
      await waitFor('the second says why it waits', () => second.log().includes('held by another instance'), 60_000);
      expect(second.log()).toMatch(
        /held by another instance \(server process \d+ (from 127\.0\.0\.1|over a local socket)/,
      );
      expect(second.log()).toContain('"event":"pipeline_retrying"');
    } finally {
      expect(await second.stop()).toBe(0);
      expect(await first.stop()).toBe(0);
    }
  });

  it('exits right after it says "stopped"', async () => {
    const file = path.join(dir, 'prompt.yaml');
    fs.writeFileSync(file, `pipelines:\n${pipelineYaml('prompt', 'public.items')}`);
    const replicator = new ReplicatorProcess(file, path.join(dir, 'prompt.log'));
    replicator.start();
    await waitFor('streaming', () => replicator.log().includes('streaming_started'));
    expect(await replicator.stop()).toBe(0);
    const exitedAt = Date.now();
    const stoppedLine = replicator
      .log()
      .split('\n')
      .find((line) => line.includes('"event":"stopped"'));
    const stoppedAt = Date.parse(JSON.parse(stoppedLine ?? '{}').time);
    // Before, a driver's 2 s timer kept the process alive after "stopped"; now the command exits when done.
    expect(exitedAt - stoppedAt).toBeLessThan(1500);
  });
});

describe('a table whose schema has a space and whose name has a dot', () => {
  let server: PgServer;
  let dir: string;
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is named in tables with quotes, replicates, and verify compares it', async () => {
    server = await startPostgres();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-names-'));
    const sourceUrl = await server.createDatabase('names_src');
    const targetUrl = await server.createDatabase('names_dst');
    const table = '"sales data"."q1.2024"';
    await server.query(
      'names_src',
      `create schema "sales data"; create table ${table} (id int primary key, amount numeric(10,2));
       insert into ${table} select g, g * 1.25 from generate_series(1, 50) g;
       create table public.other (id int primary key)`,
    );
    const file = path.join(dir, 'names.yaml');
    fs.writeFileSync(
      file,
      `pipelines:
  - name: names
    source: { type: postgres, url: "${sourceUrl}", tables: ['${table}'] }
    target: { type: postgres, url: "${targetUrl}" }
`,
    );
    const valid = await tributary(['validate', '-c', file]);
    expect(valid.code, valid.stdout + valid.stderr).toBe(0);
    const replicator = new ReplicatorProcess(file, path.join(dir, 'names.log'));
    replicator.start();
    try {
      await server.query('names_src', `update ${table} set amount = amount + 1 where id <= 5`);
      const result = await waitForEqualTables(sourceUrl, targetUrl, [table], 60_000);
      expect(result.equal, replicator.log()).toBe(true);
    } finally {
      expect(await replicator.stop()).toBe(0);
    }
    const verified = await tributary(['verify', '-c', file, '--table', table]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toContain('sales data.q1.2024');
    // public.other is not listed, so not replicated.
    expect(await server.query('names_dst', "select 1 from pg_tables where tablename = 'other'")).toHaveLength(0);
  });
});
