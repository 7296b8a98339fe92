import path from 'node:path';
import type { PgServer } from '../../test/harness/postgres.ts';

/** Path of a PostgreSQL client program next to the server binaries (psql, pg_recvlogical, pgbench). */
export function pgBin(server: PgServer, program: string): string {
  if (!server.binDir) throw new Error(`${program}: the PostgreSQL binary directory is unknown`);
  return path.join(server.binDir, program);
}

/** Connection arguments for libpq programs. */
export function pgArgs(server: PgServer, database: string): string[] {
  return ['-h', server.host, '-p', String(server.port), '-U', 'postgres', '-d', database];
}

export async function currentWalLsn(server: PgServer, database: string): Promise<string> {
  const rows = await server.query<{ lsn: string }>(database, 'select pg_current_wal_lsn()::text as lsn');
  return rows[0]!.lsn;
}

export async function dropSlotIfExists(server: PgServer, database: string, slot: string): Promise<void> {
  await server.query(
    database,
    'select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1',
    [slot],
  );
}

/**
 * Inserts `rows` rows into `table` (id, payload, n) in transactions of `perTx` rows, each committed on its own
 * (a DO block with COMMIT between chunks).
 */
export async function insertInTransactions(
  server: PgServer,
  database: string,
  table: string,
  rows: number,
  perTx: number,
  firstId = 1,
): Promise<void> {
  await server.query(
    database,
    `do $$
     declare lo bigint := ${firstId};
     begin
       while lo < ${firstId + rows} loop
         insert into ${table} (id, payload, n)
           select g, 'payload of row ' || g || repeat('x', 40), g * 1000000000
             from generate_series(lo, least(lo + ${perTx} - 1, ${firstId + rows - 1})) g;
         commit;
         lo := lo + ${perTx};
       end loop;
     end $$`,
  );
}
