/**
 * B5: end-to-end latency from source commit to visibility at the target, under pgbench --rate.
 *
 * Every source row carries `created_at timestamptz default clock_timestamp()` (its insert time, a fraction of a
 * millisecond before its single-statement commit). A poller in this process asks the target every POLL_MS for rows
 * it has not seen yet, with the target server's clock_timestamp(); latency = that visibility time - created_at. Source
 * and target databases live on the same server, so both times come from one clock. The poll interval adds 0..POLL_MS
 * (POLL_MS/2 on average) to every figure: the figures are upper bounds by that much.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { PostgresTarget, postgresTargetConfig } from '../../connectors/postgres/sink/index.ts';
import { PostgresSource } from '../../connectors/postgres/source/index.ts';
import { retryConfig } from '../../src/config/schema.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import type { PgServer } from '../../test/harness/postgres.ts';
import { collectGarbage, MiB, median, percentile, RssSampler, timeCommand } from '../lib/measure.ts';
import { dropSlotIfExists, pgArgs, pgBin } from '../lib/pg.ts';
import { BATCH, benchContext } from '../lib/pipeline-run.ts';
import { type BenchContext, metGoal, type ResultRow, type Scenario } from '../lib/scenario.ts';

const SRC = 'bench_b5_src';
const TGT = 'bench_b5_tgt';
const SLOT = 'bench_b5';
const PUBLICATION = 'bench_b5';
const POLL_MS = 10;
const RETRY = retryConfig.parse({});

interface LatencyRun {
  p50: number;
  p99: number;
  max: number;
  rows: number;
  tps: number;
  peakRss: number;
}

async function oneRun(
  server: PgServer,
  rate: number,
  seconds: number,
  script: string,
  maxWaitMs: number,
): Promise<LatencyRun> {
  await dropSlotIfExists(server, SRC, SLOT);
  await server.query(SRC, 'truncate b5 restart identity');
  await server.createDatabase(TGT);
  await server.query(SRC, `select pg_create_logical_replication_slot('${SLOT}', 'pgoutput')`);
  const name = 'bench-b5';
  const ctx = benchContext(name);
  const target = new PostgresTarget(postgresTargetConfig.parse({ type: 'postgres', url: server.url(TGT) }), ctx);
  const source = new PostgresSource(
    {
      type: 'postgres',
      url: server.url(SRC),
      tables: ['public.b5'],
      snapshot: 'never',
      slot_name: SLOT,
      publication_name: PUBLICATION,
    },
    ctx,
    { batch: { ...BATCH, max_wait_ms: maxWaitMs } },
  );
  const pipeline = new Pipeline({
    name,
    createParts: () => ({ source, target }),
    maxInFlight: BATCH.max_in_flight,
    maxInFlightBytes: BATCH.max_in_flight_bytes,
    initialBackoffMs: RETRY.initial_backoff_ms,
    maxBackoffMs: RETRY.max_backoff_ms,
    logger: ctx.logger,
  });
  collectGarbage();
  const sampler = new RssSampler(50);
  const running = pipeline.run();
  const poller = new pg.Client({ connectionString: server.url(TGT) });
  await poller.connect();
  try {
    const deadline = Date.now() + 30_000;
    while (pipeline.state.status !== 'running') {
      if (pipeline.state.status === 'failed' || Date.now() > deadline)
        throw new Error(`the pipeline did not start: ${pipeline.state.lastError?.message ?? pipeline.state.status}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const latencies: number[] = [];
    const seen = new Set<number>();
    let floor = 0;
    let polling = true;
    const poll = async () => {
      while (polling) {
        const started = Date.now();
        try {
          const { rows } = await poller.query<{ id: string; lat: number }>(
            `select id, extract(epoch from clock_timestamp() - created_at) * 1000 as lat from public.b5 where id > $1`,
            [floor],
          );
          for (const r of rows) {
            const id = Number(r.id);
            if (seen.has(id)) continue;
            seen.add(id);
            latencies.push(Number(r.lat));
          }
          while (seen.has(floor + 1)) seen.delete(++floor);
        } catch (err) {
          // The target creates the table with the first batch.
          if ((err as { code?: string }).code !== '42P01') throw err;
        }
        await new Promise((r) => setTimeout(r, Math.max(0, POLL_MS - (Date.now() - started))));
      }
    };
    const polled = poll();
    let bench: Awaited<ReturnType<typeof timeCommand>>;
    try {
      bench = await timeCommand(pgBin(server, 'pgbench'), [
        ...pgArgs(server, SRC),
        '-n',
        '-f',
        script,
        '-R',
        String(rate),
        '-T',
        String(seconds),
        '-c',
        '4',
        '-j',
        '2',
      ]);
      const [{ n }] = (await server.query<{ n: string }>(SRC, 'select count(*) as n from b5')) as [{ n: string }];
      const expected = Number(n);
      const waitUntil = Date.now() + 60_000;
      while (floor + seen.size < expected) {
        if (Date.now() > waitUntil) throw new Error(`only ${floor + seen.size}/${expected} rows reached the target`);
        if ((pipeline.state.status as string) === 'failed')
          throw new Error(`pipeline failed: ${pipeline.state.lastError?.message}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      polling = false;
      await polled;
    }
    const tps = Number(/tps = ([\d.]+)/.exec(bench.stdout)?.[1] ?? Number.NaN);
    return {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: Math.max(...latencies),
      rows: latencies.length,
      tps,
      peakRss: sampler.stop(),
    };
  } finally {
    sampler.stop();
    await poller.end().catch(() => undefined);
    pipeline.stop();
    await running.catch(() => undefined);
    await dropSlotIfExists(server, SRC, SLOT);
  }
}

export const b5: Scenario = {
  id: 'B5',
  title: 'End-to-end latency under pgbench --rate',
  async run(ctx: BenchContext) {
    const seconds = ctx.quick ? 4 : 10;
    const server = await ctx.pg();
    await server.createDatabase(SRC);
    await server.query(
      SRC,
      'create table b5 (id bigserial primary key, created_at timestamptz not null default clock_timestamp(), payload text)',
    );
    await server.query(SRC, `create publication ${PUBLICATION} for table b5`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-bench-b5-'));
    const script = path.join(dir, 'insert.sql');
    fs.writeFileSync(script, "insert into b5 (payload) values ('client ' || :client_id);\n");
    const results: ResultRow[] = [];
    try {
      // The product's default batching, then the same load with a short batch wait (what latency costs in batching).
      const variants = [
        { rate: 500, maxWaitMs: BATCH.max_wait_ms },
        { rate: 2000, maxWaitMs: BATCH.max_wait_ms },
        { rate: 2000, maxWaitMs: 10 },
      ];
      for (const { rate, maxWaitMs } of variants) {
        const tuned = maxWaitMs !== BATCH.max_wait_ms;
        const runs: LatencyRun[] = [];
        for (let i = 0; i < ctx.runs; i++) {
          const r = await oneRun(server, rate, seconds, script, maxWaitMs);
          runs.push(r);
          ctx.log(
            `B5 ${rate} tps${tuned ? ` max_wait_ms ${maxWaitMs}` : ''} run ${i + 1}: p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(0)} ms, ${r.rows} rows, pgbench ${r.tps.toFixed(0)} tps`,
          );
        }
        const p99 = median(runs.map((r) => r.p99));
        const p50 = median(runs.map((r) => r.p50));
        const goal = { kind: 'at-most', value: 100, unit: 'ms' } as const;
        results.push({
          id: 'B5',
          scenario: `Latency commit -> target visible, p99, pgbench --rate ${rate} for ${seconds} s${tuned ? `, batch.max_wait_ms: ${maxWaitMs}` : ''}`,
          unit: 'ms',
          ours: p99,
          baseline: null,
          ratio: null,
          goal,
          met: metGoal(goal, p99, null),
          eventsPerCpuSecond: null,
          peakRssMiB: Math.max(...runs.map((r) => r.peakRss)) / MiB,
          runs: { ours: runs.map((r) => r.p99), baseline: [] },
          notes: [
            `${rate} tps${tuned ? ` (max_wait_ms ${maxWaitMs})` : ''}: p50 ${p50.toFixed(1)} ms (runs: ${runs.map((r) => r.p50.toFixed(1)).join(', ')}), p99 runs ${runs.map((r) => r.p99.toFixed(1)).join(', ')}, max ${Math.max(...runs.map((r) => r.max)).toFixed(0)} ms, achieved ${runs.map((r) => r.tps.toFixed(0)).join(', ')} tps; visibility polled every ${POLL_MS} ms (adds up to ${POLL_MS} ms); batch.max_wait_ms ${maxWaitMs}${tuned ? '' : ' (default)'}`,
          ],
        });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return results;
  },
};
