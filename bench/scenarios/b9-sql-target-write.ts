/**
 * B9: the SQL targets alone (no source): rows/s of `write` for batches of inserts, then of updates of the same rows,
 * against the server's own bulk load of the same rows into a table of the same shape (PostgreSQL: COPY; MySQL/MariaDB:
 * LOAD DATA LOCAL INFILE, and a multi-row INSERT per 5000 rows). Figures only: no goal.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { MysqlTarget, mysqlTargetConfig } from '../../connectors/mysql/sink/index.ts';
import { PostgresTarget, postgresTargetConfig } from '../../connectors/postgres/sink/index.ts';
import type { ChangeBatch } from '../../src/core/change-batch.ts';
import type { Target } from '../../src/core/target.ts';
import { col, EventSource, tableSchema, testContext } from '../../test/fixtures/change-events.ts';
import { median, timeCommand } from '../lib/measure.ts';
import { pgArgs, pgBin } from '../lib/pg.ts';
import type { BenchContext, ResultRow, Scenario } from '../lib/scenario.ts';

const BATCH = 5_000;

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

/** One source per run: the updates come after the inserts (a target skips what its checkpoint already covers). */
function batches(src: EventSource, rows: number, update: boolean): ChangeBatch[] {
  const out: ChangeBatch[] = [];
  for (let start = 0; start < rows; start += BATCH) {
    out.push(
      src.batch(
        src.tx((t) => {
          for (let i = start; i < Math.min(rows, start + BATCH); i++) {
            if (update) t.update(wide, { ...row(i), b: '7' });
            else t.insert(wide, row(i));
          }
        }),
      ),
    );
  }
  return out;
}

/** rows/s of the target for inserts and for updates of the same rows (a fresh target table each run). */
async function targetRates(make: () => Target, reset: () => Promise<unknown>, rows: number) {
  await reset();
  const target = make();
  await target.open();
  try {
    const src = new EventSource('bench');
    const inserts = batches(src, rows, false);
    let t0 = performance.now();
    await Promise.all(inserts.map((b) => target.write(b)));
    const insertSeconds = (performance.now() - t0) / 1000;
    const updates = batches(src, rows, true);
    t0 = performance.now();
    await Promise.all(updates.map((b) => target.write(b)));
    const updateSeconds = (performance.now() - t0) / 1000;
    return { insert: rows / insertSeconds, update: rows / updateSeconds };
  } finally {
    await target.close();
  }
}

function resultRow(id: string, scenario: string, ours: number[], baseline: number[], notes: string[]): ResultRow {
  const o = ours.length ? median(ours) : null;
  const b = baseline.length ? median(baseline) : null;
  return {
    id,
    scenario,
    unit: 'rows/s',
    ours: o,
    baseline: b,
    ratio: o !== null && b ? o / b : null,
    goal: { kind: 'none' },
    met: null,
    eventsPerCpuSecond: null,
    peakRssMiB: null,
    runs: { ours, baseline },
    notes,
  };
}

function tsv(rows: number, dir: string, d: string): string {
  const file = path.join(dir, `rows-${d.length}.tsv`);
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) {
    const r = row(i);
    lines.push([r.id, r.a, r.b, r.c, d].join('\t'));
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

export const b9: Scenario = {
  id: 'B9',
  title: 'SQL targets alone: write vs bulk load',
  async run(ctx: BenchContext) {
    const rows = ctx.quick ? 20_000 : 100_000;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-bench-b9-'));
    const out: ResultRow[] = [];
    try {
      // PostgreSQL target vs COPY.
      const pg = await ctx.pg();
      const url = await pg.createDatabase('bench_b9');
      const pgFile = tsv(rows, dir, '2024-05-06 07:08:09.123456+00');
      const pgIns: number[] = [];
      const pgUpd: number[] = [];
      const copy: number[] = [];
      for (let run = 0; run < ctx.runs; run++) {
        const r = await targetRates(
          () => new PostgresTarget(postgresTargetConfig.parse({ type: 'postgres', url }), testContext('bench')),
          // The checkpoint too: a second run's batches repeat the first one's positions and would be skipped.
          () =>
            pg.query(
              'bench_b9',
              'drop table if exists public.wide, public.wide_copy; drop schema if exists tributary cascade',
            ),
          rows,
        );
        pgIns.push(r.insert);
        pgUpd.push(r.update);
        await pg.query('bench_b9', 'create table public.wide_copy (like public.wide including all)');
        const { seconds } = await timeCommand(
          pgBin(pg, 'psql'),
          [...pgArgs(pg, 'bench_b9'), '-qc', 'copy wide_copy from stdin'],
          { stdinFile: pgFile },
        );
        copy.push(rows / seconds);
      }
      out.push(resultRow('B9', 'PostgreSQL target inserts (baseline: COPY)', pgIns, copy, []));
      out.push(resultRow('B9', 'PostgreSQL target updates (baseline: COPY)', pgUpd, copy, []));

      // MySQL/MariaDB target vs LOAD DATA LOCAL INFILE and multi-row INSERT.
      const my = await ctx.mariadb();
      await my.createDatabase('bench_b9');
      const myFile = tsv(rows, dir, '2024-05-06 07:08:09.123456');
      const myIns: number[] = [];
      const myUpd: number[] = [];
      const load: number[] = [];
      const multi: number[] = [];
      const notes: string[] = [];
      for (let run = 0; run < ctx.runs; run++) {
        const r = await targetRates(
          () =>
            new MysqlTarget(
              mysqlTargetConfig.parse({ type: 'mysql', url: my.url(), database: 'bench_b9' }),
              testContext('bench'),
            ),
          () =>
            my.query(
              'drop table if exists bench_b9.wide, bench_b9.wide_insert, bench_b9.wide_load, bench_b9.tributary_checkpoints',
            ),
          rows,
        );
        myIns.push(r.insert);
        myUpd.push(r.update);
        const conn = await mysql.createConnection({
          uri: my.url('bench_b9'),
          infileStreamFactory: (p: string) => fs.createReadStream(p),
        });
        try {
          await conn.query('create table wide_insert like wide');
          await conn.query('create table wide_load like wide');
          let t0 = performance.now();
          for (let start = 0; start < rows; start += BATCH) {
            const values: string[] = [];
            for (let i = start; i < Math.min(rows, start + BATCH); i++) {
              const v = row(i);
              values.push(`(${v.id}, ${conn.escape(v.a)}, ${v.b}, ${v.c}, '2024-05-06 07:08:09.123456')`);
            }
            await conn.query('begin');
            await conn.query(`insert into wide_insert (id, a, b, c, d) values ${values.join(',')}`);
            await conn.query('commit');
          }
          multi.push(rows / ((performance.now() - t0) / 1000));
          try {
            t0 = performance.now();
            await conn.query(`load data local infile ${conn.escape(myFile)} into table wide_load (id, a, b, c, d)`);
            load.push(rows / ((performance.now() - t0) / 1000));
          } catch (err) {
            if (run === 0) notes.push(`LOAD DATA LOCAL INFILE unavailable: ${(err as Error).message}`);
          }
        } finally {
          await conn.end();
        }
      }
      if (multi.length)
        notes.push(`multi-row INSERT (${BATCH} rows per statement): ${Math.round(median(multi))} rows/s`);
      out.push(resultRow('B9', `${my.flavor} target inserts (baseline: LOAD DATA)`, myIns, load, notes));
      out.push(resultRow('B9', `${my.flavor} target updates (baseline: LOAD DATA)`, myUpd, load, []));
      ctx.log(`B9: ${rows} rows per run`);
      return out;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};
