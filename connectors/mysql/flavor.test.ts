import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MysqlServer } from '../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../test/harness/mysql-server.ts';
import { binaryLogs, detectFlavor, type SnapshotBounds, startSharedSnapshot, startSnapshotBounds } from './flavor.ts';
import { gtidCovers } from './gtid-set.ts';

const CONNECTIONS = 5;
const ROUNDS = 10;
const WRITERS = 4;

/**
 * startSharedSnapshot under writers that commit as fast as they can: every connection's snapshot sees exactly the
 * same rows (counted by the server in each), and the binlog position it returns is where those rows end (the rows a
 * snapshot started right at that position by one connection sees).
 */
describe.each(mysqlFlavors())('startSharedSnapshot ($name)', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start();
    await server.createDatabase('shared');
    await server.query('CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)', [], 'shared');
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** WRITERS connections that insert one row per transaction into `table` as fast as they can, until stop(). */
  function startWriters(table: string) {
    let writing = true;
    let commits = 0;
    const running = Promise.all(
      Array.from({ length: WRITERS }, async () => {
        const conn = await mysql.createConnection({ uri: server.url('shared') });
        try {
          while (writing) {
            await conn.query(`INSERT INTO ${table} (v) VALUES (1)`);
            commits++;
          }
        } finally {
          await conn.end();
        }
      }),
    );
    return {
      get commits() {
        return commits;
      },
      async stop() {
        writing = false;
        await running;
      },
    };
  }

  it.each([
    { way: 'lock-free first', attempts: undefined },
    { way: 'the global read lock at once', attempts: 0 },
  ])(
    `gives ${CONNECTIONS} connections one view of the data while commits keep coming ($way)`,
    { timeout: 120_000 },
    async ({ attempts }) => {
      const writers = startWriters('t');
      const conns = await Promise.all(
        Array.from({ length: CONNECTIONS }, () => mysql.createConnection({ uri: server.url('shared') })),
      );
      const lockings: Record<string, number> = {};
      try {
        const { flavor: kind } = await detectFlavor(conns[0]!);
        for (let round = 0; round < ROUNDS; round++) {
          const started = await startSharedSnapshot(conns, kind, attempts);
          if ('unavailable' in started) throw new Error(started.unavailable);
          lockings[started.locking] = (lockings[started.locking] ?? 0) + 1;
          const seen = await Promise.all(
            conns.map(async (c) => {
              const [rows] = await c.query('SELECT COUNT(*) AS n, COALESCE(MAX(id), 0) AS m FROM t');
              const r = (rows as { n: number | string; m: number | string }[])[0]!;
              return `${r.n}/${r.m}`;
            }),
          );
          expect(new Set(seen).size, `round ${round}: ${seen.join(' ')}`).toBe(1);
          await Promise.all(conns.map((c) => c.query('COMMIT')));
        }
      } finally {
        await writers.stop();
        await Promise.all(conns.map((c) => c.end()));
      }
      console.info(
        `[shared snapshot ${flavor.name}] ${ROUNDS} rounds on ${CONNECTIONS} connections, each one view, under ${writers.commits} commits; locking: ${JSON.stringify(lockings)}`,
      );
      expect(writers.commits).toBeGreaterThan(ROUNDS);
    },
  );

  it('startSnapshotBounds: one snapshot sees every transaction before its visible bound and none after its seen bound, while commits keep coming', {
    timeout: 120_000,
  }, async () => {
    await server.query('CREATE TABLE IF NOT EXISTS bounds (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)', [], 'shared');
    const writers = startWriters('bounds');
    const conn = await mysql.createConnection({ uri: server.url('shared') });
    const reader = await mysql.createConnection({ uri: server.url('shared') });
    // Rows inserted into `bounds` by the transactions a bound holds, counted by the server from its binlog (one row
    // event per transaction): the ones before its offset when the bound is exact, else the ones its GTID set covers.
    // MySQL's binlog offset read before the start is no such bound: a transaction is in the binlog before its engine
    // commit shows (CI: 2099 rows visible, 2102 row events before that offset); its executed GTID set is.
    const insertsIn = async (bound: SnapshotBounds['visible'], exact: boolean): Promise<number> => {
      let n = 0;
      for (const log of await binaryLogs(reader)) {
        if (exact && log.name > bound.file) break;
        const [events] = await reader.query(`SHOW BINLOG EVENTS IN '${log.name}'`);
        let intoBounds = false;
        let covered = true;
        for (const e of events as { Event_type: string; End_log_pos: number; Info: string }[]) {
          if (exact && log.name === bound.file && Number(e.End_log_pos) > bound.pos) break;
          const gtid = /GTID_NEXT\s*=\s*'([^']+)'/.exec(e.Info ?? '')?.[1];
          if (!exact && gtid) covered = gtidCovers(bound.gtidSet, gtid) === true;
          if (e.Event_type === 'Table_map') intoBounds = /\(`?shared`?\.`?bounds`?\)/.test(e.Info);
          else if (/^Write_rows/.test(e.Event_type) && intoBounds && covered) n++;
        }
      }
      return n;
    };
    const found: string[] = [];
    try {
      const { flavor: kind } = await detectFlavor(conn);
      for (let round = 0; round < ROUNDS; round++) {
        const bounds = await startSnapshotBounds(conn, kind);
        const [rows] = await conn.query('SELECT COUNT(*) AS n FROM bounds');
        const visible = Number((rows as { n: number | string }[])[0]!.n);
        await conn.query('COMMIT');
        const low = await insertsIn(bounds.visible, bounds.exactPosition);
        const high = await insertsIn(bounds.seen, bounds.exactPosition);
        found.push(`${low}<=${visible}<=${high}`);
        expect(visible, `round ${round}: ${found.at(-1)}`).toBeGreaterThanOrEqual(low);
        expect(visible, `round ${round}: ${found.at(-1)}`).toBeLessThanOrEqual(high);
        if (bounds.exactPosition) expect(visible, `round ${round}: exact`).toBe(low);
      }
    } finally {
      await writers.stop();
      await conn.end();
      await reader.end();
    }
    console.info(`[snapshot bounds ${flavor.name}] under ${writers.commits} commits: ${found.join(' ')}`);
    expect(writers.commits).toBeGreaterThan(ROUNDS);
  });

  it('says why when the global read lock is not allowed (no RELOAD), so the caller reads on one connection', async () => {
    await server.query("CREATE USER IF NOT EXISTS 'noreload'@'%' IDENTIFIED BY 'pw-noreload'");
    await server.query("GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'noreload'@'%'");
    const url = server.url('shared').replace('root@', 'noreload:pw-noreload@');
    const conns = await Promise.all([1, 2, 3].map(() => mysql.createConnection({ uri: url })));
    try {
      const { flavor: kind } = await detectFlavor(conns[0]!);
      const started = await startSharedSnapshot(conns, kind, 0);
      expect(started).toEqual({ unavailable: expect.stringContaining('no RELOAD privilege') });
    } finally {
      await Promise.all(conns.map((c) => c.end()));
    }
  });
});
