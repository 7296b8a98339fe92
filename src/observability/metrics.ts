import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ChangeBatch } from '../core/change-batch.ts';
import { tableId } from '../core/change-event.ts';
import type { TableSnapshotReport } from './snapshot-progress.ts';

const PIPELINE_STATUSES = ['starting', 'running', 'retrying', 'stopping', 'stopped', 'failed'] as const;

/**
 * Prometheus metrics of all pipelines of one daemon, named by Prometheus conventions (unit suffixes, `_total` for
 * counters). docs/operations.md lists them; deploy/grafana-dashboard.json charts them.
 */
export class PipelineMetrics {
  readonly registry = new Registry();
  readonly events = new Counter({
    name: 'tributary_events_total',
    help: 'Change events read from the source, by pipeline, table and operation.',
    labelNames: ['pipeline', 'table', 'op'] as const,
    registers: [this.registry],
  });
  readonly batches = new Counter({
    name: 'tributary_batches_total',
    help: 'Batches handed to the target.',
    labelNames: ['pipeline'] as const,
    registers: [this.registry],
  });
  readonly writeSeconds = new Histogram({
    name: 'tributary_target_write_seconds',
    help: 'Time for the target to make one batch durable.',
    labelNames: ['pipeline'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly lagSeconds = new Gauge({
    name: 'tributary_lag_seconds',
    help: 'Seconds between a change committing at the source and becoming durable at the target (last batch).',
    labelNames: ['pipeline'] as const,
    registers: [this.registry],
  });
  /** Set by the daemon: when each pipeline last saved a checkpoint (ms since epoch), read at scrape time. */
  checkpointSavedAt: () => { pipeline: string; atMs: number | null }[] = () => [];
  readonly checkpointAgeSeconds = new Gauge({
    name: 'tributary_checkpoint_age_seconds',
    help: 'Seconds since the pipeline last saved a checkpoint.',
    labelNames: ['pipeline'] as const,
    registers: [this.registry],
    collect: () => {
      for (const { pipeline, atMs } of this.checkpointSavedAt()) {
        if (atMs !== null) this.checkpointAgeSeconds.set({ pipeline }, (Date.now() - atMs) / 1000);
      }
    },
  });
  readonly errors = new Counter({
    name: 'tributary_errors_total',
    help: 'Pipeline failures by kind (retryable, operator, fatal).',
    labelNames: ['pipeline', 'kind'] as const,
    registers: [this.registry],
  });

  /** Set by the daemon: each pipeline's status, read at scrape time. */
  pipelineStatuses: () => { pipeline: string; status: string }[] = () => [];
  readonly pipelineStatus = new Gauge({
    name: 'tributary_pipeline_status',
    help: 'The status of each pipeline: 1 for its current status (starting, running, retrying, stopping, stopped, failed), 0 for the others.',
    labelNames: ['pipeline', 'status'] as const,
    registers: [this.registry],
    collect: () => {
      this.pipelineStatus.reset();
      for (const { pipeline, status } of this.pipelineStatuses()) {
        for (const s of PIPELINE_STATUSES) this.pipelineStatus.set({ pipeline, status: s }, s === status ? 1 : 0);
      }
    },
  });

  /** Set by the daemon: each pipeline's per-table snapshot progress, read at scrape time. */
  snapshotTables: () => { pipeline: string; tables: TableSnapshotReport[] }[] = () => [];
  private snapshotGauge(name: string, help: string, value: (t: TableSnapshotReport) => number | null): Gauge {
    const gauge: Gauge = new Gauge({
      name,
      help,
      labelNames: ['pipeline', 'table'] as const,
      registers: [this.registry],
      collect: () => {
        gauge.reset();
        for (const { pipeline, tables } of this.snapshotTables()) {
          for (const t of tables) {
            const v = value(t);
            if (v !== null) gauge.set({ pipeline, table: t.table }, v);
          }
        }
      },
    });
    return gauge;
  }
  readonly snapshotRows = this.snapshotGauge(
    'tributary_snapshot_rows_copied',
    'Rows a snapshot of the table has copied so far (initial or incremental).',
    (t) => t.rows_copied,
  );
  readonly snapshotRowsEstimated = this.snapshotGauge(
    'tributary_snapshot_rows_estimated',
    "The source's estimate of the table's rows when its snapshot started.",
    (t) => t.estimated_rows,
  );
  readonly snapshotRate = this.snapshotGauge(
    'tributary_snapshot_rows_per_second',
    "The table's snapshot rate since it started.",
    (t) => t.rows_per_second,
  );
  readonly snapshotEta = this.snapshotGauge(
    'tributary_snapshot_eta_seconds',
    'Estimated seconds until the table snapshot ends (0 when done).',
    (t) => t.eta_seconds,
  );

  constructor() {
    // The standard process_* and nodejs_* metrics, under their usual names so existing dashboards find them.
    collectDefaultMetrics({ register: this.registry });
  }

  /** Counts a batch's events per table and op with one counter update per distinct pair, not per event. */
  recordBatch(pipeline: string, batch: ChangeBatch): void {
    this.batches.inc({ pipeline });
    if (batch.blocks) {
      // Snapshot rows in bulk form: counted without decoding them.
      for (const b of batch.blocks) this.events.inc({ pipeline, table: tableId(b.table), op: 'read' }, b.rows);
      return;
    }
    if (batch.events.length === 0) return;
    const counts = new Map<string, { table: string; op: string; n: number }>();
    let lastSchema: unknown;
    let lastTable = '';
    for (const event of batch.events) {
      if (event.schema !== lastSchema) {
        lastSchema = event.schema;
        lastTable = tableId(event.table);
      }
      const key = `${lastTable}\u0000${event.op}`;
      const entry = counts.get(key);
      if (entry) entry.n += 1;
      else counts.set(key, { table: lastTable, op: event.op, n: 1 });
    }
    for (const { table, op, n } of counts.values()) this.events.inc({ pipeline, table, op }, n);
  }
}
