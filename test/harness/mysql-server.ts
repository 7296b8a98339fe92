import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';
import {
  common,
  describeServer,
  type MysqlServer,
  type StartMariadbOptions,
  startMariadb,
  waitForSocket,
} from './mariadb.ts';

const execFileAsync = promisify(execFile);

/**
 * A throwaway MySQL (Oracle's server, 9.x from Debian sid) for tests. Debian stable ships only MariaDB, so the server
 * runs from a minimal Debian sid tree built once by `build-mysql-root.sh` (debootstrap) and kept in the user's cache
 * directory; `mysqld` runs in it with chroot, which needs root. Each server copies an initialized data directory
 * inside that tree and listens on a free loopback port.
 */

const BUILD_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'build-mysql-root.sh');

export function mysqlRootDir(): string {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'tributary', 'mysql-root');
}

function rootReady(root: string): boolean {
  return fs.existsSync(path.join(root, '.complete')) && fs.existsSync(path.join(root, TEMPLATE, 'mysql'));
}

const TEMPLATE = 'var/lib/tributary-template';

function onPath(command: string): boolean {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']);
  return dirs.some((d) => d && fs.existsSync(path.join(d, command)));
}

/** Why a throwaway MySQL cannot run here, or undefined when it can (the tree may still need building). */
export function mysqlUnavailableReason(): string | undefined {
  if (process.env.TRIBUTARY_TEST_MYSQL_UNAVAILABLE) return process.env.TRIBUTARY_TEST_MYSQL_UNAVAILABLE;
  if (process.platform !== 'linux') return 'throwaway MySQL servers need Linux (chroot)';
  if (process.getuid?.() !== 0) return 'throwaway MySQL servers need root (they run mysqld with chroot)';
  if (rootReady(mysqlRootDir())) return undefined;
  if (!onPath('debootstrap')) return 'debootstrap is missing (apt-get install -y debootstrap)';
  return undefined;
}

/** Builds the tree when it is missing (about a minute, once; concurrent callers wait for one build). */
export async function ensureRoot(): Promise<string> {
  const root = mysqlRootDir();
  if (rootReady(root)) return root;
  await execFileAsync('bash', [BUILD_SCRIPT, root], { timeout: 15 * 60_000, maxBuffer: 64 * 1024 * 1024 });
  if (!rootReady(root)) throw new Error(`building the MySQL tree in ${root} did not complete`);
  return root;
}

