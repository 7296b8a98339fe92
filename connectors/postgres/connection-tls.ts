import type { ConnectionOptions } from 'node:tls';
import { TributaryError } from '../../src/errors.ts';
import { readPemFile } from '../../src/tls/pem-file.ts';
import { type TlsSettingNames, tlsFailure } from '../../src/tls/tls-failure.ts';

/**
 * TLS to PostgreSQL, configured the way libpq reads it from the connection URL: `sslmode` (disable, require,
 * verify-ca, verify-full), `sslrootcert` (the CA file, or `system`), `sslcert` and `sslkey` (a client certificate),
 * `sslpassword` (the key's passphrase) and `sslcrl` (revoked certificates); a parameter missing from the URL is taken
 * from libpq's environment variable (PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY, PGSSLCRL), as psql would.
 * The pg client library reads some of these too, but with its own meaning of `require` (it verifies the
 * certificate); so they are taken out of the URL here and turned into TLS options with libpq's meaning.
 */
const SSL_PARAMETERS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'sslpassword', 'sslcrl', 'uselibpqcompat'];
const ENVIRONMENT: Record<string, string> = {
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  sslcrl: 'PGSSLCRL',
};
const MODES = ['disable', 'require', 'verify-ca', 'verify-full'];

export interface PostgresConnectionTarget {
  connectionString: string;
  ssl?: ConnectionOptions | false;
}

export function postgresConnectionTarget(
  url: string,
  env: Record<string, string | undefined> = process.env,
): PostgresConnectionTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { connectionString: url };
  }
  const fromEnv = (name: string) => (ENVIRONMENT[name] ? env[ENVIRONMENT[name]] || undefined : undefined);
  const inUrl = new Set(SSL_PARAMETERS.filter((p) => u.searchParams.has(p)));
  const where = (name: string) =>
    inUrl.has(name) ? `${name} in the PostgreSQL url` : `${ENVIRONMENT[name]} in the environment`;
  const param = (name: string) => u.searchParams.get(name) ?? fromEnv(name);
  if (!SSL_PARAMETERS.some((p) => u.searchParams.has(p) || fromEnv(p) !== undefined)) return { connectionString: url };
  const mode = param('sslmode');
  const rootCert = param('sslrootcert');
  const cert = param('sslcert');
  const key = param('sslkey');
  const password = param('sslpassword');
  const crl = param('sslcrl');
  for (const p of SSL_PARAMETERS) u.searchParams.delete(p);
  const connectionString = u.toString();

  if (mode !== undefined && !MODES.includes(mode))
    throw new TributaryError('operator', `sslmode=${mode} (${where('sslmode')}) is not supported`, {
      hint: `use one of ${MODES.join(', ')} (prefer and allow, which fall back to plain text, are not offered)`,
    });
  // Like libpq: a CA file alone means verify-ca; no mode and no CA keeps the connection in plain text.
  const effective = mode ?? (rootCert ? 'verify-ca' : cert ? 'require' : 'disable');
  if (effective === 'disable') return { connectionString, ssl: false };

  const ssl: ConnectionOptions = {};
  if (cert) ssl.cert = readPemFile(cert, where('sslcert'));
  if (key) ssl.key = readPemFile(key, where('sslkey'));
  if (password) ssl.passphrase = password;
  if (cert && !key)
    throw new TributaryError('operator', `sslcert is set (${where('sslcert')}) without sslkey`, {
      hint: "add sslkey=<file> with the client certificate's private key",
    });
  const ca = rootCert && rootCert !== 'system' ? readPemFile(rootCert, where('sslrootcert')) : undefined;
  // libpq: require with a CA file verifies like verify-ca.
  const verify =
    effective === 'verify-full' || effective === 'verify-ca' || (effective === 'require' && ca !== undefined);
  if (!verify) return { connectionString, ssl: { ...ssl, rejectUnauthorized: false } };
  if (ca) ssl.ca = ca;
  if (crl) ssl.crl = readPemFile(crl, where('sslcrl'));
  ssl.rejectUnauthorized = true;
  if (effective !== 'verify-full') ssl.checkServerIdentity = () => undefined;
  return { connectionString, ssl };
}

export const POSTGRES_TLS_SETTINGS: TlsSettingNames = {
  ca: 'sslrootcert=<file> in the url',
  skipHostname: 'use sslmode=verify-ca (checks the CA only)',
  clientCertificate: 'sslcert=<file>&sslkey=<file> in the url',
  disable: 'set sslmode=disable in the url',
};

/** An operator error for a failed TLS handshake with a PostgreSQL server, or undefined for any other error. */
export function postgresTlsFailure(err: unknown, server: string): TributaryError | undefined {
  return tlsFailure(err, server, POSTGRES_TLS_SETTINGS);
}
