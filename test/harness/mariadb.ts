import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { freePort } from './free-port.ts';
import { chownTree, serviceAccount } from './os-user.ts';

const execFileAsync = promisify(execFile);

/**
 * A MySQL-protocol server for tests: a throwaway MariaDB (own data directory, free port, row-based binlog with full
 * metadata, GTIDs), or the server named by TRIBUTARY_TEST_MYSQL_URL (MySQL 8 or MariaDB, set up for replication).
 */
export interface MysqlServer {
  flavor: 'mariadb' | 'mysql';
  /** Server version string, e.g. `10.11.6-MariaDB-0+deb12u1`. */
  version: string;
  host: string;
  port: number;
  /** URL of a database on this server as root (no database when omitted). */
  url(database?: string): string;
  /** Creates a fresh database (dropping one of the same name) and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs SQL (one statement, `?` placeholders) and returns the rows (or the result header for writes). */
  // biome-ignore lint/suspicious/noExplicitAny: test helper returns whatever rows the query gives
  query<T = any>(sql: string, params?: unknown[], database?: string): Promise<T[]>;
  /** A table expression with one column `seq` holding the integers from..to (MariaDB's `seq_1_to_N` engine, or
   * a recursive CTE on MySQL). */
  series(from: number, to: number): string;
  /** Makes this server a GTID replica of `primary` (own server_id needed) and waits until it runs. */
  replicateFrom(primary: MysqlServer): Promise<void>;
  /** Waits until this replica has executed everything `primary` has (by GTIDs). */
  caughtUpWith(primary: MysqlServer, timeoutMs?: number): Promise<void>;
  /** Restart (clean shutdown, then start); only for throwaway servers. */
  restart?(): Promise<void>;
  /** SIGKILL of the server process (no clean shutdown); only for throwaway servers that offer it. */
  kill?(): Promise<void>;
  /** Starts a killed server again on its data directory (crash recovery); only with kill(). */
  start?(): Promise<void>;
  stop(): Promise<void>;
  /** The path on this machine of the file the server reads for a `files` option (rewrite it, then reload). */
  serverFile?(option: string): string;
}

export interface StartMariadbOptions {
  /** Extra or replacing server options, without the leading `--` (e.g. `{ 'binlog-row-metadata': 'MINIMAL' }`). A
   * value of `null` removes a default option (e.g. `{ 'log-bin': null }` starts without a binlog). */
  options?: Record<string, string | number | null>;
  /** Ignore TRIBUTARY_TEST_MYSQL_URL (tests that must restart or reconfigure the server). */
  throwaway?: boolean;
  /** Server options naming files, as paths on this machine (e.g. `{ 'ssl-ca': caFile }`); a server that runs in a
   * root of its own reads copies of them, found with `serverFile`. */
  files?: Record<string, string>;
}

const INSTALL_HINT = 'install it with: apt-get install -y mariadb-server';

export function mariadbBinary(): string | undefined {
  for (const p of ['/usr/sbin/mariadbd', '/usr/bin/mariadbd', '/usr/local/bin/mariadbd', '/usr/sbin/mysqld']) {
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

export async function startMariadb(options: StartMariadbOptions = {}): Promise<MysqlServer> {
  const given = process.env.TRIBUTARY_TEST_MYSQL_URL;
  if (given && !options.throwaway && !options.options && !options.files) return externalServer(given);
  const files = options.files ?? {};
  const server = await throwawayServer({ ...options.options, ...files });
  return { ...server, serverFile: (option) => files[option]! };
}

export function withDatabase(url: string, database?: string): string {
  const u = new URL(url);
  u.pathname = database ? `/${database}` : '/';
  return u.toString();
}

export async function queryUrl<T>(url: string, sql: string, params?: unknown[]): Promise<T[]> {
  const conn = await mysql.createConnection({
    uri: url,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    timezone: 'Z',
    multipleStatements: false,
  });
  try {
    const [rows] = await conn.query(sql, params);
    return (Array.isArray(rows) ? rows : [rows]) as T[];
  } finally {
    await conn.end();
  }
}

export async function describeServer(url: string): Promise<{ flavor: 'mariadb' | 'mysql'; version: string }> {
  const rows = await queryUrl<{ v: string }>(url, 'select version() as v');
  const version = rows[0]!.v;
  return { flavor: /mariadb/i.test(version) ? 'mariadb' : 'mysql', version };
}

export function common(
  base: string,
  host: string,
  port: number,
  flavor: 'mariadb' | 'mysql',
): Omit<MysqlServer, 'stop' | 'restart' | 'flavor' | 'version'> {
  return {
    series: (from, to) =>
      flavor === 'mariadb'
        ? `seq_${from}_to_${to}`
        : `(WITH RECURSIVE series_cte(seq) AS (SELECT ${from} UNION ALL SELECT seq + 1 FROM series_cte WHERE seq < ${to}) SELECT seq FROM series_cte) AS series_${from}_${to}`,
    host,
    port,
    url: (database) => withDatabase(base, database),
    async createDatabase(name) {
      await queryUrl(base, `drop database if exists \`${name}\``);
      await queryUrl(base, `create database \`${name}\` character set utf8mb4`);
      return withDatabase(base, name);
    },
    query: (sql, params, database) => queryUrl(withDatabase(base, database), sql, params),
    async replicateFrom(primary) {
      if (flavor === 'mariadb') {
        await queryUrl(
          base,
          `CHANGE MASTER TO MASTER_HOST = '${primary.host}', MASTER_PORT = ${primary.port}, MASTER_USER = 'root', MASTER_USE_GTID = slave_pos`,
        );
        await queryUrl(base, 'START SLAVE');
      } else {
        await queryUrl(
          base,
          `CHANGE REPLICATION SOURCE TO SOURCE_HOST = '${primary.host}', SOURCE_PORT = ${primary.port}, SOURCE_USER = 'root', SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1`,
        );
        await queryUrl(base, 'START REPLICA');
      }
    },
    async caughtUpWith(primary, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (flavor === 'mariadb') {
          const [p] = await primary.query<{ g: string }>('SELECT @@GLOBAL.gtid_binlog_pos AS g');
          const [r] = await queryUrl<{ ok: number | null }>(base, 'SELECT MASTER_GTID_WAIT(?, 1) AS ok', [p!.g]);
          if (Number(r?.ok) === 0) return;
        } else {
          const [p] = await primary.query<{ g: string }>('SELECT @@GLOBAL.gtid_executed AS g');
          const [r] = await queryUrl<{ ok: number | null }>(base, 'SELECT WAIT_FOR_EXECUTED_GTID_SET(?, 1) AS ok', [
            p!.g,
          ]);
          if (Number(r?.ok) === 0) return;
        }
        if (Date.now() > deadline) {
          const status = await queryUrl(base, flavor === 'mariadb' ? 'SHOW SLAVE STATUS' : 'SHOW REPLICA STATUS');
          throw new Error(`the replica did not catch up: ${JSON.stringify(status).slice(0, 2000)}`);
        }
      }
    },
  };
}

async function externalServer(url: string): Promise<MysqlServer> {
  const u = new URL(url);
  const described = await describeServer(url);
  return {
    ...common(url, u.hostname, Number(u.port || 3306), described.flavor),
    ...described,
    async stop() {},
  };
}

export async function waitForSocket(
  url: string,
  child: ChildProcess,
  logFile: string,
  timeoutMs = 60_000,
  what = 'MariaDB',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      await queryUrl(url, 'select 1');
      return;
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-4000) : '';
  throw new Error(`${what} did not start (${(lastError as Error)?.message ?? 'exited'}):\n${log}`);
}

