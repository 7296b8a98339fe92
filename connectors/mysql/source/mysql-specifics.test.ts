import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceSetupError, TributaryError } from '../../../src/errors.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { GLOBAL_LOCK_WAIT_SECONDS } from '../flavor.ts';
import { events, lastCheckpoint, makeSource, Puller, session, snapshotDone } from './source.test-support.ts';

const mysql = mysqlFlavors().filter((f) => f.name === 'mysql');

/** What MySQL (not MariaDB) has that the source must follow or refuse: each read by snapshot and by stream. */
describe.skipIf(mysql.length === 0).each(mysql)('MySQL specifics ($name)', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start();
  });
  afterAll(async () => server?.stop());

  /** Snapshot rows of `db`, then the same statements streamed under ids + 100: both as the events give them. */
  async function snapshotAndStream(db: string, ddl: string, inserts: string[]) {
    await server.createDatabase(db);
    const conn = await session(server, db);
    await conn.query(ddl);
    for (const [i, sql] of inserts.entries()) await conn.query(sql.replaceAll('{id}', String(i + 1)));
    const source = makeSource(server, db, { databases: [db] });
    await source.open(null);
    const puller = new Puller(source);
    try {
      await puller.until((b) => b.some((x) => snapshotDone(x)));
      for (const [i, sql] of inserts.entries()) await conn.query(sql.replaceAll('{id}', String(i + 101)));
      await puller.until((b) => events(b).filter((e) => e.op === 'insert').length >= inserts.length);
      const strip = (r: Record<string, unknown>) => {
        const { id: _, ...rest } = r;
        return rest;
      };
      const read = events(puller.batches)
        .filter((e) => e.op === 'read')
        .map((e) => strip(e.after!));
      const streamed = events(puller.batches)
        .filter((e) => e.op === 'insert')
        .map((e) => strip(e.after!));
      return { read, streamed, conn };
    } finally {
      await puller.end();
      await source.close();
    }
  }

  it('invisible columns and stored and virtual generated columns arrive alike from snapshot and stream', async () => {
    const { read, streamed, conn } = await snapshotAndStream(
      'gen',
      `CREATE TABLE t (id INT PRIMARY KEY, a INT, secret VARCHAR(10) INVISIBLE,
         s INT AS (a * 2) STORED, v VARCHAR(20) AS (CONCAT('v', a)) VIRTUAL)`,
      ["INSERT INTO t (id, a, secret) VALUES ({id}, 21, 'hidden')"],
    );
    await conn.end();
    expect(read).toEqual([{ a: '21', secret: 'hidden', s: '42', v: 'v21' }]);
    expect(streamed).toEqual(read);
  });

  it('utf8mb4 collations (accent and case sensitive or not, binary) keep the text as stored', async () => {
    const { read, streamed, conn } = await snapshotAndStream(
      'coll',
      `CREATE TABLE t (id INT PRIMARY KEY, ai VARCHAR(20) COLLATE utf8mb4_0900_ai_ci,
         as_cs VARCHAR(20) COLLATE utf8mb4_0900_as_cs, bin VARCHAR(20) COLLATE utf8mb4_bin,
         gen VARCHAR(20) COLLATE utf8mb4_general_ci, l1 VARCHAR(20) CHARACTER SET latin1)`,
      ["INSERT INTO t VALUES ({id}, 'Émile', 'ÉMILE', 'émile 😀', 'Straße', 'café')"],
    );
    await conn.end();
    expect(read).toEqual([{ ai: 'Émile', as_cs: 'ÉMILE', bin: 'émile 😀', gen: 'Straße', l1: 'café' }]);
    expect(streamed).toEqual(read);
  });

  it('a session with binlog_row_value_options=PARTIAL_JSON: what was committed before is delivered with its checkpoint, the partial update stops with the remedy', async () => {
    await server.createDatabase('pjson');
    const conn = await session(server, 'pjson');
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY, doc JSON, v INT)');
    await conn.query(`INSERT INTO t VALUES (1, '{"a": 1, "b": "${'x'.repeat(200)}"}', 1)`);
    const source = makeSource(server, 'pjson', { databases: ['pjson'], snapshot: 'never', heartbeat_interval_ms: 100 });
    await source.open(null);
    const puller = new Puller(source);
    try {
      await conn.query('INSERT INTO t VALUES (2, NULL, 2)');
      const partial = await session(server, 'pjson');
      await partial.query("SET SESSION binlog_row_value_options = 'PARTIAL_JSON'");
      await partial.query("SET SESSION binlog_row_image = 'MINIMAL'");
      await partial.query("UPDATE t SET doc = JSON_SET(doc, '$.a', 2) WHERE id = 1");
      await partial.end();
      await conn.query('INSERT INTO t VALUES (3, NULL, 3)');
      const err = await puller
        .until(() => false, 15_000)
        .then(
          () => null,
          (e: unknown) => e,
        );
      const handed = events(puller.batches);
      // The insert committed before the partial update arrived whole, with a checkpoint after it.
      expect(handed.filter((e) => e.op === 'insert').map((e) => e.after?.id)).toContain('2');
      expect(lastCheckpoint(puller.batches)).toBeTruthy();
      // The partial update and everything after it: not delivered.
      expect(handed.filter((e) => e.op === 'update' || e.after?.id === '3')).toEqual([]);
      expect(err).toBeInstanceOf(TributaryError);
      expect((err as TributaryError).kind).toBe('operator');
      expect((err as Error).message).toContain('pjson.t');
      expect((err as Error).message).toContain('binlog_row_value_options=PARTIAL_JSON');
      expect((err as TributaryError).hint).toMatch(/teardown/);
      expect((err as Error).message).not.toMatch(/internal error/);
    } finally {
      await puller.end();
      await source.close();
      await conn.end();
    }
  });

  it('a session with binlog_transaction_compression=ON: what was committed before is delivered with its checkpoint, the compressed transaction stops with the remedy', async () => {
    await server.createDatabase('compressed');
    const conn = await session(server, 'compressed');
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)');
    const source = makeSource(server, 'compressed', {
      databases: ['compressed'],
      snapshot: 'never',
      heartbeat_interval_ms: 100,
    });
    await source.open(null);
    const puller = new Puller(source);
    try {
      await conn.query('INSERT INTO t VALUES (1, 1)');
      const zipped = await session(server, 'compressed');
      await zipped.query('SET SESSION binlog_transaction_compression = ON');
      await zipped.query('INSERT INTO t VALUES (2, 2)');
      await zipped.end();
      await conn.query('INSERT INTO t VALUES (3, 3)');
      const err = await puller
        .until(() => false, 15_000)
        .then(
          () => null,
          (e: unknown) => e,
        );
      const handed = events(puller.batches);
      // The insert committed before the compressed transaction arrived, with a checkpoint after it.
      expect(handed.filter((e) => e.op === 'insert').map((e) => e.after?.id)).toEqual(['1']);
      expect(lastCheckpoint(puller.batches)).toBeTruthy();
      expect(err).toBeInstanceOf(TributaryError);
      expect((err as TributaryError).kind).toBe('operator');
      // Named as what it is, where it is, with a remedy that can help: the event is in the binlog already.
      expect((err as Error).message).toMatch(
        /^a compressed transaction at binlog\.\d+:\d+ .*binlog_transaction_compression=ON/,
      );
      expect((err as TributaryError).hint).toContain('Stop the clients that set binlog_transaction_compression=ON');
      expect((err as TributaryError).hint).toMatch(/teardown/);
      expect((err as Error).message).not.toMatch(/internal error/);
    } finally {
      await puller.end();
      await source.close();
      await conn.end();
    }
  });

  it('foreign-key cascades are written to the binlog by MySQL, so the deleted child rows arrive', async () => {
    await server.createDatabase('fk');
    const conn = await session(server, 'fk');
    await conn.query('CREATE TABLE p (id INT PRIMARY KEY)');
    await conn.query(
      'CREATE TABLE c (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES p (id) ON DELETE CASCADE)',
    );
    await conn.query('INSERT INTO p VALUES (1), (2)');
    await conn.query('INSERT INTO c VALUES (10, 1), (20, 2)');
    const source = makeSource(server, 'fk', { databases: ['fk'] });
    await source.open(null);
    const puller = new Puller(source);
    try {
      await puller.until((b) => b.some((x) => snapshotDone(x)));
      await conn.query('DELETE FROM p WHERE id = 1');
      await puller.until((b) => events(b).filter((e) => e.op === 'delete').length >= 2);
      const deletes = events(puller.batches)
        .filter((e) => e.op === 'delete')
        .map((e) => `${e.table.name}:${String(e.before?.id)}`);
      expect(deletes.sort()).toEqual(['c:10', 'p:1']);
    } finally {
      await puller.end();
      await source.close();
      await conn.end();
    }
  });
});

