/**
 * B1: PostgreSQL decode into a null target, against pg_recvlogical reading the same WAL range from a cloned slot.
 * Both slots exist before the data is generated, so both decode exactly the generated transactions.
 */
import { PostgresSource } from '../../connectors/postgres/source/index.ts';
import { timeCommand } from '../lib/measure.ts';
import { currentWalLsn, dropSlotIfExists, insertInTransactions, pgArgs, pgBin } from '../lib/pg.ts';
import { BATCH, benchContext, NullTarget, type RunResult, runMeasured } from '../lib/pipeline-run.ts';
import { type BenchContext, type Scenario, throughputRow } from '../lib/scenario.ts';

const DB = 'bench_b1';
const SLOT = 'bench_b1';
const CLONE = 'bench_b1_clone';
const PUBLICATION = 'bench_b1';

export const b1: Scenario = {
  id: 'B1',
  title: 'PostgreSQL decode into a null target',
  async run(ctx: BenchContext) {
    const rows = ctx.quick ? 100_000 : 1_000_000;
    const perTx = 10_000;
    const server = await ctx.pg();
    await server.createDatabase(DB);
    await server.query(DB, 'create table b1 (id bigint primary key, payload text, n bigint)');
    await server.query(DB, `create publication ${PUBLICATION} for table b1`);
    const ours: RunResult[] = [];
    const baseline: number[] = [];
    for (let i = 0; i < ctx.runs; i++) {
      await dropSlotIfExists(server, DB, SLOT);
      await dropSlotIfExists(server, DB, CLONE);
      await server.query(DB, 'truncate b1');
      await server.query(DB, `select pg_create_logical_replication_slot('${SLOT}', 'pgoutput')`);
      await server.query(DB, `select pg_copy_logical_replication_slot('${SLOT}', '${CLONE}')`);
      await insertInTransactions(server, DB, 'b1', rows, perTx);
      const endLsn = await currentWalLsn(server, DB);

      const runBaseline = async () =>
        timeCommand(pgBin(server, 'pg_recvlogical'), [
          ...pgArgs(server, DB),
          '-S',
          CLONE,
          '--start',
          '--no-loop',
          '-f',
          '/dev/null',
          `--endpos=${endLsn}`,
          '-o',
          'proto_version=1',
          '-o',
          `publication_names=${PUBLICATION}`,
        ]);
      const runOurs = async () => {
        const source = new PostgresSource(
          {
            type: 'postgres',
            url: server.url(DB),
            tables: ['public.b1'],
            snapshot: 'never',
            slot_name: SLOT,
            publication_name: PUBLICATION,
          },
          benchContext('bench-b1'),
          { batch: BATCH },
        );
        return runMeasured({ name: 'bench-b1', source, target: new NullTarget(), expectedEvents: rows });
      };
      // Alternate which reader goes first, so that neither always gets the other's warmed caches.
      let recv: Awaited<ReturnType<typeof runBaseline>>;
      let result: RunResult;
      if (i % 2 === 0) {
        recv = await runBaseline();
        result = await runOurs();
      } else {
        result = await runOurs();
        recv = await runBaseline();
      }
      baseline.push(rows / recv.seconds);
      ours.push(result);
      ctx.log(
        `B1 run ${i + 1}: ours ${Math.round(result.eventsPerSecond)} ev/s, pg_recvlogical ${Math.round(rows / recv.seconds)} rows/s`,
      );
    }
    await dropSlotIfExists(server, DB, SLOT);
    await dropSlotIfExists(server, DB, CLONE);
    return [
      throughputRow(
        'B1',
        `PostgreSQL decode, ${rows.toLocaleString('en')} rows in ${perTx.toLocaleString('en')}-row tx, null target`,
        'events/s',
        { kind: 'ratio-at-least', value: 0.6 },
        ours,
        baseline,
        [
          'baseline: pg_recvlogical (pgoutput proto 1) from a slot cloned before the data, -f /dev/null, timed spawn to exit (its connection and START_REPLICATION included); the two readers alternate going first',
        ],
      ),
    ];
  },
};
