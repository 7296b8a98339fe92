import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { comparePositions } from '../../../src/checkpoint-order.ts';
import type { ChangeBatch } from '../../../src/core/change-batch.ts';
import type { CheckpointPosition } from '../../../src/core/checkpoint.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { events, lastCheckpoint, makeSource, Puller, session } from './source.test-support.ts';

interface BinlogEventRow {
  Log_name: string;
  Pos: number;
  Event_type: string;
  End_log_pos: number;
  Info: string;
}

/** Each event group of the server's binlogs by GTID: the file, the offset of its GTID event, the offset after it. */
async function groupsByGtid(server: MysqlServer): Promise<Map<string, { file: string; start: number; end: number }>> {
  const out = new Map<string, { file: string; start: number; end: number }>();
  const logs = await server.query<{ Log_name: string }>('SHOW BINARY LOGS');
  for (const { Log_name: file } of logs) {
    const rows = await server.query<BinlogEventRow>(`SHOW BINLOG EVENTS IN '${file}'`);
    let open: { gtid: string; start: number } | null = null;
    for (const r of rows) {
      // MariaDB: `BEGIN GTID 0-1-5`; MySQL: `SET @@SESSION.GTID_NEXT= 'uuid:5'`.
      const gtid = /GTID (\d+-\d+-\d+)|GTID_NEXT= '([^']+)'/
        .exec(r.Info ?? '')
        ?.slice(1)
        .find(Boolean);
      if (r.Event_type === 'Gtid' && gtid) {
        // A transaction ends with its XID event; a standalone group (DDL) is its GTID event and one statement.
        open = { gtid, start: Number(r.Pos) };
        continue;
      }
      if (!open) continue;
      if (r.Event_type === 'Xid' || (r.Event_type === 'Query' && !/^BEGIN/i.test(r.Info ?? ''))) {
        out.set(open.gtid, { file: String(file), start: open.start, end: Number(r.End_log_pos) });
        open = null;
      }
    }
  }
  return out;
}

function mysqlPos(p: CheckpointPosition): { file: string; pos: number } {
  if (p.kind !== 'mysql') throw new Error('not a MySQL position');
  return { file: p.file, pos: p.pos };
}

