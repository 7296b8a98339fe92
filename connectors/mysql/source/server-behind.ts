/**
 * A checkpoint that the server has not reached: after a failover to a replica that lagged, or when the server was
 * restored from a backup, the checkpoint holds transactions the server never executed (or a binlog position past its
 * end). That is not a purged binlog, and a new snapshot is not the only way out: the server may still catch up.
 */
import type mysql from 'mysql2/promise';
import { SourceSetupError } from '../../../src/errors.ts';
import { type BinlogCoordinates, binaryLogs, type Flavor } from '../flavor.ts';
import { MysqlGtidSet } from '../gtid-set.ts';
import { compareBinlogFiles } from '../position-order.ts';

export class ServerBehindCheckpointError extends SourceSetupError {}

const HINT =
  'the server is behind the checkpoint (a failover to a replica that had not caught up, or a server restored from a ' +
  'backup). If it is still replicating, start the pipeline again once it has caught up; otherwise point the source at ' +
  'the server that has these transactions. Only if they are lost for good: clear the pipeline checkpoint to take a new snapshot';

/** The part of a MariaDB GTID position (`domain-server-seq,...`) the server's binlog has not reached; '' when none. */
function mariadbAhead(checkpoint: string, server: string): string {
  const reached = new Map<string, bigint>();
  for (const g of server.split(',')) {
    const m = /^(\d+)-\d+-(\d+)$/.exec(g.trim());
    if (m) reached.set(m[1]!, (reached.get(m[1]!) ?? 0n) > BigInt(m[2]!) ? reached.get(m[1]!)! : BigInt(m[2]!));
  }
  return checkpoint
    .split(',')
    .map((g) => g.trim())
    .filter((g) => {
      const m = /^(\d+)-\d+-(\d+)$/.exec(g);
      return m !== null && BigInt(m[2]!) > (reached.get(m[1]!) ?? 0n);
    })
    .join(',');
}

/** The transactions of `gtidSet` the server has not executed ('' when it has them all). */
export async function gtidsAheadOfServer(conn: mysql.Connection, flavor: Flavor, gtidSet: string): Promise<string> {
  if (flavor === 'mariadb') {
    const [rows] = await conn.query('SELECT @@GLOBAL.gtid_binlog_pos AS p');
    return mariadbAhead(gtidSet, String((rows as { p: string | null }[])[0]?.p ?? ''));
  }
  const [rows] = await conn.query('SELECT @@GLOBAL.gtid_executed AS s');
  const executed = MysqlGtidSet.parse(String((rows as { s: string | null }[])[0]?.s ?? ''));
  return MysqlGtidSet.parse(gtidSet).minus(executed).toString();
}

/**
 * Throws ServerBehindCheckpointError when the server has not reached the checkpoint: by GTIDs when resuming by them,
 * else when the checkpoint's binlog file is newer than the server's newest (same base name), or its offset lies past
 * that file's end.
 */
export async function checkServerReached(
  conn: mysql.Connection,
  flavor: Flavor,
  from: BinlogCoordinates & { byGtid: boolean },
): Promise<void> {
  if (from.byGtid) {
    const ahead = await gtidsAheadOfServer(conn, flavor, from.gtidSet);
    if (ahead) {
      throw new ServerBehindCheckpointError(
        `the checkpoint's GTID position ${from.gtidSet} holds transactions this server has not executed: ${ahead}`,
        HINT,
      );
    }
    return;
  }
  const logs = await binaryLogs(conn);
  const newest = logs[logs.length - 1];
  if (!newest) return;
  const base = (file: string) => file.replace(/\.\d+$/, '');
  // Files of another base name are another server's: nothing to say about them here.
  const pastEnd =
    base(from.file) === base(newest.name) &&
    (compareBinlogFiles(from.file, newest.name) > 0 || (from.file === newest.name && from.pos > newest.size));
  if (pastEnd) {
    throw new ServerBehindCheckpointError(
      `the checkpoint's binlog position ${from.file}:${from.pos} lies past the end of this server's binlog (${newest.name}:${newest.size})`,
      HINT,
    );
  }
}
