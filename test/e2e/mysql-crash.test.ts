import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MYSQL_LEDGER_DDL, mysqlLedgerLoop } from '../faults/fault-kit.ts';
import { mulberry32 } from '../fixtures/seeded-random.ts';
import { tributary } from '../harness/cli.ts';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { ReplicatorProcess } from '../harness/replicator-process.ts';

const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A seeded generator, so a failing kill schedule can be run again with TRIBUTARY_FAULT_SEED. */
const seededRandom = mulberry32;

/** Runs a load to its end while SIGKILLing and restarting the replicator on a seeded schedule; returns the kill count. */
async function killDuring(load: Promise<unknown>, replicator: ReplicatorProcess, what: string): Promise<number> {
  const seed = Number(process.env.TRIBUTARY_FAULT_SEED ?? Date.now() % 1_000_000);
  console.log(`[faults] ${what}: kill schedule seed ${seed} (TRIBUTARY_FAULT_SEED=${seed} repeats it)`);
  const random = seededRandom(seed);
  let kills = 0;
  const done = load.then(() => true);
  while (!(await Promise.race([done, sleep(1500 + random() * 2500).then(() => false)]))) {
    await replicator.kill9();
    kills += 1;
    await sleep(200);
    replicator.start();
  }
  return kills;
}

/** Per-table row count and the sum of each row's SHA-256 prefix, computed by MySQL/MariaDB itself. */
async function mysqlDigest(server: MysqlServer, table: string, columns: string[]) {
  const row = `CONCAT_WS(':', ${columns.join(', ')})`;
  const [r] = await server.query<{ n: string; s: string }>(
    `SELECT CAST(COUNT(*) AS CHAR) AS n, CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(SHA2(${row}, 256), 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) AS s FROM ${table}`,
  );
  return { rows: r!.n, sum: r!.s };
}

/** The same digest computed by PostgreSQL (the columns must print alike in both engines: integers here). */
async function pgDigest(server: PgServer, db: string, table: string, columns: string[]) {
  const [r] = await server.query<{ n: string; s: string }>(
    db,
    `SELECT count(*)::text AS n, coalesce(sum(('x' || substr(encode(sha256(convert_to(concat_ws(':', ${columns.join(', ')}), 'UTF8')), 'hex'), 1, 15))::bit(60)::bigint), 0)::text AS s FROM ${table}`,
  );
  return { rows: r!.n, sum: r!.s };
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
 * with SIGKILL restarts on a seeded, printed schedule, end identical: judged by row digests each database computes
 * itself (keyless tables included -- pgbench_history, and a ledger written beside sysbench -- so duplicates count),
 * with `tributary verify` as a second opinion.
 */
describe.each(mysqlFlavors())('replication into a MySQL-protocol target with SIGKILL restarts ($name)', (flavor) => {
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

  it('sysbench oltp_write_only -> another database of the same server ends identical', async () => {
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
    await mariadb.query(MYSQL_LEDGER_DDL, [], 'sbtest');
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
    // Beside sysbench, a loop on a keyless table: a change applied twice or lost shows in its digest.
    const ledger = mysqlLedgerLoop(mariadb.url('sbtest'));
    const kills = await killDuring(
      sysbench('run', ['--time=20', '--threads=4']),
      replicator,
      'sysbench -> MySQL target',
    ).finally(() => ledger.stop());
    const verified = await verifyUntilEqual(configFile, 90_000);
    const exitCode = await replicator.stop();
    if (verified.code !== 0) console.error(verified.stdout, verified.stderr, replicator.log().slice(-4000));
    expect(kills).toBeGreaterThanOrEqual(4);
    expect(verified.code).toBe(0);
    expect(exitCode).toBe(0);
    const [replicated] = await mariadb.query<{ n: number }>('select count(*) as n from sbtest_replica.sbtest1');
    expect(Number(replicated?.n)).toBeGreaterThan(4000);
    // The judge: digests computed by the server itself, not by tributary verify (a second opinion above).
    for (const [table, columns] of [
      ['sbtest1', ['id', 'k', 'c', 'pad']],
      ['sbtest2', ['id', 'k', 'c', 'pad']],
      ['ledger', ['run', 'n', 'note']],
    ] as const) {
      expect(await mysqlDigest(mariadb, `sbtest_replica.${table}`, [...columns]), table).toEqual(
        await mysqlDigest(mariadb, `sbtest.${table}`, [...columns]),
      );
    }
    const [ledgerRows] = await mariadb.query<{ n: number }>('select count(*) as n from sbtest_replica.ledger');
    expect(Number(ledgerRows?.n)).toBeGreaterThan(100);
    console.log(`[faults] sysbench -> MySQL target: ${kills} kills, keyless ledger ${ledgerRows?.n} rows equal`);
  });

  it('PostgreSQL (pgbench) -> this server ends identical', async () => {
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
      'pgbench -> MySQL target',
    );
    const verified = await verifyUntilEqual(configFile, 90_000);
    const exitCode = await replicator.stop();
    if (verified.code !== 0) console.error(verified.stdout, verified.stderr, replicator.log().slice(-4000));
    expect(kills).toBeGreaterThanOrEqual(4);
    expect(verified.code).toBe(0);
    expect(exitCode).toBe(0);
    const [history] = await mariadb.query<{ n: number }>('select count(*) as n from pgb_replica.pgbench_history');
    expect(Number(history?.n)).toBeGreaterThan(1000);
    // The judge: each engine digests its own rows (integer columns print alike in both); pgbench_history has no
    // key, so a duplicated or lost row changes its count and sum.
    const tables: [string, string[]][] = [
      ['pgbench_accounts', ['aid', 'bid', 'abalance']],
      ['pgbench_branches', ['bid', 'bbalance']],
      ['pgbench_tellers', ['tid', 'bid', 'tbalance']],
      ['pgbench_history', ['tid', 'bid', 'aid', 'delta']],
    ];
    for (const [table, columns] of tables) {
      expect(await mysqlDigest(mariadb, `pgb_replica.${table}`, columns), table).toEqual(
        await pgDigest(postgres, 'pgb', `public.${table}`, columns),
      );
    }
  });
});
