import { type ErrorKind, errorKind, TributaryError } from '../../src/errors.ts';

/** MySQL error codes that mean "try again": the server went away, is shutting down, or a lock conflict. */
const RETRYABLE_MYSQL_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_QUERY_INTERRUPTED',
  'ER_CONNECTION_KILLED',
  'ER_NET_READ_ERROR',
  'ER_NET_WRITE_INTERRUPTED',
  'ER_NET_READ_INTERRUPTED',
  'ER_NET_ERROR_ON_WRITE',
  'ER_TOO_MANY_USER_CONNECTIONS',
]);

/** mysql2's words for a connection that went away. */
const CONNECTION_LOST = /closed state|connection lost|server has gone away/i;

/**
 * The MySQL/MariaDB engine's verdict on an error the client threw: retryable for the codes and connection losses
 * above, undefined otherwise (the generic rules decide). Used by the source (through the connector), the target and
 * the checkpoint store.
 */
export function classifyMysqlError(err: unknown): ErrorKind | undefined {
  if (err instanceof TributaryError) return undefined;
  const e = err as { code?: unknown; message?: unknown } | null;
  if (typeof e?.code === 'string' && RETRYABLE_MYSQL_CODES.has(e.code)) return 'retryable';
  if (typeof e?.message === 'string' && CONNECTION_LOST.test(e.message)) return 'retryable';
  return undefined;
}

/** The kind of any error met talking to MySQL/MariaDB. */
export function mysqlErrorKind(err: unknown): ErrorKind {
  if (err instanceof TributaryError) return err.kind;
  return classifyMysqlError(err) ?? errorKind(err);
}

export function isRetryableMysqlError(err: unknown): boolean {
  return mysqlErrorKind(err) === 'retryable';
}
