/**
 * B3: PostgreSQL -> PostgreSQL apply, rows/s, for an insert workload and an update-heavy mix, against COPY of the
 * same number of rows of the same shape into the same target database.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PostgresTarget, postgresTargetConfig } from '../../connectors/postgres/sink/index.ts';
import { PostgresSource } from '../../connectors/postgres/source/index.ts';
import type { PgServer } from '../../test/harness/postgres.ts';
import { timeCommand } from '../lib/measure.ts';
import { dropSlotIfExists, insertInTransactions, pgArgs, pgBin } from '../lib/pg.ts';
import { BATCH, benchContext, type RunResult, runMeasured } from '../lib/pipeline-run.ts';
import { type BenchContext, type ResultRow, type Scenario, throughputRow } from '../lib/scenario.ts';

const SRC = 'bench_b3_src';
const TGT = 'bench_b3_tgt';
const SLOT = 'bench_b3';
const PUBLICATION = 'bench_b3';
const DDL = 'create table b3 (id bigint primary key, payload text, n bigint)';
const PER_TX = 1000;

/** Times COPY of `file` (rows of b3's shape) into a new table of the target database; returns rows/s. */
async function copyRowsPerSecond(server: PgServer, file: string, rows: number): Promise<number> {
  await server.query(TGT, 'drop table if exists b3_copy');
  await server.query(TGT, DDL.replace('table b3', 'table b3_copy'));
  const { seconds } = await timeCommand(
    pgBin(server, 'psql'),
    [...pgArgs(server, TGT), '-qc', 'copy b3_copy from stdin'],
    {
      stdinFile: file,
    },
  );
  const [{ n }] = (await server.query<{ n: string }>(TGT, 'select count(*) as n from b3_copy')) as [{ n: string }];
  if (Number(n) !== rows) throw new Error(`COPY loaded ${n} rows, expected ${rows}`);
  return rows / seconds;
}

async function runOurs(server: PgServer, name: string, expectedEvents: number): Promise<RunResult> {
  const source = new PostgresSource(
    {
      type: 'postgres',
      url: server.url(SRC),
      tables: ['public.b3'],
      snapshot: 'never',
      slot_name: SLOT,
      publication_name: PUBLICATION,
    },
    benchContext(name),
    { batch: BATCH },
  );
  const target = new PostgresTarget(
    postgresTargetConfig.parse({ type: 'postgres', url: server.url(TGT) }),
    benchContext(name),
  );
  return runMeasured({ name, source, target, expectedEvents });
}

export const b3: Scenario = {
  id: 'B3',
  title: 'PostgreSQL -> PostgreSQL apply',
  async run(ctx: BenchContext) {
    const rows = ctx.quick ? 30_000 : 200_000;
    const server = await ctx.pg();
    await server.createDatabase(SRC);
    await server.query(SRC, DDL);
    await server.query(SRC, `create publication ${PUBLICATION} for table b3`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-bench-b3-'));
    const file = path.join(dir, 'rows.tsv');
    // The COPY baseline's rows: the same shape and the same values as the insert workload.
    await timeCommand(
      `${pgBin(server, 'psql')} ${pgArgs(server, SRC).join(' ')} -qc "copy (select g, 'payload of row ' || g || repeat('x', 40), g::bigint * 1000000000 from generate_series(1, ${rows}) g) to stdout" > ${file}`,
      [],
      { shell: true },
    );
    const results: ResultRow[] = [];
    try {
      for (const workload of ['insert', 'mix'] as const) {
        const ours: RunResult[] = [];
        const baseline: number[] = [];
        for (let i = 0; i < ctx.runs; i++) {
          await dropSlotIfExists(server, SRC, SLOT);
          await server.query(SRC, 'truncate b3');
          await server.createDatabase(TGT);
          // A multiple of the updates per transaction, so that every update statement changes exactly that many rows.
          const seed = Math.max(800, Math.floor(rows / 2 / 800) * 800);
          if (workload === 'mix') {
            // The same seed rows at both ends; the target table exists with the source's definition.
            await server.query(TGT, DDL);
            await insertInTransactions(server, SRC, 'b3', seed, 50_000);
            await insertInTransactions(server, TGT, 'b3', seed, 50_000);
          }
          await server.query(SRC, `select pg_create_logical_replication_slot('${SLOT}', 'pgoutput')`);
          if (workload === 'insert') await insertInTransactions(server, SRC, 'b3', rows, PER_TX);
          else await updateMix(server, rows, seed);

          const result = await runOurs(server, `bench-b3-${workload}`, rows);
          ours.push(result);
          const copy = await copyRowsPerSecond(server, file, rows);
          baseline.push(copy);
          ctx.log(
            `B3 ${workload} run ${i + 1}: ours ${Math.round(result.eventsPerSecond)} rows/s, COPY ${Math.round(copy)} rows/s`,
          );
        }
        await dropSlotIfExists(server, SRC, SLOT);
        results.push(
          throughputRow(
            'B3',
            workload === 'insert'
              ? `PostgreSQL -> PostgreSQL apply, ${rows.toLocaleString('en')} inserts in ${PER_TX}-row tx`
              : `PostgreSQL -> PostgreSQL apply, update-heavy mix (${rows.toLocaleString('en')} changes: 80% updates, 20% inserts, ${PER_TX}-change tx)`,
            'rows/s',
            { kind: 'ratio-at-least', value: 0.3 },
            ours,
            baseline,
            [
              `${workload}: ours from first batch to the target's checkpoint commit covering the last transaction; baseline: psql COPY FROM STDIN of ${rows.toLocaleString('en')} rows of the same shape into an empty keyed table in the same target database`,
            ],
          ),
        );
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return results;
  },
};

/** `total` changes in transactions of PER_TX: 80% updates of seeded rows (cycling), 20% inserts of new rows. */
async function updateMix(server: PgServer, total: number, seed: number): Promise<void> {
  const updates = (PER_TX * 4) / 5;
  const inserts = PER_TX - updates;
  await server.query(
    SRC,
    `do $$
     declare
       tx int := 0;
       lo bigint;
       next_id bigint := ${seed + 1};
     begin
       while tx * ${PER_TX} < ${total} loop
         lo := ((tx * ${updates}) % ${seed}) + 1;
         update b3 set n = n + 1, payload = 'updated ' || id where id between lo and lo + ${updates} - 1;
         insert into b3 (id, payload, n)
           select g, 'payload of row ' || g, g from generate_series(next_id, next_id + ${inserts} - 1) g;
         next_id := next_id + ${inserts};
         commit;
         tx := tx + 1;
       end loop;
     end $$`,
  );
}
