/**
 * B2: MySQL/MariaDB binlog decode into a null target, against the bare binlog client (zongji, counting rows of row
 * events) reading the same binlog range. Both start from the binlog position taken just before the data is written.
 */
import ZongJi from '@vlasky/zongji';
import { MysqlSource, mysqlSourceConfig } from '../../connectors/mysql/source/index.ts';
import type { MysqlServer } from '../../test/harness/mariadb.ts';
import { type BinlogPosition, binlogPosition, insertInTransactions } from '../lib/mysql.ts';
import { BATCH, benchContext, MemoryStore, NullTarget, type RunResult, runMeasured } from '../lib/pipeline-run.ts';
import { type BenchContext, type Scenario, throughputRow } from '../lib/scenario.ts';

const DB = 'bench_b2';

/** Reads the binlog from `from` with zongji alone and counts row images until `rows`; returns rows/s. */
export function zongjiRowsPerSecond(
  server: MysqlServer,
  database: string,
  from: BinlogPosition,
  rows: number,
  serverId: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    // The same connection options as the source's binlog reader.
    const zongji = new ZongJi({
      host: server.host,
      port: server.port,
      user: 'root',
      charset: 'utf8mb4',
      dateStrings: true,
      timezone: 'Z',
      jsonStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
    } as never);
    let count = 0;
    let first = 0;
    const timer = setTimeout(() => {
      zongji.stop();
      reject(new Error(`zongji: timed out with ${count}/${rows} rows`));
    }, 600_000);
    zongji.on('error', (err: unknown) => {
      clearTimeout(timer);
      reject(err);
    });
    // biome-ignore lint/suspicious/noExplicitAny: zongji events are loosely typed
    zongji.on('binlog', (event: any) => {
      const name = event.getEventName();
      if (name !== 'writerows' && name !== 'updaterows' && name !== 'deleterows') return;
      if (first === 0) first = performance.now();
      count += event.rows.length;
      if (count >= rows) {
        const seconds = (performance.now() - first) / 1000;
        clearTimeout(timer);
        zongji.stop();
        resolve(count / seconds);
      }
    });
    zongji.start({
      serverId,
      filename: from.file,
      position: from.pos,
      includeSchema: { [database]: true },
    } as never);
  });
}

export const b2: Scenario = {
  id: 'B2',
  title: 'MySQL / MariaDB decode into a null target',
  async run(ctx: BenchContext) {
    const rows = ctx.quick ? 100_000 : 1_000_000;
    const perTx = 10_000;
    const server = await ctx.mariadb();
    await server.createDatabase(DB);
    await server.query('create table b2 (id bigint primary key, payload varchar(200), n bigint) engine=InnoDB', [], DB);
    const ours: RunResult[] = [];
    const baseline: number[] = [];
    for (let i = 0; i < ctx.runs; i++) {
      await server.query('truncate table b2', [], DB);
      const from = await binlogPosition(server);
      await insertInTransactions(server, DB, 'b2', rows, perTx);

      const runOurs = async () => {
        const name = 'bench-b2';
        const source = new MysqlSource(
          mysqlSourceConfig.parse({
            type: 'mysql',
            url: server.url(),
            databases: [DB],
            snapshot: 'never',
            server_id: 7200 + i,
          }),
          benchContext(name),
          { batch: BATCH },
        );
        const store = new MemoryStore({
          pipeline: name,
          phase: 'stream',
          position: { kind: 'mysql', file: from.file, pos: from.pos },
        });
        return runMeasured({
          name,
          source,
          target: new NullTarget(),
          store,
          expectedEvents: rows,
          measureTo: 'events',
        });
      };
      // Alternate which reader goes first, so that neither always gets the other's warmed caches.
      let bare: number;
      let result: RunResult;
      if (i % 2 === 0) {
        bare = await zongjiRowsPerSecond(server, DB, from, rows, 7100 + i);
        result = await runOurs();
      } else {
        result = await runOurs();
        bare = await zongjiRowsPerSecond(server, DB, from, rows, 7100 + i);
      }
      baseline.push(bare);
      ours.push(result);
      ctx.log(
        `B2 run ${i + 1}: ours ${Math.round(result.eventsPerSecond)} ev/s (checkpoint after ${result.checkpointSeconds.toFixed(1)} s), zongji ${Math.round(bare)} rows/s`,
      );
    }
    const lag = ours.map((r) => r.checkpointSeconds - r.eventsSeconds);
    const notes = [
      'baseline: zongji alone from the same binlog position, counting rows of row events, first to last row event',
      'ours: first batch to last event delivered (decode rate)',
    ];
    if (Math.max(...lag) > 1)
      notes.push(
        `checkpoint covering the last transaction saved only ${lag.map((l) => l.toFixed(1)).join(', ')} s after its last event: ` +
          'the MySQL source drops the checkpoint of a commit that follows a full batch (transaction size a multiple of ' +
          'batch.max_events) and emits it only as an idle heartbeat (heartbeat_interval_ms, 10 s); under steady load such ' +
          'transactions get no checkpoint at all',
      );
    return [
      throughputRow(
        'B2',
        `MySQL decode (${server.version.split('-')[0]} ${server.flavor === 'mariadb' ? 'MariaDB' : 'MySQL'}), ${rows.toLocaleString('en')} rows in ${perTx.toLocaleString('en')}-row tx, null target`,
        'events/s',
        { kind: 'ratio-at-least', value: 0.5 },
        ours,
        baseline,
        notes,
      ),
    ];
  },
};
