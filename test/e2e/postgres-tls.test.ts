import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresCheckpointStore } from '../../connectors/postgres/sink/checkpoint-store.ts';
import { parseConfig } from '../../src/config/load.ts';
import { Daemon } from '../../src/daemon.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { tributary } from '../harness/cli.ts';
import { serviceAccount } from '../harness/os-user.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { waitForEqualTables } from '../harness/table-digest.ts';
import { createTestCertificates, openSslAvailable, type TestCertificates } from '../harness/tls-certificates.ts';

/**
 * PostgreSQL over TLS, against a real server whose certificate a CA made by this test signed. The user `tls_user`
 * may log in only over TLS with a client certificate (pg_hba `cert`), so every connection the product opens
 * (replication, snapshot, target, checkpoint store, validate, verify) must present one; pg_stat_ssl, read inside the
 * server, confirms the sessions are encrypted.
 */
describe.skipIf(!openSslAvailable())('PostgreSQL over TLS', () => {
  let server: PgServer;
  let certs: TestCertificates;
  let dir: string;

  beforeAll(async () => {
    certs = createTestCertificates({ clientName: 'tls_user' });
    const account = serviceAccount('postgres');
    certs.handTo(account);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-pgtls-'));
    fs.chmodSync(dir, 0o755);
    const hba = path.join(certs.dir, 'pg_hba.conf');
    fs.writeFileSync(
      hba,
      [
        'local all all trust',
        'hostssl all tls_user 127.0.0.1/32 cert',
        'hostssl replication tls_user 127.0.0.1/32 cert',
        'hostnossl all tls_user 127.0.0.1/32 reject',
        'host all postgres 127.0.0.1/32 trust',
        '',
      ].join('\n'),
    );
    if (account) fs.chownSync(hba, account.uid, account.gid);
    server = await startPostgres({
      throwaway: true,
      settings: {
        ssl: 'on',
        ssl_cert_file: `'${certs.serverCertFile}'`,
        ssl_key_file: `'${certs.serverKeyFile}'`,
        ssl_ca_file: `'${certs.caFile}'`,
        hba_file: `'${hba}'`,
      },
    });
    await server.query('postgres', 'create user tls_user superuser replication');
  });
  afterAll(async () => {
    await server?.stop();
    certs?.remove();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A URL of the TLS user; `host` localhost matches the certificate, 127.0.0.1 does not. */
  const tlsUrl = (database: string, params: Record<string, string>, host = 'localhost') =>
    `postgres://tls_user@${host}:${server.port}/${database}?${new URLSearchParams(params).toString()}`;
  const full = () => ({
    sslmode: 'verify-full',
    sslrootcert: certs.caFile,
    sslcert: certs.clientCertFile,
    sslkey: certs.clientKeyFile,
  });

  it('replicates with sslmode=verify-full and a client certificate on every connection, and validate and verify work over TLS', async () => {
    await server.createDatabase('tls_src');
    await server.createDatabase('tls_dst');
    await server.query(
      'tls_src',
      `create table t (id int primary key, v text);
       insert into t select g, 'row ' || g from generate_series(1, 500) g`,
    );
    const sourceUrl = tlsUrl('tls_src', full());
    const targetUrl = tlsUrl('tls_dst', full());
    const yaml = `pipelines:
  - name: pgtls
    source: { type: postgres, url: "${sourceUrl}", tables: [public.t] }
    target: { type: postgres, url: "${targetUrl}" }
`;
    const configFile = path.join(dir, 'pgtls.yaml');
    fs.writeFileSync(configFile, yaml);

    const validated = await tributary(['validate', '-c', configFile]);
    expect(validated.stdout).toContain('pipeline pgtls: ok');
    expect(validated.code, validated.stderr).toBe(0);

    const daemon = new Daemon(parseConfig(yaml, 'pgtls.yaml'), createLogger({ level: 'error', pretty: false }));
    const ended = daemon.run();
    try {
      await server.query('tls_src', `insert into t select g, 'late ' || g from generate_series(501, 600) g`);
      const result = await waitForEqualTables(server.url('tls_src'), server.url('tls_dst'), ['public.t'], 60_000);
      expect(result.equal, JSON.stringify(result.tables)).toBe(true);
      // Judged by the server: every connection of tls_user (walsender included) is encrypted.
      const connections = await server.query<{ n: number; encrypted: number; walsenders: number }>(
        'postgres',
        `select count(*)::int as n, count(*) filter (where s.ssl)::int as encrypted,
                count(*) filter (where a.backend_type = 'walsender')::int as walsenders
           from pg_stat_activity a join pg_stat_ssl s using (pid) where a.usename = 'tls_user'`,
      );
      expect(connections[0]!.walsenders).toBeGreaterThanOrEqual(1);
      expect(connections[0]!.encrypted).toBe(connections[0]!.n);
    } finally {
      daemon.stop();
      await ended;
    }

    const verified = await tributary(['verify', '-c', configFile]);
    expect(verified.stdout).toContain('public.t');
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  });

  it('keeps checkpoints in a PostgreSQL checkpoint store reached over TLS', async () => {
    await server.createDatabase('tls_cp');
    const store = new PostgresCheckpointStore(tlsUrl('tls_cp', full()));
    try {
      await store.save({ pipeline: 'p', phase: 'stream', position: { kind: 'postgres', lsn: '0/16B3748' } });
      expect((await store.load('p'))?.position).toEqual({ kind: 'postgres', lsn: '0/16B3748' });
    } finally {
      await store.close();
    }
    const rows = await server.query<{ n: number }>('tls_cp', 'select count(*)::int as n from tributary.checkpoints');
    expect(rows[0]!.n).toBe(1);
  });

  it('a CA that did not sign the server certificate is an operator error naming sslrootcert', async () => {
    const store = new PostgresCheckpointStore(tlsUrl('postgres', { ...full(), sslrootcert: certs.otherCaFile }));
    try {
      const err = (await store.load('p').catch((e: unknown) => e)) as { kind: string; message: string; hint: string };
      expect(err.kind).toBe('operator');
      expect(err.message).toMatch(/TLS to the checkpoint PostgreSQL server failed: .*not signed by a CA we trust/);
      expect(err.hint).toMatch(/sslrootcert/);
    } finally {
      await store.close();
    }
  });

  it('a running pipeline stops (no endless retries) when the CA is wrong, saying which setting to change', async () => {
    await server.createDatabase('tls_stop');
    await server.query('tls_stop', 'create table t (id int primary key)');
    const url = tlsUrl('tls_stop', { ...full(), sslrootcert: certs.otherCaFile });
    const yaml = `pipelines:
  - name: pgtlsstop
    source: { type: postgres, url: "${url}", tables: [public.t] }
    target: { type: jsonl, path: "${path.join(dir, 'stop.jsonl')}" }
    checkpoints: { type: file, path: "${path.join(dir, 'stop.json')}" }
`;
    const daemon = new Daemon(parseConfig(yaml, 'stop.yaml'), createLogger({ level: 'silent', pretty: false }));
    const ended = daemon.run().then(
      () => null,
      (err: unknown) => err,
    );
    const outcome = await Promise.race([ended, new Promise((r) => setTimeout(() => r('still running'), 60_000))]);
    if (outcome === 'still running') daemon.stop();
    const state = daemon.pipelines[0]!.state;
    expect(state.status).toBe('failed');
    expect(JSON.stringify(state.lastError)).toMatch(/not signed by a CA we trust/);
    expect(JSON.stringify(state.lastError)).toMatch(/sslrootcert/);
  });

  it('a missing client certificate is an operator error naming sslcert and sslkey', async () => {
    const store = new PostgresCheckpointStore(
      tlsUrl('postgres', { sslmode: 'verify-full', sslrootcert: certs.caFile }),
    );
    try {
      const err = (await store.load('p').catch((e: unknown) => e)) as { kind: string; message: string; hint: string };
      expect(err.kind).toBe('operator');
      expect(err.message).toMatch(/refused our client certificate/);
      expect(err.hint).toMatch(/sslcert=<file>&sslkey=<file>/);
    } finally {
      await store.close();
    }
  });

  it('takes TLS settings from PGSSLMODE, PGSSLROOTCERT, PGSSLCERT and PGSSLKEY as libpq does, and opens a passphrase-protected key with sslpassword', async () => {
    await server.query('postgres', 'create table if not exists tls_env (id int primary key)');
    const file = path.join(dir, 'environment.yaml');
    const plainUrl = `postgres://tls_user@localhost:${server.port}/postgres`;
    fs.writeFileSync(
      file,
      `pipelines:\n  - name: fromenv\n    source: { type: postgres, url: "${plainUrl}", tables: [public.tls_env] }\n    target: { type: postgres, url: "${plainUrl}", schema: tls_env_copy }\n`,
    );
    // Without the variables the server refuses tls_user (hostnossl reject): the control.
    const plain = await tributary(['validate', '-c', file], {
      PGSSLMODE: '',
      PGSSLROOTCERT: '',
      PGSSLCERT: '',
      PGSSLKEY: '',
    });
    expect(plain.code).not.toBe(0);
    const env = {
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: certs.caFile,
      PGSSLCERT: certs.clientCertFile,
      PGSSLKEY: certs.clientKeyFile,
    };
    const validated = await tributary(['validate', '-c', file], env);
    expect(validated.stdout + validated.stderr).toContain('pipeline fromenv: ok');

    const encryptedKey = path.join(dir, 'client-encrypted.key');
    execFileSync('openssl', [
      'pkey',
      '-in',
      certs.clientKeyFile,
      '-aes256',
      '-passout',
      'pass:s3cret',
      '-out',
      encryptedKey,
    ]);
    const store = new PostgresCheckpointStore(
      tlsUrl('postgres', { ...full(), sslkey: encryptedKey, sslpassword: 's3cret' }),
    );
    try {
      expect(await store.load('nothing')).toBeNull();
    } finally {
      await store.close();
    }
  });

  it('a host name the certificate does not list fails verify-full with a hint, and verify-ca accepts it', async () => {
    const file = path.join(dir, 'mismatch.yaml');
    const mismatchUrl = tlsUrl('postgres', full(), '127.0.0.1');
    fs.writeFileSync(
      file,
      `pipelines:\n  - name: mismatch\n    source: { type: postgres, url: "${mismatchUrl}" }\n    target: { type: postgres, url: "${mismatchUrl}" }\n`,
    );
    const result = await tributary(['validate', '-c', file]);
    expect(result.code).not.toBe(0);
    const out = result.stdout + result.stderr;
    expect(out).toMatch(/does not name the host we connected to/);
    expect(out).toMatch(/sslmode=verify-ca/);

    const store = new PostgresCheckpointStore(tlsUrl('postgres', { ...full(), sslmode: 'verify-ca' }, '127.0.0.1'));
    try {
      expect(await store.load('nothing')).toBeNull();
    } finally {
      await store.close();
    }
  });

  it('sslmode=require encrypts without verifying, as libpq does; an unknown sslmode is refused clearly', async () => {
    const store = new PostgresCheckpointStore(
      tlsUrl(
        'postgres',
        { sslmode: 'require', sslcert: certs.clientCertFile, sslkey: certs.clientKeyFile },
        '127.0.0.1',
      ),
    );
    try {
      expect(await store.load('nothing')).toBeNull();
    } finally {
      await store.close();
    }
    const file = path.join(dir, 'prefer.yaml');
    const preferUrl = tlsUrl('postgres', { sslmode: 'prefer' });
    fs.writeFileSync(
      file,
      `pipelines:\n  - name: prefer\n    source: { type: postgres, url: "${preferUrl}" }\n    target: { type: jsonl, path: out.jsonl }\n`,
    );
    const result = await tributary(['validate', '-c', file]);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/sslmode=prefer .*not supported/);
  });
});
