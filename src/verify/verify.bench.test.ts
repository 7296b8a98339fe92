import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MysqlServer, startMariadb } from '../../test/harness/mariadb.ts';
import { type PgServer, startPostgres } from '../../test/harness/postgres.ts';
import { pipelineConfig } from '../config/schema.ts';
import { verifyPipeline } from './verify.ts';

/** Timing on one million rows; runs only with TRIBUTARY_VERIFY_BENCH=1 (it loads 1M rows into each server). */
const ROWS = 1_000_000;
const enabled = process.env.TRIBUTARY_VERIFY_BENCH === '1';

describe.runIf(enabled)('verify on 1M rows (opt-in: skipped unless TRIBUTARY_VERIFY_BENCH=1)', () => {
  let pg: PgServer;
  let my: MysqlServer;
  let src: string;
  let tgt: string;

  beforeAll(async () => {
    [pg, my] = await Promise.all([startPostgres(), startMariadb()]);
    src = await pg.createDatabase('bsrc');
    tgt = await pg.createDatabase('btgt');
    const ddl = `create table public.big (id int8 primary key, name text, amount numeric(12,2), at timestamptz, flag bool);
      insert into public.big select g, 'name ' || g, g * 0.01, '2024-01-01'::timestamptz + g * interval '1 second', g % 2 = 0
        from generate_series(1, ${ROWS}) g; analyze public.big;
      create table public.bag as select name, amount from public.big`;
    await Promise.all([pg.query('bsrc', ddl), pg.query('btgt', ddl)]);
    await my.createDatabase('public');
    await my.query(`create table public.big (id bigint primary key, name varchar(100), amount decimal(12,2),
      at timestamp(6) null, flag tinyint(1))`);
    for (let lo = 1; lo <= ROWS; lo += 100_000) {
      await my.query(
        `insert into public.big select seq, concat('name ', seq), seq * 0.01,
           timestamp '2024-01-01 00:00:00' + interval seq second, seq % 2 = 0 from seq_${lo}_to_${lo + 99_999}`,
        [],
        'public',
      );
    }
  }, 600_000);

  afterAll(async () => {
    await Promise.all([pg?.stop(), my?.stop()]);
  });

  const time = async (label: string, target: Record<string, unknown>, change?: () => Promise<unknown>) => {
    await change?.();
    const config = pipelineConfig.parse({
      name: 'b',
      source: { type: 'postgres', url: src, tables: ['public.big'] },
      target,
    });
    const started = performance.now();
    const report = await verifyPipeline(config, { maxDiffs: 20 });
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(`${label}: ${seconds.toFixed(2)} s, ${JSON.stringify(report.tables[0]?.differences)}\n`);
    return report;
  };

  it('PostgreSQL -> PostgreSQL', async () => {
    expect((await time('pg->pg equal', { type: 'postgres', url: tgt })).status).toBe('equal');
    const diff = await time('pg->pg 2 differences', { type: 'postgres', url: tgt }, () =>
      pg.query('btgt', `update public.big set name = 'x' where id in (123456, 876543)`),
    );
    expect(diff.tables[0]!.differences).toHaveLength(2);
  }, 600_000);

  it('PostgreSQL -> PostgreSQL, keyless', async () => {
    const target = { type: 'postgres', url: tgt };
    const config = pipelineConfig.parse({
      name: 'b',
      source: { type: 'postgres', url: src, tables: ['public.bag'] },
      target,
    });
    await pg.query('btgt', `delete from public.bag where name = 'name 4242'`);
    const started = performance.now();
    const report = await verifyPipeline(config, { maxDiffs: 20 });
    process.stderr.write(`pg->pg keyless 1 missing: ${((performance.now() - started) / 1000).toFixed(2)} s\n`);
    expect(report.tables[0]!.differences).toEqual([
      { kind: 'missing_at_target', source_count: 1, target_count: 0, source: { name: 'name 4242', amount: '42.42' } },
    ]);
  }, 600_000);

  it('PostgreSQL -> MariaDB', async () => {
    const target = { type: 'mysql', url: my.url() };
    expect((await time('pg->mariadb equal', target)).status).toBe('equal');
    const diff = await time('pg->mariadb 1 difference', target, () =>
      my.query('update public.big set amount = 0 where id = 500000'),
    );
    expect(diff.tables[0]!.differences).toHaveLength(1);
  }, 600_000);
});
