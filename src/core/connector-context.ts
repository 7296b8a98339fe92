import type { Logger } from '../observability/logger.ts';

/** What a pipeline hands to the sources and targets it creates. */
export interface ConnectorContext {
  /** Pipeline name (unique in a config). */
  pipeline: string;
  logger: Logger;
}

/** A problem found by a preflight check: what is wrong and how to fix it. */
export interface PreflightProblem {
  message: string;
  hint: string;
}
