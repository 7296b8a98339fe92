import { ConnectionError, TributaryError } from '../errors.ts';

/** How one kind of connection names its TLS settings, so a failure can say which one to change. */
export interface TlsSettingNames {
  /** The setting naming the CA file, e.g. `sslrootcert` in the url. */
  ca: string;
  /** How to keep verifying the certificate but not the host name (or undefined when there is no such mode). */
  skipHostname?: string;
  /** The settings naming the client certificate and key. */
  clientCertificate: string;
  /** How to turn TLS off for this connection. */
  disable: string;
}

const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

/**
 * A failed TLS handshake is a setting to fix, not a network blip worth retrying: this turns the client library's
 * error into an operator error naming the setting. Undefined when the error is not about TLS.
 */
export function tlsFailure(err: unknown, server: string, names: TlsSettingNames): TributaryError | undefined {
  const found = findTlsCause(err);
  if (!found) return undefined;
  const { code, message } = found;
  const operator = (what: string, hint: string) =>
    new TributaryError('operator', `TLS to ${server} failed: ${what}`, { hint, cause: err });
  if (code && UNTRUSTED.has(code))
    return operator(
      `the server's certificate is not signed by a CA we trust (${message})`,
      `set ${names.ca} to the PEM file of the CA that signed the server's certificate`,
    );
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return operator(
      `the server's certificate does not name the host we connected to (${message})`,
      `connect with a host name the certificate lists (subjectAltName)${names.skipHostname ? `, or ${names.skipHostname}` : ''}`,
    );
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID')
    return operator(
      `the server's certificate is not valid now (${message})`,
      "renew the server's certificate (or check this machine's clock)",
    );
  if (
    /certificate required|alert bad certificate|alert unknown ca|peer did not return a certificate|requires a valid client certificate/i.test(
      message,
    )
  )
    return operator(
      `the server refused our client certificate (${message})`,
      `set ${names.clientCertificate} to a certificate (and key) signed by a CA the server trusts`,
    );
  if (/does not support (SSL|secure)|HANDSHAKE_NO_SSL_SUPPORT/i.test(`${code ?? ''} ${message}`))
    return operator(
      `the server does not accept TLS connections (${message})`,
      `enable TLS on the server, or ${names.disable}`,
    );
  if (/wrong version number|unknown protocol/i.test(message))
    return operator(
      `the server did not answer in TLS (${message})`,
      `check that the port is the server's TLS port, or ${names.disable}`,
    );
  // Also what a server restarting during the handshake looks like: worth retrying, with the likely fix named.
  if (/disconnected before secure TLS connection/i.test(message))
    return new ConnectionError(
      `TLS to ${server} failed: the server closed the connection during the TLS handshake (${message})`,
      `if this persists, check that the port is the server's TLS port, or ${names.disable}`,
      err,
    );
  return undefined;
}

/** Some client libraries replace Node's error code with their own (mysql2: HANDSHAKE_SSL_ERROR); the message stays. */
const CODE_BY_MESSAGE: [RegExp, string][] = [
  [/self[- ]signed certificate in certificate chain/i, 'SELF_SIGNED_CERT_IN_CHAIN'],
  [/self[- ]signed certificate/i, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
  [/unable to verify the first certificate/i, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  [/unable to get (local )?issuer certificate/i, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
  [/does not match certificate's altnames/i, 'ERR_TLS_CERT_ALTNAME_INVALID'],
  [/certificate has expired/i, 'CERT_HAS_EXPIRED'],
  [/certificate is not yet valid/i, 'CERT_NOT_YET_VALID'],
];

function findTlsCause(err: unknown): { code?: string; message: string } | undefined {
  const found = findTlsError(err);
  if (!found) return undefined;
  const byMessage = CODE_BY_MESSAGE.find(([pattern]) => pattern.test(found.message))?.[1];
  return { code: byMessage ?? found.code, message: found.message };
}

function findTlsError(err: unknown): { code?: string; message: string } | undefined {
  for (
    let e = err as { code?: string; message?: string; cause?: unknown } | undefined, depth = 0;
    e && depth < 5;
    depth++
  ) {
    const code = typeof e.code === 'string' ? e.code : undefined;
    const message = e.message ?? String(e);
    if (
      (code &&
        (UNTRUSTED.has(code) ||
          code.startsWith('ERR_TLS_') ||
          code.startsWith('ERR_SSL_') ||
          code.startsWith('CERT_') ||
          code === 'HANDSHAKE_NO_SSL_SUPPORT')) ||
      /does not support (SSL|secure)|certificate required|requires a valid client certificate|wrong version number|before secure TLS connection/i.test(
        message,
      ) ||
      CODE_BY_MESSAGE.some(([pattern]) => pattern.test(message))
    )
      return { code, message };
    // kafkajs keeps the failure of its last retry as originalError.
    e = (e.cause ?? (e as { originalError?: unknown }).originalError) as typeof e;
  }
  return undefined;
}
