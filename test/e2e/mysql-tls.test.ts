import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlCheckpointStore } from '../../connectors/mysql/sink/checkpoint-store.ts';
import { parseConfig } from '../../src/config/load.ts';
import { Daemon } from '../../src/daemon.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { tributary } from '../harness/cli.ts';
import { type MysqlServer, queryUrl, withDatabase } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { serviceAccount } from '../harness/os-user.ts';
import { createTestCertificates, openSslAvailable, type TestCertificates } from '../harness/tls-certificates.ts';

/**
 * MariaDB and MySQL over TLS, against a real server whose certificate a CA made by this test signed. `tls_user` is
 * created `REQUIRE X509`: the server itself refuses any of its connections that is not TLS with a client certificate,
 * so a pipeline that works as tls_user (binlog reader, snapshot, target, checkpoints, validate, verify) used TLS
 * throughout.
 */
describe.skipIf(!openSslAvailable()).each(mysqlFlavors())('$name over TLS', (flavor) => {
  let server: MysqlServer;
  let certs: TestCertificates;
  let dir: string;

  beforeAll(async () => {
    certs = createTestCertificates();
    certs.handTo(serviceAccount('mysql'));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-mariadbtls-'));
    server = await flavor.start({
      throwaway: true,
      files: { 'ssl-ca': certs.caFile, 'ssl-cert': certs.serverCertFile, 'ssl-key': certs.serverKeyFile },
    });
    await queryUrl(server.url(), "CREATE USER 'tls_user'@'%' REQUIRE X509");
    await queryUrl(server.url(), "GRANT ALL PRIVILEGES ON *.* TO 'tls_user'@'%' WITH GRANT OPTION");
  });
  afterAll(async () => {
    await server?.stop();
    certs?.remove();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const tlsUrl = (params: Record<string, string>, host = 'localhost') =>
    `mysql://tls_user@${host}:${server.port}/?${new URLSearchParams(params).toString()}`;
  const identity = () => ({
    'ssl-mode': 'VERIFY_IDENTITY',
    'ssl-ca': certs.caFile,
    'ssl-cert': certs.clientCertFile,
    'ssl-key': certs.clientKeyFile,
  });
  /** Row count and digest of a table, computed by the server: the sum of each row's hash (SHA-256, first 60 bits). */
  const digest = async (table: string) =>
    (
      await queryUrl<{ n: number; d: string }>(
        server.url(),
        `SELECT COUNT(*) AS n, CAST(SUM(CONV(SUBSTR(SHA2(CONCAT_WS('|', id, v), 256), 1, 15), 16, 10)) AS CHAR) AS d FROM ${table}`,
      )
    )[0]!;
  /** Makes the server read its certificate files again. */
  const reloadTls = () => queryUrl(server.url(), server.flavor === 'mysql' ? 'ALTER INSTANCE RELOAD TLS' : 'FLUSH SSL');

  it('the server refuses tls_user without TLS (the control for the tests below)', async () => {
    await expect(queryUrl(`mysql://tls_user@127.0.0.1:${server.port}/`, 'SELECT 1')).rejects.toThrow(/denied/i);
  });

  it('replicates to itself with ssl-mode=VERIFY_IDENTITY and a client certificate; validate and verify work over TLS', async () => {
    await queryUrl(server.url(), 'CREATE DATABASE tls_src');
    await queryUrl(server.url(), 'CREATE TABLE tls_src.t (id INT PRIMARY KEY, v VARCHAR(40))');
    await queryUrl(
      withDatabase(server.url(), 'tls_src'),
      `INSERT INTO t SELECT seq, CONCAT('row ', seq) FROM ${server.series(1, 300)}`,
    );
    const yaml = `pipelines:
  - name: mariadbtls
    source: { type: mysql, url: "${tlsUrl(identity())}", databases: [tls_src] }
    target: { type: mysql, url: "${tlsUrl(identity())}", database: tls_dst }
`;
    const configFile = path.join(dir, 'mariadbtls.yaml');
    fs.writeFileSync(configFile, yaml);
    const validated = await tributary(['validate', '-c', configFile]);
    expect(validated.stdout, validated.stderr).toContain('pipeline mariadbtls: ok');

    const daemon = new Daemon(parseConfig(yaml, 'mariadbtls.yaml'), createLogger({ level: 'error', pretty: false }));
    const ended = daemon.run();
    try {
      await queryUrl(
        withDatabase(server.url(), 'tls_src'),
        `INSERT INTO t SELECT seq, CONCAT('late ', seq) FROM ${server.series(301, 400)}`,
      );
      const deadline = Date.now() + 60_000;
      const source = await digest('tls_src.t');
      let target = await digest('tls_dst.t').catch(() => undefined);
      while (JSON.stringify(target) !== JSON.stringify(source) && Date.now() < deadline) {
        const state = daemon.pipelines[0]?.state;
        if (state?.lastError && /TLS/.test(JSON.stringify(state.lastError)))
          throw new Error(JSON.stringify(state.lastError));
        await new Promise((r) => setTimeout(r, 300));
        target = await digest('tls_dst.t').catch(() => undefined);
      }
      expect(target).toEqual(source);
      expect(Number(source.n)).toBe(400);
    } finally {
      daemon.stop();
      await ended;
    }
    const verified = await tributary(['verify', '-c', configFile]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  });

  it('keeps checkpoints in a checkpoint store reached over TLS', async () => {
    const store = new MysqlCheckpointStore(tlsUrl(identity()), 'tls_cp.checkpoints', 10_000);
    try {
      await store.save({ pipeline: 'p', phase: 'stream', position: { kind: 'mysql', file: 'binlog.000001', pos: 4 } });
      expect((await store.load('p'))?.position).toMatchObject({ file: 'binlog.000001', pos: 4 });
    } finally {
      await store.close();
    }
  });

  it('a wrong CA, a host name mismatch and VERIFY_IDENTITY with an IP address are operator errors saying what to change', async () => {
    const wrongCa = path.join(dir, 'wrong-ca.yaml');
    const wrongCaUrl = tlsUrl({ ...identity(), 'ssl-ca': certs.otherCaFile });
    fs.writeFileSync(
      wrongCa,
      `pipelines:\n  - name: wrongca\n    source: { type: mysql, url: "${wrongCaUrl}", databases: [x] }\n    target: { type: mysql, url: "${wrongCaUrl}", database: y }\n`,
    );
    const a = await tributary(['validate', '-c', wrongCa]);
    expect(a.code).not.toBe(0);
    expect(a.stdout + a.stderr).toMatch(/not signed by a CA we trust/);
    expect(a.stdout + a.stderr).toMatch(/ssl-ca=/);

    const mismatch = path.join(dir, 'mismatch.yaml');
    const mismatchUrl = tlsUrl(identity(), '127.0.0.1');
    fs.writeFileSync(
      mismatch,
      `pipelines:\n  - name: mismatch\n    source: { type: mysql, url: "${mismatchUrl}", databases: [x] }\n    target: { type: mysql, url: "${mismatchUrl}", database: y }\n`,
    );
    const b = await tributary(['validate', '-c', mismatch]);
    expect(b.code).not.toBe(0);
    expect(b.stdout + b.stderr).toMatch(
      /VERIFY_IDENTITY needs a host name in the MySQL url, not the address 127.0.0.1/,
    );
    expect(b.stdout + b.stderr).toMatch(/ssl-mode=VERIFY_CA/);

    // A certificate for another name: the server reloads its files.
    const served = { cert: server.serverFile!('ssl-cert'), key: server.serverFile!('ssl-key') };
    const serving = [served.cert, served.key].map((f) => fs.readFileSync(f));
    fs.writeFileSync(served.cert, fs.readFileSync(certs.otherNameCertFile));
    fs.writeFileSync(served.key, fs.readFileSync(certs.otherNameKeyFile));
    await reloadTls();
    try {
      const named = path.join(dir, 'named.yaml');
      const namedUrl = tlsUrl(identity());
      fs.writeFileSync(
        named,
        `pipelines:\n  - name: named\n    source: { type: mysql, url: "${namedUrl}", databases: [x] }\n    target: { type: mysql, url: "${namedUrl}", database: y }\n`,
      );
      const c = await tributary(['validate', '-c', named]);
      expect(c.code).not.toBe(0);
      expect(c.stdout + c.stderr).toMatch(
        /TLS to .* failed: the server's certificate does not name the host we connected to/,
      );
      expect(c.stdout + c.stderr).toMatch(/ssl-mode=VERIFY_CA/);
    } finally {
      fs.writeFileSync(served.cert, serving[0]!);
      fs.writeFileSync(served.key, serving[1]!);
      await reloadTls();
    }

    const verified = await tributary(['verify', '-c', wrongCa]);
    expect(verified.code).toBe(2);
    expect(verified.stdout + verified.stderr).toMatch(/not signed by a CA we trust/);
    const caOnly = new MysqlCheckpointStore(
      tlsUrl({ ...identity(), 'ssl-mode': 'VERIFY_CA' }, '127.0.0.1'),
      'tls_cp.checkpoints',
      10_000,
    );
    try {
      expect(await caOnly.load('nothing')).toBeNull();
    } finally {
      await caOnly.close();
    }
  });
});
