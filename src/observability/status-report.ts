import type { Checkpoint } from '../core/checkpoint.ts';
import type { PipelineState } from '../pipeline/pipeline.ts';
import type { TableSnapshotReport } from './snapshot-progress.ts';

/**
 * What /status serves and `tributary status --json` prints, one shape for both: a running daemon's view, or what the
 * checkpoint store and the source say when none runs (status `not running`).
 */
export interface PipelineStatusReport {
  name: string;
  /** starting | running | retrying | stopping | stopped | failed, or `not running`. */
  status: string;
  phase: string;
  checkpoint: Checkpoint['position'] | null;
  /** ISO time the last checkpoint was saved by the running daemon. */
  checkpoint_saved_at: string | null;
  lag_seconds: number | null;
  restarts: number | null;
  last_error: { kind: string; message: string } | null;
  /** PostgreSQL: WAL the slot retains, in bytes (only `tributary status` asks the server). */
  retained_bytes: number | null;
  /** MySQL/MariaDB: binlog bytes written after the checkpoint (only `tributary status` asks the server). */
  binlog_behind_bytes: number | null;
  /** What the source's server says an operator must act on, each with its fix (only `tributary status`). */
  source_warnings: string[];
  /** The source's own facts (slot, binlog files, reader connection), as its server reports them. */
  source_details: Record<string, unknown> | null;
  /**
   * Each table's columns by identity at the checkpoint (`attnum:name` for PostgreSQL, `id:name` for MySQL/MariaDB,
   * where the history numbers the columns itself); null when the source keeps no schema history.
   */
  schema_history: { table: string; columns: string[] }[] | null;
  /** Per table: snapshot rows copied, estimated total, rate and ETA (running daemon), or progress kept in the checkpoint. */
  snapshot_tables?: TableSnapshotReport[];
  /** Why the status command could not read the checkpoint or the source. */
  error?: string;
}

interface SavedTable {
  schema: string;
  name: string;
  /** PostgreSQL: the attribute number; MySQL/MariaDB: the history's own column number. */
  columns: ({ attnum: number; name: string } | { id: number; name: string })[];
  /** MySQL/MariaDB: only some columns are known yet (shown once the table's first rows tell the rest). */
  partial?: boolean;
}

/** The schema history a checkpoint carries, for people and `--json`. */
export function schemaHistoryOf(checkpoint: Checkpoint | null): PipelineStatusReport['schema_history'] {
  const saved = checkpoint?.state?.schemaHistory;
  if (!Array.isArray(saved)) return null;
  return (saved as SavedTable[])
    .filter((t) => !t.partial)
    .map((t) => ({
      table: `${t.schema}.${t.name}`,
      columns: t.columns.map((c) => `${'attnum' in c ? c.attnum : c.id}:${c.name}`),
    }));
}

export function reportOf(state: PipelineState): PipelineStatusReport {
  return {
    name: state.name,
    status: state.status,
    phase: phaseOf(state),
    checkpoint: state.checkpoint?.position ?? null,
    checkpoint_saved_at: state.checkpointSavedAtMs === null ? null : new Date(state.checkpointSavedAtMs).toISOString(),
    lag_seconds: state.lagSeconds,
    restarts: state.restarts,
    last_error: state.lastError,
    retained_bytes: null,
    binlog_behind_bytes: null,
    source_warnings: [],
    source_details: null,
    schema_history: schemaHistoryOf(state.checkpoint),
    snapshot_tables: state.snapshot?.report() ?? [],
  };
}

/** Before its first checkpoint a pipeline's phase is what it is doing: copying a table is the snapshot phase. */
function phaseOf(state: PipelineState): string {
  if (state.phase !== 'unknown') return state.phase;
  return state.snapshot?.report().some((t) => t.status === 'running') ? 'snapshot' : state.phase;
}

/** A report for a person: one line per pipeline, then its facts indented. */
export function formatReport(r: PipelineStatusReport): string {
  const waiting = r.status === 'retrying' && r.last_error ? ' (waiting for a server; see last error)' : '';
  const lines = [`${r.name}: ${r.status}${waiting}, phase ${r.phase}`];
  lines.push(`  checkpoint   ${r.checkpoint ? positionText(r.checkpoint) : 'none'}`);
  if (r.checkpoint_saved_at) lines.push(`  saved at     ${r.checkpoint_saved_at}`);
  if (r.lag_seconds !== null) lines.push(`  lag          ${r.lag_seconds.toFixed(1)} s`);
  if (r.retained_bytes !== null) lines.push(`  WAL retained ${bytesText(r.retained_bytes)}`);
  if (r.binlog_behind_bytes !== null) lines.push(`  binlog after checkpoint ${bytesText(r.binlog_behind_bytes)}`);
  for (const w of r.source_warnings) lines.push(`  warning      ${w}`);
  for (const t of r.snapshot_tables ?? []) lines.push(`  snapshot     ${snapshotLine(t)}`);
  if (r.restarts) lines.push(`  restarts     ${r.restarts}`);
  if (r.last_error)
    lines.push(`  last error   (${r.last_error.kind}) ${r.last_error.message.replaceAll('\n', '\n               ')}`);
  if (r.error) lines.push(`  error        ${r.error.replaceAll('\n', '\n               ')}`);
  return `${lines.join('\n')}\n`;
}

function snapshotLine(t: TableSnapshotReport): string {
  const of = t.estimated_rows !== null ? ` of ~${t.estimated_rows}` : '';
  const rate = t.rows_per_second !== null && t.status === 'running' ? `, ${t.rows_per_second} rows/s` : '';
  const eta = t.eta_seconds !== null && t.status === 'running' ? `, ETA ${t.eta_seconds} s` : '';
  return `${t.table} ${t.status}: ${t.rows_copied}${of} rows${rate}${eta}`;
}

function positionText(position: Checkpoint['position']): string {
  // lastCommitLsn only keeps replayed events identical (source.sequence); it says nothing to a person.
  const { kind, lastCommitLsn: _, ...rest } = position as { kind: string } & Record<string, unknown>;
  return `${kind} ${Object.entries(rest)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ')}`;
}

function bytesText(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}
