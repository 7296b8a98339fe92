/**
 * B8: PostgreSQL -> Kafka, draining a backlog of ~500-byte messages written in 10,000-row transactions, against
 * Kafka's own org.apache.kafka.tools.ProducerPerformance on the same broker with the same record size, acks=all and
 * idempotence, measured in the same run. The broker is a throwaway Apache Kafka 4.4 (test/harness/kafka-broker.ts).
 * Time runs from `tributary run` starting until the replication slot's confirmed position reaches the end of the
 * backlog: the replicator confirms a position only after the broker acknowledged every message before it and the
 * checkpoint was saved. The broker's end offsets (Kafka's GetOffsetShell) are checked once afterwards: a JVM started
 * for every poll would take CPU from the process measured on a small machine.
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
import { MiB, median, procCpuSeconds, procMemory } from '../lib/measure.ts';
import { currentWalLsn, dropSlotIfExists } from '../lib/pg.ts';
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

interface TributaryRun {
  seconds: number;
  /** CPU seconds (user + system) of the replicator process until the end. */
  cpuSeconds: number;
  /** Its peak resident set size (VmHWM), bytes. */
  peakRss: number;
}

async function runTributary(
  configFile: string,
  until: () => Promise<boolean>,
  timeoutMs: number,
): Promise<TributaryRun> {
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
      await new Promise((r) => setTimeout(r, 50));
    }
    const seconds = (performance.now() - t0) / 1000;
    return {
      seconds,
      cpuSeconds: procCpuSeconds(child.pid!) ?? Number.NaN,
      peakRss: procMemory(child.pid!)?.hwm ?? Number.NaN,
    };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** The replication slot confirmed `lsn`: everything before it is acknowledged by the broker and checkpointed. */
async function slotConfirmed(server: PgServer, lsn: string): Promise<boolean> {
  const rows = await server.query(
    SRC,
    'select 1 from pg_replication_slots where slot_name = $1 and confirmed_flush_lsn >= $2::pg_lsn',
    [SLOT, lsn],
  );
  return rows.length > 0;
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
    const perCpuSecond: number[] = [];
    let peakRss = 0;
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
        const end = await currentWalLsn(server, SRC);
        const run = await runTributary(configFile, () => slotConfirmed(server, end), 900_000);
        const held = [...(await topicEndOffsets(broker.bootstrap, topic)).values()].reduce((a, b) => a + b, 0);
        if (held !== rows) throw new Error(`the topic holds ${held} messages after the run, expected ${rows}`);
        ours.push(rows / run.seconds);
        perCpuSecond.push(rows / run.cpuSeconds);
        peakRss = Math.max(peakRss, run.peakRss);
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
          `B8 run ${i + 1}: ours ${Math.round(ours.at(-1)!)} msg/s (${Math.round(perCpuSecond.at(-1)!)} per CPU-second), ProducerPerformance ${Math.round(baseline.at(-1)!)} records/s (${size}-byte records)`,
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
        eventsPerCpuSecond: median(perCpuSecond),
        peakRssMiB: peakRss / MiB,
        runs: { ours, baseline },
        notes: [
          ...notes,
          'ours: from `tributary run` start until the replication slot confirmed the end of the backlog (every message acknowledged by the broker, checkpoint saved; includes process start); the topic then holds every row (GetOffsetShell)',
          'events/CPU-s and peak RSS: of the `tributary run` process (/proc/PID/stat and VmHWM)',
        ],
      },
    ];
  },
};
