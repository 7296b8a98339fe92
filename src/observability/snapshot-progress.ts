/**
 * Per-table progress of a pipeline's snapshots (initial and incremental), for `status`, /status and /metrics. Rows
 * count when the source hands them on; the estimate is the source's own statistic (PostgreSQL pg_class.reltuples),
 * so a copy may end above or below it.
 */
export interface TableSnapshotReport {
  table: string;
  status: 'running' | 'done' | 'pending';
  rows_copied: number;
  /** The source's estimate of the table's rows when the copy started; null when it has none. */
  estimated_rows: number | null;
  rows_per_second: number | null;
  eta_seconds: number | null;
  started_at: string | null;
  finished_at: string | null;
}

/**
 * Incremental snapshots a checkpoint says are not finished (`state.snapshot.pending`, written by sources that copy
 * tables while streaming), for `status` when no daemon runs: rows copied up to that checkpoint, nothing live.
 */
export function pendingSnapshotsOf(state: Record<string, unknown> | undefined): TableSnapshotReport[] {
  const pending = (state?.snapshot as { pending?: unknown } | undefined)?.pending;
  if (!Array.isArray(pending)) return [];
  return pending
    .filter((p): p is { table: string; rows?: number } => typeof p?.table === 'string')
    .map((p) => ({
      table: p.table,
      status: 'pending',
      rows_copied: typeof p.rows === 'number' ? p.rows : 0,
      estimated_rows: null,
      rows_per_second: null,
      eta_seconds: null,
      started_at: null,
      finished_at: null,
    }));
}

interface TableState {
  rows: number;
  estimated: number | null;
  startedMs: number;
  finishedMs: number | null;
}

export class SnapshotProgress {
  private readonly tables = new Map<string, TableState>();

  /** A table's copy starts (again: a re-snapshot starts its count over; a resumed one passes the rows already done). */
  start(table: string, estimated: number | null, rowsDone = 0): void {
    this.tables.set(table, { rows: rowsDone, estimated, startedMs: Date.now(), finishedMs: null });
  }

  add(table: string, rows: number): void {
    const t = this.tables.get(table);
    if (t) t.rows += rows;
  }

  finish(table: string): void {
    const t = this.tables.get(table);
    if (t) t.finishedMs = Date.now();
  }

  report(now = Date.now()): TableSnapshotReport[] {
    return [...this.tables].map(([table, t]) => {
      const end = t.finishedMs ?? now;
      const seconds = (end - t.startedMs) / 1000;
      const rate = seconds > 0 ? t.rows / seconds : null;
      let eta: number | null = null;
      if (t.finishedMs !== null) eta = 0;
      else if (rate && t.estimated !== null) eta = Math.max(0, (t.estimated - t.rows) / rate);
      return {
        table,
        status: t.finishedMs === null ? 'running' : 'done',
        rows_copied: t.rows,
        estimated_rows: t.estimated,
        rows_per_second: rate === null ? null : Math.round(rate),
        eta_seconds: eta === null ? null : Math.round(eta),
        started_at: new Date(t.startedMs).toISOString(),
        finished_at: t.finishedMs === null ? null : new Date(t.finishedMs).toISOString(),
      };
    });
  }
}
