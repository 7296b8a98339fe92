import path from 'node:path';
import { describeError } from '../errors.ts';
import { ExitCode } from '../exit-codes.ts';
import { createLogger } from '../observability/logger.ts';
import { pendingSnapshotsOf } from '../observability/snapshot-progress.ts';
import { formatReport, type PipelineStatusReport, schemaHistoryOf } from '../observability/status-report.ts';
import { checkpointStoreFor, loadConnectors } from '../registry.ts';
import { loadCommandConfig } from './command-config.ts';
import { liveStates } from './live-status.ts';

/** `tributary status`: what the stores and servers say, plus the live daemon's view when it is running. */
export async function statusCommand(file: string, options: { json: boolean }): Promise<number> {
  const { config } = loadCommandConfig(file);
  const logger = createLogger({ level: 'error' });
  const live = config.http ? await liveStates(config.http.listen, config.http.bearer_token) : undefined;
  const reports: PipelineStatusReport[] = [];
  for (const pipeline of config.pipelines) {
    const ctx = { pipeline: pipeline.name, logger };
    const liveState = live?.find((s) => s.name === pipeline.name);
    const report: PipelineStatusReport = liveState
      ? { ...liveState }
      : {
          name: pipeline.name,
          status: 'not running',
          phase: 'not started',
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
      // A running daemon's view is the newer one; the store's when none runs.
      if (checkpoint && !liveState) {
        report.phase = checkpoint.phase;
        report.checkpoint = checkpoint.position;
        report.schema_history = schemaHistoryOf(checkpoint);
        report.snapshot_tables = pendingSnapshotsOf(checkpoint.state);
      }
      const sourceStatus = await source.status?.(pipeline.source, ctx, checkpoint);
      report.retained_bytes = sourceStatus?.retainedBytes ?? null;
      report.binlog_behind_bytes = sourceStatus?.behindBytes ?? null;
      report.source_warnings = sourceStatus?.warnings ?? [];
      report.source_details = sourceStatus?.details ?? null;
    } catch (err) {
      report.error = describeError(err);
    }
    reports.push(report);
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ pipelines: reports }, null, 2)}\n`);
  } else {
    for (const r of reports) process.stdout.write(formatReport(r));
  }
  return reports.some((r) => r.error) ? ExitCode.failed : ExitCode.ok;
}