describe.each(mysqlFlavors())('mysql source: positions of events and checkpoints ($name)', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start();
  });
  afterAll(async () => server?.stop());

  for (const byGtid of [true, false]) {
    it(`events after a resume (${byGtid ? 'GTID' : 'file+pos'}) carry their group's real binlog offset`, async () => {
      const db = `pos_${byGtid ? 'gtid' : 'file'}`;
      await server.createDatabase(db);
      const conn = await session(server, db);
      await conn.query('CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))');
      const options = { databases: [db], snapshot: 'never' as const, resume_by_gtid: byGtid };
      const first = makeSource(server, db, options);
      await first.open(null);
      const p1 = new Puller(first);
      await conn.query("INSERT INTO t VALUES (1, 'a')");
      await p1.until((b) => events(b).length === 1 && !!lastCheckpoint(b));
      const cp = lastCheckpoint(p1.batches)!;
      await p1.end();
      await first.close();
      if (byGtid) expect(cp.position.kind === 'mysql' && cp.position.gtidSet).toBeTruthy();

      // While stopped: two transactions, a DDL statement (its own group) and one more transaction.
      await conn.query("INSERT INTO t VALUES (2, 'first after stop')");
      await conn.query("INSERT INTO t VALUES (3, 'second'), (4, 'second')");
      await conn.query('ALTER TABLE t ADD COLUMN w INT');
      await conn.query("INSERT INTO t VALUES (5, 'last', 5)");

      const second = makeSource(server, db, options);
      await second.open(cp);
      const p2 = new Puller(second);
      try {
        await p2.until((b) => events(b).some((e) => e.after?.id === '5') && lastCheckpoint(b) !== cp);
        const groups = await groupsByGtid(server);
        const evs = events(p2.batches);
        expect(evs.map((e) => `${e.op}:${String(e.after?.id ?? '')}`)).toEqual([
          'insert:2',
          'insert:3',
          'insert:4',
          'message:',
          'insert:5',
        ]);
        const stored = mysqlPos(cp.position);
        for (const e of evs) {
          const p = e.source.position;
          if (p.kind !== 'mysql') throw new Error('not a MySQL position');
          const group = groups.get(String(e.source.txId));
          expect(group, `group of ${e.source.txId}`).toBeDefined();
          // The offset where the event's transaction starts: its GTID event.
          expect({ file: p.file, pos: p.pos }).toEqual({ file: group!.file, pos: group!.start });
          // So a target comparing it with its checkpoint never takes it as delivered.
          expect(comparePositions({ kind: 'mysql', file: p.file, pos: p.pos }, cp.position)).toBeGreaterThanOrEqual(0);
          expect(p.pos).toBeGreaterThanOrEqual(stored.file === p.file ? stored.pos : 4);
        }
        // Every checkpoint is the offset just after its commit (XID event or DDL statement).
        const commits = [...new Set(evs.map((e) => String(e.source.txId)))].map((g) => groups.get(g)!);
        const checkpoints = p2.batches.filter((b) => b.checkpoint).map((b) => mysqlPos(b.checkpoint!.position));
        expect(checkpoints.length).toBeGreaterThan(0);
        for (const c of checkpoints) expect(commits.map((g) => ({ file: g.file, pos: g.end }))).toContainEqual(c);
        const last = commits[commits.length - 1]!;
        expect(mysqlPos(lastCheckpoint(p2.batches)!.position)).toEqual({ file: last.file, pos: last.end });
      } finally {
        await second.close();
        await p2.end();
        await conn.end();
      }
    });
  }

  it('a checkpoint with only a file and offset resumes with the executed GTIDs of that offset', async () => {
    await server.createDatabase('nogtidcp');
    const conn = await session(server, 'nogtidcp');
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY)');
    const options = { databases: ['nogtidcp'], snapshot: 'never' as const };
    const first = makeSource(server, 'nogtidcp', options);
    await first.open(null);
    const p1 = new Puller(first);
    await conn.query('INSERT INTO t VALUES (1)');
    await p1.until((b) => events(b).length === 1 && !!lastCheckpoint(b));
    const cp = lastCheckpoint(p1.batches)!;
    await p1.end();
    await first.close();
    if (cp.position.kind !== 'mysql') throw new Error('not a MySQL position');
    // As written before checkpoints carried GTIDs.
    const { file, pos } = cp.position;
    await conn.query('INSERT INTO t VALUES (2)');
    const second = makeSource(server, 'nogtidcp', options);
    await second.open({ ...cp, position: { kind: 'mysql', file, pos } });
    const p2 = new Puller(second);
    try {
      await p2.until((b) => events(b).length === 1 && !!lastCheckpoint(b));
      expect(events(p2.batches).map((e) => String(e.after?.id))).toEqual(['2']);
      const [executed] = await server.query<{ g: string }>(
        server.flavor === 'mariadb' ? 'SELECT @@GLOBAL.gtid_binlog_pos AS g' : 'SELECT @@GLOBAL.gtid_executed AS g',
      );
      const after = lastCheckpoint(p2.batches)!.position;
      expect(after.kind === 'mysql' && after.gtidSet?.replace(/\s/g, '')).toBe(executed!.g.replace(/\s/g, ''));
    } finally {
      await second.close();
      await p2.end();
      await conn.end();
    }
  });

  it('a batch that fills up exactly at a commit carries its checkpoint, transaction after transaction', async () => {
    await server.createDatabase('fullbatch');
    const conn = await session(server, 'fullbatch');
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))');
    const source = makeSource(
      server,
      'fullbatch',
      // A heartbeat never comes in this test: checkpoints must come with the batches.
      { databases: ['fullbatch'], snapshot: 'never', heartbeat_interval_ms: 600_000 },
      { max_events: 50, max_wait_ms: 50 },
    );
    await source.open(null);
    const p = new Puller(source);
    try {
      // Six transactions of exactly max_events rows, committed back to back (the reader sees them all at once),
      // then one of twice that size (split into two batches, the second with the checkpoint).
      for (let t = 0; t < 6; t++)
        await conn.query(`INSERT INTO t SELECT seq, 'x' FROM ${server.series(t * 50 + 1, t * 50 + 50)}`);
      await conn.query(`INSERT INTO t SELECT seq, 'y' FROM ${server.series(301, 400)}`);
      await p.until((b) => events(b).length === 400 && b[b.length - 1]!.checkpoint !== null, 15_000);
      const groups = await groupsByGtid(server);
      const withEvents = p.batches.filter((b: ChangeBatch) => b.events.length > 0);
      expect(withEvents.map((b) => b.events.length)).toEqual([50, 50, 50, 50, 50, 50, 50, 50]);
      expect(withEvents.map((b) => b.checkpoint !== null)).toEqual([true, true, true, true, true, true, false, true]);
      // Each checkpoint is just after the commit of its batch's transaction.
      for (const b of withEvents.filter((x) => x.checkpoint)) {
        const group = groups.get(String(b.events[b.events.length - 1]!.source.txId))!;
        expect(mysqlPos(b.checkpoint!.position)).toEqual({ file: group.file, pos: group.end });
      }
    } finally {
      // Closing first ends a pull still waiting for a batch.
      await source.close();
      await p.end();
      await conn.end();
    }
  });

  it('a transaction whose last batch went out before its commit was read gets its checkpoint at once', async () => {
    await server.createDatabase('latecommit');
    const conn = await session(server, 'latecommit');
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY)');
    const source = makeSource(
      server,
      'latecommit',
      { databases: ['latecommit'], snapshot: 'never', heartbeat_interval_ms: 600_000 },
      // Two rows events per transaction fill a batch each.
      { max_events: 10, max_wait_ms: 20 },
    );
    await source.open(null);
    const p = new Puller(source);
    try {
      for (let t = 0; t < 3; t++) {
        await conn.query('BEGIN');
        await conn.query(`INSERT INTO t SELECT seq FROM ${server.series(t * 20 + 1, t * 20 + 10)}`);
        await conn.query(`INSERT INTO t SELECT seq FROM ${server.series(t * 20 + 11, t * 20 + 20)}`);
        await conn.query('COMMIT');
      }
      await p.until((b) => events(b).length === 60 && b[b.length - 1]!.checkpoint !== null, 15_000);
      // After each transaction's last event, a checkpoint before the next transaction's first event.
      let seen = 0;
      let checkpoints = 0;
      for (const b of p.batches) {
        seen += b.events.length;
        if (b.checkpoint) {
          expect(seen % 20).toBe(0);
          checkpoints++;
        }
      }
      expect(checkpoints).toBe(3);
    } finally {
      // Closing first ends a pull still waiting for a batch.
      await source.close();
      await p.end();
      await conn.end();
    }
  });
});
