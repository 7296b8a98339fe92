/**
 * B7: MySQL or MariaDB -> PostgreSQL apply, rows/s, against COPY of the same rows into the same PostgreSQL database.
 * The source starts from the binlog position taken before the rows are written (in-memory checkpoint store).
 * When the pipeline cannot run (e.g. the target cannot create a table from MySQL column types), the scenario is
 * reported as not available with the pipeline's error.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MysqlSource, mysqlSourceConfig } from '../../connectors/mysql/source/index.ts';
import { PostgresTarget, postgresTargetConfig } from '../../connectors/postgres/sink/index.ts';
import { timeCommand } from '../lib/measure.ts';
import { binlogPosition, insertInTransactions } from '../lib/mysql.ts';
import { pgArgs, pgBin } from '../lib/pg.ts';
import { BATCH, benchContext, MemoryStore, type RunResult, runMeasured } from '../lib/pipeline-run.ts';
import { type BenchContext, type Scenario, throughputRow, unavailableRow } from '../lib/scenario.ts';

const DB = 'bench_b7';
const TGT = 'bench_b7_tgt';
const PER_TX = 1000;

export const b7: Scenario = {
  id: 'B7',
  title: 'MySQL -> PostgreSQL apply',
  async run(ctx: BenchContext) {
    const rows = ctx.quick ? 30_000 : 200_000;
    const goal = { kind: 'ratio-at-least', value: 0.25 } as const;
    const [maria, pgServer] = await Promise.all([ctx.mariadb(), ctx.pg()]);
    const title = `${maria.flavor === 'mysql' ? 'MySQL' : 'MariaDB'} ${maria.version.split('-')[0]} -> PostgreSQL apply, ${rows.toLocaleString('en')} inserts in ${PER_TX}-row tx`;
    await maria.createDatabase(DB);
    await maria.query('create table b7 (id bigint primary key, payload varchar(200), n bigint) engine=InnoDB', [], DB);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-bench-b7-'));
    const file = path.join(dir, 'rows.tsv');
    const ours: RunResult[] = [];
    const baseline: number[] = [];
    try {
      for (let i = 0; i < ctx.runs; i++) {
        await maria.query('truncate table b7', [], DB);
        const from = await binlogPosition(maria);
        await insertInTransactions(maria, DB, 'b7', rows, PER_TX);
        await pgServer.createDatabase(TGT);

        const name = 'bench-b7';
        const source = new MysqlSource(
          mysqlSourceConfig.parse({
            type: 'mysql',
            url: maria.url(),
            databases: [DB],
            snapshot: 'never',
            server_id: 7300 + i,
          }),
          benchContext(name),
          { batch: BATCH },
        );
        const target = new PostgresTarget(
          postgresTargetConfig.parse({ type: 'postgres', url: pgServer.url(TGT), schema: 'public' }),
          benchContext(name),
        );
        const store = new MemoryStore({
          pipeline: name,
          phase: 'stream',
          position: { kind: 'mysql', file: from.file, pos: from.pos },
        });
        let result: RunResult;
        try {
          result = await runMeasured({ name, source, target, store, expectedEvents: rows, timeoutMs: 300_000 });
        } catch (err) {
          const reason = (err as Error).message.split('\n')[0]!;
          ctx.log(`B7 not available: ${reason}`);
          return [unavailableRow('B7', title, 'rows/s', goal, `the MySQL -> PostgreSQL pipeline failed: ${reason}`)];
        }
        ours.push(result);
        const [{ n }] = (await pgServer.query<{ n: string }>(TGT, 'select count(*) as n from public.b7')) as [
          { n: string },
        ];
        if (Number(n) !== rows) throw new Error(`the target holds ${n} rows, expected ${rows}`);

        // The same rows, exported outside the timing, then COPY into an equivalent PostgreSQL table.
        const data = await maria.query<{ id: string; payload: string; n: string }>(
          'select id, payload, n from b7 order by id',
          [],
          DB,
        );
        fs.writeFileSync(file, `${data.map((r) => `${r.id}\t${r.payload}\t${r.n}`).join('\n')}\n`);
        await pgServer.query(TGT, 'create table b7_copy (id bigint primary key, payload varchar(200), n bigint)');
        const copy = await timeCommand(
          pgBin(pgServer, 'psql'),
          [...pgArgs(pgServer, TGT), '-qc', 'copy b7_copy from stdin'],
          { stdinFile: file },
        );
        baseline.push(rows / copy.seconds);
        ctx.log(
          `B7 run ${i + 1}: ours ${Math.round(result.eventsPerSecond)} rows/s (checkpoint ${result.checkpointSeconds.toFixed(1)} s, last event ${result.eventsSeconds.toFixed(1)} s), COPY ${Math.round(rows / copy.seconds)} rows/s`,
        );
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await pgServer.query('postgres', `drop database if exists ${TGT} with (force)`).catch(() => undefined);
    }
    return [
      throughputRow('B7', title, 'rows/s', goal, ours, baseline, [
        'ours from first batch to the target checkpoint commit covering the last transaction (binlog start position in an in-memory store); baseline psql COPY FROM STDIN of the same rows into an equivalent keyed table',
      ]),
    ];
  },
};
