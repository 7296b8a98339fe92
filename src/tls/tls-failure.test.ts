import { describe, expect, it } from 'vitest';
import { tlsFailure } from './tls-failure.ts';

const names = { ca: 'ca_file', skipHostname: 'use verify-ca', clientCertificate: 'cert_file', disable: 'tls: false' };
const error = (message: string, code?: string) => Object.assign(new Error(message), code ? { code } : {});

describe('TLS failures in the operator’s terms', () => {
  it('an untrusted certificate names the CA setting, also when a library replaced the error code', () => {
    for (const err of [
      error('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN'),
      error('self-signed certificate in certificate chain', 'HANDSHAKE_SSL_ERROR'),
      { message: 'retries exceeded', originalError: error('Connection error: unable to get local issuer certificate') },
    ]) {
      const e = tlsFailure(err, 'the server', names);
      expect(e?.kind).toBe('operator');
      expect(e?.message).toMatch(/^TLS to the server failed: the server's certificate is not signed by a CA we trust/);
      expect(e?.hint).toMatch(/ca_file/);
    }
  });

  it('a host name mismatch, an expired certificate, a refused client certificate, a server without TLS', () => {
    expect(
      tlsFailure(
        error("Hostname/IP does not match certificate's altnames: IP: 10.0.0.1 is not in the cert's list"),
        's',
        names,
      )?.hint,
    ).toMatch(/use verify-ca/);
    expect(tlsFailure(error('certificate has expired', 'CERT_HAS_EXPIRED'), 's', names)?.message).toMatch(
      /not valid now/,
    );
    expect(
      tlsFailure(error('tlsv13 alert certificate required', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'), 's', names)
        ?.hint,
    ).toMatch(/cert_file/);
    expect(tlsFailure(error('The server does not support SSL connections'), 's', names)?.hint).toMatch(/tls: false/);
  });

  it('leaves every other error alone', () => {
    expect(tlsFailure(error('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'), 's', names)).toBeUndefined();
    expect(tlsFailure(error('password authentication failed'), 's', names)).toBeUndefined();
  });
});
