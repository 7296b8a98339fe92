import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointTableOf } from '../../connectors/mysql/sink/checkpoint-location.ts';
import { MysqlCheckpointStore } from '../../connectors/mysql/sink/checkpoint-store.ts';
import { mysqlTargetConfig } from '../../connectors/mysql/sink/config.ts';
import { MysqlTarget } from '../../connectors/mysql/sink/target.ts';
import { PostgresCheckpointStore } from '../../connectors/postgres/sink/checkpoint-store.ts';
import { postgresTargetConfig } from '../../connectors/postgres/sink/config.ts';
import { PostgresTarget } from '../../connectors/postgres/sink/target.ts';
import { requestPostgresSnapshot } from '../../connectors/postgres/source/snapshot-request.ts';
import { PostgresSource } from '../../connectors/postgres/source/source.ts';
import { teardownPostgresSource } from '../../connectors/postgres/source/teardown.ts';
import type { TransactionalTarget } from '../../src/core/target.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { testContext } from '../fixtures/change-events.ts';
import { type MysqlServer, withDatabase } from '../harness/mariadb.ts';
import { type MysqlFlavorUnderTest, mysqlFlavors } from '../harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';

/**
 * Schema changes at a PostgreSQL source, followed by identity (attribute numbers), into a PostgreSQL target and the
 * MySQL target on each MySQL flavour (MariaDB, MySQL 9.7; TRIBUTARY_TEST_MYSQL_FLAVORS picks them): while the
 * pipeline streams, and while it is stopped and behind (every change made before it restarts). Judged by per-row
 * SHA-256 digests computed inside each database over the source's columns, and by the target's column names. One server of
 * each kind serves the whole file; a MySQL flavour's server starts with its first cell.
 */

const BATCH = { max_events: 1000, max_bytes: 4 * 1024 * 1024, max_wait_ms: 20 };
type Mode = 'streaming' | 'behind';
type MysqlKind = MysqlFlavorUnderTest['name'];
type TargetKind = 'postgres' | MysqlKind;
type Ctx = ReturnType<typeof testContext>;

const FLAVORS = mysqlFlavors();
const MYSQL_TARGETS: MysqlKind[] = FLAVORS.map((f) => f.name);
const TARGETS: TargetKind[] = ['postgres', ...MYSQL_TARGETS];
/** Each target's part of a cell's database names (the source databases of all cells share one server). */
const TARGET_TAG: Record<TargetKind, string> = { postgres: 'pg', mariadb: 'ma', mysql: 'my', external: 'ex' };

let pgServer: PgServer;
const myServers = new Map<MysqlKind, Promise<MysqlServer>>();

/** The server of a MySQL flavour, started on first use and kept for the rest of the file. */
function mysqlServer(kind: MysqlKind): Promise<MysqlServer> {
  let server = myServers.get(kind);
  if (!server) {
    const flavor = FLAVORS.find((f) => f.name === kind);
    if (!flavor) throw new Error(`MySQL flavour ${kind} is not under test`);
    server = flavor.start();
    myServers.set(kind, server);
  }
  return server;
}

beforeAll(async () => {
  pgServer = await startPostgres();
});
afterAll(async () => {
  await Promise.all([
    pgServer?.stop(),
    ...[...myServers.values()].map((s) => s.then((server) => server.stop()).catch(() => undefined)),
  ]);
});

interface Cell {
  id: string;
  sourceUrl: string;
  target: TargetKind;
  /** PostgreSQL target database URL, or MySQL database name. */
  targetDb: string;
  /** The MySQL target's server (a MySQL target only). */
  my?: MysqlServer;
}

/** The MySQL target's server of a cell (throws for a PostgreSQL target). */
function myServerOf(cell: Cell): MysqlServer {
  if (!cell.my) throw new Error(`cell ${cell.id} has no MySQL target`);
  return cell.my;
}

async function sourceColumns(cell: Cell, table = 't'): Promise<string[]> {
  const rows = await pgServer.query<{ name: string }>(
    cell.id,
    `select attname as name from pg_attribute where attrelid = '${table}'::regclass and attnum > 0 and not attisdropped order by attnum`,
  );
  return rows.map((r) => r.name);
}

async function targetColumns(cell: Cell, table = 't'): Promise<string[]> {
  if (cell.target === 'postgres') {
    const client = new pg.Client({ connectionString: cell.targetDb });
    await client.connect();
    try {
      return (
        await client.query<{ name: string }>(
          `select attname as name from pg_attribute where attrelid = to_regclass('public.${table}') and attnum > 0 and not attisdropped order by attnum`,
        )
      ).rows.map((r) => r.name);
    } finally {
      await client.end();
    }
  }
  const rows = await myServerOf(cell).query<{ name: string }>(
    'SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [cell.targetDb, table],
  );
  return rows.map((r) => r.name);
}

/**
 * One SHA-256 per row over the given columns (NULL as ~), ordered by id, computed by the database itself (SHA-256:
 * MySQL 9 has no MD5()).
 */
async function rowHashes(cell: Cell, side: 'source' | 'target', columns: string[], table = 't'): Promise<string[]> {
  if (side === 'source' || cell.target === 'postgres') {
    const expr = columns.map((c) => `coalesce(${c}::text, '~')`).join(', ');
    const sql = `select encode(sha256(convert_to(concat_ws('|', ${expr}), 'UTF8')), 'hex') as h from ${table} order by id`;
    if (side === 'source') return (await pgServer.query<{ h: string }>(cell.id, sql)).map((r) => r.h);
    const client = new pg.Client({ connectionString: cell.targetDb });
    await client.connect();
    try {
      return (await client.query<{ h: string }>(sql)).rows.map((r) => r.h);
    } finally {
      await client.end();
    }
  }
  const expr = columns.map((c) => `COALESCE(${c}, '~')`).join(', ');
  const rows = await myServerOf(cell).query<{ h: string }>(
    `SELECT SHA2(CONCAT_WS('|', ${expr}), 256) AS h FROM ${table} ORDER BY id`,
    [],
    cell.targetDb,
  );
  return rows.map((r) => r.h);
}

