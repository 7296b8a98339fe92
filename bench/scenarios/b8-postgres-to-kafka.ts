/**
 * B8: PostgreSQL -> Kafka, draining a backlog of ~500-byte messages written in 10,000-row transactions, against
 * Kafka's own org.apache.kafka.tools.ProducerPerformance on the same broker with the same record size, acks=all and
 * idempotence, measured in the same run. The broker is a throwaway Apache Kafka 4.4 (test/harness/kafka-broker.ts).
 * Time runs from `tributary run` starting until the broker's end offsets (Kafka's GetOffsetShell) hold every row.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type KafkaBroker,
  kafkaToolingMissing,
  startKafkaBroker,
  topicEndOffsets,
} from '../../test/harness/kafka-broker.ts';
import type { PgServer } from '../../test/harness/postgres.ts';
import { median } from '../lib/measure.ts';
import { dropSlotIfExists } from '../lib/pg.ts';
import { type BenchContext, metGoal, type Scenario, unavailableRow } from '../lib/scenario.ts';

const SRC = 'bench_b8_src';
const SLOT = 'tributary_bench_b8';
const TITLE = 'PostgreSQL -> Kafka backlog, ~500-byte messages, 10,000-row transactions';
const GOAL = { kind: 'ratio-at-least', value: 0.7 } as const;

function writeConfig(file: string, server: PgServer, broker: KafkaBroker, prefix: string): void {
  fs.writeFileSync(
    file,
    `log: { level: warn }
pipelines:
  - name: bench-b8
    source: { type: postgres, url: "${server.url(SRC)}", tables: [public.b8], snapshot: never }
    target: { type: kafka, brokers: ["${broker.bootstrap}"], topic_prefix: ${prefix}, topic_partitions: 3 }
    checkpoints: { type: file, path: "${path.dirname(file)}/${prefix}.json" }
`,
  );
}

async function runTributary(configFile: string, until: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const child = spawn(process.execPath, ['bin/tributary.js', 'run', '-c', configFile], {
    stdio: ['ignore', 'ignore', 'inherit'],
    cwd: path.resolve(import.meta.dirname, '../..'),
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const t0 = performance.now();
  try {
    const deadline = Date.now() + timeoutMs;
    while (!(await until())) {
      if (child.exitCode !== null) throw new Error(`tributary run exited with ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 200));
    }
    return (performance.now() - t0) / 1000;
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** ProducerPerformance's records/sec for `records` records of `size` bytes, acks=all, idempotent. */
async function producerPerformance(broker: KafkaBroker, topic: string, records: number, size: number) {
  const { stdout } = await broker.runTool(
    'org.apache.kafka.tools.ProducerPerformance',
    [
      ...['--topic', topic, '--num-records', String(records), '--record-size', String(size), '--throughput', '-1'],
      ...['--producer-props', `bootstrap.servers=${broker.bootstrap}`, 'acks=all', 'enable.idempotence=true'],
    ],
    600_000,
  );
  const m = /([\d.]+) records\/sec/.exec(stdout.trim().split('\n').at(-1) ?? '');
  if (!m) throw new Error(`ProducerPerformance printed no rate: ${stdout.slice(-500)}`);
  return Number(m[1]);
}

export const b8: Scenario = {
  id: 'B8',
  title: TITLE,
  async run(ctx: BenchContext) {
    const missing = kafkaToolingMissing();
    if (missing) return [unavailableRow('B8', TITLE, 'messages/s', GOAL, missing)];
    const rows = ctx.quick ? 100_000 : 500_000;
    const server = await ctx.pg();
    const broker = await startKafkaBroker();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-bench-b8-'));
    const ours: number[] = [];
    const baseline: number[] = [];
    const notes: string[] = [];
    try {
      await server.createDatabase(SRC);
      await server.query(SRC, 'create table b8 (id bigint primary key, payload text, n bigint)');
      for (let i = 0; i < ctx.runs; i++) {
        const prefix = `b8run${i}`;
        const topic = `${prefix}.public.b8`;
        const configFile = path.join(dir, `${prefix}.yaml`);
        writeConfig(configFile, server, broker, prefix);
        await dropSlotIfExists(server, SRC, SLOT);
        await server.query(SRC, 'truncate b8');
        // The first start creates the slot; the backlog is written while the replicator is stopped.
        await runTributary(
          configFile,
          async () => (await server.query(SRC, 'select 1 from pg_replication_slots where active')).length > 0,
          60_000,
        );
        await server.query(
          SRC,
          `do $$ declare lo bigint := 1; begin
             while lo <= ${rows} loop
               insert into b8 select g, 'payload of row ' || g || repeat('x', 200), g * 1000000000
                 from generate_series(lo, least(lo + 9999, ${rows})) g;
               commit; lo := lo + 10000;
             end loop; end $$`,
        );
        const total = async () =>
          [...(await topicEndOffsets(broker.bootstrap, topic)).values()].reduce((a, b) => a + b, 0);
        const seconds = await runTributary(configFile, async () => (await total().catch(() => 0)) >= rows, 900_000);
        ours.push(rows / seconds);
        const sample = await broker.runTool('org.apache.kafka.tools.consumer.ConsoleConsumer', [
          ...['--bootstrap-server', broker.bootstrap, '--topic', topic, '--from-beginning', '--max-messages', '20'],
          ...['--property', 'print.key=true', '--property', 'print.headers=true'],
        ]);
        const lines = sample.stdout.trim().split('\n');
        const size = Math.round(lines.reduce((n, l) => n + Buffer.byteLength(l), 0) / lines.length);
        await broker.runTool('org.apache.kafka.tools.TopicCommand', [
          ...['--bootstrap-server', broker.bootstrap, '--create', '--topic', `${prefix}.perf`, '--partitions', '3'],
        ]);
        baseline.push(await producerPerformance(broker, `${prefix}.perf`, rows, size));
        ctx.log(
          `B8 run ${i + 1}: ours ${Math.round(ours.at(-1)!)} msg/s, ProducerPerformance ${Math.round(baseline.at(-1)!)} records/s (${size}-byte records)`,
        );
        if (i === 0) notes.push(`record size ${size} bytes (key + value + headers as printed), 3 partitions`);
        await dropSlotIfExists(server, SRC, SLOT);
      }
    } finally {
      await broker.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const o = median(ours);
    const b = median(baseline);
    return [
      {
        id: 'B8',
        scenario: `${TITLE} (${rows.toLocaleString('en')} rows) vs Kafka's ProducerPerformance (acks=all, idempotent)`,
        unit: 'messages/s',
        ours: o,
        baseline: b,
        ratio: o / b,
        goal: GOAL,
        met: metGoal(GOAL, o, o / b),
        eventsPerCpuSecond: null,
        peakRssMiB: null,
        runs: { ours, baseline },
        notes: [
          ...notes,
          'ours: from `tributary run` start to all rows in the broker end offsets (includes process start and the ~1.5 s offset polls)',
        ],
      },
    ];
  },
};
