import type { MysqlServer } from '../../test/harness/mariadb.ts';

export interface BinlogPosition {
  file: string;
  pos: number;
}

export async function binlogPosition(server: MysqlServer): Promise<BinlogPosition> {
  // MySQL 8.4+ renamed SHOW MASTER STATUS.
  const rows = await server
    .query<{ File: string; Position: number | string }>('show master status')
    .catch(() => server.query<{ File: string; Position: number | string }>('show binary log status'));
  const row = rows[0];
  if (!row) throw new Error('the server has no binary log (show master status is empty)');
  return { file: row.File, pos: Number(row.Position) };
}

/**
 * Inserts rows (id, payload, n) into `database.table` in transactions of `perTx` rows, each statement autocommitted,
 * from a generated series.
 */
export async function insertInTransactions(
  server: MysqlServer,
  database: string,
  table: string,
  rows: number,
  perTx: number,
): Promise<void> {
  for (let lo = 1; lo <= rows; lo += perTx) {
    const hi = Math.min(lo + perTx - 1, rows);
    await server.query(
      `insert into ${table} (id, payload, n)
         select seq, concat('payload of row ', seq, repeat('x', 40)), seq * 1000000000 from ${server.series(lo, hi)}`,
      [],
      database,
    );
  }
}
