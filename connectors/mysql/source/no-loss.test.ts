import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileCheckpointStore } from '../../../src/checkpoint-stores/file-store.ts';
import type { Checkpoint } from '../../../src/core/checkpoint.ts';
import { TributaryError } from '../../../src/errors.ts';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { jsonlTargetConfig } from '../../jsonl/config.ts';
import { JsonlTarget } from '../../jsonl/target.ts';
import { currentCoordinates } from '../flavor.ts';
import type { MysqlSourceConfigInput } from './config.ts';
import { makeSource, Puller, session, silentLogger } from './source.test-support.ts';

/** Ids of the rows a jsonl file holds as inserted (`after.id`), in file order. */
function insertedIds(file: string): number[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { value: { op: string; after: { id: number | string } | null } | null })
    .filter((l) => l.value?.op === 'c')
    .map((l) => Number(l.value!.after!.id));
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(mysqlFlavors())('mysql source: nothing is lost silently ($name)', (flavor) => {
  let server: MysqlServer;
  let dir: string;
  beforeAll(async () => {
    // Tests here change global server settings.
    server = await flavor.start({ throwaway: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-mysql-noloss-'));
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const pipelineOf = (
    name: string,
    database: string,
    out: string,
    store: FileCheckpointStore,
    extra: Partial<MysqlSourceConfigInput> = {},
  ) =>
    new Pipeline({
      name,
      createParts: () => ({
        source: makeSource(server, name, { databases: [database], snapshot: 'never', ...extra }),
        target: new JsonlTarget(jsonlTargetConfig.parse({ type: 'jsonl', path: out }), {
          pipeline: name,
          logger: silentLogger,
        }),
        store,
      }),
      maxInFlight: 2,
      maxInFlightBytes: 1 << 24,
      initialBackoffMs: 50,
      maxBackoffMs: 100,
      logger: silentLogger,
    });

  it('snapshot never: the start position is saved before running, so changes made while stopped are delivered', async () => {
    await server.createDatabase('quiet');
    const conn = await session(server, 'quiet');
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY)');
    const out = path.join(dir, 'quiet.jsonl');
    const store = new FileCheckpointStore(path.join(dir, 'quiet.json'));
    try {
      // First run on a quiet database, stopped cleanly before any change.
      const first = pipelineOf('quiet', 'quiet', out, store);
      const running = first.run();
      await waitFor('the pipeline to run', () => first.state.status === 'running');
      const savedWhenRunning = await store.load('quiet');
      first.stop();
      await running;
      // Changes while stopped, then a second run.
      await conn.query('INSERT INTO t VALUES (1), (2), (3)');
      const second = pipelineOf('quiet', 'quiet', out, store);
      const again = second.run();
      await conn.query('INSERT INTO t VALUES (4)');
      const [rows] = await conn.query('SELECT id FROM t ORDER BY id');
      const expected = (rows as { id: number }[]).map((r) => r.id);
      await waitFor('row 4 at the target', () => insertedIds(out).includes(4)).catch(() => undefined);
      second.stop();
      await again;
      expect(insertedIds(out).sort((a, b) => a - b)).toEqual(expected);
      expect(savedWhenRunning).not.toBeNull();
    } finally {
      await conn.end();
    }
  });

  it('a clean stop saves the newest position, also when only tables not replicated were written', async () => {
    await server.createDatabase('stopsave');
    await server.createDatabase('elsewhere');
    const conn = await session(server, 'stopsave');
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY)');
    await conn.query('CREATE TABLE elsewhere.other (id INT PRIMARY KEY)');
    const out = path.join(dir, 'stopsave.jsonl');
    const store = new FileCheckpointStore(path.join(dir, 'stopsave.json'));
    try {
      // No heartbeat during the test: only the stop can save the position.
      const p = pipelineOf('stopsave', 'stopsave', out, store, { heartbeat_interval_ms: 600_000 });
      const running = p.run();
      await waitFor('the pipeline to run', () => p.state.status === 'running');
      const started = (await store.load('stopsave'))!.position as { file: string; pos: number };
      await conn.query(`INSERT INTO elsewhere.other SELECT seq FROM ${server.series(1, 100)}`);
      const moved = await currentCoordinates(conn, server.flavor);
      // Time for the reader to see the writes (they are small; the dump thread sends them at once).
      await new Promise((r) => setTimeout(r, 2000));
      p.stop();
      await running;
      const saved = (await store.load('stopsave'))!.position as { file: string; pos: number };
      expect(moved.pos).toBeGreaterThan(started.pos);
      expect(saved).toMatchObject({ file: moved.file, pos: moved.pos });
    } finally {
      await conn.end();
    }
  });

  for (const byGtid of [false, true]) {
    it(`a binlog event that cannot be decoded stops the stream, naming table and the offset where its transaction starts (resumed by ${byGtid ? 'GTID' : 'file+pos'}); no checkpoint past it is saved`, async () => {
      const db = byGtid ? 'drift_gtid' : 'drift';
      await server.createDatabase(db);
      const conn = await session(server, db);
      await conn.query('CREATE TABLE t (id INT PRIMARY KEY, v INT, w INT)');
      const before = await currentCoordinates(conn, server.flavor);
      const out = path.join(dir, `${db}.jsonl`);
      const store = new FileCheckpointStore(path.join(dir, `${db}.json`));
      const start: Checkpoint = {
        pipeline: db,
        phase: 'stream',
        position: byGtid
          ? { kind: 'mysql', file: before.file, pos: before.pos, gtidSet: before.gtidSet }
          : { kind: 'mysql', file: before.file, pos: before.pos },
      };
      await store.save(start);
      try {
        // A row written without full metadata, then a column dropped before the reader reads it: the reader cannot
        // match the event to the table any more. The insert's transaction is the first after the start.
        await server.query("SET GLOBAL binlog_row_metadata = 'MINIMAL'");
        const minimal = await session(server, db);
        await minimal.query('INSERT INTO t VALUES (1, 1, 1)');
        await minimal.end();
        await conn.query('ALTER TABLE t DROP COLUMN w');
        await server.query("SET GLOBAL binlog_row_metadata = 'FULL'");
        // Later transactions that decode well: none of their checkpoints may be saved.
        for (let tx = 0; tx < 3; tx++) {
          await conn.query(`INSERT INTO t SELECT seq, seq FROM ${server.series(10 + tx * 3000, 9 + (tx + 1) * 3000)}`);
        }
        const p = pipelineOf(db, db, out, store);
        const err = await p.run().then(
          () => null,
          (e: unknown) => e,
        );
        // The saved checkpoint is still the start: nothing after the gap was acknowledged.
        expect(await store.load(db)).toEqual(start);
        expect(insertedIds(out)).toEqual([]);
        expect(err).toBeInstanceOf(TributaryError);
        expect((err as TributaryError).kind).toBe('operator');
        expect((err as Error).message).toContain(`${db}.t`);
        // The transaction that failed starts where the pipeline started: that offset, not another one.
        expect((err as Error).message).toContain(`${before.file}:${before.pos}`);
      } finally {
        await server.query("SET GLOBAL binlog_row_metadata = 'FULL'");
        await conn.end();
      }
    });
  }

  for (const image of ['MINIMAL', 'NOBLOB']) {
    it(`a session with binlog_row_image=${image} stops with the fix instead of writing NULLs`, async () => {
      const db = `image_${image.toLowerCase()}`;
      await server.createDatabase(db);
      const conn = await session(server, db);
      await conn.query('CREATE TABLE t (id INT PRIMARY KEY, v INT, doc TEXT)');
      await conn.query("INSERT INTO t VALUES (1, 1, 'a')");
      const source = makeSource(server, db, { databases: [db], snapshot: 'never', heartbeat_interval_ms: 100 });
      await source.open(null);
      const p = new Puller(source);
      try {
        const partial = await session(server, db);
        await partial.query(`SET SESSION binlog_row_image = '${image}'`);
        await partial.query('UPDATE t SET v = 2 WHERE id = 1');
        await partial.end();
        await conn.query("INSERT INTO t VALUES (2, 2, 'b')");
        const err = await p
          .until(() => false, 10_000)
          .then(
            () => null,
            (e: unknown) => e,
          );
        expect(err).toBeInstanceOf(TributaryError);
        expect((err as Error).message).toContain(`${db}.t`);
        expect((err as Error).message).toContain('doc');
        expect((err as TributaryError).hint).toContain('binlog_row_image=FULL');
        // Nothing of the update, and no checkpoint at or after it.
        const handed = p.batches.flatMap((b) => b.events);
        expect(handed.filter((e) => e.op === 'update' || e.key?.id === '2')).toEqual([]);
        expect(p.batches.filter((b) => b.checkpoint)).toEqual([]);
      } finally {
        await source.close();
        await p.end();
        await conn.end();
      }
    });
  }
});
