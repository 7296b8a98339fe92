import type mysql from 'mysql2/promise';
import { ConnectionError } from '../../../src/errors.ts';

/**
 * One reader per binlog reader id. Two instances of a pipeline announce the same server id, and the server then
 * drops the older reader each time the other connects: both flap, silently. A user-level lock named after the id,
 * held by the source's own connection for as long as it runs, lets the second instance say who holds it and wait.
 * The server frees the lock when that connection ends (a clean stop, a crash, a lost connection alike).
 */
export async function holdReaderLock(conn: mysql.Connection, pipeline: string, replicaId: number): Promise<void> {
  const name = readerLockName(replicaId);
  // A previous run's connection may still be closing for a moment after it stopped.
  const [rows] = await conn.query('SELECT GET_LOCK(?, 2) AS got, IS_USED_LOCK(?) AS holder', [name, name]);
  // Numbers or, for MySQL's BIGINT results under bigNumberStrings, strings.
  const { got, holder } = (rows as { got: number | string | null; holder: number | string | null }[])[0]!;
  if (Number(got) === 1) return;
  const where = holder === null ? '' : await describeConnection(conn, Number(holder));
  throw new ConnectionError(
    `the binlog reader id ${replicaId} of pipeline ${pipeline} is held by another instance (${where || 'a connection this user cannot see'})`,
    'Another instance of this pipeline (or another pipeline with the same server_id) reads this binlog; this one retries until it stops. Stop the other instance, or give each pipeline its own server_id.',
  );
}

/** Lock names are limited to 64 characters; the reader id is what must be unique on the server. */
export function readerLockName(replicaId: number): string {
  return `tributary.binlog_reader.${replicaId}`;
}

/** "connection N from HOST as USER", as far as the processlist shows it to this user (all of it with PROCESS). */
async function describeConnection(conn: mysql.Connection, id: number): Promise<string> {
  try {
    const [rows] = await conn.query(
      'SELECT HOST AS host, USER AS user FROM information_schema.PROCESSLIST WHERE ID = ?',
      [id],
    );
    const row = (rows as { host: string; user: string }[])[0];
    if (!row) return `connection ${id}`;
    return `connection ${id} from ${row.host.replace(/:\d+$/, '')} as ${row.user}`;
  } catch {
    return `connection ${id}`;
  }
}
