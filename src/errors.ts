/**
 * One error hierarchy. Every error a user or operator can meet says what happened and what to do.
 *
 * kind decides what the pipeline does:
 * - `retryable`: transient (server restarting, network); the pipeline restarts from its checkpoint with backoff.
 * - `operator`:  needs a person (missing privilege, wrong server setting, bad config); the pipeline stops.
 * - `fatal`:     a bug or an invariant broken; the pipeline stops.
 */
export type ErrorKind = 'retryable' | 'operator' | 'fatal';

export class TributaryError extends Error {
  readonly kind: ErrorKind;
  /** What to do about it, addressed to the operator. */
  readonly hint?: string;

  constructor(kind: ErrorKind, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.kind = kind;
    this.hint = options.hint;
  }
}

/** A mistake in a config file: every problem found, each with its key path. */
export class ConfigError extends TributaryError {
  readonly problems: ConfigProblem[];
  constructor(file: string, problems: ConfigProblem[]) {
    super('operator', `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} in the configuration`, {
      hint: problems.map((p) => `${p.path || '(top level)'}: ${p.message}`).join('\n'),
    });
    this.problems = problems;
  }
}

export interface ConfigProblem {
  /** Dotted key path, e.g. `pipelines[0].source.url`. */
  path: string;
  message: string;
}

/** The server is not set up the way replication needs (wal_level, binlog format, privileges...). */
export class SourceSetupError extends TributaryError {
  constructor(message: string, hint: string, cause?: unknown) {
    super('operator', message, { hint, cause });
  }
}

/** A server cannot be reached right now; worth retrying. */
export class ConnectionError extends TributaryError {
  constructor(message: string, hint: string, cause?: unknown) {
    super('retryable', message, { hint, cause });
  }
}

/** Data the target cannot hold faithfully (type mismatch, unfollowable schema change). Stops rather than guess. */
export class SchemaMismatchError extends TributaryError {
  constructor(message: string, hint: string) {
    super('operator', message, { hint });
  }
}

/**
 * Network-level error codes of Node itself that mean "try again later". An engine's own codes (SQLSTATEs, MySQL
 * error names) are known by its classifier in its wing (connectors/<engine>/errors.ts); connectors offer it to the
 * pipeline as `classifyError`.
 */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/** Classifies any thrown value into an error kind. */
export function errorKind(err: unknown): ErrorKind {
  if (err instanceof TributaryError) return err.kind;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return 'retryable';
  const message = err instanceof Error ? err.message : String(err);
  if (/connection is closed|socket hang up/i.test(message)) return 'retryable';
  return 'fatal';
}

/** The one-paragraph text shown to a user for an error: message and hint, no stack trace. */
export function describeError(err: unknown): string {
  if (err instanceof TributaryError) return err.hint ? `${err.message}\n${err.hint}` : err.message;
  return err instanceof Error ? err.message : String(err);
}
