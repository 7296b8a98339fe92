import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { comparePositions } from '../../../src/checkpoint-order.ts';
import type { ChangeBatch } from '../../../src/core/change-batch.ts';
import type { ChangeEvent, TableSchema } from '../../../src/core/change-event.ts';
import type { Checkpoint } from '../../../src/core/checkpoint.ts';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import { testContext } from '../../../test/fixtures/change-events.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../../../test/harness/postgres.ts';
import { postgresTargetConfig } from '../../postgres/sink/config.ts';
import { PostgresTarget } from '../../postgres/sink/target.ts';
import { MysqlSchemaHistory } from './schema-history.ts';
import {
  events,
  gtidPattern,
  lastCheckpoint,
  Puller,
  session,
  snapshotDone,
  sourceConfig,
} from './source.test-support.ts';
import { DDL_MESSAGE_PREFIX, MysqlSource } from './source.ts';

const BATCH = { max_events: 1000, max_bytes: 4 * 1024 * 1024, max_wait_ms: 50 };

function ddlText(e: ChangeEvent): string {
  return Buffer.from(e.message!.contentBase64, 'base64').toString('utf8');
}

function missing(schema: TableSchema): Record<string, string | null | undefined> {
  return Object.fromEntries(schema.columns.map((c) => [c.name, c.missingValue]));
}

function label(e: ChangeEvent): string {
  return e.op === 'message' ? `ddl:${ddlText(e)}` : `${e.op}:${String((e.after ?? e.before)?.id)}`;
}

/** What a stream checkpoint keeps besides the schema history and the snapshot progress (pieces waiting to reach the target). */
function pendingState(state: Checkpoint['state']): Record<string, unknown> {
  const { schemaHistory: _, schemaHistoryNextId: __, snapshot: ___, ...rest } = state ?? {};
  return JSON.parse(JSON.stringify(rest));
}

/** A table of a checkpoint's schema history: columns and the columns the target has, as `id:name`. */
function historyOf(state: Checkpoint['state'], table: string) {
  const [db, name] = table.split('.') as [string, string];
  const t = MysqlSchemaHistory.fromState(state).get(db, name);
  const text = (cols?: { id: number; name: string }[]) => cols?.map((c) => `${c.id}:${c.name}`);
  return t && { columns: text(t.columns), delivered: text(t.delivered) };
}

/** The checkpoint of the batch whose last event is `e` (the commit point right after it). */
function checkpointAfter(batches: ChangeBatch[], e: ChangeEvent): Checkpoint | null {
  const b = batches.find((x) => x.events[x.events.length - 1] === e);
  return b?.checkpoint ?? null;
}

