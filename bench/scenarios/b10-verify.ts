/**
 * B10: `verify` (the comparison behind `tributary verify`) on large tables: seconds for PostgreSQL -> PostgreSQL
 * equal and with 2 changed rows, a keyless table with 1 missing row, and PostgreSQL -> MySQL/MariaDB equal and with 1
 * changed row. Each result is checked (a wrong answer fails the scenario); the timings have no goal. What verify
 * reports is asserted by the tests in src/verify/ on small tables.
 */
import { pipelineConfig } from '../../src/config/schema.ts';
import { verifyPipeline } from '../../src/verify/verify.ts';
import { median } from '../lib/measure.ts';
import type { BenchContext, ResultRow, Scenario } from '../lib/scenario.ts';

export const b10: Scenario = {
  id: 'B10',
  title: 'verify on large tables',
  async run(ctx: BenchContext) {
    const rows = ctx.quick ? 100_000 : 1_000_000;
    const [pg, my] = await Promise.all([ctx.pg(), ctx.mariadb()]);
    const src = await pg.createDatabase('bench_b10_src');
    const tgt = await pg.createDatabase('bench_b10_tgt');
    const ddl = `create table public.big (id int8 primary key, name text, amount numeric(12,2), at timestamptz, flag bool);
      insert into public.big select g, 'name ' || g, g * 0.01, '2024-01-01'::timestamptz + g * interval '1 second', g % 2 = 0
        from generate_series(1, ${rows}) g; analyze public.big;
      create table public.bag as select name, amount from public.big`;
    await Promise.all([pg.query('bench_b10_src', ddl), pg.query('bench_b10_tgt', ddl)]);
    await my.createDatabase('public');
    await my.query(`create table public.big (id bigint primary key, name varchar(100), amount decimal(12,2),
      at timestamp(6) null, flag tinyint(1))`);
    for (let lo = 1; lo <= rows; lo += 100_000) {
      await my.query(
        `insert into public.big select seq, concat('name ', seq), seq * 0.01,
           timestamp '2024-01-01 00:00:00' + interval seq second, seq % 2 = 0 from ${my.series(lo, Math.min(rows, lo + 99_999))}`,
        [],
        'public',
      );
    }

    const time = async (table: string, target: Record<string, unknown>) => {
      const config = pipelineConfig.parse({
        name: 'b10',
        source: { type: 'postgres', url: src, tables: [table] },
        target,
      });
      const started = performance.now();
      const report = await verifyPipeline(config, { maxDiffs: 20 });
      return { seconds: (performance.now() - started) / 1000, report };
    };
    const out: ResultRow[] = [];
    const measure = async (
      label: string,
      table: string,
      target: Record<string, unknown>,
      expected: (r: Awaited<ReturnType<typeof verifyPipeline>>) => boolean,
    ) => {
      const seconds: number[] = [];
      for (let run = 0; run < ctx.runs; run++) {
        const r = await time(table, target);
        if (!expected(r.report))
          throw new Error(`${label}: unexpected verify result ${JSON.stringify(r.report.tables)}`);
        seconds.push(r.seconds);
      }
      out.push({
        id: 'B10',
        scenario: `verify ${label} (${rows.toLocaleString('en')} rows)`,
        unit: 's',
        ours: median(seconds),
        baseline: null,
        ratio: null,
        goal: { kind: 'none' },
        met: null,
        eventsPerCpuSecond: rows / median(seconds),
        peakRssMiB: null,
        runs: { ours: seconds, baseline: [] },
        notes: [],
      });
    };
    const pgTarget = { type: 'postgres', url: tgt };
    const myTarget = { type: 'mysql', url: my.url() };
    await measure('pg->pg equal', 'public.big', pgTarget, (r) => r.status === 'equal');
    await pg.query('bench_b10_tgt', `update public.big set name = 'x' where id in (123, ${rows - 7})`);
    await measure('pg->pg 2 differences', 'public.big', pgTarget, (r) => r.tables[0]?.differences.length === 2);
    await pg.query('bench_b10_tgt', `delete from public.bag where name = 'name 4242'`);
    await measure('pg->pg keyless, 1 missing', 'public.bag', pgTarget, (r) => r.tables[0]?.differences.length === 1);
    await measure('pg->mysql equal', 'public.big', myTarget, (r) => r.status === 'equal');
    await my.query(`update public.big set amount = 0 where id = ${Math.floor(rows / 2)}`);
    await measure('pg->mysql 1 difference', 'public.big', myTarget, (r) => r.tables[0]?.differences.length === 1);
    return out;
  },
};