describe.skipIf(mysql.length === 0).each(mysql)('MySQL with gtid_mode=OFF ($name)', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start({ options: { 'gtid-mode': 'OFF', 'enforce-gtid-consistency': 'OFF' } });
  });
  afterAll(async () => server?.stop());

  it('snapshots with the global read lock, streams, and resumes by file and offset', async () => {
    await server.createDatabase('nogtid');
    const conn = await session(server, 'nogtid');
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY)');
    await conn.query('INSERT INTO t VALUES (1)');
    const first = makeSource(server, 'nogtid', { databases: ['nogtid'] });
    await first.open(null);
    const p1 = new Puller(first);
    await p1.until((b) => b.some((x) => snapshotDone(x)));
    await conn.query('INSERT INTO t VALUES (2)');
    await p1.until((b) => events(b).some((e) => e.op === 'insert'));
    const cp = lastCheckpoint(p1.batches)!;
    await p1.end();
    await first.close();
    expect(cp.position).toMatchObject({ kind: 'mysql', gtidSet: undefined });

    await conn.query('INSERT INTO t VALUES (3)');
    const second = makeSource(server, 'nogtid', { databases: ['nogtid'] });
    await second.open(cp);
    const p2 = new Puller(second);
    try {
      await p2.until((b) => events(b).some((e) => e.op === 'insert'));
      expect(events(p2.batches).map((e) => `${e.op}:${String(e.after?.id)}`)).toEqual(['insert:3']);
    } finally {
      await p2.end();
      await second.close();
    }

    // Without GTIDs the snapshot needs the global read lock: a user without RELOAD is told what to grant.
    await server.query("CREATE USER 'norel'@'%' IDENTIFIED BY 'pw'");
    await server.query("GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'norel'@'%'");
    const weak = makeSource(server, 'nogtid_weak', {
      url: server.url().replace('root@', 'norel:pw@'),
      databases: ['nogtid'],
    });
    await weak.open(null);
    const p3 = new Puller(weak);
    try {
      const err = await p3
        .until(() => false, 30_000)
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(SourceSetupError);
      expect((err as SourceSetupError).hint).toMatch(/GRANT RELOAD/);
    } finally {
      await p3.end().catch(() => undefined);
      await weak.close();
      await conn.end();
    }
  });
  it('the global read lock waits at most GLOBAL_LOCK_WAIT_SECONDS behind a long query: writers stall no longer', async () => {
    await server.createDatabase('stall');
    const conn = await session(server, 'stall');
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY)');
    await conn.query('CREATE TABLE w (id INT PRIMARY KEY)');
    await conn.query('INSERT INTO t VALUES (1), (2)');
    // A long query keeps t open: FLUSH TABLES WITH READ LOCK waits for it, and every writer waits behind the lock.
    const reader = await session(server, 'stall');
    const longQuery = reader.query('SELECT SLEEP(12) FROM t LIMIT 1').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const source = makeSource(server, 'stall', { databases: ['stall'] });
    await source.open(null);
    const puller = new Puller(source);
    try {
      const outcome = puller
        .until((b) => b.some((x) => snapshotDone(x)), 30_000)
        .then(
          () => null,
          (e: unknown) => e,
        );
      await new Promise((r) => setTimeout(r, 500)); // the snapshot now waits for the lock
      const started = Date.now();
      await conn.query('INSERT INTO w VALUES (1)');
      const stalledMs = Date.now() - started;
      // Held at most the bounded wait (and not the 12 s of the long query, as an unbounded wait holds it).
      expect(stalledMs).toBeLessThan((GLOBAL_LOCK_WAIT_SECONDS + 2) * 1000);
      const err = await outcome;
      expect(err).toBeInstanceOf(TributaryError);
      expect((err as TributaryError).kind).toBe('retryable');
      expect((err as Error).message).toContain(`could not be had within ${GLOBAL_LOCK_WAIT_SECONDS} s`);
    } finally {
      await puller.end().catch(() => undefined);
      await source.close();
    }
    // Once the long query is over, the retried snapshot takes the lock and copies the rows.
    await longQuery;
    await reader.end();
    const again = makeSource(server, 'stall', { databases: ['stall'] });
    await again.open(null);
    const p2 = new Puller(again);
    try {
      await p2.until((b) => b.some((x) => snapshotDone(x)), 30_000);
      expect(
        events(p2.batches)
          .filter((e) => e.op === 'read')
          .map((e) => `${e.table.name}:${String(e.after?.id)}`)
          .sort(),
      ).toEqual(['t:1', 't:2', 'w:1']);
    } finally {
      await p2.end();
      await again.close();
      await conn.end();
    }
  }, 90_000);
});
