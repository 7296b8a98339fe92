/**
 * B6: peak memory of `tributary run` (a child process, so the generator and this process's heap do not count) while
 * one large INSERT ... SELECT generate_series transaction streams from PostgreSQL to a PostgreSQL target.
 * VmHWM from /proc/PID/status is the kernel's own peak RSS of the process; VmRSS is sampled every 50 ms as well.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PgServer } from '../../test/harness/postgres.ts';
import { MiB, median, procMemory } from '../lib/measure.ts';
import { dropSlotIfExists } from '../lib/pg.ts';
import { type BenchContext, metGoal, type Scenario } from '../lib/scenario.ts';

const SRC = 'bench_b6_src';
const TGT = 'bench_b6_tgt';
const PIPELINE = 'bench-b6';
const SLOT = 'tributary_bench_b6';

interface MemoryRun {
  hwm: number;
  idleRss: number;
  rowsPerSecond: number;
}

async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  child: ChildProcess,
  log: string,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`tributary run exited (${child.exitCode ?? child.signalCode}) before ${what}: ${tail(log)}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${tail(log)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(file: string): string {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').slice(-1500) : '';
}

async function oneRun(server: PgServer, rows: number, dir: string): Promise<MemoryRun> {
  await dropSlotIfExists(server, SRC, SLOT);
  await server.query(SRC, 'truncate b6');
  await server.createDatabase(TGT);
  const config = path.join(dir, 'tributary.yaml');
  fs.writeFileSync(
    config,
    `log: { level: warn }
pipelines:
  - name: ${PIPELINE}
    source: { type: postgres, url: "${server.url(SRC)}", tables: [public.b6], snapshot: never }
    target: { type: postgres, url: "${server.url(TGT)}" }
`,
  );
  const logFile = path.join(dir, 'tributary.log');
  const log = fs.openSync(logFile, 'w');
  const child = spawn(process.execPath, ['bin/tributary.js', 'run', '-c', config], {
    stdio: ['ignore', log, log],
    cwd: path.resolve(import.meta.dirname, '../..'),
  });
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let peakSampled = 0;
  const sampler = setInterval(() => {
    const m = child.pid ? procMemory(child.pid) : null;
    if (m && m.rss > peakSampled) peakSampled = m.rss;
  }, 50);
  try {
    await waitFor(
      'the replication slot to be active',
      60_000,
      async () =>
        (await server.query(SRC, 'select 1 from pg_replication_slots where slot_name = $1 and active', [SLOT])).length >
        0,
      child,
      logFile,
    );
    const idleRss = procMemory(child.pid!)?.rss ?? 0;
    const t0 = performance.now();
    await server.query(
      SRC,
      `insert into b6 select g, 'payload of row ' || g || repeat('x', 40), g::bigint * 1000000000 from generate_series(1, ${rows}) g`,
    );
    await waitFor(
      `${rows} rows at the target`,
      600_000,
      async () => {
        try {
          const [{ n }] = (await server.query<{ n: string }>(TGT, 'select count(*) as n from public.b6')) as [
            { n: string },
          ];
          return Number(n) >= rows;
        } catch (err) {
          if ((err as { code?: string }).code === '42P01') return false;
          throw err;
        }
      },
      child,
      logFile,
    );
    const seconds = (performance.now() - t0) / 1000;
    const m = procMemory(child.pid!);
    if (!m) throw new Error('tributary run is gone');
    return { hwm: Math.max(m.hwm, peakSampled), idleRss, rowsPerSecond: rows / seconds };
  } finally {
    clearInterval(sampler);
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
    await dropSlotIfExists(server, SRC, SLOT);
  }
}

export const b6: Scenario = {
  id: 'B6',
  title: 'Peak RSS through one large transaction',
  async run(ctx: BenchContext) {
    const rows = ctx.quick ? 200_000 : 1_000_000;
    const server = await ctx.pg();
    await server.createDatabase(SRC);
    await server.query(SRC, 'create table b6 (id bigint primary key, payload text, n bigint)');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-bench-b6-'));
    const runs: MemoryRun[] = [];
    try {
      for (let i = 0; i < ctx.runs; i++) {
        const r = await oneRun(server, rows, dir);
        runs.push(r);
        ctx.log(
          `B6 run ${i + 1}: peak RSS ${(r.hwm / MiB).toFixed(0)} MiB (idle ${(r.idleRss / MiB).toFixed(0)} MiB), ${Math.round(r.rowsPerSecond)} rows/s commit to target`,
        );
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await server.query('postgres', `drop database if exists ${TGT} with (force)`).catch(() => undefined);
    }
    const peak = median(runs.map((r) => r.hwm / MiB));
    const goal = { kind: 'at-most', value: 256, unit: 'MiB' } as const;
    return [
      {
        id: 'B6',
        scenario: `Peak RSS of tributary run through one ${rows.toLocaleString('en')}-row transaction, PostgreSQL -> PostgreSQL`,
        unit: 'MiB',
        ours: peak,
        baseline: null,
        ratio: null,
        goal,
        met: metGoal(goal, peak, null),
        eventsPerCpuSecond: null,
        peakRssMiB: Math.max(...runs.map((r) => r.hwm / MiB)),
        runs: { ours: runs.map((r) => r.hwm / MiB), baseline: [] },
        notes: [
          `child process VmHWM (runs: ${runs.map((r) => (r.hwm / MiB).toFixed(0)).join(', ')} MiB); RSS when idle before the transaction ${median(runs.map((r) => r.idleRss / MiB)).toFixed(0)} MiB; ${Math.round(median(runs.map((r) => r.rowsPerSecond))).toLocaleString('en')} rows/s from the INSERT's start to all rows visible at the target`,
        ],
      },
    ];
  },
};
