import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A throwaway certificate authority made with openssl for tests: a CA, a server certificate it signed for
 * `localhost` only (so connecting to 127.0.0.1 with hostname verification is a mismatch), a client certificate,
 * and an unrelated second CA (the "wrong CA" an operator might configure).
 */
export interface TestCertificates {
  dir: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  otherCaFile: string;
  /** A server certificate (and key) of the same CA for another name, db.invalid: a host name mismatch. */
  otherNameCertFile: string;
  otherNameKeyFile: string;
  /** Gives the server files to the OS account a server runs as (key files must be private to it). */
  handTo(account: { uid: number; gid: number } | undefined): void;
  remove(): void;
}

export function openSslAvailable(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `clientName` becomes the client certificate's CN (PostgreSQL's `cert` authentication maps it to the user). */
export function createTestCertificates(options: { clientName?: string } = {}): TestCertificates {
  // World-traversable: servers running as their own OS account must reach the files.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-tls-'));
  fs.chmodSync(dir, 0o755);
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

  const makeCa = (name: string, subject: string) => {
    openssl('genrsa', '-out', file(`${name}.key`), '2048');
    openssl(
      'req',
      '-x509',
      '-new',
      '-key',
      file(`${name}.key`),
      '-sha256',
      '-days',
      '2',
      '-subj',
      subject,
      '-out',
      file(`${name}.pem`),
    );
  };
  const makeSigned = (name: string, subject: string, extensions: string) => {
    openssl('genrsa', '-out', file(`${name}.key`), '2048');
    openssl('req', '-new', '-key', file(`${name}.key`), '-subj', subject, '-out', file(`${name}.csr`));
    fs.writeFileSync(file(`${name}.ext`), extensions);
    openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-sha256',
      '-extfile',
      file(`${name}.ext`),
      '-out',
      file(`${name}.pem`),
    );
  };

  makeCa('ca', '/CN=Tributary Test CA');
  makeCa('other-ca', '/CN=Some Other CA');
  makeSigned(
    'server',
    '/CN=localhost',
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n',
  );
  makeSigned(
    'other-name',
    '/CN=db.invalid',
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:db.invalid\n',
  );
  makeSigned(
    'client',
    `/CN=${options.clientName ?? 'tributary'}`,
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
  );
  for (const name of fs.readdirSync(dir)) fs.chmodSync(file(name), name.endsWith('.key') ? 0o600 : 0o644);

  return {
    dir,
    caFile: file('ca.pem'),
    serverCertFile: file('server.pem'),
    serverKeyFile: file('server.key'),
    clientCertFile: file('client.pem'),
    clientKeyFile: file('client.key'),
    otherCaFile: file('other-ca.pem'),
    otherNameCertFile: file('other-name.pem'),
    otherNameKeyFile: file('other-name.key'),
    handTo(account) {
      if (!account) return;
      for (const name of ['ca.pem', 'server.pem', 'server.key']) fs.chownSync(file(name), account.uid, account.gid);
    },
    remove() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