/** Target columns equal the source's, and every row hashes the same on both sides. */
async function compare(cell: Cell, table = 't'): Promise<{ equal: boolean; detail: unknown }> {
  const columns = await sourceColumns(cell, table);
  const have = await targetColumns(cell, table);
  if (JSON.stringify([...have].sort()) !== JSON.stringify([...columns].sort()))
    return { equal: false, detail: { sourceColumns: columns, targetColumns: have } };
  const [source, target] = await Promise.all([
    rowHashes(cell, 'source', columns, table),
    rowHashes(cell, 'target', columns, table),
  ]);
  return { equal: JSON.stringify(source) === JSON.stringify(target), detail: { source, target } };
}

async function waitEqual(cell: Cell, ctx: Ctx, timeoutMs = 60_000, table = 't'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const result = await compare(cell, table).catch((err: Error) => ({ equal: false, detail: err.message }));
    if (result.equal) return;
    last = result.detail;
    if (Date.now() > deadline) {
      const problems = ctx.logs.filter((l) => Number(l.level) >= 40).slice(-3);
      throw new Error(`target differs from source: ${JSON.stringify(last)} ${JSON.stringify(problems)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function startPipeline(
  cell: Cell,
  ctx: Ctx,
  tables: string[] | null = ['public.t'],
  sourceOptions: { read_ahead_events?: number; snapshot_chunk_rows?: number } = {},
) {
  const makeTarget = (): TransactionalTarget =>
    cell.target === 'postgres'
      ? new PostgresTarget(postgresTargetConfig.parse({ type: 'postgres', url: cell.targetDb }), ctx)
      : new MysqlTarget(
          mysqlTargetConfig.parse({ type: 'mysql', url: myServerOf(cell).url(), database: cell.targetDb }),
          ctx,
        );
  const pipeline = new Pipeline({
    name: cell.id,
    createParts: () => {
      const target = makeTarget();
      const source = new PostgresSource(
        {
          type: 'postgres',
          url: cell.sourceUrl,
          ...(tables ? { tables } : {}),
          heartbeat_interval_ms: 500,
          table_check_interval_ms: 300,
          ...sourceOptions,
        },
        ctx,
        { batch: BATCH },
      );
      return { source, target };
    },
    maxInFlight: 4,
    maxInFlightBytes: 64 * 1024 * 1024,
    initialBackoffMs: 100,
    maxBackoffMs: 1000,
    logger: ctx.logger,
  });
  const running = pipeline.run();
  running.catch(() => undefined);
  return {
    running,
    stop: async () => {
      pipeline.stop();
      await running.catch(() => undefined);
    },
  };
}

/** Frees the cell's replication slot (the throwaway server has a limited number of them). */
async function dropSlots(cell: Cell): Promise<void> {
  for (let i = 0; i < 50; i++) {
    await pgServer
      .query(
        cell.id,
        'select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = current_database() and not active',
      )
      .catch(() => undefined);
    const left = await pgServer.query<{ n: number }>(
      cell.id,
      'select count(*)::int as n from pg_replication_slots where database = current_database()',
    );
    if (left[0]!.n === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function newCell(name: string, target: TargetKind, mode: Mode, setup: string[]): Promise<Cell> {
  const id = `sc_${name}_${TARGET_TAG[target]}_${mode === 'streaming' ? 's' : 'b'}`;
  const sourceUrl = await pgServer.createDatabase(id);
  for (const sql of setup) await pgServer.query(id, sql);
  if (target === 'postgres') return { id, sourceUrl, target, targetDb: await pgServer.createDatabase(`${id}_dst`) };
  const my = await mysqlServer(target);
  await my.query(`DROP DATABASE IF EXISTS ${id}`);
  return { id, sourceUrl, target, targetDb: id, my };
}

/**
 * Snapshot, then the changes (while streaming, or with the pipeline stopped and restarted after them), then the
 * target must equal the source.
 */
async function followed(
  name: string,
  target: TargetKind,
  mode: Mode,
  setup: string[],
  changes: string[],
  check?: Check,
) {
  const cell = await newCell(name, target, mode, setup);
  const ctx = testContext(cell.id);
  let run = startPipeline(cell, ctx);
  try {
    await waitEqual(cell, ctx);
    if (mode === 'behind') await run.stop();
    for (const sql of changes) await pgServer.query(cell.id, sql);
    if (mode === 'behind') run = startPipeline(cell, ctx);
    // A copy empties the target table first: it may look equal before the copy starts (values that read alike).
    const copyOf = check?.copyOf;
    if (copyOf)
      await waitFor(
        `the copy of ${copyOf}`,
        async () => ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done' && l.table === copyOf),
        ctx,
      );
    await waitEqual(cell, ctx);
    expect((await compare(cell)).equal).toBe(true);
    check?.(ctx);
  } finally {
    await run.stop();
    await dropSlots(cell);
  }
  return { cell, ctx };
}

/** A rewrite the WAL does not carry (naming `column`) made the source copy the table again. */
/** A cell's last check; `copyOf`: the table the change makes the source copy again (waited for before comparing). */
type Check = ((ctx: Ctx) => void) & { copyOf?: string };

function rewriteCopied(column: string): Check {
  const check = (ctx: Ctx) => {
    const requested = ctx.logs.filter((l) => l.event === 'incremental_snapshot_requested' && l.table === 'public.t');
    expect(requested.length).toBeGreaterThan(0);
    expect(String(requested[0]!.reason)).toContain(`column ${column} `);
    expect(ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done' && l.table === 'public.t')).toBe(true);
  };
  return Object.assign(check, { copyOf: 'public.t' });
}

const MODES: Mode[] = ['streaming', 'behind'];

describe.each(TARGETS)('PostgreSQL source -> %s target: schema changes', (target) => {
  describe.each(MODES)('%s', (mode) => {
    it('RENAME COLUMN after ADD COLUMN ... DEFAULT keeps the values under the new name', async () => {
      await followed(
        'rename',
        target,
        mode,
        ['create table t (id int primary key, name text)', "insert into t values (1, 'a'), (2, 'b'), (3, 'c')"],
        [
          'alter table t add column b int default 5',
          "insert into t values (4, 'd', 6)",
          'alter table t rename column b to b2',
          "insert into t values (5, 'e', 9)",
          'update t set b2 = 7 where id = 1',
        ],
      );
    });

    it('DROP COLUMN c then ADD COLUMN c (another type, a default) is a new column', async () => {
      await followed(
        'readd',
        target,
        mode,
        [
          'create table t (id int primary key, name text, c int)',
          "insert into t values (1, 'a', 10), (2, 'b', 20), (3, 'c', 30)",
        ],
        [
          'alter table t drop column c',
          "insert into t values (4, 'd')",
          "alter table t add column c text default 'zz'",
          "insert into t values (5, 'e', 'x')",
          "update t set name = 'a2' where id = 1",
        ],
      );
    });

    it('DROP COLUMN c then ADD COLUMN c of the same type, with no change in between', async () => {
      await followed(
        'readd_same',
        target,
        mode,
        [
          'create table t (id int primary key, name text, c int)',
          "insert into t values (1, 'a', 10), (2, 'b', 20), (3, 'c', 30)",
        ],
        ['alter table t drop column c', 'alter table t add column c int', "insert into t values (4, 'd', 40)"],
      );
    });

    it('columns renamed into each other (a swap) keep their values', async () => {
      await followed(
        'swap',
        target,
        mode,
        [
          'create table t (id int primary key, a text, b text)',
          "insert into t values (1, 'a1', 'b1'), (2, 'a2', 'b2')",
        ],
        [
          'alter table t rename column a to tmp',
          'alter table t rename column b to a',
          'alter table t rename column tmp to b',
          "insert into t values (3, 'a3', 'b3')",
        ],
      );
    });

    it('RENAME TABLE moves the rows to the new name', async () => {
      const cell = await newCell('rentab', target, mode, [
        'create table t0 (id int primary key, name text)',
        "insert into t0 values (1, 'a'), (2, 'b')",
      ]);
      // The pipeline follows public.t0 (its publication holds the table by identity, so a rename keeps it there).
      const ctx = testContext(cell.id);
      let failure: Promise<Error | null> = Promise.resolve(null);
      const pipeline = (table = 'public.t0') => {
        const p = new Pipeline({
          name: cell.id,
          createParts: () => {
            const t: TransactionalTarget =
              cell.target === 'postgres'
                ? new PostgresTarget(postgresTargetConfig.parse({ type: 'postgres', url: cell.targetDb }), ctx)
                : new MysqlTarget(
                    mysqlTargetConfig.parse({ type: 'mysql', url: myServerOf(cell).url(), database: cell.targetDb }),
                    ctx,
                  );
            const source = new PostgresSource(
              { type: 'postgres', url: cell.sourceUrl, tables: [table], heartbeat_interval_ms: 500 },
              ctx,
              { batch: BATCH },
            );
            return { source, target: t };
          },
          maxInFlight: 4,
          maxInFlightBytes: 64 * 1024 * 1024,
          initialBackoffMs: 100,
          maxBackoffMs: 1000,
          logger: ctx.logger,
        });
        const running = p.run();
        failure = running.then(
          () => null,
          (err: Error) => err,
        );
        return async () => {
          p.stop();
          await running.catch(() => undefined);
        };
      };
      let stop = pipeline();
      try {
        const targetRows = async (table: string): Promise<number> => {
          if (cell.target === 'postgres') {
            const c = new pg.Client({ connectionString: cell.targetDb });
            await c.connect();
            try {
              return Number((await c.query(`select count(*) as n from ${table}`)).rows[0].n);
            } finally {
              await c.end();
            }
          }
          return Number((await myServerOf(cell).query(`SELECT COUNT(*) AS n FROM ${table}`, [], cell.targetDb))[0].n);
        };
        const waitRows = async (table: string, n: number) => {
          const deadline = Date.now() + 60_000;
          while ((await targetRows(table).catch(() => -1)) !== n) {
            if (Date.now() > deadline) throw new Error(`${table} never had ${n} rows`);
            await new Promise((r) => setTimeout(r, 200));
          }
        };
        await waitRows('t0', 2);
        if (mode === 'behind') await stop();
        await pgServer.query(cell.id, 'alter table t0 rename to t');
        await pgServer.query(cell.id, "insert into t values (3, 'c')");
        if (mode === 'behind') {
          // The configured name is gone: one stop that names the rename and the fix; with the fix it goes on.
          stop = pipeline();
          const err = (await failure) as (Error & { hint?: string }) | null;
          expect(err?.message).toMatch(/table public\.t0 was renamed to public\.t at the source/);
          expect(err && 'hint' in err ? err.hint : '').toMatch(/Replace public\.t0 by public\.t in source\.tables/);
          stop = pipeline('public.t');
        }
        await waitRows('t', 3);
        await waitEqual(cell, ctx);
        expect(await targetRows('t0').catch(() => 'gone')).toBe('gone');
      } finally {
        await stop();
        await dropSlots(cell);
      }
    });

    it('type changes PostgreSQL makes without a rewrite (varchar longer, numeric precision up) are followed', async () => {
      await followed(
        'widen',
        target,
        mode,
        [
          'create table t (id int primary key, s varchar(10), n numeric(10,2))',
          "insert into t values (1, 'abc', 12345678.91), (2, null, -1.5)",
        ],
        [
          'alter table t alter column s type varchar(20), alter column n type numeric(14,2)',
          "insert into t values (3, 'abcdefghijklmnopqrst', 123456789012.34)",
        ],
      );
    });

    it('numeric scale up (numeric(10,2) -> numeric(12,4)) rewrites the table: the table is copied again', async () => {
      await followed(
        'scale',
        target,
        mode,
        ['create table t (id int primary key, n numeric(10,2))', 'insert into t values (1, 1.25), (2, 2.5)'],
        ['alter table t alter column n type numeric(12,4)', 'insert into t values (3, 3.1234)'],
        rewriteCopied('n'),
      );
    });

    it('TRUNCATE is followed', async () => {
      await followed(
        'truncate',
        target,
        mode,
        ['create table t (id int primary key, name text)', "insert into t values (1, 'a'), (2, 'b')"],
        ['truncate t', "insert into t values (3, 'c')"],
      );
    });

    it('ALTER COLUMN TYPE with a table rewrite (numeric scale down): the table is copied again', async () => {
      await followed(
        'retype',
        target,
        mode,
        ['create table t (id int primary key, v numeric(12,4))', 'insert into t values (1, 1.2345), (2, 2.5)'],
        ['alter table t alter column v type numeric(12,1)', 'insert into t values (3, 3.1)'],
        rewriteCopied('v'),
      );
    });

    it('ALTER COLUMN TYPE bigint USING y * 1000: the table is copied again', async () => {
      await followed(
        'using',
        target,
        mode,
        ['create table t (id int primary key, y int)', 'insert into t values (1, 1), (2, 2)'],
        ['alter table t alter column y type bigint using y * 1000', 'insert into t values (3, 3000)'],
        rewriteCopied('y'),
      );
    });

    it('varchar shorter (varchar(20) -> varchar(5), the values fit): the table is copied again', async () => {
      await followed(
        'vshort',
        target,
        mode,
        [
          'create table t (id int primary key, s varchar(20))',
          "insert into t values (1, 'abc'), (2, null), (3, 'abcde')",
        ],
        [
          'alter table t alter column s type varchar(5)',
          "insert into t values (4, 'xyz')",
          "update t set s = 'q' where id = 1",
        ],
        rewriteCopied('s'),
      );
    });

    it('numeric precision down (numeric(12,2) -> numeric(8,2), the values fit): the table is copied again', async () => {
      await followed(
        'ndown',
        target,
        mode,
        [
          'create table t (id int primary key, n numeric(12,2))',
          'insert into t values (1, 123456.78), (2, -0.5), (3, null)',
        ],
        ['alter table t alter column n type numeric(8,2)', 'insert into t values (4, 999999.99)'],
        rewriteCopied('n'),
      );
    });

    it('a key column int -> bigint: the table is copied again and takes keys beyond int', async () => {
      await followed(
        'keybig',
        target,
        mode,
        ['create table t (id int primary key, name text)', "insert into t values (1, 'a'), (2, 'b')"],
        [
          'alter table t alter column id type bigint',
          "insert into t values (3000000000, 'big')",
          "update t set name = 'a2' where id = 1",
        ],
        rewriteCopied('id'),
      );
    });

    it('int -> text (the column changes kind): the table is copied again and the target column converted', async () => {
      await followed(
        'int2text',
        target,
        mode,
        ['create table t (id int primary key, c int)', 'insert into t values (1, 10), (2, null), (3, -7)'],
        [
          'alter table t alter column c type text',
          "insert into t values (4, 'four')",
          "update t set c = 'x' where id = 1",
        ],
        rewriteCopied('c'),
      );
    });

    it('a key column int -> text: the table is copied again and the target key converted', async () => {
      await followed(
        'keytext',
        target,
        mode,
        ['create table t (id int primary key, name text)', "insert into t values (1, 'a'), (2, 'b'), (3, 'c')"],
        [
          'alter table t alter column id type text',
          "insert into t values ('k4', 'd')",
          "update t set name = 'a2' where id = '1'",
        ],
        rewriteCopied('id'),
      );
    });

    it.runIf(mode === 'streaming')(
      'a key column int -> text found by the table check while another copy runs: changes ahead of its copy convert the target key too',
      async () => {
        // The table check's message requests the copy, which waits behind the copy of another table; the next
        // change's Relation message then tells no rewrite (the history took it from the message), and that change's
        // rows reach the target before the copy: they must carry the conversion as well.
        const cell = await newCell('keytextchk', target, mode, [
          'create table t (id int primary key, name text)',
          "insert into t values (1, 'a'), (2, 'b'), (3, 'c')",
          'create table b (id int primary key, v numeric(12,4))',
          'insert into b select g, g / 7.0 from generate_series(1, 60000) g',
        ]);
        const ctx = testContext(cell.id);
        const run = startPipeline(cell, ctx, ['public.t', 'public.b'], { snapshot_chunk_rows: 200 });
        const requested = (table: string) =>
          ctx.logs.some((l) => l.event === 'incremental_snapshot_requested' && l.table === table);
        const copied = (table: string) =>
          ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done' && l.table === table);
        try {
          await waitEqual(cell, ctx);
          await waitEqual(cell, ctx, 60_000, 'b');
          await pgServer.query(cell.id, 'alter table b alter column v type numeric(12,1)');
          await waitFor('the copy request of b', async () => requested('public.b'), ctx);
          await pgServer.query(cell.id, 'alter table t alter column id type text');
          await waitFor('the copy request of t', async () => requested('public.t'), ctx);
          await pgServer.query(cell.id, "insert into t values ('k4', 'd')");
          await pgServer.query(cell.id, "update t set name = 'a2' where id = '1'");
          // The changes were written while b was still being copied (t's copy waits for it).
          expect(copied('public.b')).toBe(false);
          await waitFor('the copy of public.t', async () => copied('public.t'), ctx, 80_000);
          await waitEqual(cell, ctx);
          await waitEqual(cell, ctx, 60_000, 'b');
          expect(ctx.logs.filter((l) => l.event === 'pipeline_failed')).toEqual([]);
        } finally {
          await run.stop();
          await dropSlots(cell);
        }
      },
    );

    it('text -> int USING (c::int): the table is copied again and the target column converted', async () => {
      await followed(
        'text2int',
        target,
        mode,
        ['create table t (id int primary key, c text)', "insert into t values (1, '10'), (2, null), (3, '-7')"],
        [
          'alter table t alter column c type int using (c::int)',
          'insert into t values (4, 4)',
          'update t set c = 11 where id = 1',
        ],
        rewriteCopied('c'),
      );
    });

    it('ADD COLUMN ... NOT NULL DEFAULT <constant> after rows exist: existing rows read the default, no copy', async () => {
      await followed(
        'notnulldef',
        target,
        mode,
        ['create table t (id int primary key, name text)', "insert into t values (1, 'a'), (2, 'b')"],
        [
          "alter table t add column z int not null default 7, add column w text not null default 'dflt'",
          "insert into t values (3, 'c', 8, 'w3')",
          'update t set z = 9 where id = 1',
        ],
        (ctx) => {
          expect(
            ctx.logs.filter((l) => l.event === 'incremental_snapshot_requested' && l.table === 'public.t'),
          ).toEqual([]);
        },
      );
    });

    it('a serial column added after rows exist (numbers the rows without logging them): the table is copied again', async () => {
      await followed(
        'serial',
        target,
        mode,
        ['create table t (id int primary key, name text)', "insert into t values (1, 'a'), (2, 'b')"],
        ['alter table t add column s serial', "insert into t (id, name) values (3, 'c')"],
        rewriteCopied('s'),
      );
    });

    it('a column added with a volatile default after rows exist: the table is copied again', async () => {
      await followed(
        'volatile',
        target,
        mode,
        ['create table t (id int primary key, name text)', "insert into t values (1, 'a'), (2, 'b')"],
        [
          'alter table t add column r int default (random() * 1000000)::int',
          "insert into t (id, name) values (3, 'c')",
        ],
        rewriteCopied('r'),
      );
    });

    it('a rewrite that no later change of the table follows (ALTER COLUMN TYPE): the table is copied again', async () => {
      // No Relation message: the table check finds the new file node and places the rewrite in the stream.
      await followed(
        'lonely',
        target,
        mode,
        ['create table t (id int primary key, v numeric(12,4))', 'insert into t values (1, 1.2345), (2, 2.5)'],
        ['alter table t alter column v type numeric(12,1)'],
        rewriteCopied('v'),
      );
    });

    for (const rewrite of [true, false]) {
      it(
        rewrite
          ? 'a table renamed, then rewritten, and no later change of it (RENAME, ALTER COLUMN TYPE): renamed and copied again'
          : 'every table replicated, a table renamed (RENAME): renamed with its next change, copied once',
        async () => {
          // No Relation message for a while: a rewrite is found by the table check under the table's new name. Every
          // table of the database is replicated (a listed name renamed while stopped stops the start, tested above).
          const cell = await newCell(rewrite ? 'lonelyren' : 'renall', target, mode, [
            'create table t0 (id int primary key, v numeric(12,4))',
            'insert into t0 values (1, 1.2345), (2, 2.5)',
          ]);
          const ctx = testContext(cell.id);
          let run = startPipeline(cell, ctx, null);
          try {
            await waitEqual(cell, ctx, 60_000, 't0');
            if (mode === 'behind') await run.stop();
            await pgServer.query(cell.id, 'alter table t0 rename to t');
            if (rewrite) await pgServer.query(cell.id, 'alter table t alter column v type numeric(12,1)');
            if (mode === 'behind') run = startPipeline(cell, ctx, null);
            if (rewrite) {
              await waitFor(
                'the copy of public.t',
                async () =>
                  ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done' && l.table === 'public.t'),
                ctx,
              );
              await waitEqual(cell, ctx);
              expect((await targetColumns(cell, 't0')).length).toBe(0);
              rewriteCopied('v')(ctx);
            }
            // The next change: renamed by its Relation message (or already), nothing copied again.
            await pgServer.query(cell.id, 'insert into t values (3, 3.3)');
            await waitEqual(cell, ctx);
            expect((await targetColumns(cell, 't0')).length).toBe(0);
            const requests = ctx.logs.filter((l) => l.event === 'incremental_snapshot_requested');
            expect(requests.map((l) => l.table)).toEqual(rewrite ? ['public.t'] : []);
            expect(ctx.logs.filter((l) => l.event === 'pipeline_failed')).toEqual([]);
          } finally {
            await run.stop();
            await dropSlots(cell);
          }
        },
      );
    }

    it('a rewrite of a partitioned table that no later change follows (ALTER COLUMN TYPE): the table is copied again', async () => {
      // A partitioned table has no file node of its own: the rewrite shows in its partitions' file nodes.
      await followed(
        'lonelypart',
        target,
        mode,
        [
          'create table t (id int primary key, v numeric(12,4)) partition by range (id)',
          'create table t_low partition of t for values from (0) to (100)',
          'create table t_high partition of t for values from (100) to (200)',
          'insert into t values (1, 1.2345), (2, 2.5), (150, 3.14159)',
        ],
        ['alter table t alter column v type numeric(12,1)'],
        rewriteCopied('v'),
      );
    });

    it('partitions detached, truncated and attached (rows the WAL does not carry as changes of the table): the table is copied again', async () => {
      await followed(
        'parts',
        target,
        mode,
        [
          'create table t (id int primary key, v numeric(12,4)) partition by range (id)',
          'create table t_low partition of t for values from (0) to (100)',
          'create table t_high partition of t for values from (100) to (200)',
          'insert into t values (1, 1.2345), (2, 2.5), (150, 3.14159)',
        ],
        [
          'alter table t detach partition t_high',
          'truncate t_low',
          'create table t_mid (id int primary key, v numeric(12,4))',
          'insert into t_mid values (120, 9.5), (121, 9.25)',
          'alter table t attach partition t_mid for values from (100) to (200)',
        ],
        Object.assign(
          (ctx: Ctx) => {
            const requested = ctx.logs.filter(
              (l) => l.event === 'incremental_snapshot_requested' && l.table === 'public.t',
            );
            expect(String(requested[0]?.reason)).toContain(
              'partitions were truncated, attached, detached or rewritten',
            );
          },
          { copyOf: 'public.t' },
        ),
      );
    });

    it('a column added with a volatile default that no later change of the table follows: the table is copied again', async () => {
      await followed(
        'lonelyvol',
        target,
        mode,
        ['create table t (id int primary key, name text)', "insert into t values (1, 'a'), (2, 'b')"],
        ['alter table t add column r int default (random() * 1000000)::int'],
        rewriteCopied('r'),
      );
    });

    it('ADD COLUMN then SET DEFAULT (no rewrite): followed without a copy, existing rows read NULL', async () => {
      await followed(
        'setdef',
        target,
        mode,
        ['create table t (id int primary key, name text)', "insert into t values (1, 'a'), (2, 'b')"],
        [
          'alter table t add column z int',
          'alter table t alter column z set default 5',
          "insert into t (id, name) values (3, 'c')",
        ],
        (ctx) => {
          expect(
            ctx.logs.filter((l) => l.event === 'incremental_snapshot_requested' && l.table === 'public.t'),
          ).toEqual([]);
        },
      );
    });

    it('a constant default whose kept value a rewrite erased before it was read: the table is copied again', async () => {
      // The ADD COLUMN's shape reaches the stream with the INSERT, after VACUUM FULL cleared attmissingval.
      await followed(
        'lostdef',
        target,
        mode,
        ['create table t (id int primary key, name text)', "insert into t values (1, 'a'), (2, 'b')"],
        ['alter table t add column z int default 5', 'vacuum full t', "insert into t (id, name) values (3, 'c')"],
        rewriteCopied('z'),
      );
    });
  });
});

describe.each(MODES)('PostgreSQL source: an enum label added (%s)', (mode) => {
  const setup = [
    "create type mood as enum ('sad', 'happy')",
    'create table t (id int primary key, m mood)',
    "insert into t values (1, 'sad'), (2, 'happy')",
  ];
  const changes = ["alter type mood add value 'ok' before 'happy'", "insert into t values (3, 'ok')"];

  it.each(MYSQL_TARGETS)('%s target (enum as VARCHAR): followed', async (target) => {
    await followed('enum', target, mode, setup, changes);
  });

  it('PostgreSQL target: stops once with the ALTER TYPE to run; after it, a restart goes on', async () => {
    const cell = await newCell('enum', 'postgres', mode, setup);
    const target = new pg.Client({ connectionString: cell.targetDb });
    await target.connect();
    try {
      await target.query("create type mood as enum ('sad', 'happy')");
      const ctx = testContext(cell.id);
      let run = startPipeline(cell, ctx);
      await waitEqual(cell, ctx);
      if (mode === 'behind') await run.stop();
      for (const sql of changes) await pgServer.query(cell.id, sql);
      if (mode === 'behind') run = startPipeline(cell, ctx);
      const failure = await run.running.then(
        () => null,
        (err: unknown) => err as Error & { hint?: string },
      );
      expect(failure?.message).toMatch(/table public\.t.*invalid input value for enum mood: "ok"/);
      expect(failure?.hint).toContain("ALTER TYPE mood ADD VALUE 'ok'");
      await target.query("alter type mood add value 'ok' before 'happy'");
      run = startPipeline(cell, ctx);
      try {
        await waitEqual(cell, ctx);
      } finally {
        await run.stop();
      }
    } finally {
      await target.end();
      await dropSlots(cell);
    }
  });
});

/**
 * The row of transaction X lists id, a, b. Since then b was dropped and another column renamed to b: the catalog now
 * has a dropped column and a b, both changed after X, and either could be the b of that row.
 */
const UNTOLD_CHANGES = [
  'alter table t add column b int',
  'insert into t values (2, 2, 2)',
  'alter table t add column c int',
  'alter table t drop column b',
  'alter table t rename column c to b',
  'insert into t values (3, 3, 3)',
];

/**
 * Holds the target table `t` locked until `release`: the pipeline's writes wait, its source stops reading once its
 * read-ahead is full, and later changes stay unread in the stream (a target slower than the source, made certain).
 */
async function lockTargetTable(cell: Cell): Promise<{ release: () => Promise<void> }> {
  if (cell.target === 'postgres') {
    const client = new pg.Client({ connectionString: cell.targetDb });
    await client.connect();
    await client.query('begin');
    await client.query('lock table t in access exclusive mode');
    return {
      release: async () => {
        await client.query('commit');
        await client.end();
      },
    };
  }
  const conn = await mysql.createConnection(withDatabase(myServerOf(cell).url(), cell.targetDb));
  await conn.query('LOCK TABLES t WRITE');
  return {
    release: async () => {
      await conn.query('UNLOCK TABLES');
      await conn.end();
    },
  };
}

/** The operator's fix for the untold stop: teardown (slot, publications, checkpoint), then a fresh start. */
async function teardownCell(cell: Cell, ctx: Ctx): Promise<void> {
  await teardownPostgresSource({ type: 'postgres', url: cell.sourceUrl, tables: ['public.t'] }, ctx);
  const store =
    cell.target === 'postgres'
      ? new PostgresCheckpointStore(cell.targetDb)
      : new MysqlCheckpointStore(
          myServerOf(cell).url(),
          checkpointTableOf({ database: cell.targetDb, url: myServerOf(cell).url() }),
        );
  await store.clear(cell.id);
  await store.close();
}

describe.each(TARGETS)(
  'PostgreSQL source -> %s target: several changes the catalog no longer tells apart',
  (target) => {
    it.each(MODES)(
      '%s: stops once naming the table, the change and the fix; after the fix (teardown, a fresh start) the target equals the source',
      async (mode) => {
        const cell = await newCell('untold', target, mode, [
          'create table t (id int primary key, a int)',
          'insert into t values (1, 1)',
        ]);
        const ctx = testContext(cell.id);
        // A small read-ahead: while the target waits, the source stops reading after a few hundred queued rows.
        const sourceOptions = { read_ahead_events: 200 };
        let run = startPipeline(cell, ctx, ['public.t'], sourceOptions);
        try {
          await waitEqual(cell, ctx);
          if (mode === 'behind') {
            await run.stop();
            for (const sql of UNTOLD_CHANGES) await pgServer.query(cell.id, sql);
            run = startPipeline(cell, ctx, ['public.t'], sourceOptions);
          } else {
            // Streaming: the pipeline keeps running, but a backlog it has not read yet puts the stream behind the DDL,
            // as a slow target or a burst of writes does. The target takes none of the 20,000 rows while locked, so the
            // source reads at most its in-flight window and read-ahead of them (a few thousand), never the row of X.
            const lock = await lockTargetTable(cell);
            try {
              await pgServer.query(cell.id, 'insert into t select g, g from generate_series(10, 20009) g');
              for (const sql of UNTOLD_CHANGES) await pgServer.query(cell.id, sql);
            } finally {
              await lock.release();
            }
          }
          const failure = await run.running.then(
            () => null,
            (err: unknown) => err as Error & { hint?: string; kind?: string },
          );
          expect(failure?.kind).toBe('operator');
          expect(failure?.message).toMatch(
            /^table public\.t: cannot tell which columns the schema change in transaction \d+ meant \(the stream has the columns id, a, b, the catalog now id, a, b\): the stream is behind the catalog and later changes to the table left more than one reading/,
          );
          expect(failure?.hint).toContain(
            'Copy the table again: run tributary teardown for this pipeline and start it over',
          );
          // Stopped once, in place: no retry; streaming, the stop came to the pipeline started before the DDL.
          expect(ctx.logs.filter((l) => l.event === 'pipeline_retrying')).toEqual([]);
          expect(ctx.logs.filter((l) => l.event === 'pipeline_starting')).toHaveLength(mode === 'streaming' ? 1 : 2);
          // Nothing of the untold shape reached the target.
          expect(await targetColumns(cell)).toEqual(['id', 'a']);
          expect(await targetCount(cell, 't where id in (2, 3)')).toBe(0);

          await teardownCell(cell, ctx);
          run = startPipeline(cell, ctx);
          await waitEqual(cell, ctx);
        } finally {
          await run.stop();
          await dropSlots(cell);
        }
      },
    );
  },
);

/** Rows of a table at the target, counted there (-1: no such table). */
async function targetCount(cell: Cell, table: string): Promise<number> {
  if (cell.target === 'postgres') {
    const c = new pg.Client({ connectionString: cell.targetDb });
    await c.connect();
    try {
      return Number((await c.query(`select count(*) as n from ${table}`)).rows[0].n);
    } catch {
      return -1;
    } finally {
      await c.end();
    }
  }
  return Number(
    (
      await myServerOf(cell)
        .query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`, [], cell.targetDb)
        .catch(() => [{ n: -1 }])
    )[0]!.n,
  );
}

