import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { comparePositions } from '../../../src/checkpoint-order.ts';
import type { ChangeBatch } from '../../../src/core/change-batch.ts';
import type { ChangeEvent } from '../../../src/core/change-event.ts';
import { isSnapshotProgress } from '../../../src/core/checkpoint.ts';
import { SnapshotProgress, type TableSnapshotReport } from '../../../src/observability/snapshot-progress.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import {
  events,
  gtidSetPattern,
  lastCheckpoint,
  makeSource,
  Puller,
  session,
  silentLogger,
  snapshotDone,
  sourceConfig,
} from './source.test-support.ts';
import { MysqlSource } from './source.ts';

/** Applies change events to an in-memory copy keyed by `id`, failing on a duplicate insert or a missing delete. */
class Replica {
  readonly rows = new Map<string, Record<string, unknown>>();
  readonly problems: string[] = [];
  apply(e: ChangeEvent): void {
    const id = String((e.after ?? e.before)?.id);
    switch (e.op) {
      case 'truncate':
        this.rows.clear();
        break;
      case 'read':
        this.rows.set(id, e.after!);
        break;
      case 'insert':
        if (this.rows.has(id)) this.problems.push(`duplicate insert ${id}`);
        this.rows.set(id, e.after!);
        break;
      case 'update':
        if (!this.rows.has(String(e.before!.id))) this.problems.push(`update of missing ${String(e.before!.id)}`);
        this.rows.delete(String(e.before!.id));
        this.rows.set(id, e.after!);
        break;
      case 'delete':
        if (!this.rows.delete(id)) this.problems.push(`delete of missing ${id}`);
        break;
    }
  }
}

function checkBatches(batches: ChangeBatch[]): void {
  batches.forEach((b, i) => {
    expect(b.seq).toBe(i);
  });
}

