/**
 * Throughput of the target against a plain multi-row INSERT and LOAD DATA LOCAL INFILE for the same rows. Not part
 * of the normal run (no timing assertions):
 * TRIBUTARY_BENCH=1 npx vitest run connectors/mysql/sink/bench.test.ts
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { col, EventSource, tableSchema, testContext } from '../../../test/fixtures/change-events.ts';
import { type MysqlServer, startMariadb } from '../../../test/harness/mariadb.ts';
import { mysqlTargetConfig } from './config.ts';
import { MysqlTarget } from './target.ts';

const ROWS = 100_000;
const BATCH = 5_000;
let server: MysqlServer;

describe.runIf(process.env.TRIBUTARY_BENCH)('MysqlTarget throughput (opt-in: skipped unless TRIBUTARY_BENCH=1)', () => {
  beforeAll(async () => {
    server = await startMariadb({ throwaway: true });
  }, 120_000);
  afterAll(async () => server?.stop());

  it(`inserts ${ROWS} rows, then the same rows by multi-row INSERT and LOAD DATA`, async () => {
    const wide = tableSchema('public.wide', [
      col('id', 'bigint', 'int', true),
      col('a', 'text'),
      col('b', 'integer', 'int'),
      col('c', 'numeric', 'decimal'),
      col('d', 'timestamp with time zone', 'timestamptz'),
    ]);
    const row = (i: number) => ({
      id: String(i),
      a: `row ${i}`,
      b: String(i % 1000),
      c: `${i}.25`,
      d: '2024-05-06 07:08:09.123456+00',
    });
    const src = new EventSource('bench');
    const batches = [];
    for (let start = 0; start < ROWS; start += BATCH) {
      batches.push(
        src.batch(
          src.tx((t) => {
            for (let i = start; i < start + BATCH; i++) t.insert(wide, row(i));
          }),
        ),
      );
    }
    const target = new MysqlTarget(
      mysqlTargetConfig.parse({ type: 'mysql', url: server.url(), database: 'bench' }),
      testContext('bench'),
    );
    await target.open();
    let t0 = performance.now();
    await Promise.all(batches.map((b) => target.write(b)));
    const targetMs = performance.now() - t0;
    const updates = [];
    for (let start = 0; start < ROWS; start += BATCH) {
      updates.push(
        src.batch(
          src.tx((t) => {
            for (let i = start; i < start + BATCH; i++) t.update(wide, { ...row(i), b: '7' });
          }),
        ),
      );
    }
    t0 = performance.now();
    await Promise.all(updates.map((b) => target.write(b)));
    const updateMs = performance.now() - t0;
    await target.close();

    const conn = await mysql.createConnection({
      uri: server.url('bench'),
      infileStreamFactory: (p: string) => fs.createReadStream(p),
    });
    await conn.query('create table wide_insert like wide');
    await conn.query('create table wide_load like wide');
    const lit = (i: number) => {
      const r = row(i);
      return `(${r.id}, ${conn.escape(r.a)}, ${r.b}, ${r.c}, '2024-05-06 07:08:09.123456')`;
    };
    t0 = performance.now();
    for (let start = 0; start < ROWS; start += BATCH) {
      const values = [];
      for (let i = start; i < start + BATCH; i++) values.push(lit(i));
      await conn.query('begin');
      await conn.query(`insert into wide_insert (id, a, b, c, d) values ${values.join(',')}`);
      await conn.query('commit');
    }
    const insertMs = performance.now() - t0;

    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-')), 'rows.tsv');
    fs.writeFileSync(
      file,
      `${Array.from({ length: ROWS }, (_, i) => {
        const r = row(i);
        return [r.id, r.a, r.b, r.c, '2024-05-06 07:08:09.123456'].join('\t');
      }).join('\n')}\n`,
    );
    let loadMs = Number.NaN;
    try {
      t0 = performance.now();
      await conn.query(`load data local infile ${conn.escape(file)} into table wide_load (id, a, b, c, d)`);
      loadMs = performance.now() - t0;
    } catch (err) {
      console.log(`LOAD DATA LOCAL INFILE unavailable: ${(err as Error).message}`);
    }
    await conn.end();
    const rate = (ms: number) => Math.round((ROWS / ms) * 1000);
    console.log(
      `target insert: ${rate(targetMs)} rows/s (${Math.round(targetMs)} ms); target update: ${rate(updateMs)} rows/s; ` +
        `multi-row INSERT: ${rate(insertMs)} rows/s (${Math.round(insertMs)} ms); LOAD DATA LOCAL: ${rate(loadMs)} rows/s (${Math.round(loadMs)} ms)`,
    );
  }, 300_000);
});
