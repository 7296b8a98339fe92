/**
 * B4M: initial snapshot of one large MySQL/MariaDB table into a null target, on one connection and on PARALLELISM
 * reading connections at one consistent position (snapshot_parallelism), against the `mysql` client reading the
 * whole table in one query (`--quick`: rows streamed, not buffered) into /dev/null.
 */

import { MysqlSource, mysqlSourceConfig } from '../../connectors/mysql/source/index.ts';
import type { MysqlServer } from '../../test/harness/mariadb.ts';
import { timeCommand } from '../lib/measure.ts';
import { insertInTransactions } from '../lib/mysql.ts';
import { BATCH, benchContext, NullTarget, type RunResult, runMeasured } from '../lib/pipeline-run.ts';
import { type BenchContext, type ResultRow, type Scenario, throughputRow } from '../lib/scenario.ts';

const DB = 'bench_b4m';
const PARALLELISM = Number(process.env.TRIBUTARY_BENCH_B4_PARALLELISM ?? 4);
const CHUNK_ROWS = 10_000;

function snapshotSource(server: MysqlServer, name: string, parallelism: number): MysqlSource {
  return new MysqlSource(
    mysqlSourceConfig.parse({
      type: 'mysql',
      url: server.url(),
      databases: [DB],
      snapshot: 'initial_only',
      snapshot_parallelism: parallelism,
      snapshot_chunk_rows: CHUNK_ROWS,
    }),
    benchContext(name),
    { batch: BATCH },
  );
}

export const b4m: Scenario = {
  id: 'B4M',
  title: 'MySQL snapshot of a large table',
  async run(ctx: BenchContext) {
    const rows = ctx.quick ? 200_000 : 2_000_000;
    const server = await ctx.mariadb();
    const kind = `${server.flavor === 'mysql' ? 'MySQL' : 'MariaDB'} ${server.version.split('-')[0]}`;
    await server.createDatabase(DB);
    await server.query('create table b4 (id bigint primary key, payload varchar(200), n bigint) engine=InnoDB', [], DB);
    const t0 = performance.now();
    await insertInTransactions(server, DB, 'b4', rows, 10_000);
    ctx.log(`B4M: ${rows} rows generated in ${((performance.now() - t0) / 1000).toFixed(0)} s`);

    const results: ResultRow[] = [];
    for (const parallelism of [1, PARALLELISM]) {
      const ours: RunResult[] = [];
      const baseline: number[] = [];
      for (let i = 0; i < ctx.runs; i++) {
        const client = await timeCommand(
          'mysql',
          [
            '--quick',
            '--batch',
            '-h',
            server.host,
            '-P',
            String(server.port),
            '-u',
            'root',
            DB,
            '-e',
            'select * from b4',
          ],
          { shell: false },
        );
        baseline.push(rows / client.seconds);
        const name = `bench-b4m-${parallelism}`;
        const result = await runMeasured({
          name,
          source: snapshotSource(server, name, parallelism),
          target: new NullTarget(),
          expectedEvents: rows,
        });
        ours.push(result);
        ctx.log(
          `B4M run ${i + 1}: ours (parallelism ${parallelism}) ${Math.round(result.eventsPerSecond)} rows/s, mysql client ${Math.round(rows / client.seconds)} rows/s`,
        );
      }
      results.push(
        throughputRow(
          'B4M',
          `${kind} snapshot of ${rows.toLocaleString('en')} rows into a null target (parallelism ${parallelism})`,
          'rows/s',
          { kind: 'none' },
          ours,
          baseline,
          [
            `${parallelism} reading connection(s), chunks of ${CHUNK_ROWS} rows; baseline mysql --quick --batch -e 'select * from b4' (one connection, output discarded)`,
          ],
        ),
      );
    }
    return results;
  },
};
