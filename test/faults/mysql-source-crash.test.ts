import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlFlavors } from '../harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { mysqlRowDigest, pgRowDigest } from '../harness/table-digest.ts';
import {
  execFileAsync,
  LONG,
  mysqlLedgerLoop,
  Replicator,
  runVerify,
  seededRandom,
  sleep,
  waitUntil,
  writePipelineConfig,
} from './fault-kit.ts';

const SYSBENCH = '/usr/bin/sysbench';
/** Each table with the columns its digest covers (they print alike in both engines). */
const TABLES: [string, string[]][] = [
  ['sbtest1', ['id', 'k', 'c', 'pad']],
  ['sbtest2', ['id', 'k', 'c', 'pad']],
  ['ledger', ['run', 'n', 'note']],
];

/**
 * The SOURCE server process (mariadbd / mysqld) is SIGKILLed while sysbench oltp_write_only and a write loop on a
 * keyless table run, then started again on its data directory (crash recovery). The replicator (MySQL/MariaDB ->
 * PostgreSQL) is never restarted: the pipeline retries by itself until the server answers, resumes from its
 * checkpoint, and every table ends equal by row digests each server computes; the keyless ledger shows that no
 * change was lost or applied twice.
 */
describe.skipIf(!fs.existsSync(SYSBENCH)).each(mysqlFlavors())(
  'fault: the $name source server is SIGKILLed under load',
  (flavor) => {
    let source: MysqlServer;
    let target: PgServer;
    let dir: string;
    let targetUrl: string;

    beforeAll(async () => {
      [source, target] = await Promise.all([flavor.start({ throwaway: true }), startPostgres()]);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-fault-srckill-'));
      await source.createDatabase('sc');
      targetUrl = await target.createDatabase('msc_dst');
    });
    afterAll(async () => {
      await Promise.all([source?.stop(), target?.stop()]);
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    const sysbench = (command: 'prepare' | 'run', extra: string[] = []) =>
      execFileAsync(SYSBENCH, [
        'oltp_write_only',
        '--db-driver=mysql',
        `--mysql-host=${source.host}`,
        `--mysql-port=${source.port}`,
        '--mysql-user=root',
        '--mysql-password=',
        '--mysql-db=sc',
        '--tables=2',
        '--table-size=5000',
        ...extra,
        command,
      ]);

    it('the pipeline retries by itself and ends equal, keyless table included', { timeout: 300_000 }, async () => {
      expect(source.kill && source.start, 'the harness can kill and start this server').toBeTruthy();
      const started = Date.now();
      await sysbench('prepare');
      await source.query('create table ledger (run int not null, n int not null, note varchar(100))', [], 'sc');
      const configFile = path.join(dir, 'pipeline.yaml');
      writePipelineConfig(configFile, {
        name: 'srckill',
        source: { type: 'mysql', url: source.url(), databases: ['sc'], server_id: 4444 },
        target: { type: 'postgres', url: targetUrl },
        batch: { max_wait_ms: 20 },
        retry: { initial_backoff_ms: 200, max_backoff_ms: 2000 },
      });
      const replicator = new Replicator(configFile, path.join(dir, 'replicator.log'));
      replicator.start();
      const streaming = await waitUntil(
        async () =>
          (
            await target
              .query<{ phase: string }>('msc_dst', "select phase from tributary.checkpoints where pipeline = 'srckill'")
              .catch(() => [])
          )[0]?.phase === 'stream',
        120_000,
        250,
      );
      expect(streaming, replicator.log().slice(-4000)).toBe(true);

      const random = seededRandom(`${flavor.name} source server kill schedule`);
      const loop = mysqlLedgerLoop(source.url('sc'));
      const crashes = LONG ? 4 : 2;
      const schedule: string[] = [];
      try {
        for (let i = 0; i < crashes; i++) {
          const loadMs = 3000 + Math.floor(random.next() * 5000);
          const downMs = 500 + Math.floor(random.next() * 3000);
          schedule.push(`${loadMs} ms load, SIGKILL, ${downMs} ms down`);
          // sysbench is cut off by the kill: its failure is expected here.
          const load = sysbench('run', ['--time=60', '--threads=2', '--rate=300', '--report-interval=0']).catch(
            () => undefined,
          );
          await sleep(loadMs);
          await source.kill!();
          await load;
          await sleep(downMs);
          await source.start!();
          expect(replicator.running, replicator.log().slice(-4000)).toBe(true);
        }
        console.info(`[faults] ${flavor.name} source kill schedule: ${schedule.join('; ')}`);
        // Load after the last crash: streaming resumed.
        await sysbench('run', ['--time=5', '--threads=2', '--rate=300', '--report-interval=0']);
      } finally {
        await loop.stop();
      }

      let last: { table: string; source: unknown; target: unknown }[] = [];
      const equal = await waitUntil(
        async () => {
          last = await Promise.all(
            TABLES.map(async ([table, columns]) => ({
              table,
              source: await mysqlRowDigest((sql) => source.query(sql), `sc.${table}`, columns),
              target: await pgRowDigest(targetUrl, `sc.${table}`, columns).catch((err: Error) => err.message),
            })),
          );
          return last.every((t) => JSON.stringify(t.source) === JSON.stringify(t.target));
        },
        180_000,
        1000,
      );
      expect(replicator.running, replicator.log().slice(-4000)).toBe(true);
      const exitCode = await replicator.stop();
      if (!equal) console.error(replicator.log().slice(-8000));
      expect(equal, JSON.stringify(last, null, 2)).toBe(true);
      expect(exitCode).toBe(0);
      const retries = replicator.events('pipeline_retrying');
      expect(replicator.starts).toBe(1);
      expect(retries.length).toBeGreaterThanOrEqual(crashes);
      expect(replicator.events('pipeline_failed')).toEqual([]);
      const verify = await runVerify(configFile);
      expect(verify.code, verify.output).toBe(0);
      console.info(
        `[faults] ${flavor.name} source kill: ${crashes} server SIGKILLs, ${retries.length} pipeline retries (one process), digests equal (${last.map((t) => `${t.table} ${(t.source as { rows: number }).rows} rows`).join(', ')}), verify exit ${verify.code}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    });
  },
);