describe.each(mysqlFlavors())('mysql source: schema changes ($name)', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start();
  });
  afterAll(async () => server?.stop());

  it('gives added columns the value existing rows read, and emits DDL in order', async () => {
    await server.createDatabase('added');
    await server.createDatabase('added_other');
    const conn = await session(server, 'added');
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)');
    await conn.query('INSERT INTO t VALUES (1, 1), (2, 2)');
    const ctx = testContext('added');
    const source = new MysqlSource(sourceConfig(server, { databases: ['added'] }), ctx, { batch: BATCH });
    await source.open(null);
    const p = new Puller(source);
    try {
      await p.until((b) => b.some((x) => snapshotDone(x)));
      const snapshotBatches = p.batches.length;
      await conn.query("SET time_zone = '+05:00'");
      await conn.query('ALTER TABLE t ADD COLUMN a INT NOT NULL DEFAULT 7');
      await conn.query('INSERT INTO t (id, v) VALUES (3, 3)');
      await conn.query("ALTER TABLE t ADD COLUMN b VARCHAR(10) DEFAULT 'x y', ADD COLUMN c INT DEFAULT NULL");
      await conn.query('ALTER TABLE t ADD COLUMN d DATETIME DEFAULT current_timestamp()');
      await conn.query("ALTER TABLE t ADD COLUMN e TIMESTAMP NULL DEFAULT '2020-01-01 05:00:00'");
      await conn.query("ALTER TABLE t ADD COLUMN f ENUM('p','q') NOT NULL, ADD INDEX (v)");
      await conn.query('INSERT INTO t (id, v) VALUES (4, 4)');
      await conn.query('CREATE TABLE added_other.x (id INT PRIMARY KEY)');
      await conn.query('ALTER TABLE added_other.x ADD COLUMN y INT DEFAULT 1');
      await conn.query('CREATE TABLE u (id INT PRIMARY KEY)');
      await conn.query('RENAME TABLE u TO u2');
      await conn.query('DROP TABLE u2');
      await conn.query('UPDATE t SET v = 10 WHERE id = 1');
      await p.until((b) => events(b).some((e) => e.op === 'update'));
      // The copy of t that the added columns d and e ask for goes out between these (checked below).
      const streamed = p.batches
        .slice(snapshotBatches)
        .flatMap((b) => b.events)
        .filter((e) => e.op !== 'read' && !(e.op === 'truncate' && e.source.snapshot));
      expect(streamed.map(label)).toEqual([
        'ddl:ALTER TABLE t ADD COLUMN a INT NOT NULL DEFAULT 7',
        'insert:3',
        "ddl:ALTER TABLE t ADD COLUMN b VARCHAR(10) DEFAULT 'x y', ADD COLUMN c INT DEFAULT NULL",
        'ddl:ALTER TABLE t ADD COLUMN d DATETIME DEFAULT current_timestamp()',
        "ddl:ALTER TABLE t ADD COLUMN e TIMESTAMP NULL DEFAULT '2020-01-01 05:00:00'",
        "ddl:ALTER TABLE t ADD COLUMN f ENUM('p','q') NOT NULL, ADD INDEX (v)",
        'insert:4',
        'ddl:CREATE TABLE u (id INT PRIMARY KEY)',
        'ddl:RENAME TABLE u TO u2',
        'ddl:DROP TABLE `u2` /* generated by server */',
        'update:1',
      ]);
      const [alterA, ins3, , , , , ins4] = streamed;
      // The first row after ADD COLUMN a carries the value rows 1 and 2 read for it.
      expect(missing(ins3!.schema)).toEqual({ id: undefined, v: undefined, a: '7' });
      // a went to the target with row 3; b..f are new. Row 4 carries what existing rows read for b, c and f, unless
      // the catalog did not show them when their ALTER was read (MariaDB hides a table from INFORMATION_SCHEMA while
      // a later ALTER replaces its definition; seen under load, 1 run in 4-10): then only the copy of t that d and e
      // ask for gives rows 1..3 their values (checked below). Why no copy is asked for them in that case is not known
      // yet.
      expect(missing(ins4!.schema)).toMatchObject({ id: undefined, v: undefined, a: undefined, d: undefined });
      const existingRowsRead: Record<string, string | null> = { b: 'x y', c: null, f: 'p' };
      const noValue = new Set<string>();
      for (const [column, value] of Object.entries(existingRowsRead)) {
        if (missing(ins4!.schema)[column] === value) continue;
        expect(missing(ins4!.schema)[column]).toBeUndefined();
        noValue.add(column);
      }
      if (noValue.size > 0) {
        // Which path left the values out (the open question above): the source's own account of it.
        console.info(`row 4 carries no value for ${[...noValue].join(', ')}; source log:`);
        for (const l of ctx.logs) if (l.event !== 'batch') console.info(JSON.stringify(l));
      }
      // d got the time of the ALTER, e a TIMESTAMP literal of the writer's zone that the catalog shows in UTC: the
      // binlog does not carry what existing rows read, so t is copied again (its reads see both columns).
      const copies = ctx.logs.filter((l) => l.event === 'incremental_snapshot_requested');
      expect(copies.map((w) => [w.table, w.column]).filter(([, c]) => !noValue.has(c as string))).toEqual([
        ['added.t', 'd'],
        ['added.t', 'e'],
      ]);
      await p.until((b) => events(b).some((e) => e.op === 'read' && e.after?.id === '3' && e.after?.d != null));
      const copied = p.batches
        .flatMap((b) => b.events)
        .filter((e) => e.op === 'read' && e.table.name === 't' && Number(e.after!.id) <= 3 && e.after!.d != null);
      if (noValue.size > 0) expect(copied.length).toBe(3);
      for (const column of noValue)
        expect(copied.map((e) => e.after![column])).toEqual(copied.map(() => existingRowsRead[column]));

      // DDL events: table, default database, own GTID, positions in binlog order, each followed by a commit point.
      expect(alterA!.table).toEqual({ schema: 'added', name: 't' });
      expect(alterA!.source.db).toBe('added');
      expect(alterA!.message).toMatchObject({ prefix: DDL_MESSAGE_PREFIX, transactional: true });
      expect(alterA!.source.txId).toMatch(gtidPattern(server));
      const positions = streamed.map((e) => e.source.position);
      for (let i = 1; i < positions.length; i++) {
        const a = positions[i - 1]!;
        const b = positions[i]!;
        if (a.kind !== 'mysql' || b.kind !== 'mysql') throw new Error('not mysql');
        expect(comparePositions({ ...b, kind: 'mysql' }, { ...a, kind: 'mysql' })).toBeGreaterThan(0);
        expect(streamed[i]!.source.txId).not.toBe(streamed[i - 1]!.source.txId);
      }
      for (const b of p.batches.slice(snapshotBatches)) expect(b.checkpoint).not.toBeNull();
      // The checkpoint after ALTER a holds the added column until row 3 (in the same or a later batch) commits.
      const cps = p.batches.slice(snapshotBatches).map((b) => b.checkpoint!);
      const last = cps[cps.length - 1]!;
      // u2 was gone before its DROP was read: its truncate waits for a table of that name to have rows again.
      expect(pendingState(last.state)).toEqual({ droppedTables: ['added.u2'] });
      // The history: t by identity (u came and went; added_other is not replicated).
      expect((last.state?.schemaHistory as { name: string }[] | undefined)?.map((t) => t.name)).toEqual(['t']);
      expect(historyOf(last.state, 'added.t')?.columns).toEqual([
        '1:id',
        '2:v',
        '3:a',
        '4:b',
        '5:c',
        '6:d',
        '7:e',
        '8:f',
      ]);
    } finally {
      await p.end();
      await source.close();
      await conn.end();
    }
  });

  it('carries column renames and drops in the checkpoint (schema history) until a row of the table takes them to the target', async () => {
    const db = 'ddl_colchanges';
    await server.createDatabase(db);
    const conn = await session(server, db);
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT, c INT)');
    await conn.query('INSERT INTO t VALUES (1, 1, 1, 1)');
    const make = () =>
      new MysqlSource(sourceConfig(server, { databases: [db], resume_by_gtid: false }), testContext(db), {
        batch: BATCH,
      });
    const first = make();
    await first.open(null);
    const p1 = new Puller(first);
    let afterDdl: Checkpoint;
    try {
      await p1.until((b) => b.some((x) => snapshotDone(x)));
      await conn.query('ALTER TABLE t RENAME COLUMN a TO x, DROP COLUMN b');
      await conn.query('ALTER TABLE t CHANGE x y INT, RENAME COLUMN c TO z');
      await p1.until((b) => events(b).filter((e) => e.op === 'message').length === 2);
      const ddl = events(p1.batches).filter((e) => e.op === 'message')[1]!;
      afterDdl = checkpointAfter(p1.batches, ddl)!;
      // By identity: a renamed twice (2), c renamed (4), b dropped (3); the target still has the snapshot's columns.
      expect(historyOf(afterDdl.state, `${db}.t`)).toEqual({
        columns: ['1:id', '2:y', '4:z'],
        delivered: ['1:id', '2:a', '3:b', '4:c'],
      });
    } finally {
      await p1.end();
      await first.close();
    }
    await conn.query('INSERT INTO t VALUES (2, 2, 2)');
    await conn.query('INSERT INTO t VALUES (3, 3, 3)');
    const second = make();
    await second.open(afterDdl);
    const p2 = new Puller(second);
    try {
      await p2.until((b) => events(b).some((e) => e.after?.id === '3'));
      const evs = events(p2.batches);
      expect(evs[0]!.schema.changes).toEqual([
        { kind: 'drop', column: 'b' },
        { kind: 'rename', from: 'a', to: 'y' },
        { kind: 'rename', from: 'c', to: 'z' },
      ]);
      // Delivered with the first row: the checkpoints after it say the target has the table's shape.
      const after = lastCheckpoint(p2.batches)?.state;
      expect(historyOf(after, `${db}.t`)).toEqual({
        columns: ['1:id', '2:y', '4:z'],
        delivered: ['1:id', '2:y', '4:z'],
      });
      expect(pendingState(after)).toEqual({});
    } finally {
      await p2.end();
      await second.close();
    }
    // The same checkpoint as an older version saved it: no history, the pending renames and drops by name.
    const older: Checkpoint = {
      ...afterDdl,
      state: {
        renamedColumns: {
          [`${db}.t`]: [
            { from: 'a', to: 'y' },
            { from: 'c', to: 'z' },
          ],
        },
        droppedColumns: { [`${db}.t`]: ['b'] },
      },
    };
    const third = make();
    await third.open(older);
    const p3 = new Puller(third);
    try {
      await p3.until((b) => events(b).some((e) => e.after?.id === '3'));
      expect(events(p3.batches)[0]!.schema.changes).toEqual([
        { kind: 'drop', column: 'b' },
        { kind: 'rename', from: 'a', to: 'y' },
        { kind: 'rename', from: 'c', to: 'z' },
      ]);
      const after = lastCheckpoint(p3.batches)?.state;
      expect(historyOf(after, `${db}.t`)?.columns?.map((c) => c.split(':')[1])).toEqual(['id', 'y', 'z']);
    } finally {
      await p3.end();
      await third.close();
      await conn.end();
    }
  });

  it('without a snapshot, renames and drops made before a table first has rows still reach the target', async () => {
    const db = 'ddl_never';
    await server.createDatabase(db);
    const conn = await session(server, db);
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT, c INT)');
    await conn.query('INSERT INTO t VALUES (1, 1, 1, 1)');
    const source = new MysqlSource(sourceConfig(server, { databases: [db], snapshot: 'never' }), testContext(db), {
      batch: BATCH,
    });
    await source.open(null);
    const p = new Puller(source);
    try {
      await conn.query('ALTER TABLE t RENAME COLUMN a TO x, DROP COLUMN b');
      await conn.query('INSERT INTO t VALUES (2, 2, 2)');
      await p.until((b) => events(b).some((e) => e.after?.id === '2'));
      const insert = events(p.batches).find((e) => e.op === 'insert')!;
      expect(insert.schema.changes).toEqual([
        { kind: 'drop', column: 'b' },
        { kind: 'rename', from: 'a', to: 'x' },
      ]);
      const after = historyOf(lastCheckpoint(p.batches)?.state, `${db}.t`);
      expect(after?.columns?.map((c) => c.split(':')[1])).toEqual(['id', 'x', 'c']);
      expect(after?.delivered).toEqual(after?.columns);
    } finally {
      await p.end();
      await source.close();
      await conn.end();
    }
  });

  for (const byGtid of [true, false]) {
    it(`resumes right after a DDL neither repeating nor skipping it (${byGtid ? 'GTID' : 'file+pos'})`, async () => {
      const db = `ddl_resume_${byGtid ? 'gtid' : 'pos'}`;
      await server.createDatabase(db);
      const conn = await session(server, db);
      await conn.query('CREATE TABLE t (id INT PRIMARY KEY)');
      await conn.query('INSERT INTO t VALUES (1), (2)');
      const options = { databases: [db], resume_by_gtid: byGtid };
      const make = () => new MysqlSource(sourceConfig(server, options), testContext(db), { batch: BATCH });
      const first = make();
      await first.open(null);
      const p1 = new Puller(first);
      let beforeDdl: Checkpoint;
      let afterDdl: Checkpoint;
      try {
        await p1.until((b) => b.some((x) => snapshotDone(x)));
        beforeDdl = lastCheckpoint(p1.batches)!;
        await conn.query("ALTER TABLE t ADD COLUMN a VARCHAR(10) NOT NULL DEFAULT 'seven'");
        await p1.until((b) => events(b).some((e) => e.op === 'message'));
        const ddl = events(p1.batches).find((e) => e.op === 'message')!;
        afterDdl = checkpointAfter(p1.batches, ddl)!;
        expect(afterDdl).not.toBeNull();
        expect(comparePositions(afterDdl.position, beforeDdl.position)).toBeGreaterThan(0);
        // The DDL's position is the start of its event group: at or after the previous commit point, before its own.
        const at = { ...ddl.source.position, kind: 'mysql' } as Checkpoint['position'];
        expect(comparePositions(at, beforeDdl.position)).toBeGreaterThanOrEqual(0);
        expect(comparePositions(at, afterDdl.position)).toBeLessThan(0);
        // The added column travels in the checkpoint until a row of the table carries it.
        expect(pendingState(afterDdl.state)).toEqual({ addedColumns: { [`${db}.t`]: { a: 'seven' } } });
      } finally {
        await p1.end();
        await first.close();
      }
      await conn.query('INSERT INTO t (id) VALUES (3)');
      await conn.query('INSERT INTO t (id) VALUES (4)');

      // From right after the DDL: the row comes, the DDL does not, and the row still tells what rows 1, 2 read.
      const second = make();
      await second.open(afterDdl);
      const p2 = new Puller(second);
      try {
        await p2.until((b) => events(b).some((e) => e.after?.id === '4'));
        const evs = events(p2.batches);
        expect(evs.map(label)).toEqual(['insert:3', 'insert:4']);
        expect(missing(evs[0]!.schema)).toEqual({ id: undefined, a: 'seven' });
        expect(pendingState(lastCheckpoint(p2.batches)!.state)).toEqual({});
      } finally {
        await p2.end();
        await second.close();
      }

      // From right before it: the DDL comes once, then the rows, in a process that never saw the table before.
      const third = make();
      await third.open(beforeDdl);
      const p3 = new Puller(third);
      try {
        await p3.until((b) => events(b).some((e) => e.after?.id === '4'));
        const evs = events(p3.batches);
        expect(evs.map(label)).toEqual([
          "ddl:ALTER TABLE t ADD COLUMN a VARCHAR(10) NOT NULL DEFAULT 'seven'",
          'insert:3',
          'insert:4',
        ]);
        expect(missing(evs[1]!.schema)).toEqual({ id: undefined, a: 'seven' });
      } finally {
        await p3.end();
        await third.close();
        await conn.end();
      }
    });
  }
});

