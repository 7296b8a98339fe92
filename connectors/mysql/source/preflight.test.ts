import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceSetupError } from '../../../src/errors.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { preflightMysqlSource } from './preflight.ts';
import { ServerBehindCheckpointError } from './server-behind.ts';
import {
  events,
  lastCheckpoint,
  makeSource,
  Puller,
  session,
  silentLogger,
  snapshotDone,
  sourceConfig,
} from './source.test-support.ts';

const ctx = { pipeline: 'preflight', logger: silentLogger };

describe.each(mysqlFlavors())('mysql source: preflight and purged binlogs ($name)', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start({ throwaway: true });
  });
  afterAll(async () => server?.stop());

  it('passes on a well configured server', async () => {
    expect(await preflightMysqlSource(sourceConfig(server), ctx)).toEqual([]);
  });

  it('names missing privileges and the server id clash, with a GRANT to run', async () => {
    await server.query("CREATE USER 'weak'@'%' IDENTIFIED BY 'pw'");
    await server.query("GRANT SELECT ON *.* TO 'weak'@'%'");
    const url = server.url().replace('root@', 'weak:pw@');
    const problems = await preflightMysqlSource(sourceConfig(server, { url, server_id: 1 }), ctx);
    expect(problems.map((p) => p.message).join('\n')).toMatch(/lacks REPLICATION SLAVE and REPLICATION CLIENT/);
    expect(problems.map((p) => p.hint).join('\n')).toContain(
      "GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'weak'@'%';",
    );
    expect(problems.map((p) => p.message).join('\n')).toMatch(/server_id 1 .* equals the server's own/);
  });

  it('reports a server without a binlog, and one with minimal row metadata', async () => {
    const noBinlog = await flavor.start({ options: { 'log-bin': null } });
    const minimal = await flavor.start({
      options: { 'binlog-row-metadata': 'MINIMAL', 'binlog-row-image': 'MINIMAL' },
    });
    try {
      const p1 = await preflightMysqlSource(sourceConfig(noBinlog), ctx);
      expect(p1.map((p) => p.message).join('\n')).toMatch(/binary log is off/);
      expect(p1[0]!.hint).toMatch(/log_bin = binlog/);
      const p2 = await preflightMysqlSource(sourceConfig(minimal), ctx);
      const text = p2.map((p) => `${p.message} | ${p.hint}`).join('\n');
      expect(text).toMatch(/binlog_row_metadata is MINIMAL.*binlog_row_metadata = FULL/);
      expect(text).toMatch(/binlog_row_image is MINIMAL/);
      const source = makeSource(minimal, 'x');
      await expect(source.open(null)).rejects.toBeInstanceOf(SourceSetupError);
      await source.close();
    } finally {
      await noBinlog.stop();
      await minimal.stop();
    }
  });

  it.runIf(flavor.name === 'mysql')(
    'refuses binlog settings whose events cannot be decoded: compressed transactions, partial JSON, partial row images',
    async () => {
      const settings = [
        ['binlog_transaction_compression', 'ON', /binlog_transaction_compression is ON.*TRANSACTION_PAYLOAD/],
        ['binlog_row_value_options', "'PARTIAL_JSON'", /binlog_row_value_options is PARTIAL_JSON/],
        ['binlog_row_image', "'NOBLOB'", /binlog_row_image is NOBLOB/],
      ] as const;
      for (const [name, value, expected] of settings) {
        const [before] = await server.query<{ Value: string }>('SHOW GLOBAL VARIABLES LIKE ?', [name]);
        await server.query(`SET GLOBAL ${name} = ${value}`);
        try {
          const problems = await preflightMysqlSource(sourceConfig(server), ctx);
          expect(problems.map((p) => p.message).join('\n')).toMatch(expected);
          expect(problems.map((p) => p.hint).join('\n')).toContain(`SET GLOBAL ${name}`);
          const source = makeSource(server, 'undecodable');
          await expect(source.open(null)).rejects.toBeInstanceOf(SourceSetupError);
          await source.close();
        } finally {
          await server.query(`SET GLOBAL ${name} = ?`, [before!.Value]);
        }
      }
      expect(await preflightMysqlSource(sourceConfig(server), ctx)).toEqual([]);
    },
  );

  it('refuses foreign keys whose cascades MariaDB does not log on replicated tables; MySQL logs them', async () => {
    await server.createDatabase('fkcascade');
    await server.query('CREATE TABLE fkcascade.parent (id INT PRIMARY KEY)');
    await server.query(
      'CREATE TABLE fkcascade.child (id INT PRIMARY KEY, pid INT, CONSTRAINT child_parent FOREIGN KEY (pid) REFERENCES fkcascade.parent (id) ON DELETE CASCADE)',
    );
    await server.query(
      'CREATE TABLE fkcascade.plain (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES fkcascade.parent (id))',
    );
    try {
      const all = await preflightMysqlSource(sourceConfig(server, { databases: ['fkcascade'] }), ctx);
      const withoutChild = await preflightMysqlSource(
        sourceConfig(server, { tables: ['fkcascade.parent', 'fkcascade.plain'] }),
        ctx,
      );
      if (server.flavor === 'mariadb') {
        expect(all).toHaveLength(1);
        expect(all[0]!.message).toMatch(
          /cascade\.child \(child_parent ON DELETE CASCADE from parent\).*does not write the rows such an action changes/,
        );
        expect(all[0]!.hint).toContain('ALTER TABLE fkcascade.child DROP FOREIGN KEY child_parent');
      } else {
        // MySQL 9 writes the rows a cascade changes to the binlog (SQL-layer foreign keys): nothing to refuse.
        expect(all).toEqual([]);
      }
      expect(withoutChild).toEqual([]);
    } finally {
      await server.query('DROP DATABASE fkcascade');
    }
  });

  it('says the server is behind, not that the binlog was purged, for a checkpoint ahead of the server', async () => {
    await server.createDatabase('ahead');
    await server.query('CREATE TABLE ahead.t (id INT PRIMARY KEY)');
    const first = makeSource(server, 'ahead', { databases: ['ahead'] });
    await first.open(null);
    const p = new Puller(first);
    await p.until((b) => b.some((x) => snapshotDone(x)));
    const cp = lastCheckpoint(p.batches)!;
    await p.end();
    await first.close();
    if (cp.position.kind !== 'mysql' || !cp.position.gtidSet) throw new Error('expected a GTID checkpoint');
    const { file, pos, gtidSet } = cp.position;
    // As after a failover to a replica that lagged, or on a server restored from a backup.
    const aheadSet =
      server.flavor === 'mariadb'
        ? gtidSet.replace(/-(\d+)$/, (_, n: string) => `-${Number(n) + 1000}`)
        : `${gtidSet},aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee:1-5`;
    const next = file.replace(/\d+$/, (n) => String(Number(n) + 3).padStart(n.length, '0'));
    const cases = [
      { position: { kind: 'mysql' as const, file, pos, gtidSet: aheadSet }, says: /has not executed/ },
      {
        position: { kind: 'mysql' as const, file, pos: pos + 50_000_000 },
        says: /past the end of this server's binlog/,
      },
      { position: { kind: 'mysql' as const, file: next, pos: 4 }, says: /past the end of this server's binlog/ },
    ];
    for (const c of cases) {
      const s = makeSource(server, 'ahead', { databases: ['ahead'], resnapshot_on_purged_binlog: true });
      const err = await s.open({ ...cp, position: c.position }).then(
        () => null,
        (e: unknown) => e,
      );
      await s.close();
      expect(err).toBeInstanceOf(ServerBehindCheckpointError);
      expect((err as Error).message).toMatch(c.says);
      expect((err as Error).message).not.toMatch(/purged/);
      expect((err as SourceSetupError).hint).toMatch(/caught up/);
    }
  });

  it('stops with the position and the oldest binlog when the checkpoint was purged, or resnapshots', async () => {
    await server.createDatabase('purged');
    const conn = await session(server, 'purged');
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY)');
    await conn.query('INSERT INTO t VALUES (1)');
    const first = makeSource(server, 'purged', { databases: ['purged'] });
    await first.open(null);
    const p = new Puller(first);
    await p.until((b) => b.some((x) => snapshotDone(x)));
    const cp = lastCheckpoint(p.batches)!;
    await p.end();
    await first.close();

    await conn.query('FLUSH BINARY LOGS');
    await conn.query('INSERT INTO t VALUES (2)');
    await conn.query('FLUSH BINARY LOGS');
    const logs = await server.query<{ Log_name: string }>('SHOW BINARY LOGS');
    const newest = logs[logs.length - 1]!.Log_name;
    // MariaDB keeps a file until its binlog checkpoint (crash recovery) moved past it: retry briefly.
    for (let i = 0; i < 50; i++) {
      await conn.query(`PURGE BINARY LOGS TO '${newest}'`);
      const left = await server.query<{ Log_name: string }>('SHOW BINARY LOGS');
      if (left[0]!.Log_name === newest) break;
      await new Promise((r) => setTimeout(r, 100));
    }

    for (const byGtid of [false, true]) {
      const s = makeSource(server, 'purged', { databases: ['purged'], resume_by_gtid: byGtid });
      const err = await s.open(cp).then(
        () => null,
        (e: unknown) => e,
      );
      await s.close();
      expect(err).toBeInstanceOf(SourceSetupError);
      const msg = (err as Error).message;
      if (cp.position.kind === 'mysql') expect(msg).toContain(`${cp.position.file}:${cp.position.pos}`);
      expect(msg).toContain(`oldest binlog available is ${newest}`);
      expect((err as SourceSetupError).hint).toMatch(/resnapshot_on_purged_binlog/);
    }

    const again = makeSource(server, 'purged', { databases: ['purged'], resnapshot_on_purged_binlog: true });
    await again.open(cp);
    const p2 = new Puller(again);
    try {
      await p2.until((b) => b.some((x) => snapshotDone(x)));
      expect(
        events(p2.batches)
          .map((e) => `${e.op}:${String(e.after?.id ?? '')}`)
          .sort(),
      ).toEqual(['read:1', 'read:2', 'truncate:']);
    } finally {
      await p2.end();
      await again.close();
      await conn.end();
    }
  });
});
