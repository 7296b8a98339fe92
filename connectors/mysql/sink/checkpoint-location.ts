import type mysql from 'mysql2/promise';
import { quoteIdent } from '../identifiers.ts';
import { checkpointTable } from './checkpoint-store.ts';
import type { MysqlTargetConfig } from './config.ts';

/**
 * Where the MySQL target keeps its checkpoints. They live in the target database itself by default: a separate
 * database needs rights of its own and is shared by every pipeline on the server. Earlier versions always used
 * `tributary.tributary_checkpoints`; a checkpoint found there is moved to the new place, so an upgrade resumes
 * where it stopped.
 */
export const LEGACY_CHECKPOINT_TABLE = 'tributary.tributary_checkpoints';
const TABLE_NAME = 'tributary_checkpoints';

/** The configured checkpoint_table, else tributary_checkpoints in the target database (setting, then url). */
export function checkpointTableOf(config: Pick<MysqlTargetConfig, 'checkpoint_table' | 'database' | 'url'>): string {
  if (config.checkpoint_table) return config.checkpoint_table;
  const database = config.database ?? databaseOfUrl(config.url);
  return database ? `${database}.${TABLE_NAME}` : LEGACY_CHECKPOINT_TABLE;
}

function databaseOfUrl(url: string): string | undefined {
  try {
    const path = decodeURIComponent(new URL(url).pathname.slice(1));
    return path && !path.includes('/') ? path : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Moves this pipeline's checkpoint from the former default table into `table` when `table` has none, in one
 * transaction (copy, then delete the old row). Returns whether one was moved. Needs the table to exist.
 */
export async function adoptLegacyCheckpoint(conn: mysql.Connection, table: string, pipeline: string): Promise<boolean> {
  if (table === LEGACY_CHECKPOINT_TABLE) return false;
  const legacy = checkpointTable(LEGACY_CHECKPOINT_TABLE);
  const [exists] = await conn.query(
    'SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [legacy.database, legacy.table],
  );
  if ((exists as unknown[]).length === 0) return false;
  const target = checkpointTable(table).qname;
  await conn.query('START TRANSACTION');
  try {
    const [own] = await conn.query(`SELECT 1 FROM ${target} WHERE pipeline = ? FOR UPDATE`, [pipeline]);
    let moved = false;
    if ((own as unknown[]).length === 0) {
      const columns = ['pipeline', 'phase', 'position', 'state', 'source_time_ms', 'updated_at']
        .map(quoteIdent)
        .join(', ');
      const [copied] = await conn.query(
        `INSERT INTO ${target} (${columns}) SELECT ${columns} FROM ${legacy.qname} WHERE pipeline = ? FOR UPDATE`,
        [pipeline],
      );
      moved = (copied as { affectedRows: number }).affectedRows > 0;
      if (moved) await conn.query(`DELETE FROM ${legacy.qname} WHERE pipeline = ?`, [pipeline]);
    }
    await conn.query('COMMIT');
    return moved;
  } catch (err) {
    await conn.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