describe.each(mysqlFlavors())('mysql source: snapshot and streaming ($name)', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start();
  });
  afterAll(async () => server?.stop());

  for (const withoutReload of [false, true]) {
    it(`loses and duplicates nothing when writes continue during the snapshot${withoutReload ? ' (a user without RELOAD: no global lock)' : ''}`, async () => {
      const live = withoutReload ? 'live_norel' : 'live';
      await server.createDatabase(live);
      const conn = await session(server, live);
      await conn.query('CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40))');
      await conn.query('CREATE TABLE other (id INT PRIMARY KEY)');
      await conn.query(`INSERT INTO t SELECT seq, 0, 'initial' FROM ${server.series(1, 20000)}`);

      let url = server.url();
      if (withoutReload) {
        // What a least-privilege replication user has (on MySQL: caching_sha2_password with a password, no TLS).
        await server.query("CREATE USER IF NOT EXISTS 'norel'@'%' IDENTIFIED BY 'pw-norel'");
        await server.query("GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'norel'@'%'");
        url = url.replace('root@', 'norel:pw-norel@');
      }
      const source = makeSource(server, live, { url, databases: [live], snapshot_chunk_rows: 500 });
      await source.open(null);
      const puller = new Puller(source);
      let writing = true;
      let writes = 0;
      const writer = (async () => {
        let next = 20001;
        while (writing) {
          const k = 1 + Math.floor(Math.random() * 20000);
          await conn.query('BEGIN');
          await conn.query('INSERT INTO t VALUES (?, 1, ?)', [next++, 'new']);
          await conn.query('UPDATE t SET v = v + 1 WHERE id = ?', [k]);
          await conn.query('DELETE FROM t WHERE id = ?', [k + 7]);
          await conn.query('COMMIT');
          writes++;
          // Without a lock, the snapshot starts in a moment without commits (a busy server needs RELOAD).
          if (withoutReload) await new Promise((r) => setTimeout(r, 40));
        }
        await conn.query("INSERT INTO t VALUES (999999, 0, 'end')");
      })();
      try {
        // Let the writer run through the whole snapshot and a little streaming.
        await puller.until((b) => b.some((x) => snapshotDone(x)), 60_000);
        const snapshotBatches = puller.batches.length;
        await new Promise((r) => setTimeout(r, 300));
        writing = false;
        await writer;
        await puller.until((b) => events(b).some((e) => e.after?.id === '999999'), 60_000);
        checkBatches(puller.batches);

        const replica = new Replica();
        for (const e of events(puller.batches)) replica.apply(e);
        expect(replica.problems).toEqual([]);
        const rows = await server.query<{ id: number; v: number; note: string }>(
          'SELECT id, v, note FROM t ORDER BY id',
          [],
          live,
        );
        expect(replica.rows.size).toBe(rows.length);
        for (const r of rows) {
          expect(replica.rows.get(String(r.id))).toEqual({ id: String(r.id), v: String(r.v), note: r.note });
        }
        expect(writes).toBeGreaterThan(withoutReload ? 3 : 10);
        // Snapshot batches before the hand-off carry no checkpoint, or a chunk's progress at the snapshot's position.
        for (const b of puller.batches.slice(0, snapshotBatches - 1))
          expect(b.checkpoint === null || isSnapshotProgress(b.checkpoint)).toBe(true);
        const reads = events(puller.batches).filter((e) => e.op === 'read').length;
        console.log(`snapshot: ${reads} rows read while ${writes} transactions were written`);
      } finally {
        writing = false;
        await writer.catch(() => undefined);
        await puller.end();
        await source.close();
        await conn.end();
      }
    });
  }

  it.runIf(flavor.name === 'mysql')(
    'takes no global lock with GTIDs on: writers are not held behind a long query',
    async () => {
      await server.createDatabase('lockwait');
      const conn = await session(server, 'lockwait');
      await conn.query('CREATE TABLE t (id INT PRIMARY KEY)');
      await conn.query('CREATE TABLE w (id INT PRIMARY KEY)');
      await conn.query('INSERT INTO t VALUES (1), (2)');
      // A long query keeps t open: FLUSH TABLES WITH READ LOCK would wait for it, and every writer behind the lock.
      const reader = await session(server, 'lockwait');
      const longQuery = reader.query('SELECT SLEEP(20) FROM t LIMIT 1').catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      const source = makeSource(server, 'lockwait', { databases: ['lockwait'] });
      await source.open(null);
      const puller = new Puller(source);
      try {
        const snapshot = puller.until((b) => b.some((x) => snapshotDone(x)), 60_000);
        await new Promise((r) => setTimeout(r, 500));
        const started = Date.now();
        await conn.query('INSERT INTO w VALUES (1)');
        const insertMs = Date.now() - started;
        await snapshot;
        // Not held behind the long query (FLUSH TABLES WITH READ LOCK made it wait the 20 s).
        expect(insertMs).toBeLessThan(12_000);
        expect(
          events(puller.batches)
            .filter((e) => e.op === 'read')
            .map((e) => `${e.table.name}:${String(e.after?.id)}`)
            .sort(),
        ).toEqual(expect.arrayContaining(['t:1', 't:2']));
      } finally {
        await puller.end();
        await source.close();
        await reader.destroy();
        await longQuery;
        await conn.end();
      }
    },
  );

  for (const byGtid of [true, false]) {
    it(`resumes from a checkpoint without loss or redelivery (${byGtid ? 'GTID' : 'file+pos'})`, async () => {
      const db = `resume_${byGtid ? 'gtid' : 'pos'}`;
      await server.createDatabase(db);
      const conn = await session(server, db);
      await conn.query('CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))');
      await conn.query('CREATE TABLE ignored (id INT PRIMARY KEY)');
      await conn.query("INSERT INTO t VALUES (1, 'a'), (2, 'b')");
      const options = { tables: [`${db}.t`], resume_by_gtid: byGtid };
      const first = makeSource(server, db, options);
      await first.open(null);
      const p1 = new Puller(first);
      await p1.until((b) => b.some((x) => snapshotDone(x)));
      for (let i = 3; i <= 10; i++) await conn.query('INSERT INTO t VALUES (?, ?)', [i, `v${i}`]);
      await p1.until((b) => events(b).filter((e) => e.op === 'insert').length === 8);
      const cp = lastCheckpoint(p1.batches)!;
      expect(cp.phase).toBe('stream');
      const delivered = events(p1.batches).filter((e) => e.op === 'insert');
      await p1.end();
      await first.commit(cp);
      await first.close();

      // While the replicator is down: changes, including a multi-row transaction and writes to another table.
      await conn.query('BEGIN');
      await conn.query("UPDATE t SET v = 'changed' WHERE id = 1");
      await conn.query('DELETE FROM t WHERE id = 2');
      await conn.query("INSERT INTO t VALUES (11, 'x')");
      await conn.query('COMMIT');
      await conn.query('INSERT INTO ignored VALUES (1)');
      await conn.query('TRUNCATE TABLE ignored');

      const second = makeSource(server, db, options);
      await second.open(cp);
      const p2 = new Puller(second);
      try {
        await p2.until((b) => events(b).some((e) => e.op === 'insert' && e.after?.id === '11'));
        const evs = events(p2.batches);
        expect(evs.map((e) => `${e.op}:${String((e.after ?? e.before)?.id)}`)).toEqual([
          'update:1',
          'delete:2',
          'insert:11',
        ]);
        expect(evs[0]!.before).toEqual({ id: '1', v: 'a' });
        expect(evs.map((e) => e.source.txId)).toEqual([evs[0]!.source.txId, evs[0]!.source.txId, evs[0]!.source.txId]);
        for (const d of delivered)
          expect(evs.some((e) => e.after?.id === d.after?.id && e.op === 'insert')).toBe(false);
        const cp2 = lastCheckpoint(p2.batches)!;
        expect(comparePositions(cp2.position, cp.position)).toBeGreaterThan(0);
        if (cp2.position.kind === 'mysql') expect(cp2.position.gtidSet).toMatch(gtidSetPattern(server));
        checkBatches(p2.batches);

        // Writes to tables not replicated still move the checkpoint (heartbeat batches).
        const before = lastCheckpoint(p2.batches)!;
        for (let i = 2; i <= 4; i++) await conn.query('INSERT INTO ignored VALUES (?)', [i]);
        await p2.until((b) => {
          const c = lastCheckpoint(b);
          return !!c && comparePositions(c.position, before.position) > 0;
        });
        const hb = p2.batches[p2.batches.length - 1]!;
        expect(hb.events).toHaveLength(0);
      } finally {
        await p2.end();
        await second.close();
        await conn.end();
      }
    });
  }

  it('emits TRUNCATE and ALTER TABLE, and follows the ALTER from the next event', async () => {
    await server.createDatabase('ddl');
    const conn = await session(server, 'ddl');
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY, a INT)');
    const source = makeSource(server, 'ddl', { databases: ['ddl'], snapshot: 'never' });
    await source.open(null);
    const p = new Puller(source);
    try {
      await conn.query('INSERT INTO t VALUES (1, 1)');
      await conn.query('ALTER TABLE t ADD COLUMN b VARCHAR(10) AFTER id');
      await conn.query("INSERT INTO t VALUES (2, 'bee', 2)");
      await conn.query('TRUNCATE TABLE t');
      await p.until((b) => events(b).some((e) => e.op === 'truncate'));
      const evs = events(p.batches);
      expect(evs.map((e) => e.op)).toEqual(['insert', 'message', 'insert', 'truncate']);
      expect(evs[0]!.after).toEqual({ id: '1', a: '1' });
      expect(evs[1]!.message?.prefix).toBe('tributary.ddl');
      expect(evs[2]!.after).toEqual({ id: '2', b: 'bee', a: '2' });
      expect(evs[2]!.schema.columns.map((c) => c.name)).toEqual(['id', 'b', 'a']);
      expect(evs[3]!.table).toEqual({ schema: 'ddl', name: 't' });
      expect(p.batches[p.batches.length - 1]!.checkpoint).not.toBeNull();
    } finally {
      await p.end();
      await source.close();
      await conn.end();
    }
  });

  it('redoes an interrupted initial_only snapshot, each table preceded by a truncate', async () => {
    await server.createDatabase('redo');
    const conn = await session(server, 'redo');
    await conn.query('CREATE TABLE a (id INT PRIMARY KEY)');
    await conn.query('CREATE TABLE b (id INT PRIMARY KEY)');
    await conn.query(`INSERT INTO a SELECT seq FROM ${server.series(1, 3000)}`);
    await conn.query(`INSERT INTO b SELECT seq FROM ${server.series(1, 10)}`);
    const options = { databases: ['redo'], snapshot_chunk_rows: 1000, snapshot: 'initial_only' as const };
    const first = makeSource(server, 'redo', options, { max_events: 500 });
    await first.open(null);
    const p1 = new Puller(first);
    await p1.until((b) => b.length >= 2);
    const interrupted = lastCheckpoint(p1.batches);
    await p1.end();
    await first.close();
    expect(interrupted?.phase ?? 'snapshot').toBe('snapshot');

    await conn.query('DELETE FROM a WHERE id <= 100');
    const second = makeSource(server, 'redo', options, { max_events: 500 });
    await second.open(interrupted);
    const p2 = new Puller(second);
    try {
      await p2.until((b) => b.some((x) => snapshotDone(x)));
      const evs = events(p2.batches);
      expect(evs[0]!.op).toBe('truncate');
      expect(evs[0]!.table.name).toBe('a');
      const truncB = evs.findIndex((e) => e.op === 'truncate' && e.table.name === 'b');
      expect(truncB).toBe(2901);
      expect(evs.filter((e) => e.op === 'read')).toHaveLength(2910);
      // A replica that received part of the first attempt ends equal to the source.
      const replica = new Replica();
      for (const e of [...events(p1.batches), ...evs].filter((e) => e.table.name === 'a')) replica.apply(e);
      expect(replica.rows.size).toBe(2900);
      expect(replica.rows.has('1')).toBe(false);
    } finally {
      await p2.end();
      await second.close();
      await conn.end();
    }
  });

  it('resumes an interrupted initial snapshot after its last durable chunk, streaming from its position', async () => {
    await server.createDatabase('resume');
    const conn = await session(server, 'resume');
    await conn.query('CREATE TABLE a (id INT PRIMARY KEY)');
    await conn.query('CREATE TABLE b (id INT PRIMARY KEY)');
    await conn.query(`INSERT INTO a SELECT seq FROM ${server.series(1, 3000)}`);
    await conn.query(`INSERT INTO b SELECT seq FROM ${server.series(1, 10)}`);
    const options = { databases: ['resume'], snapshot_chunk_rows: 1000 };
    const first = makeSource(server, 'resume', options, { max_events: 500 });
    await first.open(null);
    const p1 = new Puller(first);
    const progress = (b: ChangeBatch) =>
      b.checkpoint?.state?.snapshot as { initial?: boolean; pending: { table: string; lastKey: string[] | null }[] };
    await p1.until((bs) => bs.some((b) => progress(b)?.pending[0]?.lastKey));
    const interrupted = p1.batches.find((b) => progress(b)?.pending[0]?.lastKey)!.checkpoint!;
    await p1.end();
    await first.close();
    // A chunk's checkpoint: the stream position of the snapshot, with the copy's progress.
    expect(interrupted.phase).toBe('stream');
    expect(progress({ checkpoint: interrupted } as ChangeBatch)).toMatchObject({
      initial: true,
      pending: [
        { table: 'resume.a', lastKey: ['999'], rows: 999 },
        { table: 'resume.b', lastKey: null, rows: 0 },
      ],
    });

    await conn.query('DELETE FROM a WHERE id <= 100 OR id = 2000');
    const second = makeSource(server, 'resume', options, { max_events: 500 });
    await second.open(interrupted);
    const p2 = new Puller(second);
    try {
      await p2.until((bs) => bs.some((b) => b.events.some((e) => e.op === 'read' && e.table.name === 'b')));
      const evs = events(p2.batches);
      // The deletes come from the stream; the copy goes on after the last durable key, without emptying a again.
      expect(evs.filter((e) => e.op === 'delete').map((e) => e.before?.id)).toHaveLength(101);
      expect(evs.some((e) => e.op === 'truncate' && e.table.name === 'a')).toBe(false);
      const readA = evs.filter((e) => e.op === 'read' && e.table.name === 'a').map((e) => Number(e.after?.id));
      expect(readA[0]).toBe(1000);
      expect(readA).toHaveLength(2000);
      expect(readA.includes(2000)).toBe(false);
      const truncB = evs.findIndex((e) => e.op === 'truncate' && e.table.name === 'b');
      expect(truncB).toBeGreaterThan(-1);
      expect(evs.findIndex((e) => e.op === 'read' && e.table.name === 'b')).toBeGreaterThan(truncB);
    } finally {
      await p2.end();
      await second.close();
      await conn.end();
    }
  });

  it('shows each table copied by the snapshot: rows of the server estimate while running, done with its count', async () => {
    await server.createDatabase('progress');
    const conn = await session(server, 'progress');
    await conn.query('CREATE TABLE a (id INT PRIMARY KEY, pad VARCHAR(50))');
    await conn.query('CREATE TABLE b (id INT PRIMARY KEY)');
    await conn.query(`INSERT INTO a SELECT seq, 'x' FROM ${server.series(1, 5000)}`);
    await conn.query(`INSERT INTO b SELECT seq FROM ${server.series(1, 7)}`);
    await conn.query('ANALYZE TABLE a, b');
    const progress = new SnapshotProgress();
    const source = new MysqlSource(
      sourceConfig(server, { databases: ['progress'], snapshot_chunk_rows: 1000 }),
      { pipeline: 'progress', logger: silentLogger, snapshotProgress: progress },
      { batch: { max_events: 500, max_bytes: 4 * 1024 * 1024, max_wait_ms: 50 } },
    );
    await source.open(null);
    const p = new Puller(source);
    const seen: TableSnapshotReport[][] = [];
    try {
      await p.until((b) => {
        seen.push(progress.report());
        return b.some((x) => snapshotDone(x));
      });
      const final = progress.report();
      expect(final.map((t) => [t.table, t.status, t.rows_copied])).toEqual([
        ['progress.a', 'done', 5000],
        ['progress.b', 'done', 7],
      ]);
      // The estimate is the server's statistic: near the count, not necessarily equal.
      expect(final[0]!.estimated_rows).toBeGreaterThan(2500);
      // While table a was copied it showed as running, part way.
      expect(seen.flat().some((t) => t.table === 'progress.a' && t.status === 'running' && t.rows_copied < 5000)).toBe(
        true,
      );
    } finally {
      await p.end();
      await source.close();
      await conn.end();
    }
  });
});
