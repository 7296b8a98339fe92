import { type MysqlServer, startMariadb } from '../../test/harness/mariadb.ts';
import { startMysql } from '../../test/harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../../test/harness/postgres.ts';
import { MiB, median } from './measure.ts';
import type { RunResult } from './pipeline-run.ts';

/** A goal on the ratio ours/baseline (higher is better), or on our figure alone (lower is better). */
export type Goal =
  | { kind: 'ratio-at-least'; value: number }
  | { kind: 'at-most'; value: number; unit: string }
  | { kind: 'none' };

/** One line of the results table. */
export interface ResultRow {
  id: string;
  scenario: string;
  unit: string;
  /** Median of our runs; null when not available. */
  ours: number | null;
  baseline: number | null;
  ratio: number | null;
  goal: Goal;
  met: boolean | null;
  eventsPerCpuSecond: number | null;
  peakRssMiB: number | null;
  runs: { ours: number[]; baseline: number[] };
  /** Why a figure is missing, what was measured exactly, extra figures (p50...). */
  notes: string[];
}

export interface BenchContext {
  quick: boolean;
  runs: number;
  pg(): Promise<PgServer>;
  mariadb(): Promise<MysqlServer>;
  log(message: string): void;
}

export interface Scenario {
  id: string;
  title: string;
  run(ctx: BenchContext): Promise<ResultRow[]>;
}

/** Builds a row from per-run figures (throughput: higher is better). */
export function throughputRow(
  id: string,
  scenario: string,
  unit: string,
  goal: Goal,
  ours: RunResult[],
  baseline: number[],
  notes: string[] = [],
): ResultRow {
  const ourRates = ours.map((r) => r.eventsPerSecond);
  const o = median(ourRates);
  const b = baseline.length ? median(baseline) : null;
  const ratio = b ? o / b : null;
  return {
    id,
    scenario,
    unit,
    ours: o,
    baseline: b,
    ratio,
    goal,
    met: metGoal(goal, o, ratio),
    eventsPerCpuSecond: median(ours.map((r) => r.eventsPerCpuSecond)),
    peakRssMiB: Math.max(...ours.map((r) => r.peakRss)) / MiB,
    runs: { ours: ourRates, baseline },
    notes,
  };
}

export function metGoal(goal: Goal, ours: number | null, ratio: number | null): boolean | null {
  if (goal.kind === 'ratio-at-least') return ratio === null ? null : ratio >= goal.value;
  if (goal.kind === 'at-most') return ours === null ? null : ours <= goal.value;
  return null;
}

export function unavailableRow(id: string, scenario: string, unit: string, goal: Goal, reason: string): ResultRow {
  return {
    id,
    scenario,
    unit,
    ours: null,
    baseline: null,
    ratio: null,
    goal,
    met: null,
    eventsPerCpuSecond: null,
    peakRssMiB: null,
    runs: { ours: [], baseline: [] },
    notes: [`not available: ${reason}`],
  };
}

/** Lazily started shared servers, stopped at the end of the run. */
/** `mysqlFlavor`: which server the MySQL scenarios (B2, B7) run on. */
export function serverPool(mysqlFlavor: 'mariadb' | 'mysql' = 'mariadb'): {
  pg(): Promise<PgServer>;
  mariadb(): Promise<MysqlServer>;
  stop(): Promise<void>;
} {
  let pg: Promise<PgServer> | null = null;
  let maria: Promise<MysqlServer> | null = null;
  return {
    pg: () => {
      pg ??= startPostgres({ throwaway: true, settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } });
      return pg;
    },
    mariadb: () => {
      maria ??= mysqlFlavor === 'mysql' ? startMysql({ throwaway: true }) : startMariadb({ throwaway: true });
      return maria;
    },
    async stop() {
      await Promise.all([
        pg?.then((s) => s.stop()).catch(() => undefined),
        maria?.then((s) => s.stop()).catch(() => undefined),
      ]);
    },
  };
}