/** The uid/gid of `mysql` inside the tree (its own /etc/passwd, not the host's). */
function accountInRoot(root: string): { uid: number; gid: number } {
  const line = fs
    .readFileSync(path.join(root, 'etc/passwd'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('mysql:'));
  if (!line) throw new Error(`no mysql account in ${root}/etc/passwd`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function chownAll(dir: string, account: { uid: number; gid: number }): void {
  fs.chownSync(dir, account.uid, account.gid);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) chownAll(p, account);
    else fs.chownSync(p, account.uid, account.gid);
  }
}

/**
 * Starts a throwaway MySQL with a row-based binlog, full row metadata and GTIDs on. `options` adds or replaces
 * server options (without `--`; `null` removes a default), as for MariaDB.
 */
export async function startMysql(options: StartMariadbOptions = {}): Promise<MysqlServer> {
  const reason = mysqlUnavailableReason();
  if (reason) throw new Error(`cannot start MySQL: ${reason}`);
  const root = await ensureRoot();
  const account = accountInRoot(root);

  fs.mkdirSync(path.join(root, 'srv'), { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, 'srv', 'tributary-mysql-'));
  const inRoot = (p: string) => `/${path.relative(root, p)}`;
  const dataDir = path.join(dir, 'data');
  const tmpDir = path.join(dir, 'tmp');
  await execFileAsync('cp', ['-a', path.join(root, TEMPLATE), dataDir]);
  // Each server its own server_uuid (GTIDs name it): the copy must not keep the template's.
  fs.rmSync(path.join(dataDir, 'auto.cnf'), { force: true });
  fs.mkdirSync(tmpDir);
  // Files the server reads are copied into its root (it cannot see the rest of this machine).
  const copies: Record<string, string> = {};
  const fileOptions: Record<string, string> = {};
  if (options.files) fs.mkdirSync(path.join(dir, 'files'));
  for (const [option, file] of Object.entries(options.files ?? {})) {
    copies[option] = path.join(dir, 'files', `${option}-${path.basename(file)}`);
    fs.copyFileSync(file, copies[option]);
    fileOptions[option] = inRoot(copies[option]);
  }
  chownAll(dir, account);

  const port = await freePort();
  const defaults: Record<string, string | number | null> = {
    datadir: inRoot(dataDir),
    tmpdir: inRoot(tmpDir),
    port,
    socket: inRoot(path.join(dir, 'mysqld.sock')),
    'bind-address': '127.0.0.1',
    'pid-file': inRoot(path.join(dir, 'mysqld.pid')),
    'log-error': inRoot(path.join(dir, 'server.log')),
    'secure-file-priv': '""',
    mysqlx: 'OFF',
    'server-id': 1,
    'log-bin': 'binlog',
    'binlog-format': 'ROW',
    'binlog-row-image': 'FULL',
    'binlog-row-metadata': 'FULL',
    'gtid-mode': 'ON',
    'enforce-gtid-consistency': 'ON',
    'default-time-zone': '+00:00',
    'innodb-buffer-pool-size': '128M',
    'innodb-redo-log-capacity': '64M',
    'innodb-flush-log-at-trx-commit': 2,
    'innodb-doublewrite': 'OFF',
    'sync-binlog': 0,
    'performance-schema': 'OFF',
    'max-connections': 200,
    // Test data comes from recursive CTEs (MariaDB has its sequence engine instead).
    'cte-max-recursion-depth': 100_000_000,
    ...options.options,
    ...fileOptions,
  };
  // MySQL writes a binlog unless told not to (MariaDB only when asked to).
  if (options.options && 'log-bin' in options.options && options.options['log-bin'] === null)
    defaults['skip-log-bin'] = '';
  const args = [
    root,
    '/usr/sbin/mysqld',
    '--no-defaults',
    '--user=mysql',
    ...Object.entries(defaults)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => (v === '' ? `--${k}` : `--${k}=${v === '""' ? '' : v}`)),
  ];
  const logFile = path.join(dir, 'server.log');
  const base = `mysql://root@127.0.0.1:${port}/`;

  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('chroot', args, { stdio: 'ignore' });
    await waitForSocket(base, child, logFile, 120_000, 'MySQL');
  };
  const stopServer = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
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
    fs.rmSync(dir, { recursive: true, force: true });
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
    ...common(base, '127.0.0.1', port, 'mysql'),
    ...(await describeServer(base)),
    serverFile: (option) => copies[option]!,
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

/** One MySQL-protocol server kind the MySQL suite runs against. */
export interface MysqlFlavorUnderTest {
  /** `mariadb`, `mysql`, or `external` (TRIBUTARY_TEST_MYSQL_URL, whatever it is). */
  name: 'mariadb' | 'mysql' | 'external';
  start(options?: StartMariadbOptions): Promise<MysqlServer>;
}

let skipPrinted = false;

/**
 * The servers the MySQL suite runs against: MariaDB and MySQL when both can run here (MySQL is skipped with the
 * reason printed once when it cannot), or just the server named by TRIBUTARY_TEST_MYSQL_URL. Tests that need to
 * restart or reconfigure the server pass `throwaway` or `options`, which always start a throwaway of the flavour.
 */
export function mysqlFlavors(): MysqlFlavorUnderTest[] {
  const out: MysqlFlavorUnderTest[] = [];
  const external = process.env.TRIBUTARY_TEST_MYSQL_URL;
  if (external) {
    out.push({ name: 'external', start: (o) => startMariadb(o) });
    return out;
  }
  out.push({ name: 'mariadb', start: (o) => startMariadb(o) });
  const only = process.env.TRIBUTARY_TEST_MYSQL_FLAVORS;
  const reason = mysqlUnavailableReason();
  if (reason) {
    if (!skipPrinted) console.warn(`MySQL flavour skipped: ${reason}`);
    skipPrinted = true;
  } else {
    out.push({ name: 'mysql', start: (o) => startMysql(o) });
  }
  return only ? out.filter((f) => only.split(',').includes(f.name)) : out;
}
