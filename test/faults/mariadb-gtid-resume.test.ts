import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { Replicator, waitUntil, writePipelineConfig } from './fault-kit.ts';

/**
 * Found by the MariaDB SIGKILL scenario, reproduced here deterministically with clean restarts.
 *
 * Regression test of a fixed bug: after the MySQL source resumed from a checkpoint by GTID (resume_by_gtid, the
 * default), the events of the FIRST transaction it read carried `source.pos = 4` (the fake rotate event's position at
 * the start of the binlog file) instead of their real binlog position. The consequences were:
 * - jsonl/Kafka: the position consumers deduplicate by is wrong (it sorts before the checkpoint), so a consumer
 *   that drops what it has seen drops that transaction.
 * - PostgreSQL target: `eventCovered` compares the event position with the stored checkpoint; pos 4 is "before" it,
 *   so the whole first transaction after every restart is silently skipped: data loss on the target.
 */
describe.each(mysqlFlavors())('MariaDB source: first transaction after a GTID resume ($name)', (flavor) => {
  let mariadb: MysqlServer;
  let target: PgServer;
  let dir: string;
  let targetUrl: string;

  beforeAll(async () => {
    [mariadb, target] = await Promise.all([flavor.start({ throwaway: true }), startPostgres()]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-fault-gtid-'));
    targetUrl = await target.createDatabase('gtid_dst');
  });
  afterAll(async () => {
    await Promise.all([mariadb?.stop(), target?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Streams row 1, stops cleanly, commits rows 2 and 3 (two transactions) while stopped, starts again. */
  async function resumeAcrossTwoTransactions(
    database: string,
    configFile: string,
    replicated: () => Promise<number[]>,
  ) {
    await mariadb.createDatabase(database);
    await mariadb.query(`create table ${database}.t (id int primary key, v varchar(20))`);
    await mariadb.query(`insert into ${database}.t values (1, 'before stop')`);
    const replicator = new Replicator(configFile, path.join(dir, `${database}.log`));
    replicator.start();
    expect(await waitUntil(async () => (await replicated()).includes(1), 60_000), replicator.log()).toBe(true);
    // A streamed transaction after the snapshot, so the saved checkpoint is a streaming one.
    await mariadb.query(`insert into ${database}.t values (10, 'streamed')`);
    expect(await waitUntil(async () => (await replicated()).includes(10), 30_000), replicator.log()).toBe(true);
    expect(await replicator.stop()).toBe(0);
    await mariadb.query(`insert into ${database}.t values (2, 'first after stop')`);
    await mariadb.query(`insert into ${database}.t values (3, 'second after stop')`);
    replicator.start();
    // Row 3 commits after row 2: once it is there, row 2 is too (or was lost).
    expect(await waitUntil(async () => (await replicated()).includes(3), 30_000), replicator.log()).toBe(true);
    expect(await replicator.stop()).toBe(0);
    return replicator;
  }

  it('the PostgreSQL target receives it (it was skipped as already covered)', { timeout: 120_000 }, async () => {
    const configFile = path.join(dir, 'pg.yaml');
    writePipelineConfig(configFile, {
      name: 'gtidpg',
      source: { type: 'mysql', url: mariadb.url(), databases: ['gtidpg'], server_id: 5151 },
      target: { type: 'postgres', url: targetUrl },
      batch: { max_wait_ms: 20 },
    });
    const ids = async () =>
      (await target.query<{ id: number }>('gtid_dst', 'select id from gtidpg.t order by id').catch(() => [])).map(
        (r) => r.id,
      );
    await resumeAcrossTwoTransactions('gtidpg', configFile, ids);
    expect(await ids()).toEqual([1, 2, 3, 10]);
  });

  it('jsonl: its events carry their real binlog position (it was pos 4)', { timeout: 120_000 }, async () => {
    const output = path.join(dir, 'gtid.jsonl');
    const configFile = path.join(dir, 'jsonl.yaml');
    writePipelineConfig(configFile, {
      name: 'gtidjsonl',
      source: { type: 'mysql', url: mariadb.url(), databases: ['gtidjsonl'], server_id: 5152 },
      target: { type: 'jsonl', path: output },
      checkpoints: { type: 'file', path: path.join(dir, 'gtidjsonl.json') },
      batch: { max_wait_ms: 20 },
    });
    const lines = () =>
      fs.existsSync(output)
        ? fs
            .readFileSync(output, 'utf8')
            .split('\n')
            .filter((l) => l)
            .map((l) => JSON.parse(l) as { value: { op: string; after: { id: number }; source: { pos: number } } })
        : [];
    await resumeAcrossTwoTransactions('gtidjsonl', configFile, async () =>
      lines()
        .filter((l) => l.value?.after)
        .map((l) => l.value.after.id),
    );
    const inserts = lines().filter((l) => l.value?.op === 'c');
    const positions = Object.fromEntries(inserts.map((l) => [l.value.after.id, l.value.source.pos]));
    expect(
      Object.keys(positions)
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual([2, 3, 10]);
    // Committed in the order 10, 2, 3: their binlog positions increase in that order.
    expect(positions[2]!, JSON.stringify(positions)).toBeGreaterThan(positions[10]!);
    expect(positions[3]!, JSON.stringify(positions)).toBeGreaterThan(positions[2]!);
  });
});