describe.each(mysqlFlavors())('MariaDB -> PostgreSQL: a column added with a default ($name)', (flavor) => {
  let pgServer: PgServer;
  let myServer: MysqlServer;
  beforeAll(async () => {
    [pgServer, myServer] = await Promise.all([startPostgres(), flavor.start()]);
  });
  afterAll(async () => {
    await Promise.all([pgServer?.stop(), myServer?.stop()]);
  });

  async function pgRows(url: string, sql: string): Promise<Record<string, unknown>[]> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  }

  function startPipeline(targetUrl: string) {
    const ctx = testContext('m2p_added');
    const pipeline = new Pipeline({
      name: 'm2p_added',
      createParts: () => {
        const target = new PostgresTarget(postgresTargetConfig.parse({ type: 'postgres', url: targetUrl }), ctx);
        // By file+pos: after a GTID resume the first transaction's events carry position 4 (a known source bug,
        // test/faults/mariadb-gtid-resume.test.ts), which the PostgreSQL target takes as already applied.
        const source = new MysqlSource(
          sourceConfig(myServer, { databases: ['m2p_added'], resume_by_gtid: false }),
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
    const running = pipeline.run().catch(() => undefined);
    return {
      ctx,
      pipeline,
      stop: async () => {
        pipeline.stop();
        await running;
      },
    };
  }

  async function waitFor(what: string, check: () => Promise<boolean>, logs: Record<string, unknown>[]) {
    const deadline = Date.now() + 60_000;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) {
        const problems = logs.filter((l) => Number(l.level) >= 40);
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(problems.slice(-3))}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('gives the rows that existed before ADD COLUMN the default at the target, across a restart', async () => {
    await myServer.createDatabase('m2p_added');
    const conn = await session(myServer, 'm2p_added');
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY, v INT)');
    await conn.query('INSERT INTO t VALUES (1, 1), (2, 2)');
    const targetUrl = await pgServer.createDatabase('m2p_added_dst');
    const rows = () => pgRows(targetUrl, 'select id, v, a, b, c from m2p_added.t order by id');
    let run = startPipeline(targetUrl);
    try {
      await waitFor(
        'snapshot',
        async () => (await pgRows(targetUrl, 'select id from m2p_added.t')).length === 2,
        run.ctx.logs,
      );
      await conn.query("ALTER TABLE t ADD COLUMN a INT NOT NULL DEFAULT 7, ADD COLUMN b VARCHAR(10) DEFAULT 'x y'");
      // Stop once the checkpoint right after the DDL is saved: the rows with the new columns come after a restart.
      await waitFor('the checkpoint after the DDL', async () => !!run.pipeline.state.checkpoint?.state, run.ctx.logs);
      await run.stop();
      await conn.query('INSERT INTO t (id, v, a, b) VALUES (3, 3, 8, NULL)');
      await conn.query('ALTER TABLE t ADD COLUMN c INT DEFAULT 5');
      await conn.query('UPDATE t SET v = 20 WHERE id = 2');
      run = startPipeline(targetUrl);
      await waitFor('the update', async () => (await rows()).some((r) => r.id === 2 && r.v === 20), run.ctx.logs);
      expect(await rows()).toEqual([
        { id: 1, v: 1, a: 7, b: 'x y', c: 5 },
        { id: 2, v: 20, a: 7, b: 'x y', c: 5 },
        { id: 3, v: 3, a: 8, b: null, c: 5 },
      ]);
    } finally {
      await run.stop();
      await conn.end();
    }
  });
});
