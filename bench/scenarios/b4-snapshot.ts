/**
 * B4: initial snapshot of one large table, into a null target (against COPY ... TO STDOUT) and into a PostgreSQL
 * target (against COPY out piped into COPY in). The snapshot reads key-range chunks on PARALLELISM connections under
 * one exported snapshot (the default of snapshot_parallelism; TRIBUTARY_BENCH_B4_PARALLELISM overrides it).
 */

import { PostgresTarget, postgresTargetConfig } from '../../connectors/postgres/sink/index.ts';
import { PostgresSource } from '../../connectors/postgres/source/index.ts';
import type { PgServer } from '../../test/harness/postgres.ts';
import { timeCommand } from '../lib/measure.ts';
import { pgArgs, pgBin } from '../lib/pg.ts';
import { BATCH, benchContext, NullTarget, type RunResult, runMeasured } from '../lib/pipeline-run.ts';
import { type BenchContext, type ResultRow, type Scenario, throughputRow } from '../lib/scenario.ts';

const SRC = 'bench_b4_src';
const TGT = 'bench_b4_tgt';
const DDL = 'create table b4 (id bigint primary key, payload text, n bigint)';
const PARALLELISM = Number(process.env.TRIBUTARY_BENCH_B4_PARALLELISM ?? 4);
const CHUNK_ROWS = 100_000;

function snapshotSource(server: PgServer, name: string): PostgresSource {
  return new PostgresSource(
    {
      type: 'postgres',
      url: server.url(SRC),
      tables: ['public.b4'],
      snapshot: 'initial_only',
      publication_name: 'bench_b4',
      snapshot_parallelism: PARALLELISM,
      snapshot_chunk_rows: CHUNK_ROWS,
    },
    benchContext(name),
    { batch: BATCH },
  );
}

function psql(server: PgServer, database: string, sql: string): string {
  return `${pgBin(server, 'psql')} ${pgArgs(server, database).join(' ')} -qc "${sql}"`;
}

export const b4: Scenario = {
  id: 'B4',
  title: 'Snapshot of a large table',
  async run(ctx: BenchContext) {
    const rows = ctx.quick ? 200_000 : 5_000_000;
    const server = await ctx.pg();
    await server.createDatabase(SRC);
    await server.query(SRC, DDL);
    const t0 = performance.now();
    await server.query(
      SRC,
      `insert into b4 select g, 'payload of row ' || g || repeat('x', 40), g::bigint * 1000000000 from generate_series(1, ${rows}) g`,
    );
    await server.query(SRC, 'vacuum analyze b4');
    ctx.log(`B4: ${rows} rows generated in ${((performance.now() - t0) / 1000).toFixed(0)} s`);

    const results: ResultRow[] = [];
    // Into a null target.
    {
      const ours: RunResult[] = [];
      const baseline: number[] = [];
      for (let i = 0; i < ctx.runs; i++) {
        const copy = await timeCommand(`${psql(server, SRC, 'copy b4 to stdout')} > /dev/null`, [], { shell: true });
        baseline.push(rows / copy.seconds);
        const result = await runMeasured({
          name: 'bench-b4-null',
          source: snapshotSource(server, 'bench-b4-null'),
          target: new NullTarget(),
          expectedEvents: rows,
        });
        ours.push(result);
        ctx.log(
          `B4 null run ${i + 1}: ours (parallelism ${PARALLELISM}) ${Math.round(result.eventsPerSecond)} rows/s, COPY TO STDOUT ${Math.round(rows / copy.seconds)} rows/s`,
        );
      }
      results.push(
        throughputRow(
          'B4',
          `Snapshot of ${rows.toLocaleString('en')} rows into a null target (parallelism ${PARALLELISM})`,
          'rows/s',
          { kind: 'ratio-at-least', value: 0.9 },
          ours,
          baseline,
          [
            `null: ${PARALLELISM} connections under one exported snapshot, chunks of ${CHUNK_ROWS} rows; baseline psql COPY b4 TO STDOUT > /dev/null (one connection)`,
          ],
        ),
      );
    }
    // Into a PostgreSQL target (a fresh database each run).
    {
      const ours: RunResult[] = [];
      const baseline: number[] = [];
      for (let i = 0; i < ctx.runs; i++) {
        await server.createDatabase(TGT);
        await server.query(TGT, DDL.replace('table b4', 'table b4_copy'));
        const pipe = await timeCommand(
          `${psql(server, SRC, 'copy b4 to stdout')} | ${psql(server, TGT, 'copy b4_copy from stdin')}`,
          [],
          { shell: true },
        );
        baseline.push(rows / pipe.seconds);
        const name = 'bench-b4-pg';
        const target = new PostgresTarget(
          postgresTargetConfig.parse({ type: 'postgres', url: server.url(TGT) }),
          benchContext(name),
        );
        const result = await runMeasured({ name, source: snapshotSource(server, name), target, expectedEvents: rows });
        ours.push(result);
        const [{ n }] = (await server.query<{ n: string }>(TGT, 'select count(*) as n from b4')) as [{ n: string }];
        if (Number(n) !== rows) throw new Error(`the target holds ${n} rows after the snapshot, expected ${rows}`);
        ctx.log(
          `B4 pg run ${i + 1}: ours (parallelism ${PARALLELISM}) ${Math.round(result.eventsPerSecond)} rows/s, COPY | COPY ${Math.round(rows / pipe.seconds)} rows/s`,
        );
      }
      await server.query('postgres', `drop database if exists ${TGT} with (force)`);
      results.push(
        throughputRow(
          'B4',
          `Snapshot of ${rows.toLocaleString('en')} rows into a PostgreSQL target (parallelism ${PARALLELISM})`,
          'rows/s',
          { kind: 'ratio-at-least', value: 0.7 },
          ours,
          baseline,
          [
            `pg: ${PARALLELISM} reading connections; baseline psql COPY TO STDOUT | psql COPY FROM STDIN into an empty keyed table; ours until the snapshot-complete checkpoint is committed with the data`,
          ],
        ),
      );
    }
    return results;
  },
};
