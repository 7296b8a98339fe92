import path from 'node:path';
import { loadConfig } from '../config/load.ts';
import type { Checkpoint } from '../core/checkpoint.ts';
import { describeError } from '../errors.ts';
import { ExitCode } from '../exit-codes.ts';
import { createLogger } from '../observability/logger.ts';
import type { PipelineState } from '../pipeline/pipeline.ts';
import { checkpointStoreFor, loadConnectors } from '../registry.ts';

interface PipelineReport {
  name: string;
  /** From the running daemon's /status when it answers, else `not running`. */
  status: string;
  phase: string;
  checkpoint: Checkpoint['position'] | null;
  lag_seconds: number | null;
  /** PostgreSQL: WAL the slot retains, in bytes. */
  retained_bytes: number | null;
  /** Each table's columns by identity at the checkpoint (`attnum:name`), when the source keeps a schema history. */
  schema_history?: { table: string; columns: string[] }[];
  error?: string;
}

interface SavedTable {
  schema: string;
  name: string;
  columns: { attnum: number; name: string }[];
}

function schemaHistoryOf(checkpoint: Checkpoint): PipelineReport['schema_history'] {
  const saved = checkpoint.state?.schemaHistory;
  if (!Array.isArray(saved)) return undefined;
  return (saved as SavedTable[]).map((t) => ({
    table: `${t.schema}.${t.name}`,
    columns: t.columns.map((c) => `${c.attnum}:${c.name}`),
  }));
}

/** `tributary status`: what the stores and servers say, plus the live daemon's view when it is running. */
export async function statusCommand(file: string, options: { json: boolean }): Promise<number> {
  const { config } = loadConfig(file);
  const logger = createLogger({ level: 'error' });
  const live = config.http ? await fetchLive(config.http.listen) : undefined;
  const reports: PipelineReport[] = [];
  for (const pipeline of config.pipelines) {
    const ctx = { pipeline: pipeline.name, logger };
    const liveState = live?.find((s) => s.name === pipeline.name);
    const report: PipelineReport = {
      name: pipeline.name,
      status: liveState?.status ?? 'not running',
      phase: 'not started',
      checkpoint: null,
      lag_seconds: liveState?.lagSeconds ?? null,
      retained_bytes: null,
    };
    try {
      const { source, target } = await loadConnectors(pipeline);
      const store = await checkpointStoreFor(
        pipeline,
        path.dirname(path.resolve(file)),
        target.checkpointStore?.(pipeline.target, ctx),
      );
      const checkpoint = await store.load(pipeline.name);
      await store.close?.();
      if (checkpoint) {
        report.phase = checkpoint.phase;
        report.checkpoint = checkpoint.position;
        const history = schemaHistoryOf(checkpoint);
        if (history) report.schema_history = history;
      }
      const sourceStatus = await source.status?.(pipeline.source, ctx, checkpoint);
      report.retained_bytes = sourceStatus?.retainedBytes ?? null;
    } catch (err) {
      report.error = describeError(err);
    }
    reports.push(report);
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ pipelines: reports }, null, 2)}\n`);
  } else {
    for (const r of reports) {
      const position = r.checkpoint ? JSON.stringify(r.checkpoint) : 'none';
      process.stdout.write(
        `${r.name}: ${r.status}, phase ${r.phase}, checkpoint ${position}, lag ${r.lag_seconds === null ? 'n/a' : `${r.lag_seconds.toFixed(1)} s`}` +
          `${r.retained_bytes === null ? '' : `, WAL retained ${r.retained_bytes} bytes`}${r.error ? `\n  error: ${r.error}` : ''}\n`,
      );
    }
  }
  return reports.some((r) => r.error) ? ExitCode.failed : ExitCode.ok;
}

async function fetchLive(listen: string): Promise<PipelineState[] | undefined> {
  try {
    const res = await fetch(`http://${listen}/status`, { signal: AbortSignal.timeout(1000) });
    return ((await res.json()) as { pipelines: PipelineState[] }).pipelines;
  } catch {
    return undefined;
  }
}
