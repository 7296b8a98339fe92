import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import { testContext } from '../../../test/fixtures/change-events.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../../../test/harness/postgres.ts';
import { postgresTargetConfig } from '../../postgres/sink/config.ts';
import { PostgresTarget } from '../../postgres/sink/target.ts';
import { mysqlTargetConfig } from '../sink/config.ts';
import { MysqlTarget } from '../sink/target.ts';
import { session, sourceConfig } from './source.test-support.ts';
import { MysqlSource } from './source.ts';

const BATCH = { max_events: 1000, max_bytes: 4 * 1024 * 1024, max_wait_ms: 50 };

interface Digest {
  rows: number;
  digest: string;
}

/**
 * A digested column: a name (its value as text: integers and plain strings print alike in both databases), or an
 * expression per database giving a form both print alike (a decimal scaled to an integer, a time in microseconds).
 */
type DigestColumn = string | { mysql: string; pg: string };

/** Row count and sorted per-row SHA-256s of integer columns, computed by MySQL itself. */
async function mysqlDigest(server: MysqlServer, db: string, table: string, cols: DigestColumn[]): Promise<Digest> {
  const conn = await session(server, db);
  try {
    await conn.query('SET SESSION group_concat_max_len = 100000000');
    const row = cols
      .map((c) => `IFNULL(CAST(${typeof c === 'string' ? `\`${c}\`` : c.mysql} AS CHAR), '~')`)
      .join(", '|', ");
    const [rows] = await conn.query(
      `SELECT COUNT(*) AS n, SHA2(GROUP_CONCAT(h ORDER BY h SEPARATOR ''), 256) AS d FROM (SELECT SHA2(CONCAT(${row}), 256) AS h FROM \`${table}\`) s`,
    );
    const r = (rows as { n: number; d: string | null }[])[0]!;
    return { rows: Number(r.n), digest: r.d ?? '' };
  } finally {
    await conn.end();
  }
}

/** The same digest computed by PostgreSQL (integers print alike in both). */
async function pgDigest(url: string, qname: string, cols: DigestColumn[]): Promise<Digest> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const row = cols
      .map((c) => `coalesce((${typeof c === 'string' ? `"${c}"` : c.pg})::text, '~')`)
      .join(" || '|' || ");
    const { rows } = await client.query<{ n: string; d: string | null }>(
      `select count(*) as n, encode(sha256(convert_to(string_agg(h, '' order by h collate "C"), 'UTF8')), 'hex') as d from (select encode(sha256(convert_to(${row}, 'UTF8')), 'hex') as h from ${qname}) s`,
    );
    return { rows: Number(rows[0]!.n), digest: rows[0]!.d ?? '' };
  } finally {
    await client.end();
  }
}

/**
 * Column type changes by MODIFY: from a type to another, rows that are there before (their values as SQL literals),
 * one written after, and whether the server's conversion may change existing values (then the table is copied again).
 */
interface RetypeCell {
  name: string;
  from: string;
  to: string;
  values: string[];
  after: string;
  copies: boolean;
  /** The existing values read alike after the change (the copy is for the column's new kind at the target). */
  sameText?: boolean;
  /** How the column is compared (default: its text). */
  digest?: DigestColumn;
}

const scaled = (factor: number): DigestColumn => ({
  mysql: `CAST(ROUND(c * ${factor}) AS SIGNED)`,
  pg: `round(c * ${factor})::bigint`,
});
const MICROS: DigestColumn = {
  mysql: "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', c)",
  pg: '(extract(epoch from c) * 1000000)::bigint',
};

const RETYPE_CELLS: RetypeCell[] = [
  {
    name: 'DECIMAL scale down (values rounded)',
    from: 'DECIMAL(10,3)',
    to: 'DECIMAL(10,1)',
    values: ['1.236', '2.251', '-3.449', '1234567.850'],
    after: '7.7',
    copies: true,
    digest: scaled(1000),
  },
  {
    name: 'DECIMAL scale down of a NOT NULL column',
    from: 'DECIMAL(10,3) NOT NULL',
    to: 'DECIMAL(10,1) NOT NULL',
    values: ['1.236', '-3.449'],
    after: '7.7',
    copies: true,
    digest: scaled(1000),
  },
  {
    name: 'DECIMAL precision up (no copy)',
    from: 'DECIMAL(8,2)',
    to: 'DECIMAL(14,2)',
    values: ['1.25', '-999999.99'],
    after: '123456789012.25',
    copies: false,
    digest: scaled(100),
  },
  {
    name: 'DATETIME(6) -> DATETIME (fractions rounded)',
    from: 'DATETIME(6)',
    to: 'DATETIME',
    values: ["'2001-01-01 01:01:01.123456'", "'2002-02-02 02:02:02.999999'", "'2003-03-03 03:03:03.500000'"],
    after: "'2004-04-04 04:04:04'",
    copies: true,
    digest: MICROS,
  },
  {
    name: 'INT -> BIGINT (no copy)',
    from: 'INT',
    to: 'BIGINT',
    values: ['1', '-2147483648', '2147483647'],
    after: '9007199254740993',
    copies: false,
  },
  {
    name: 'VARCHAR longer (no copy)',
    from: 'VARCHAR(10)',
    to: 'VARCHAR(40)',
    values: ["'a'", "'0123456789'"],
    after: "'a value longer than ten'",
    copies: false,
  },
  {
    name: 'INT -> VARCHAR (another kind)',
    from: 'INT',
    to: 'VARCHAR(20)',
    values: ['1', '-5', '42'],
    after: "'007'",
    copies: true,
    sameText: true,
  },
  {
    name: 'DOUBLE -> INT (values rounded)',
    from: 'DOUBLE',
    to: 'INT',
    values: ['1.5', '2.25', '-3.75'],
    after: '9',
    copies: true,
  },
];