async function throwawayServer(extra: Record<string, string | number | null>): Promise<MysqlServer> {
  const binary = mariadbBinary();
  if (!binary) throw new Error(`mariadbd is missing: ${INSTALL_HINT}`);
  const installDb = ['/usr/bin/mariadb-install-db', '/usr/bin/mysql_install_db'].find((p) => fs.existsSync(p));
  if (!installDb) throw new Error(`mariadb-install-db is missing: ${INSTALL_HINT}`);

  const account = serviceAccount('mysql');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-mariadb-'));
  const dataDir = path.join(dir, 'data');
  // A private tmpdir: concurrent bootstraps sharing /tmp were seen to collide on temporary table files.
  const tmpDir = path.join(dir, 'tmp');
  fs.mkdirSync(dataDir);
  fs.mkdirSync(tmpDir);
  chownTree(dir, account);
  fs.chmodSync(dir, 0o755);
  const userArgs = account ? ['--user=mysql'] : [];
  const install = () =>
    execFileAsync(
      installDb,
      [
        '--no-defaults',
        ...userArgs,
        `--datadir=${dataDir}`,
        `--tmpdir=${tmpDir}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
      ],
      { env: { ...process.env, TMPDIR: tmpDir } },
    );
  try {
    await install();
  } catch {
    // One retry from an empty data directory (a bootstrap under heavy load can fail).
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.mkdirSync(dataDir);
    chownTree(dir, account);
    await install();
  }

  const port = await freePort();
  const defaults: Record<string, string | number | null> = {
    datadir: dataDir,
    tmpdir: tmpDir,
    port,
    socket: path.join(dir, 'mysqld.sock'),
    'bind-address': '127.0.0.1',
    'pid-file': path.join(dir, 'mysqld.pid'),
    'log-error': path.join(dir, 'server.log'),
    'server-id': 1,
    'log-bin': path.join(dataDir, 'binlog'),
    'binlog-format': 'ROW',
    'binlog-row-image': 'FULL',
    'binlog-row-metadata': 'FULL',
    'character-set-server': 'utf8mb4',
    'collation-server': 'utf8mb4_general_ci',
    'default-time-zone': '+00:00',
    'innodb-buffer-pool-size': '128M',
    'innodb-log-file-size': '64M',
    'innodb-flush-log-at-trx-commit': 2,
    'sync-binlog': 0,
    'skip-name-resolve': '',
    'max-connections': 200,
    ...extra,
  };
  const args = [
    '--no-defaults',
    ...userArgs,
    ...Object.entries(defaults)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => (v === '' ? `--${k}` : `--${k}=${v}`)),
  ];
  const logFile = path.join(dir, 'server.log');
  const base = `mysql://root@127.0.0.1:${port}/`;

  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(binary, args, { stdio: 'ignore', detached: false });
    await waitForSocket(base, child, logFile);
  };
  const stopServer = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  };

  let stopped = false;
  const cleanup = () => {
    if (stopped) return;
    stopped = true;
    // Last resort when the test process exits without calling stop().
    try {
      child?.kill('SIGKILL');
    } catch {}
  };
  process.once('exit', cleanup);
  try {
    await start();
  } catch (err) {
    cleanup();
    process.off('exit', cleanup);
    throw err;
  }

  return {
    ...common(base, '127.0.0.1', port, 'mariadb'),
    ...(await describeServer(base)),
    async restart() {
      await stopServer();
      await start();
    },
    async kill() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill('SIGKILL');
      await exited;
    },
    async start() {
      if (child && child.exitCode === null && child.signalCode === null) return;
      await start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      process.off('exit', cleanup);
      await stopServer().catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
