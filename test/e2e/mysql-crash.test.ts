import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tributary } from '../harness/cli.ts';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { ReplicatorProcess } from '../harness/replicator-process.ts';

const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs a load to its end while SIGKILLing and restarting the replicator at random moments; returns the kill count. */
async function killDuring(load: Promise<unknown>, replicator: ReplicatorProcess): Promise<number> {
  let kills = 0;
  const done = load.then(() => true);
  while (!(await Promise.race([done, sleep(1500 + Math.random() * 2500).then(() => false)]))) {
    await replicator.kill9();
    kills += 1;
    await sleep(200);
    replicator.start();
  }
  return kills;
}

/** Polls `tributary verify` until it reports equal (exit 0) or the time is up; returns the last result. */
async function verifyUntilEqual(configFile: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await tributary(['verify', '-c', configFile]);
    if (result.code === 0 || Date.now() > deadline) return result;
    await sleep(1000);
  }
}

/**
 * MySQL target under crashes: a sysbench load MariaDB -> MariaDB, and a pgbench load PostgreSQL -> MariaDB, each
 * with SIGKILL restarts, end identical (checked by `tributary verify`, across engines for the second).
 */
describe.each(mysqlFlavors())('replication into MariaDB with SIGKILL restarts ($name)', (flavor) => {
  let mariadb: MysqlServer;
  let postgres: PgServer;
  let dir: string;

  beforeAll(async () => {
    [mariadb, postgres] = await Promise.all([flavor.start(), startPostgres()]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-mysql-crash-'));
  });
  afterAll(async () => {
    await Promise.all([mariadb?.stop(), postgres?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('MariaDB (sysbench oltp_write_only) -> another MariaDB database ends identical', async () => {
    await mariadb.createDatabase('sbtest');
    const sysbench = (command: string, extra: string[] = []) =>
      execFileAsync('sysbench', [
        'oltp_write_only',
        '--db-driver=mysql',
        `--mysql-host=${mariadb.host}`,
        `--mysql-port=${mariadb.port}`,
        '--mysql-user=root',
        '--mysql-db=sbtest',
        '--tables=2',
        '--table-size=5000',
        ...extra,
        command,
      ]);
    await sysbench('prepare');
    const configFile = path.join(dir, 'mariadb.yaml');
    fs.writeFileSync(
      configFile,
      `pipelines:
  - name: sb
    source: { type: mysql, url: "${mariadb.url()}", databases: [sbtest] }
    target: { type: mysql, url: "${mariadb.url()}", database: sbtest_replica }
    batch: { max_wait_ms: 20 }
    retry: { initial_backoff_ms: 100, max_backoff_ms: 1000 }
`,
    );
    const replicator = new ReplicatorProcess(configFile, path.join(dir, 'mariadb.log'));
    replicator.start();
    const kills = await killDuring(sysbench('run', ['--time=20', '--threads=4']), replicator);
    const verified = await verifyUntilEqual(configFile, 90_000);
    const exitCode = await replicator.stop();
    if (verified.code !== 0) console.error(verified.stdout, verified.stderr, replicator.log().slice(-4000));
    expect(kills).toBeGreaterThanOrEqual(4);
    expect(verified.code).toBe(0);
    expect(exitCode).toBe(0);
    const [replicated] = await mariadb.query<{ n: number }>('select count(*) as n from sbtest_replica.sbtest1');
    expect(Number(replicated?.n)).toBeGreaterThan(4000);
  });

  it('PostgreSQL (pgbench) -> MariaDB ends identical', async () => {
    await postgres.createDatabase('pgb');
    const pgbench = path.join(postgres.binDir ?? '/usr/lib/postgresql/15/bin', 'pgbench');
    const conn = ['-h', postgres.host, '-p', String(postgres.port), '-U', 'postgres', 'pgb'];
    await execFileAsync(pgbench, ['-i', '-s', '1', '-q', ...conn]);
    await postgres.query('pgb', 'alter table pgbench_history replica identity full');
    const configFile = path.join(dir, 'pg-to-mariadb.yaml');
    fs.writeFileSync(
      configFile,
      `pipelines:
  - name: pgb
    source: { type: postgres, url: "${postgres.url('pgb')}" }
    target: { type: mysql, url: "${mariadb.url()}", database: pgb_replica }
    batch: { max_wait_ms: 20 }
    retry: { initial_backoff_ms: 100, max_backoff_ms: 1000 }
`,
    );
    const replicator = new ReplicatorProcess(configFile, path.join(dir, 'pg-to-mariadb.log'));
    replicator.start();
    const kills = await killDuring(
      execFileAsync(pgbench, ['-T', '20', '-c', '4', '-j', '2', '-n', ...conn]),
      replicator,
    );
    const verified = await verifyUntilEqual(configFile, 90_000);
    const exitCode = await replicator.stop();
    if (verified.code !== 0) console.error(verified.stdout, verified.stderr, replicator.log().slice(-4000));
    expect(kills).toBeGreaterThanOrEqual(4);
    expect(verified.code).toBe(0);
    expect(exitCode).toBe(0);
    const [history] = await mariadb.query<{ n: number }>('select count(*) as n from pgb_replica.pgbench_history');
    expect(Number(history?.n)).toBeGreaterThan(1000);
  });
});