async function dropTargetTable(cell: Cell, table: string): Promise<void> {
  if (cell.target === 'postgres') {
    const c = new pg.Client({ connectionString: cell.targetDb });
    await c.connect();
    try {
      await c.query(`drop table ${table}`);
    } finally {
      await c.end();
    }
    return;
  }
  await myServerOf(cell).query(`DROP TABLE ${table}`, [], cell.targetDb);
}

async function waitFor(what: string, check: () => Promise<boolean>, ctx: Ctx, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) {
      const problems = ctx.logs.filter((l) => Number(l.level) >= 40).slice(-3);
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(problems)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.each(TARGETS)('PostgreSQL source -> %s target: tables dropped and created', (target) => {
  describe.each(MODES)('%s', (mode) => {
    it('DROP TABLE of a replicated table empties the target table where the stream reaches the drop', async () => {
      const cell = await newCell('droptab', target, mode, [
        'create table t (id int primary key, name text)',
        'create table u (id int primary key, v text)',
        "insert into t values (1, 'a')",
        "insert into u values (1, 'x'), (2, 'y')",
      ]);
      const ctx = testContext(cell.id);
      // Every table of the database (tables omitted): u may go without the configuration naming it.
      let run = startPipeline(cell, ctx, null);
      try {
        await waitEqual(cell, ctx, 60_000, 'u');
        await waitEqual(cell, ctx);
        if (mode === 'behind') await run.stop();
        await pgServer.query(cell.id, "insert into u values (3, 'z')");
        await pgServer.query(cell.id, 'drop table u');
        await pgServer.query(cell.id, "insert into t values (2, 'b')");
        if (mode === 'behind') run = startPipeline(cell, ctx, null);
        await waitFor('the target u to be emptied', async () => (await targetCount(cell, 'u')) === 0, ctx);
        await pgServer.query(cell.id, "insert into t values (3, 'c')");
        await waitEqual(cell, ctx);
        expect(await targetCount(cell, 'u')).toBe(0);
        expect(ctx.logs.filter((l) => l.event === 'source_table_dropped').map((l) => l.table)).toEqual(['public.u']);
      } finally {
        await run.stop();
        await dropSlots(cell);
      }
    });

    it('DROP TABLE of a table `tables` lists: emptied at the target; a start while it is missing names the fix', async () => {
      const cell = await newCell('droplisted', target, mode, [
        'create table t (id int primary key, name text)',
        'create table u (id int primary key, v text)',
        "insert into t values (1, 'a')",
        "insert into u values (1, 'x'), (2, 'y')",
      ]);
      const ctx = testContext(cell.id);
      const listed = ['public.t', 'public.u'];
      let run = startPipeline(cell, ctx, listed);
      try {
        await waitEqual(cell, ctx, 60_000, 'u');
        if (mode === 'behind') await run.stop();
        await pgServer.query(cell.id, "insert into u values (3, 'z')");
        await pgServer.query(cell.id, 'drop table u');
        await pgServer.query(cell.id, "insert into t values (2, 'b')");
        if (mode === 'behind') {
          run = startPipeline(cell, ctx, listed);
          const failure = await run.running.then(
            () => null,
            (err: unknown) => err as Error & { hint?: string },
          );
          expect(failure?.message).toContain('table public.u was dropped at the source after the last checkpoint');
          expect(failure?.hint).toContain('Remove public.u from source.tables, then restart the pipeline');
          // The operator's fix: the table leaves the configuration.
          run = startPipeline(cell, ctx, ['public.t']);
        }
        await waitFor('the target u to be emptied', async () => (await targetCount(cell, 'u')) === 0, ctx);
        await waitEqual(cell, ctx);
        expect(ctx.logs.filter((l) => l.event === 'source_table_dropped').map((l) => l.table)).toEqual(['public.u']);
      } finally {
        await run.stop();
        await dropSlots(cell);
      }
    });

    it('DROP TABLE and CREATE TABLE under the same name: the target holds the rows of the new table', async () => {
      const cell = await newCell('recreate', target, mode, [
        'create table t (id int primary key, name text)',
        "insert into t values (1, 'a'), (2, 'b')",
      ]);
      const ctx = testContext(cell.id);
      let run = startPipeline(cell, ctx);
      try {
        await waitEqual(cell, ctx);
        if (mode === 'behind') await run.stop();
        await pgServer.query(cell.id, 'drop table t');
        await pgServer.query(cell.id, 'create table t (id int primary key, name text)');
        await pgServer.query(cell.id, "insert into t values (2, 'new'), (9, 'nine')");
        if (mode === 'behind') run = startPipeline(cell, ctx);
        await waitFor(
          'the new table to be copied',
          async () => ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done' && l.table === 'public.t'),
          ctx,
        );
        await pgServer.query(cell.id, "insert into t values (10, 'ten')");
        await pgServer.query(cell.id, "update t set name = 'nine2' where id = 9");
        await waitEqual(cell, ctx);
        expect(await targetCount(cell, 't')).toBe(3);
      } finally {
        await run.stop();
        await dropSlots(cell);
      }
    });

    it('DROP TABLE and CREATE TABLE with another key: the emptied target table is created again with the new key', async () => {
      const cell = await newCell('rekey', target, mode, [
        'create table t (id int primary key, name text)',
        "insert into t values (1, 'a'), (2, 'b')",
      ]);
      const ctx = testContext(cell.id);
      let run = startPipeline(cell, ctx);
      try {
        await waitEqual(cell, ctx);
        if (mode === 'behind') await run.stop();
        // Rows of the old table just before its drop: a replay of them (a restart before the next checkpoint) is
        // emptied again by the drop before the new key arrives.
        await pgServer.query(cell.id, "insert into t values (3, 'c')");
        await pgServer.query(cell.id, 'drop table t');
        // Rows written before the table check publishes the new t: only its copy carries them.
        await pgServer.query(
          cell.id,
          "create table t (code text primary key, id int not null, name text); insert into t values ('k2', 2, 'new'), ('k9', 9, 'nine')",
        );
        if (mode === 'behind') run = startPipeline(cell, ctx);
        await waitFor(
          'the new table to be copied',
          async () => ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done' && l.table === 'public.t'),
          ctx,
        );
        await pgServer.query(
          cell.id,
          "insert into t values ('k10', 10, 'ten'); update t set name = 'nine2' where code = 'k9'",
        );
        await waitEqual(cell, ctx);
        expect(await targetCount(cell, 't')).toBe(3);
        expect(ctx.logs.filter((l) => l.event === 'target_table_recreated')).toHaveLength(1);
        expect(ctx.logs.filter((l) => l.event === 'pipeline_failed')).toEqual([]);
      } finally {
        await run.stop();
        await dropSlots(cell);
      }
    });

    it('a key changed in place on a table with rows: stops once naming the keys; the fix in the hint makes the target equal', async () => {
      const cell = await newCell('rekeyin', target, mode, [
        'create table t (id int primary key, code text not null unique, name text)',
        "insert into t values (1, 'k1', 'a'), (2, 'k2', 'b')",
      ]);
      const ctx = testContext(cell.id);
      let run = startPipeline(cell, ctx);
      try {
        await waitEqual(cell, ctx);
        if (mode === 'behind') await run.stop();
        await pgServer.query(cell.id, 'alter table t drop constraint t_pkey, add primary key (code)');
        await pgServer.query(cell.id, "insert into t values (3, 'k3', 'c')");
        if (mode === 'behind') run = startPipeline(cell, ctx);
        const failure = await run.running.then(
          () => null,
          (err: unknown) => err as Error & { hint?: string },
        );
        expect(failure?.message).toMatch(/public\.t.*source key \(code\) differs from the target primary key \(id\)/);
        expect(failure?.hint).toContain('Drop the target table and restart the pipeline');
        expect(failure?.hint).toContain('tributary snapshot');
        // The operator's fix: drop the target table, restart, copy the table's rows again.
        await dropTargetTable(cell, 't');
        run = startPipeline(cell, ctx);
        await requestPostgresSnapshot({ type: 'postgres', url: cell.sourceUrl, tables: ['public.t'] }, ctx, {
          table: 'public.t',
        });
        await waitEqual(cell, ctx);
        expect(await targetCount(cell, 't')).toBe(3);
      } finally {
        await run.stop();
        await dropSlots(cell);
      }
    });

    it('a table copied after start and dropped before any change of it was streamed: the target table is emptied', async () => {
      const cell = await newCell('copydrop', target, mode, [
        'create table t (id int primary key, name text)',
        "insert into t values (1, 'a')",
      ]);
      const ctx = testContext(cell.id);
      let run = startPipeline(cell, ctx, null);
      try {
        await waitEqual(cell, ctx);
        // Rows written before the table check publishes n: the copy is all the stream ever carries of n.
        await pgServer.query(
          cell.id,
          "create table n (id int primary key, s text); insert into n select g, 'r' || g from generate_series(1, 50) g",
        );
        await waitFor(
          'the new table to be copied',
          async () => ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done' && l.table === 'public.n'),
          ctx,
        );
        await waitEqual(cell, ctx, 60_000, 'n');
        if (mode === 'behind') await run.stop();
        await pgServer.query(cell.id, 'drop table n');
        await pgServer.query(cell.id, "insert into t values (2, 'b')");
        if (mode === 'behind') run = startPipeline(cell, ctx, null);
        await waitEqual(cell, ctx);
        await waitFor('the target n to be emptied', async () => (await targetCount(cell, 'n')) === 0, ctx, 20_000);
        expect(ctx.logs.filter((l) => l.event === 'source_table_dropped').map((l) => l.table)).toEqual(['public.n']);
      } finally {
        await run.stop();
        await dropSlots(cell);
      }
    });

    it('CREATE TABLE after start (every table replicated): published and copied, then streamed', async () => {
      const cell = await newCell('newtab', target, mode, [
        'create table t (id int primary key, name text)',
        "insert into t values (1, 'a')",
      ]);
      const ctx = testContext(cell.id);
      let run = startPipeline(cell, ctx, null);
      try {
        await waitEqual(cell, ctx);
        if (mode === 'behind') await run.stop();
        await pgServer.query(cell.id, 'create table n (id int primary key, v numeric(10,2), s text)');
        await pgServer.query(cell.id, "insert into n select g, g / 7.0, 'r' || g from generate_series(1, 500) g");
        if (mode === 'behind') run = startPipeline(cell, ctx, null);
        await waitFor(
          'the new table to be copied',
          async () => ctx.logs.some((l) => l.event === 'incremental_snapshot_table_done' && l.table === 'public.n'),
          ctx,
        );
        await pgServer.query(cell.id, "insert into n values (501, 1.5, 'after'); update n set s = 'u' where id = 1");
        await pgServer.query(cell.id, 'delete from n where id = 2');
        await waitEqual(cell, ctx, 60_000, 'n');
        expect(await targetCount(cell, 'n')).toBe(500);
      } finally {
        await run.stop();
        await dropSlots(cell);
      }
    });
  });
});
