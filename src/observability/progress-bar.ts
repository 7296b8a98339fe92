import cliProgress from 'cli-progress';
import { routeTerminalLines } from './logger.ts';
import type { TableSnapshotReport } from './snapshot-progress.ts';

/** What the bars show: each pipeline's per-table snapshot progress, read anew on every redraw. */
export type SnapshotReports = () => { pipeline: string; tables: TableSnapshotReport[] }[];

const REDRAW_MS = 250;

/**
 * Progress bars on a terminal while tables are copied: one bar per table being copied (rows copied of the source's
 * estimate, rate, ETA), shown only while a copy runs. Log lines written meanwhile are printed above the bars, so
 * neither garbles the other. Not for pipes or log files: `status` and /status carry the same numbers there.
 */
export class SnapshotProgressBars {
  private readonly timer: NodeJS.Timeout;
  private bars: cliProgress.MultiBar | null = null;
  private readonly shown = new Map<string, cliProgress.SingleBar>();

  constructor(
    private readonly reports: SnapshotReports,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.timer = setInterval(() => this.redraw(), REDRAW_MS);
    this.timer.unref();
  }

  /** Whether bars belong on this terminal: an interactive one, not CI, not asked for JSON logs. */
  static wanted(stream: NodeJS.WriteStream = process.stderr): boolean {
    return Boolean(stream.isTTY) && !process.env.CI && process.env.TRIBUTARY_LOG_FORMAT !== 'json';
  }

  stop(): void {
    clearInterval(this.timer);
    this.hide();
  }

  private redraw(): void {
    const tables = this.reports().flatMap(({ pipeline, tables }) =>
      tables.map((t) => ({ id: `${pipeline} ${t.table}`, ...t })),
    );
    const running = tables.some((t) => t.status === 'running');
    if (!running && !this.bars) return;
    if (!this.bars) this.show();
    for (const t of tables) {
      const bar = this.shown.get(t.id);
      if (t.status !== 'running' && !bar) continue;
      // The estimate is a statistic: a copy may pass it, and the bar then grows with the copy.
      const total = Math.max(t.estimated_rows ?? 0, t.rows_copied, 1);
      const payload = {
        table: t.id,
        rate: t.rows_per_second === null ? '-' : `${t.rows_per_second.toLocaleString('en-US')} rows/s`,
        left: t.status === 'done' ? 'done' : t.eta_seconds === null ? 'ETA -' : `ETA ${formatSeconds(t.eta_seconds)}`,
      };
      if (!bar) {
        this.shown.set(t.id, this.bars!.create(total, t.rows_copied, payload));
      } else {
        bar.setTotal(t.status === 'done' ? t.rows_copied : total);
        bar.update(t.rows_copied, payload);
      }
    }
    // The last copy ended: its bars stay on the screen as they ended, and log lines go straight out again.
    if (!running) this.hide();
  }

  private show(): void {
    this.bars = new cliProgress.MultiBar(
      {
        stream: this.stream,
        format: '{table} [{bar}] {percentage}% {value}/{total} rows, {rate}, {left}',
        hideCursor: true,
        clearOnComplete: false,
        autopadding: true,
        // Redrawn by this class's own timer, and only on a terminal.
        noTTYOutput: false,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
    const bars = this.bars;
    routeTerminalLines((line) => bars.log(line.endsWith('\n') ? line : `${line}\n`));
  }

  private hide(): void {
    if (!this.bars) return;
    routeTerminalLines(null);
    // A last redraw prints the log lines still held for above the bars.
    this.bars.update();
    this.bars.stop();
    this.bars = null;
    this.shown.clear();
  }
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
