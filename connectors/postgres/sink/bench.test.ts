/**
 * Throughput of the target against COPY for the same rows. Not part of the normal run (no timing assertions):
 * TRIBUTARY_BENCH=1 npx vitest run connectors/postgres/sink/bench.test.ts
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { col, EventSource, tableSchema, testContext } from '../../../test/fixtures/change-events.ts';
import { type PgServer, startPostgres } from '../../../test/harness/postgres.ts';
import { postgresTargetConfig } from './config.ts';
import { PostgresTarget } from './target.ts';

const ROWS = 100_000;
const BATCH = 5_000;
let server: PgServer;

describe.runIf(process.env.TRIBUTARY_BENCH)(
  'PostgresTarget throughput (opt-in: skipped unless TRIBUTARY_BENCH=1)',
  () => {
    beforeAll(async () => {
      server = await startPostgres({ throwaway: true });
    });
    afterAll(async () => server?.stop());

    it(`inserts ${ROWS} rows, then the same rows by COPY`, async () => {
      const url = await server.createDatabase('bench');
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
      const target = new PostgresTarget(postgresTargetConfig.parse({ type: 'postgres', url }), testContext('bench'));
      await target.open();
      let t0 = performance.now();
      await Promise.all(batches.map((b) => target.write(b)));
      const targetMs = performance.now() - t0;
      // Updates of every row (upsert path on existing rows).
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

      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-')), 'rows.tsv');
      fs.writeFileSync(
        file,
        `${Array.from({ length: ROWS }, (_, i) => Object.values(row(i)).join('\t')).join('\n')}\n`,
      );
      await server.query('bench', 'create table wide_copy (like public.wide including all)');
      t0 = performance.now();
      execFileSync('psql', [server.url('bench'), '-qc', `\\copy wide_copy from '${file}'`]);
      const copyMs = performance.now() - t0;
      const rate = (ms: number) => Math.round((ROWS / ms) * 1000);
      console.log(
        `target insert: ${rate(targetMs)} rows/s (${Math.round(targetMs)} ms); target update: ${rate(updateMs)} rows/s; COPY: ${rate(copyMs)} rows/s (${Math.round(copyMs)} ms)`,
      );
    });
  },
);
