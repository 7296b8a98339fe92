/**
 * Benchmarks: `npm run bench [-- --quick] [--only B1,B3] [--runs N]`.
 *
 * Every scenario starts from its own generated data on throwaway servers, measures its baseline in the same run,
 * and reports medians. Results are printed as a table and written to bench/results/<date>.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type BenchContext, type Goal, type ResultRow, type Scenario, serverPool } from './lib/scenario.ts';
import { b1 } from './scenarios/b1-postgres-decode.ts';
import { b2 } from './scenarios/b2-mysql-decode.ts';
import { b3 } from './scenarios/b3-postgres-apply.ts';
import { b4m } from './scenarios/b4-mysql-snapshot.ts';
import { b4 } from './scenarios/b4-snapshot.ts';
import { b5 } from './scenarios/b5-latency.ts';
import { b6 } from './scenarios/b6-big-transaction.ts';
import { b7 } from './scenarios/b7-mysql-to-postgres.ts';
import { b8 } from './scenarios/b8-postgres-to-kafka.ts';
import { b9 } from './scenarios/b9-sql-target-write.ts';
import { b10 } from './scenarios/b10-verify.ts';

const SCENARIOS: Scenario[] = [b1, b2, b3, b4, b4m, b5, b6, b7, b8, b9, b10];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    runs: { type: 'string' },
    out: { type: 'string' },
    'mysql-flavor': { type: 'string', default: 'mariadb' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(`usage: npm run bench -- [--quick] [--only B1,B3] [--runs N] [--out FILE]

  --quick     smaller data sets, one run per measurement (about 1 minute)
  --only      comma-separated scenario ids (${SCENARIOS.map((s) => s.id).join(', ')})
  --runs      runs per measurement (default 3, --quick 1)
  --out       JSON results file (default bench/results/<date>.json)
  --mysql-flavor  mariadb (default) or mysql: the server B2, B4M and B7 read from`);
  process.exit(0);
}

const quick = values.quick ?? false;
const runs = values.runs ? Number(values.runs) : quick ? 1 : 3;
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`--runs expects a positive integer, got ${values.runs}`);
  process.exit(64);
}
const only = values.only
  ?.split(',')
  .map((s) => s.trim().toUpperCase())
  .filter(Boolean);
const unknown = only?.filter((id) => !SCENARIOS.some((s) => s.id === id)) ?? [];
if (unknown.length > 0) {
  console.error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.id).join(', ')}`);
  process.exit(64);
}
const selected = only ? SCENARIOS.filter((s) => only.includes(s.id)) : SCENARIOS;

const startedAt = new Date();
const loadAverageAtStart = os.loadavg().map((l) => Math.round(l * 100) / 100);
const mysqlFlavor = values['mysql-flavor'];
if (mysqlFlavor !== 'mariadb' && mysqlFlavor !== 'mysql') {
  console.error(`--mysql-flavor expects mariadb or mysql, got ${mysqlFlavor}`);
  process.exit(64);
}
const pool = serverPool(mysqlFlavor);
const ctx: BenchContext = {
  quick,
  runs,
  pg: pool.pg,
  mariadb: pool.mariadb,
  log: (message) =>
    console.error(`[${((Date.now() - startedAt.getTime()) / 1000).toFixed(0).padStart(4)} s] ${message}`),
};

const rows: ResultRow[] = [];
const scenarioSeconds: Record<string, number> = {};
let stopping = false;
const onSignal = () => {
  if (stopping) process.exit(130);
  stopping = true;
  console.error('interrupted: stopping the servers');
  void pool.stop().finally(() => process.exit(130));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

try {
  for (const scenario of selected) {
    const t0 = performance.now();
    ctx.log(`${scenario.id}: ${scenario.title}`);
    try {
      rows.push(...(await scenario.run(ctx)));
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0]!.slice(0, 300);
      ctx.log(`${scenario.id} failed: ${(err as Error).stack ?? reason}`);
      rows.push({
        id: scenario.id,
        scenario: scenario.title,
        unit: '',
        ours: null,
        baseline: null,
        ratio: null,
        goal: { kind: 'none' },
        met: null,
        eventsPerCpuSecond: null,
        peakRssMiB: null,
        runs: { ours: [], baseline: [] },
        notes: [`failed: ${reason}`],
      });
    }
    scenarioSeconds[scenario.id] = (performance.now() - t0) / 1000;
  }
} finally {
  await pool.stop();
}

const totalSeconds = (Date.now() - startedAt.getTime()) / 1000;
console.log(formatTable(rows));
for (const row of rows) for (const note of row.notes) console.log(`${row.id}: ${note}`);
console.log(`total ${totalSeconds.toFixed(0)} s (${quick ? 'quick, ' : ''}${runs} run(s) per measurement)`);

const out =
  values.out ??
  path.join(import.meta.dirname, 'results', `${startedAt.toISOString().replace(/:/g, '-').slice(0, 19)}.json`);
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(
  out,
  `${JSON.stringify(
    {
      startedAt: startedAt.toISOString(),
      totalSeconds,
      quick,
      runsPerMeasurement: runs,
      only: only ?? null,
      machine: machine(),
      scenarioSeconds,
      results: rows,
    },
    null,
    2,
  )}\n`,
);
console.log(`results: ${path.relative(process.cwd(), out)}`);

function machine() {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  return {
    cpuModel: model.trim(),
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    loadAverageAtStart,
    loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

function fmt(value: number | null, digits = 0): string {
  if (value === null || Number.isNaN(value)) return '-';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en');
  return value.toFixed(digits);
}

function goalText(goal: Goal): string {
  if (goal.kind === 'ratio-at-least') return `>= ${goal.value}x`;
  if (goal.kind === 'at-most') return `<= ${goal.value} ${goal.unit}`;
  return '-';
}

function formatTable(results: ResultRow[]): string {
  const header = [
    'id',
    'scenario',
    'ours (median)',
    'baseline (median)',
    'ratio',
    'goal',
    'met?',
    'events/CPU-s',
    'peak RSS',
  ];
  const lines = results.map((r) => [
    r.id,
    r.scenario,
    r.ours === null ? 'n/a' : `${fmt(r.ours, r.ours < 10 ? 1 : 0)} ${r.unit}`,
    r.baseline === null ? '-' : `${fmt(r.baseline)} ${r.unit}`,
    r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`,
    goalText(r.goal),
    r.met === null ? 'n/a' : r.met ? 'yes' : 'NO',
    fmt(r.eventsPerCpuSecond),
    r.peakRssMiB === null ? '-' : `${r.peakRssMiB.toFixed(0)} MiB`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(line)].join('\n');
}
