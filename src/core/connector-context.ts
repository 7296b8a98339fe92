import type { Logger } from '../observability/logger.ts';
import type { SnapshotProgress } from '../observability/snapshot-progress.ts';

/** What a pipeline hands to the sources and targets it creates. */
export interface ConnectorContext {
  /** Pipeline name (unique in a config). */
  pipeline: string;
  logger: Logger;
  /** Where a source reports its snapshots' per-table progress (for status and metrics), when someone watches. */
  snapshotProgress?: SnapshotProgress;
}

/** A problem found by a preflight check: what is wrong and how to fix it. */
export interface PreflightProblem {
  message: string;
  hint: string;
}