const TARGETS = ['postgres', 'mysql'] as const;
type TargetKind = (typeof TARGETS)[number];

describe.each(mysqlFlavors())('MySQL source: table DDL followed at the target ($name)', (flavor) => {
  let pgServer: PgServer;
  let myServer: MysqlServer;
  beforeAll(async () => {
    [pgServer, myServer] = await Promise.all([startPostgres(), flavor.start()]);
  });
  afterAll(async () => {
    await Promise.all([pgServer?.stop(), myServer?.stop()]);
  });

  /** A target database for `db`: a PostgreSQL URL, or a database name on the source server. */
  async function targetFor(kind: TargetKind, db: string): Promise<string> {
    if (kind === 'postgres') return pgServer.createDatabase(`${db}_dst`);
    return `${db}_dst`;
  }

  function startPipeline(db: string, targetUrl: string, extra: { snapshot?: 'never' } = {}) {
    const ctx = testContext(db);
    const pipeline = new Pipeline({
      name: db,
      createParts: () => {
        const target = targetUrl.includes('://')
          ? new PostgresTarget(postgresTargetConfig.parse({ type: 'postgres', url: targetUrl }), ctx)
          : new MysqlTarget(mysqlTargetConfig.parse({ type: 'mysql', url: myServer.url(), database: targetUrl }), ctx);
        const source = new MysqlSource(
          sourceConfig(myServer, { databases: [db], resume_by_gtid: false, ...extra }),
          ctx,
          {
            batch: BATCH,
          },
        );
        return { source, target };
      },
      maxInFlight: 4,
      maxInFlightBytes: 64 * 1024 * 1024,
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
      logger: ctx.logger,
    });
    let failure: unknown = null;
    const running = pipeline.run().catch((err) => {
      failure = err;
    });
    return {
      ctx,
      pipeline,
      failure: () => failure,
      stop: async () => {
        pipeline.stop();
        await running;
      },
    };
  }

  /** Waits until source and target digests agree (or a minute passes), then returns both. */
  async function settle(db: string, targetUrl: string, table: string, cols: DigestColumn[]) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const source = await mysqlDigest(myServer, db, table, cols);
      const target = await (targetUrl.includes('://')
        ? pgDigest(targetUrl, `"${db}"."${table}"`, cols)
        : mysqlDigest(myServer, targetUrl, table, cols)
      ).catch(() => null);
      if ((target && target.digest === source.digest && target.rows === source.rows) || Date.now() > deadline)
        return { source, target };
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Whether the target has table `table` of the source database `db`. */
  async function targetHas(targetUrl: string, db: string, table: string): Promise<boolean> {
    if (targetUrl.includes('://')) {
      const client = new pg.Client({ connectionString: targetUrl });
      await client.connect();
      try {
        const { rows } = await client.query('select to_regclass($1) as t', [`"${db}"."${table}"`]);
        return rows[0]!.t !== null;
      } finally {
        await client.end();
      }
    }
    const conn = await session(myServer, targetUrl);
    try {
      const [rows] = await conn.query(
        'SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
        [targetUrl, table],
      );
      return (rows as unknown[]).length > 0;
    } finally {
      await conn.end();
    }
  }

  async function waitFor<T>(what: () => T | Promise<T>, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await what();
      if (v || Date.now() > deadline) return v;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  for (const kind of TARGETS) {
    it(`to ${kind}: follows RENAME TABLE and ALTER TABLE ... RENAME TO: the target table is renamed (streaming and behind)`, async () => {
      const db = `follow_rename_${kind}`;
      await myServer.createDatabase(db);
      const conn = await session(myServer, db);
      await conn.query('CREATE TABLE d (id INT PRIMARY KEY, v INT)');
      await conn.query('INSERT INTO d VALUES (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)');
      const targetUrl = await targetFor(kind, db);
      let run = startPipeline(db, targetUrl);
      try {
        expect((await settle(db, targetUrl, 'd', ['id', 'v'])).target?.rows).toBe(5);
        // Streaming: renamed, written under the new name, the old name used again by a new table.
        await conn.query('RENAME TABLE d TO d2');
        await conn.query('INSERT INTO d2 VALUES (6, 6)');
        await conn.query('CREATE TABLE d (id INT PRIMARY KEY, v INT)');
        await conn.query('INSERT INTO d VALUES (100, 100)');
        let r = await settle(db, targetUrl, 'd2', ['id', 'v']);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(6);
        r = await settle(db, targetUrl, 'd', ['id', 'v']);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(1);
        await conn.query('ALTER TABLE d2 RENAME TO d3');
        await conn.query('UPDATE d3 SET v = 60 WHERE id = 6');
        r = await settle(db, targetUrl, 'd3', ['id', 'v']);
        expect(r.target).toEqual(r.source);
        expect(await targetHas(targetUrl, db, 'd2')).toBe(false);
        // Two tables swapping names in one statement.
        await conn.query('CREATE TABLE s1 (id INT PRIMARY KEY, v INT)');
        await conn.query('CREATE TABLE s2 (id INT PRIMARY KEY, v INT)');
        await conn.query('INSERT INTO s1 VALUES (1, 1)');
        await conn.query('INSERT INTO s2 VALUES (1, 2), (2, 2)');
        await settle(db, targetUrl, 's2', ['id', 'v']);
        await conn.query('RENAME TABLE s1 TO tmp, s2 TO s1, tmp TO s2');
        await conn.query('INSERT INTO s1 VALUES (3, 3)');
        for (const t of ['s1', 's2']) {
          r = await settle(db, targetUrl, t, ['id', 'v']);
          expect(r.target).toEqual(r.source);
        }
        expect(r.source.rows).toBe(1);
        expect(await targetHas(targetUrl, db, 'tmp')).toBe(false);
        // Stopped and behind: renamed with no row of the table read since the start, then renamed again.
        await run.stop();
        await conn.query('RENAME TABLE d3 TO d4');
        await conn.query('INSERT INTO d4 VALUES (7, 7)');
        await conn.query('ALTER TABLE d4 RENAME TO d5');
        // Renamed onto a name whose table was dropped (the target keeps that table, emptied).
        await conn.query('DROP TABLE d');
        await conn.query('RENAME TABLE d5 TO d');
        await conn.query('INSERT INTO d VALUES (8, 8)');
        run = startPipeline(db, targetUrl);
        r = await settle(db, targetUrl, 'd', ['id', 'v']);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(8);
        for (const gone of ['d2', 'd3', 'd4', 'd5']) expect(await targetHas(targetUrl, db, gone)).toBe(false);
        expect(run.failure()).toBeNull();
      } finally {
        await run.stop();
        await conn.end();
      }
    });

    it(`to ${kind}: columns added with defaults to a table renamed before the ALTER is read: existing rows read the defaults (behind and streaming)`, async () => {
      const db = `follow_add_rename_${kind}`;
      await myServer.createDatabase(db);
      const conn = await session(myServer, db);
      await conn.query('CREATE TABLE r (id INT PRIMARY KEY, v INT)');
      await conn.query('INSERT INTO r VALUES (1, 1), (2, 2), (3, 3)');
      const targetUrl = await targetFor(kind, db);
      let run = startPipeline(db, targetUrl);
      try {
        expect((await settle(db, targetUrl, 'r', ['id', 'v'])).target?.rows).toBe(3);
        // Stopped and behind: the ALTER is read when the catalog knows the table only under its new name.
        await run.stop();
        await conn.query("ALTER TABLE r ADD COLUMN c INT NOT NULL DEFAULT 5, ADD COLUMN s VARCHAR(5) DEFAULT 'x'");
        await conn.query('RENAME TABLE r TO r2');
        await conn.query('INSERT INTO r2 (id, v) VALUES (4, 4)');
        run = startPipeline(db, targetUrl);
        let r = await settle(db, targetUrl, 'r2', ['id', 'v', 'c', 's']);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(4);
        // Streaming, right after each other.
        await conn.query('ALTER TABLE r2 ADD COLUMN e INT DEFAULT 9');
        await conn.query('RENAME TABLE r2 TO r3');
        await conn.query('INSERT INTO r3 (id, v) VALUES (5, 5)');
        r = await settle(db, targetUrl, 'r3', ['id', 'v', 'c', 's', 'e']);
        expect(r.target).toEqual(r.source);
        // Stopped and behind, a row written between the ALTER and the RENAME: it brings the column to the target
        // before the catalog can be read under the table's name, so the table is copied again (under its new name).
        await run.stop();
        await conn.query('ALTER TABLE r3 ADD COLUMN f INT DEFAULT 7');
        await conn.query('INSERT INTO r3 (id, v) VALUES (6, 6)');
        await conn.query('RENAME TABLE r3 TO r4');
        run = startPipeline(db, targetUrl);
        r = await settle(db, targetUrl, 'r4', ['id', 'v', 'c', 's', 'e', 'f']);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(6);
        expect(run.failure()).toBeNull();
      } finally {
        await run.stop();
        await conn.end();
      }
    });

    it(`to ${kind}: a column added with a default changed by a later SET DEFAULT before the ADD is read: existing rows read the default of the ADD`, async () => {
      const db = `follow_add_setdef_${kind}`;
      await myServer.createDatabase(db);
      const conn = await session(myServer, db);
      await conn.query('CREATE TABLE a (id INT PRIMARY KEY, v INT)');
      await conn.query('INSERT INTO a VALUES (1, 1), (2, 2), (3, 3)');
      const targetUrl = await targetFor(kind, db);
      let run = startPipeline(db, targetUrl);
      try {
        expect((await settle(db, targetUrl, 'a', ['id', 'v'])).target?.rows).toBe(3);
        // Stopped and behind: when the ADD is read, the catalog already has the later default.
        await run.stop();
        await conn.query(
          "ALTER TABLE a ADD COLUMN c INT DEFAULT 5, ADD COLUMN s VARCHAR(5) DEFAULT 'x', ADD COLUMN n INT",
        );
        await conn.query(
          "ALTER TABLE a ALTER COLUMN c SET DEFAULT 9, ALTER COLUMN s SET DEFAULT 'y', ALTER COLUMN n SET DEFAULT 3",
        );
        await conn.query('INSERT INTO a (id, v) VALUES (4, 4)');
        run = startPipeline(db, targetUrl);
        let r = await settle(db, targetUrl, 'a', ['id', 'v', 'c', 's', 'n']);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(4);
        // Streaming, right after each other.
        await conn.query('ALTER TABLE a ADD COLUMN e INT NOT NULL DEFAULT 7');
        await conn.query('ALTER TABLE a ALTER COLUMN e SET DEFAULT 8');
        await conn.query('INSERT INTO a (id, v) VALUES (5, 5)');
        r = await settle(db, targetUrl, 'a', ['id', 'v', 'c', 's', 'n', 'e']);
        expect(r.target).toEqual(r.source);
        expect(run.failure()).toBeNull();
      } finally {
        await run.stop();
        await conn.end();
      }
    });

    it(`to ${kind}: applies DROP COLUMN alone: the target drops its column, NOT NULL or not (streaming and behind)`, async () => {
      const db = `follow_dropcol_${kind}`;
      await myServer.createDatabase(db);
      const conn = await session(myServer, db);
      await conn.query('CREATE TABLE t (id INT PRIMARY KEY, v INT, b INT NOT NULL, c INT NOT NULL)');
      await conn.query('INSERT INTO t VALUES (1, 1, 1, 1), (2, 2, 2, 2)');
      const targetUrl = await targetFor(kind, db);
      let run = startPipeline(db, targetUrl);
      try {
        expect((await settle(db, targetUrl, 't', ['id', 'v', 'b', 'c'])).target?.rows).toBe(2);
        // The target columns NOT NULL without a default, as a target made by hand (or from MySQL 9.7) may have them.
        if (kind === 'postgres') {
          const client = new pg.Client({ connectionString: targetUrl });
          await client.connect();
          await client.query(`alter table "${db}".t alter column b set not null, alter column c set not null`);
          await client.end();
        } else {
          const t = await session(myServer, targetUrl);
          await t.query('ALTER TABLE t MODIFY b INT NOT NULL, MODIFY c INT NOT NULL');
          await t.end();
        }
        // Streaming.
        await conn.query('ALTER TABLE t DROP COLUMN b');
        await conn.query('INSERT INTO t VALUES (3, 3, 3)');
        let r = await settle(db, targetUrl, 't', ['id', 'v', 'c']);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(3);
        // Stopped and behind.
        await run.stop();
        await conn.query('ALTER TABLE t DROP COLUMN c');
        await conn.query('INSERT INTO t VALUES (4, 4)');
        run = startPipeline(db, targetUrl);
        r = await settle(db, targetUrl, 't', ['id', 'v']);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(4);
        const columns = await (targetUrl.includes('://')
          ? (async () => {
              const client = new pg.Client({ connectionString: targetUrl });
              await client.connect();
              const { rows } = await client.query(
                "select column_name as name from information_schema.columns where table_schema = $1 and table_name = 't' order by 1",
                [db],
              );
              await client.end();
              return rows.map((x) => x.name as string);
            })()
          : (async () => {
              const t = await session(myServer, targetUrl);
              const [rows] = await t.query(
                "SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 't' ORDER BY 1",
                [targetUrl],
              );
              await t.end();
              return (rows as { name: string }[]).map((x) => x.name);
            })());
        expect(columns).toEqual(['id', 'v']);
        expect(run.failure()).toBeNull();
      } finally {
        await run.stop();
        await conn.end();
      }
    });

    it(`to ${kind}: follows column renames (RENAME COLUMN, CHANGE; streaming and behind)`, async () => {
      const db = `follow_colrename_${kind}`;
      await myServer.createDatabase(db);
      const conn = await session(myServer, db);
      await conn.query('CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT NOT NULL)');
      await conn.query('INSERT INTO t VALUES (1, 1, 10), (2, 2, 20)');
      const targetUrl = await targetFor(kind, db);
      let run = startPipeline(db, targetUrl);
      try {
        expect((await settle(db, targetUrl, 't', ['id', 'a', 'b'])).target?.rows).toBe(2);
        // Streaming: a rename, then a swap.
        await conn.query('ALTER TABLE t RENAME COLUMN a TO c');
        await conn.query('INSERT INTO t VALUES (3, 3, 30)');
        let r = await settle(db, targetUrl, 't', ['id', 'c', 'b']);
        expect(r.target).toEqual(r.source);
        await conn.query('ALTER TABLE t CHANGE c b BIGINT, CHANGE b c INT NOT NULL');
        await conn.query('INSERT INTO t VALUES (4, 4, 40)');
        r = await settle(db, targetUrl, 't', ['id', 'b', 'c']);
        expect(r.target).toEqual(r.source);
        // Stopped and behind: renamed twice, no rows in between; a column added with a default and renamed.
        await run.stop();
        await conn.query('ALTER TABLE t RENAME COLUMN b TO x');
        await conn.query('ALTER TABLE t ADD COLUMN d INT NOT NULL DEFAULT 7');
        await conn.query('ALTER TABLE t RENAME COLUMN x TO y, RENAME COLUMN d TO e');
        await conn.query('INSERT INTO t VALUES (5, 50, 5, 8)');
        run = startPipeline(db, targetUrl);
        r = await settle(db, targetUrl, 't', ['id', 'y', 'c', 'e']);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(5);
        expect(run.failure()).toBeNull();
      } finally {
        await run.stop();
        await conn.end();
      }
    });

    it(`to ${kind}: picks up tables created in a replicated database (CREATE TABLE, CREATE TABLE ... SELECT; streaming and behind)`, async () => {
      const db = `follow_create_${kind}`;
      await myServer.createDatabase(db);
      const conn = await session(myServer, db);
      await conn.query('CREATE TABLE a (id INT PRIMARY KEY, v INT)');
      await conn.query('INSERT INTO a VALUES (1, 1)');
      const targetUrl = await targetFor(kind, db);
      let run = startPipeline(db, targetUrl);
      try {
        expect((await settle(db, targetUrl, 'a', ['id', 'v'])).target?.rows).toBe(1);
        // Streaming.
        await conn.query('CREATE TABLE n (id INT PRIMARY KEY, v INT)');
        await conn.query('INSERT INTO n VALUES (1, 10), (2, 20)');
        await conn.query('CREATE TABLE m (id INT PRIMARY KEY, v INT) SELECT id, v FROM n');
        await conn.query('UPDATE n SET v = 21 WHERE id = 2');
        for (const t of ['n', 'm']) {
          const r = await settle(db, targetUrl, t, ['id', 'v']);
          expect(r.target).toEqual(r.source);
          expect(r.source.rows).toBe(2);
        }
        // Stopped and behind.
        await run.stop();
        await conn.query('CREATE TABLE n2 (id INT PRIMARY KEY, v INT)');
        await conn.query('INSERT INTO n2 VALUES (1, 1), (2, 2), (3, 3)');
        await conn.query('DELETE FROM n2 WHERE id = 2');
        run = startPipeline(db, targetUrl);
        const r = await settle(db, targetUrl, 'n2', ['id', 'v']);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(2);
        expect(run.failure()).toBeNull();
      } finally {
        await run.stop();
        await conn.end();
      }
    });

    it(`to ${kind}: a table renamed out of the replicated ones is emptied; one renamed in is copied`, async () => {
      const db = `follow_rename_out_${kind}`;
      await myServer.createDatabase(db);
      await myServer.createDatabase(`${db}_x`);
      const conn = await session(myServer, db);
      await conn.query('CREATE TABLE d (id INT PRIMARY KEY, v INT)');
      await conn.query('INSERT INTO d VALUES (1, 1), (2, 2)');
      const targetUrl = await targetFor(kind, db);
      const run = startPipeline(db, targetUrl);
      try {
        expect((await settle(db, targetUrl, 'd', ['id', 'v'])).target?.rows).toBe(2);
        await conn.query(`RENAME TABLE d TO ${db}_x.d`);
        await conn.query('CREATE TABLE e (id INT PRIMARY KEY, v INT)');
        await conn.query('INSERT INTO e VALUES (1, 1)');
        await settle(db, targetUrl, 'e', ['id', 'v']);
        const emptied = await waitFor(async () => {
          const t = await (targetUrl.includes('://')
            ? pgDigest(targetUrl, `"${db}"."d"`, ['id', 'v'])
            : mysqlDigest(myServer, targetUrl, 'd', ['id', 'v']));
          return t.rows === 0;
        });
        expect(emptied).toBe(true);
        // Renamed back in under another name, with rows written to it outside: copied while streaming.
        await conn.query(`INSERT INTO ${db}_x.d VALUES (3, 3)`);
        await conn.query(`RENAME TABLE ${db}_x.d TO d2`);
        await conn.query('INSERT INTO d2 VALUES (4, 4)');
        await conn.query('UPDATE d2 SET v = 10 WHERE id = 1');
        const r = await settle(db, targetUrl, 'd2', ['id', 'v']);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(4);
        expect(run.ctx.logs.some((l) => l.event === 'incremental_snapshot_requested' && l.table === `${db}.d2`)).toBe(
          true,
        );
        // Renamed out and in again while the copy may still run: the copy follows the table to its new name.
        await conn.query(`RENAME TABLE d2 TO ${db}_x.d3`);
        await conn.query(`RENAME TABLE ${db}_x.d3 TO d4, d4 TO d5`);
        const again = await settle(db, targetUrl, 'd5', ['id', 'v']);
        expect(again.target).toEqual(again.source);
        expect(again.source.rows).toBe(4);
        expect(run.failure()).toBeNull();
      } finally {
        await run.stop();
        await conn.end();
      }
    });

    it(`to ${kind}: applies DROP TABLE: a table re-created under the same name holds only its new rows (streaming and behind)`, async () => {
      const db = `follow_drop_${kind}`;
      await myServer.createDatabase(db);
      const conn = await session(myServer, db);
      await conn.query('CREATE TABLE d (id INT PRIMARY KEY, v INT)');
      await conn.query('INSERT INTO d VALUES (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)');
      const targetUrl = await targetFor(kind, db);
      let run = startPipeline(db, targetUrl);
      try {
        expect((await settle(db, targetUrl, 'd', ['id', 'v'])).target?.rows).toBe(5);
        // Streaming.
        await conn.query('DROP TABLE d');
        await conn.query('CREATE TABLE d (id INT PRIMARY KEY, v INT)');
        await conn.query('INSERT INTO d VALUES (1, 100)');
        let r = await settle(db, targetUrl, 'd', ['id', 'v']);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(1);
        // Stopped and behind.
        await run.stop();
        await conn.query('INSERT INTO d VALUES (2, 200), (3, 300)');
        await conn.query('DROP TABLE d');
        await conn.query('CREATE TABLE d (id INT PRIMARY KEY, v INT)');
        await conn.query('INSERT INTO d VALUES (7, 700)');
        run = startPipeline(db, targetUrl);
        r = await settle(db, targetUrl, 'd', ['id', 'v']);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(1);
      } finally {
        await run.stop();
        await conn.end();
      }
    });

    it(`to ${kind}: DROP TABLE and CREATE TABLE with another key: the emptied target table is created again with the new key (streaming and behind)`, async () => {
      for (const mode of ['streaming', 'behind'] as const) {
        const db = `follow_rekey_${mode === 'streaming' ? 's' : 'b'}_${kind}`;
        await myServer.createDatabase(db);
        const conn = await session(myServer, db);
        await conn.query('CREATE TABLE d (id INT PRIMARY KEY, v INT)');
        await conn.query('INSERT INTO d VALUES (1, 1), (2, 2), (3, 3)');
        const targetUrl = await targetFor(kind, db);
        let run = startPipeline(db, targetUrl);
        try {
          expect((await settle(db, targetUrl, 'd', ['id', 'v'])).target?.rows).toBe(3);
          if (mode === 'behind') await run.stop();
          await conn.query('INSERT INTO d VALUES (4, 4)');
          await conn.query('DROP TABLE d');
          await conn.query('CREATE TABLE d (k INT PRIMARY KEY, id INT NOT NULL, v INT)');
          await conn.query('INSERT INTO d VALUES (20, 2, 200), (90, 9, 900)');
          if (mode === 'behind') run = startPipeline(db, targetUrl);
          await conn.query('UPDATE d SET v = 901 WHERE k = 90');
          const r = await settle(db, targetUrl, 'd', ['k', 'id', 'v']);
          expect(r.target).toEqual(r.source);
          expect(r.source.rows).toBe(2);
          expect(run.ctx.logs.filter((l) => l.event === 'target_table_recreated')).toHaveLength(1);
          expect(run.failure()).toBeNull();
        } finally {
          await run.stop();
          await conn.end();
        }
      }
    });

    it(`to ${kind}: applies DROP COLUMN then ADD COLUMN of the same name: existing rows read the new default (streaming and behind)`, async () => {
      const db = `follow_readd_${kind}`;
      await myServer.createDatabase(db);
      const conn = await session(myServer, db);
      await conn.query('CREATE TABLE t (id INT PRIMARY KEY, b VARCHAR(10))');
      await conn.query("INSERT INTO t VALUES (1, '1'), (2, '2')");
      const targetUrl = await targetFor(kind, db);
      let run = startPipeline(db, targetUrl);
      try {
        expect((await settle(db, targetUrl, 't', ['id', 'b'])).target?.rows).toBe(2);
        // Streaming, the type changing.
        await conn.query('ALTER TABLE t DROP COLUMN b');
        await conn.query('ALTER TABLE t ADD COLUMN b INT NOT NULL DEFAULT 77');
        await conn.query('INSERT INTO t VALUES (3, 5)');
        let r = await settle(db, targetUrl, 't', ['id', 'b']);
        expect(r.target).toEqual(r.source);
        // Stopped and behind, the type the same.
        await run.stop();
        await conn.query('ALTER TABLE t DROP COLUMN b');
        await conn.query('ALTER TABLE t ADD COLUMN b INT NOT NULL DEFAULT 78');
        await conn.query('INSERT INTO t VALUES (5, 6)');
        run = startPipeline(db, targetUrl);
        r = await settle(db, targetUrl, 't', ['id', 'b']);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(4);
        expect(run.failure()).toBeNull();
      } finally {
        await run.stop();
        await conn.end();
      }
    });

    it(`to ${kind}: TRUNCATE, rows, then ADD COLUMN at a position (FIRST, AFTER): the target is emptied and the rows after read the defaults (streaming and behind)`, async () => {
      for (const mode of ['streaming', 'behind'] as const) {
        const db = `follow_trunc_${mode === 'streaming' ? 's' : 'b'}_${kind}`;
        await myServer.createDatabase(db);
        const conn = await session(myServer, db);
        await conn.query('CREATE TABLE p (id INT PRIMARY KEY, v INT)');
        await conn.query('INSERT INTO p VALUES (1, 1), (2, 2), (3, 3)');
        const targetUrl = await targetFor(kind, db);
        let run = startPipeline(db, targetUrl);
        try {
          expect((await settle(db, targetUrl, 'p', ['id', 'v'])).target?.rows).toBe(3);
          if (mode === 'behind') await run.stop();
          await conn.query('TRUNCATE TABLE p');
          await conn.query('INSERT INTO p VALUES (4, 4), (5, 5)');
          await conn.query(
            'ALTER TABLE p ADD COLUMN a INT NOT NULL DEFAULT 7 FIRST, ADD COLUMN b INT DEFAULT 8 AFTER id',
          );
          await conn.query('INSERT INTO p (id, v) VALUES (6, 6)');
          if (mode === 'behind') run = startPipeline(db, targetUrl);
          const r = await settle(db, targetUrl, 'p', ['id', 'v', 'a', 'b']);
          expect(r.target, mode).toEqual(r.source);
          expect(r.source.rows).toBe(3);
          expect(run.failure()).toBeNull();
        } finally {
          await run.stop();
          await conn.end();
        }
      }
    });

    it(`to ${kind}: DROP COLUMN then ADD COLUMN of the same name with a non-constant default: the table is copied again, never the old values (streaming and behind)`, async () => {
      const db = `follow_readd_volatile_${kind}`;
      await myServer.createDatabase(db);
      const conn = await session(myServer, db);
      await conn.query('CREATE TABLE t (id INT PRIMARY KEY, b DATETIME(6))');
      await conn.query("INSERT INTO t VALUES (1, '2001-01-01 01:01:01'), (2, '2002-02-02 02:02:02')");
      const targetUrl = await targetFor(kind, db);
      /** Column b of each row as microseconds since 1970 (null: NULL), by id, computed by each database. */
      const sourceB = async (): Promise<Record<number, string | null>> => {
        const [rows] = await conn.query(
          "SELECT id, CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', b) AS CHAR) AS us FROM t ORDER BY id",
        );
        return Object.fromEntries((rows as { id: number; us: string | null }[]).map((r) => [r.id, r.us]));
      };
      const targetB = async (): Promise<Record<number, string | null>> => {
        if (targetUrl.includes('://')) {
          const client = new pg.Client({ connectionString: targetUrl });
          await client.connect();
          try {
            const { rows } = await client.query(
              `select id, (extract(epoch from b) * 1000000)::bigint::text as us from "${db}".t order by id`,
            );
            return Object.fromEntries(rows.map((r) => [r.id, r.us]));
          } finally {
            await client.end();
          }
        }
        const t = await session(myServer, targetUrl);
        try {
          const [rows] = await t.query(
            "SELECT id, CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', b) AS CHAR) AS us FROM t ORDER BY id",
          );
          return Object.fromEntries((rows as { id: number; us: string | null }[]).map((r) => [r.id, r.us]));
        } finally {
          await t.end();
        }
      };
      const sameB = async () => JSON.stringify(await targetB().catch(() => null)) === JSON.stringify(await sourceB());
      let run = startPipeline(db, targetUrl);
      try {
        expect((await settle(db, targetUrl, 't', ['id'])).target?.rows).toBe(2);
        expect(await waitFor(sameB)).toBe(true);
        const before = await sourceB();
        // Streaming. The existing rows got the time of the ALTER at the source, which the binlog does not carry: the
        // table is copied again, so they read that time at the target too, never the dropped column's values.
        await conn.query('ALTER TABLE t DROP COLUMN b');
        await conn.query('ALTER TABLE t ADD COLUMN b DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6)');
        await conn.query("INSERT INTO t VALUES (3, '2033-03-03 03:03:03')");
        expect(await waitFor(sameB)).toBe(true);
        const streaming = await sourceB();
        expect(Object.keys(streaming)).toHaveLength(3);
        expect([streaming[1], streaming[2]]).not.toContain(null);
        expect(streaming[1]).not.toBe(before[1]);
        // Stopped and behind.
        await run.stop();
        await conn.query('ALTER TABLE t DROP COLUMN b');
        await conn.query('ALTER TABLE t ADD COLUMN b DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6)');
        await conn.query("INSERT INTO t VALUES (4, '2044-04-04 04:04:04')");
        run = startPipeline(db, targetUrl);
        expect(await waitFor(sameB)).toBe(true);
        const behind = await sourceB();
        expect(Object.keys(behind)).toHaveLength(4);
        expect(behind[3]).not.toBe(streaming[3]);
        const copies = run.ctx.logs.filter((l) => l.event === 'incremental_snapshot_requested');
        expect(copies.map((l) => [l.table, l.column])).toEqual([[`${db}.t`, 'b']]);
        expect(run.ctx.logs.filter((l) => l.event === 'source_column_added_with_volatile_default')).toEqual([]);
        expect(run.failure()).toBeNull();
      } finally {
        await run.stop();
        await conn.end();
      }
    });

    for (const [n, cell] of RETYPE_CELLS.entries()) {
      it(`to ${kind}: MODIFY ${cell.name}: ${cell.copies ? 'the table is copied again' : 'the target column is widened'} (streaming and behind)`, async () => {
        const db = `follow_retype_${n}_${kind}`;
        await myServer.createDatabase(db);
        const conn = await session(myServer, db);
        // One table changed while streaming (s), one while the pipeline is stopped (b).
        for (const t of ['s', 'b']) {
          await conn.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, c ${cell.from})`);
          await conn.query(`INSERT INTO ${t} VALUES ${cell.values.map((v, i) => `(${i + 1}, ${v})`).join(', ')}`);
        }
        const cols = ['id', cell.digest ?? 'c'];
        /** The existing rows' values of c, as the source prints them in the digest's form. */
        const existingValues = async (t: string): Promise<string> => {
          const c = cell.digest ?? 'c';
          const [rows] = await conn.query(
            `SELECT GROUP_CONCAT(CAST(${typeof c === 'string' ? c : c.mysql} AS CHAR) ORDER BY id) AS v FROM ${t} WHERE id < 100`,
          );
          return String((rows as { v: unknown }[])[0]!.v);
        };
        const targetUrl = await targetFor(kind, db);
        const copies = (run: { ctx: { logs: Record<string, unknown>[] } }) =>
          run.ctx.logs.filter((l) => l.event === 'incremental_snapshot_requested').map((l) => [l.table, l.column]);
        let run = startPipeline(db, targetUrl);
        try {
          for (const t of ['s', 'b']) {
            const r = await settle(db, targetUrl, t, cols);
            expect(r.target).toEqual(r.source);
            expect(r.source.rows).toBe(cell.values.length);
          }
          const valuesBefore = await existingValues('s');
          await conn.query(`ALTER TABLE s MODIFY c ${cell.to}`);
          await conn.query(`INSERT INTO s VALUES (100, ${cell.after})`);
          let r = await settle(db, targetUrl, 's', cols);
          expect(r.target).toEqual(r.source);
          expect(run.failure()).toBeNull();
          expect(copies(run)).toEqual(cell.copies ? [[`${db}.s`, 'c']] : []);
          await run.stop();
          // Stopped and behind: the catalog already shows the new type when the pipeline reads the statement.
          await conn.query(`ALTER TABLE b MODIFY c ${cell.to}`);
          await conn.query(`INSERT INTO b VALUES (100, ${cell.after})`);
          await conn.query('UPDATE b SET c = NULL WHERE id = 1');
          run = startPipeline(db, targetUrl);
          r = await settle(db, targetUrl, 'b', cols);
          expect(r.target).toEqual(r.source);
          expect(r.source.rows).toBe(cell.values.length + 1);
          expect(run.failure()).toBeNull();
          expect(copies(run)).toEqual(cell.copies ? [[`${db}.b`, 'c']] : []);
          // The cell is what it says: the change rewrote the existing rows' values at the source, or kept them.
          expect((await existingValues('s')) !== valuesBefore).toBe(cell.copies && !cell.sameText);
        } finally {
          await run.stop();
          await conn.end();
        }
      });
    }

    it(`to ${kind}: CHANGE renaming and retyping a column, and a rename while its copy is pending (streaming and behind)`, async () => {
      const db = `follow_retype_change_${kind}`;
      await myServer.createDatabase(db);
      const conn = await session(myServer, db);
      for (const t of ['s', 'b']) {
        await conn.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, c DECIMAL(10,3))`);
        await conn.query(`INSERT INTO ${t} VALUES (1, 1.236), (2, -2.251), (3, 3.449)`);
      }
      const targetUrl = await targetFor(kind, db);
      const c2 = { mysql: 'CAST(ROUND(c2 * 1000) AS SIGNED)', pg: 'round(c2 * 1000)::bigint' };
      let run = startPipeline(db, targetUrl);
      try {
        for (const t of ['s', 'b']) expect((await settle(db, targetUrl, t, ['id', 'c'])).target?.rows).toBe(3);
        await conn.query('ALTER TABLE s CHANGE c c2 DECIMAL(10,1)');
        await conn.query('INSERT INTO s VALUES (4, 4.4)');
        let r = await settle(db, targetUrl, 's', ['id', c2]);
        expect(r.target).toEqual(r.source);
        await run.stop();
        // Behind: retyped, then renamed before the copy the first statement asks for has begun.
        await conn.query('ALTER TABLE b MODIFY c DECIMAL(10,1)');
        await conn.query('ALTER TABLE b RENAME COLUMN c TO c2');
        await conn.query('INSERT INTO b VALUES (4, 4.4)');
        run = startPipeline(db, targetUrl);
        r = await settle(db, targetUrl, 'b', ['id', c2]);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(4);
        expect(run.failure()).toBeNull();
      } finally {
        await run.stop();
        await conn.end();
      }
    });

    it(`to ${kind}: with snapshot: never, a type change that rewrote existing rows warns naming the table, the column and the fix`, async () => {
      const db = `follow_retype_never_${kind}`;
      await myServer.createDatabase(db);
      const conn = await session(myServer, db);
      await conn.query('CREATE TABLE t (id INT PRIMARY KEY, c DATETIME(6))');
      const targetUrl = await targetFor(kind, db);
      const run = startPipeline(db, targetUrl, { snapshot: 'never' });
      try {
        await waitFor(() => run.ctx.logs.some((l) => l.event === 'mysql_source_opened'));
        await conn.query("INSERT INTO t VALUES (1, '2001-01-01 01:01:01.500000')");
        expect((await settle(db, targetUrl, 't', ['id', MICROS])).target?.rows).toBe(1);
        await conn.query('ALTER TABLE t MODIFY c DATETIME');
        await conn.query("INSERT INTO t VALUES (2, '2002-02-02 02:02:02')");
        const warned = await waitFor(() => run.ctx.logs.find((l) => l.event === 'source_column_retyped_not_copied'));
        expect(warned).toMatchObject({ table: `${db}.t`, column: 'c', from: 'datetime(6)', to: 'datetime' });
        expect(String(warned?.hint)).toContain(`tributary snapshot --pipeline ${db} --table ${db}.t`);
        expect(run.ctx.logs.filter((l) => l.event === 'incremental_snapshot_requested')).toEqual([]);
        expect(run.failure()).toBeNull();
      } finally {
        await run.stop();
        await conn.end();
      }
    });

    it(`to ${kind}: follows ENUM and SET labels added at the end (streaming and behind)`, async () => {
      const db = `follow_enum_${kind}`;
      await myServer.createDatabase(db);
      const conn = await session(myServer, db);
      await conn.query("CREATE TABLE t (id INT PRIMARY KEY, e ENUM('a','b'), s SET('x','y'))");
      await conn.query("INSERT INTO t VALUES (1, 'a', 'x'), (2, 'b', 'x,y')");
      const targetUrl = await targetFor(kind, db);
      let run = startPipeline(db, targetUrl);
      const cols = ['id', 'e', 's'];
      try {
        expect((await settle(db, targetUrl, 't', cols)).target?.rows).toBe(2);
        // Streaming.
        await conn.query("ALTER TABLE t MODIFY e ENUM('a','b','c'), MODIFY s SET('x','y','z')");
        await conn.query("INSERT INTO t VALUES (3, 'c', 'x,z')");
        let r = await settle(db, targetUrl, 't', cols);
        expect(r.target).toEqual(r.source);
        // Stopped and behind.
        await run.stop();
        await conn.query("ALTER TABLE t MODIFY e ENUM('a','b','c','d'), MODIFY s SET('x','y','z','w')");
        await conn.query("INSERT INTO t VALUES (4, 'd', 'w,y')");
        await conn.query("UPDATE t SET e = 'c', s = 'z,w' WHERE id = 1");
        run = startPipeline(db, targetUrl);
        r = await settle(db, targetUrl, 't', cols);
        expect(r.target).toEqual(r.source);
        expect(r.source.rows).toBe(4);
        expect(run.failure()).toBeNull();
      } finally {
        await run.stop();
        await conn.end();
      }
    });
  }
});
