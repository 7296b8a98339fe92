import { describe, expect, it } from 'vitest';
import { pendingSnapshotsOf, SnapshotProgress } from './snapshot-progress.ts';
import { formatReport, type PipelineStatusReport } from './status-report.ts';

describe('snapshot progress', () => {
  it('reports rows, the estimate, a rate and an ETA per table', () => {
    const progress = new SnapshotProgress();
    progress.start('public.a', 1000);
    progress.add('public.a', 250);
    const [a] = progress.report(Date.now() + 1000);
    expect(a).toMatchObject({ table: 'public.a', status: 'running', rows_copied: 250, estimated_rows: 1000 });
    expect(a!.rows_per_second).toBeGreaterThan(0);
    expect(a!.eta_seconds).toBeGreaterThan(0);
    progress.finish('public.a');
    expect(progress.report()[0]).toMatchObject({ status: 'done', eta_seconds: 0 });
  });

  it('reads unfinished incremental snapshots from a checkpoint and prints them', () => {
    const pending = pendingSnapshotsOf({
      snapshot: { tables: [], pending: [{ table: 'public.b', rows: 40, lastKey: ['40'] }] },
    });
    expect(pending).toEqual([expect.objectContaining({ table: 'public.b', status: 'pending', rows_copied: 40 })]);
    expect(pendingSnapshotsOf(undefined)).toEqual([]);
    const report: PipelineStatusReport = {
      name: 'p',
      status: 'not running',
      phase: 'stream',
      checkpoint: null,
      checkpoint_saved_at: null,
      lag_seconds: null,
      restarts: null,
      last_error: null,
      retained_bytes: null,
      binlog_behind_bytes: null,
      source_warnings: [],
      source_details: null,
      schema_history: null,
      snapshot_tables: pending,
    };
    expect(formatReport(report)).toContain('snapshot     public.b pending: 40 rows');
  });
});
