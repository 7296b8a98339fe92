import { type ErrorKind, errorKind, TributaryError } from '../../src/errors.ts';

/** SQLSTATEs that mean "try again later": the server shuts down or cannot connect now, or a transaction conflict. */
const RETRYABLE_SQLSTATES = new Set([
  // admin shutdown, crash shutdown, cannot connect now
  '57P01',
  '57P02',
  '57P03',
  // connection exceptions
  '08000',
  '08003',
  '08006',
  '08001',
  '08004',
  // serialization failure, deadlock
  '40001',
  '40P01',
]);

/** node-postgres' words for a connection that went away. */
const CONNECTION_LOST = /Connection terminated|Client has encountered a connection error/i;

/**
 * The PostgreSQL engine's verdict on an error the client threw: retryable for the SQLSTATEs and connection losses
 * above, undefined otherwise (the generic rules decide). Used by the source, the target, the checkpoint store and the
 * pipeline (through the connector).
 */
export function classifyPostgresError(err: unknown): ErrorKind | undefined {
  if (err instanceof TributaryError) return undefined;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && RETRYABLE_SQLSTATES.has(code)) return 'retryable';
  const message = err instanceof Error ? err.message : String(err);
  return CONNECTION_LOST.test(message) ? 'retryable' : undefined;
}

/** The kind of any error met talking to PostgreSQL. */
export function postgresErrorKind(err: unknown): ErrorKind {
  if (err instanceof TributaryError) return err.kind;
  return classifyPostgresError(err) ?? errorKind(err);
}
