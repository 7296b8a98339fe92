import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresConnectionTarget as fromUrl } from './connection-tls.ts';

/** With an empty environment: the tests must not depend on the PGSSL* variables of whoever runs them. */
const postgresConnectionTarget = (url: string) => fromUrl(url, {});

describe('PostgreSQL TLS settings from the url (libpq meaning)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-pgurl-'));
  const ca = path.join(dir, 'ca.pem');
  fs.writeFileSync(ca, 'CA');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const base = 'postgres://u:p@db.example:5432/app';

  it('a url without ssl parameters is passed through untouched', () => {
    expect(postgresConnectionTarget(`${base}?application_name=x`)).toEqual({
      connectionString: `${base}?application_name=x`,
    });
  });

  it('takes the ssl parameters out of the url and keeps the others', () => {
    const t = postgresConnectionTarget(`${base}?sslmode=verify-full&sslrootcert=${ca}&options=-c%20x%3D1`);
    expect(t.connectionString).toBe(`${base}?options=-c+x%3D1`);
    expect(t.ssl).toMatchObject({ rejectUnauthorized: true, ca: Buffer.from('CA') });
    expect(t.ssl && 'checkServerIdentity' in t.ssl).toBe(false);
  });

  it('require encrypts without verifying; require with a CA file verifies the CA; verify-ca skips the host name', () => {
    expect(postgresConnectionTarget(`${base}?sslmode=require`).ssl).toEqual({ rejectUnauthorized: false });
    const requireCa = postgresConnectionTarget(`${base}?sslmode=require&sslrootcert=${ca}`).ssl;
    expect(requireCa).toMatchObject({ rejectUnauthorized: true });
    expect(typeof (requireCa as { checkServerIdentity?: unknown }).checkServerIdentity).toBe('function');
    const verifyCa = postgresConnectionTarget(`${base}?sslmode=verify-ca&sslrootcert=${ca}`).ssl;
    expect((verifyCa as { checkServerIdentity: () => unknown }).checkServerIdentity()).toBeUndefined();
    expect(postgresConnectionTarget(`${base}?sslmode=disable`).ssl).toBe(false);
  });

  it('refuses what it cannot honour, saying what to write instead', () => {
    expect(() => postgresConnectionTarget(`${base}?sslmode=prefer`)).toThrow(
      /sslmode=prefer \(sslmode in the PostgreSQL url\) is not supported/,
    );
    expect(() => postgresConnectionTarget(`${base}?sslmode=verify-full&sslrootcert=${dir}/missing.pem`)).toThrow(
      /sslrootcert in the PostgreSQL url: cannot read .*missing\.pem/,
    );
    expect(() => postgresConnectionTarget(`${base}?sslmode=require&sslcert=${ca}`)).toThrow(/without sslkey/);
  });

  it("takes what the url lacks from libpq's environment variables, naming where a bad one came from", () => {
    const env = { PGSSLMODE: 'verify-full', PGSSLROOTCERT: ca };
    const t = fromUrl(base, env);
    expect(t.connectionString).toBe(base);
    expect(t.ssl).toMatchObject({ rejectUnauthorized: true, ca: Buffer.from('CA') });
    // The url wins over the environment.
    expect(fromUrl(`${base}?sslmode=disable`, env).ssl).toBe(false);
    expect(() => fromUrl(base, { PGSSLMODE: 'allow' })).toThrow(/sslmode=allow \(PGSSLMODE in the environment\)/);
    expect(() => fromUrl(base, { PGSSLMODE: 'require', PGSSLCERT: ca, PGSSLKEY: `${dir}/none.key` })).toThrow(
      /PGSSLKEY in the environment: cannot read/,
    );
  });

  it('passes the key passphrase and the revocation list on', () => {
    const t = fromUrl(`${base}?sslmode=verify-ca&sslrootcert=${ca}&sslpassword=s3cret&sslcrl=${ca}`, {});
    expect(t.connectionString).toBe(base);
    expect(t.ssl).toMatchObject({ passphrase: 's3cret', crl: Buffer.from('CA') });
  });
});
