import { isIP } from 'node:net';
import type { SslOptions } from 'mysql2';
import { TributaryError } from '../../src/errors.ts';
import { readPemFile } from '../../src/tls/pem-file.ts';
import { type TlsSettingNames, tlsFailure } from '../../src/tls/tls-failure.ts';

/**
 * TLS to MySQL and MariaDB, configured in the connection URL with the parameter names of MySQL's own connection
 * URIs: `ssl-mode` (DISABLED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY), `ssl-ca` (the CA file), `ssl-cert` and `ssl-key`
 * (a client certificate). As with the mysql client, a CA file without a mode means VERIFY_CA.
 */
const MODES = ['DISABLED', 'REQUIRED', 'VERIFY_CA', 'VERIFY_IDENTITY'];
export const MYSQL_TLS_PARAMETERS = ['ssl-mode', 'ssl-ca', 'ssl-cert', 'ssl-key'];

/** The TLS options of a MySQL URL, or undefined for a plain-text connection. */
export function mysqlTlsOptions(url: URL): SslOptions | undefined {
  const param = (name: string) => url.searchParams.get(name) ?? undefined;
  const rawMode = param('ssl-mode');
  const caFile = param('ssl-ca');
  const certFile = param('ssl-cert');
  const keyFile = param('ssl-key');
  const mode = rawMode?.toUpperCase().replace(/-/g, '_');
  if (mode !== undefined && !MODES.includes(mode))
    throw new TributaryError('operator', `ssl-mode=${rawMode} in the MySQL url is not supported`, {
      hint: `use one of ${MODES.join(', ')} (PREFERRED, which falls back to plain text, is not offered)`,
    });
  const effective = mode ?? (caFile ? 'VERIFY_CA' : certFile ? 'REQUIRED' : 'DISABLED');
  if (effective === 'DISABLED') return undefined;
  // The client library checks the certificate against the host name only; with an IP address it would check
  // against "localhost" instead, so an IP is refused rather than verified wrongly.
  if (effective === 'VERIFY_IDENTITY' && isIP(url.hostname.replace(/^\[|\]$/g, '')) !== 0)
    throw new TributaryError(
      'operator',
      `ssl-mode=VERIFY_IDENTITY needs a host name in the MySQL url, not the address ${url.hostname}`,
      { hint: 'use the host name the server certificate lists, or ssl-mode=VERIFY_CA (checks the CA only)' },
    );
  if (certFile && !keyFile)
    throw new TributaryError('operator', 'ssl-cert is set in the MySQL url without ssl-key', {
      hint: "add ssl-key=<file> with the client certificate's private key",
    });
  const ssl: SslOptions = {};
  if (certFile) ssl.cert = readPemFile(certFile, 'ssl-cert in the MySQL url');
  if (keyFile) ssl.key = readPemFile(keyFile, 'ssl-key in the MySQL url');
  if (effective === 'REQUIRED') return { ...ssl, rejectUnauthorized: false };
  if (caFile) ssl.ca = readPemFile(caFile, 'ssl-ca in the MySQL url');
  return { ...ssl, rejectUnauthorized: true, verifyIdentity: effective === 'VERIFY_IDENTITY' };
}

export const MYSQL_TLS_SETTINGS: TlsSettingNames = {
  ca: 'ssl-ca=<file> in the url',
  skipHostname: 'use ssl-mode=VERIFY_CA (checks the CA only)',
  clientCertificate: 'ssl-cert=<file>&ssl-key=<file> in the url',
  disable: 'remove ssl-mode and ssl-ca from the url',
};

/** An operator error for a failed TLS handshake with a MySQL/MariaDB server, or undefined for any other error. */
export function mysqlTlsFailure(err: unknown, server: string): TributaryError | undefined {
  return tlsFailure(err, server, MYSQL_TLS_SETTINGS);
}
