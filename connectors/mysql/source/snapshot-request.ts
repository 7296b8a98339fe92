/**
 * `tributary snapshot` for a MySQL/MariaDB source: writes a re-snapshot request as a row of the pipeline's signal
 * table (`signal_table`). The binlog carries the insert in order with the changes, so the pipeline acts on it at that
 * point of its stream, also when it is not running at the time (it reads the request when it gets there).
 */
import type mysql from 'mysql2/promise';
import type { ConnectorContext } from '../../../src/core/connector-context.ts';
import { TributaryError } from '../../../src/errors.ts';
import { connect, parseMysqlUrl } from '../connection.ts';
import { quoteIdent } from '../identifiers.ts';
import { type MysqlSourceConfig, type MysqlSourceConfigInput, mysqlSourceConfig } from './config.ts';
import { TableFilter } from './table-filter.ts';

/** The request kind a signal row carries for a re-snapshot; its `data` is JSON `{table, where?}`. */
export const SNAPSHOT_SIGNAL = 'snapshot';

export interface SnapshotRequest {
  /** `database.table` */
  table: string;
  /** An SQL condition on the table's columns: only matching rows are copied (and nothing is emptied first). */
  where?: string;
}

function quoted(qualified: string): string {
  const dot = qualified.indexOf('.');
  return `${quoteIdent(qualified.slice(0, dot))}.${quoteIdent(qualified.slice(dot + 1))}`;
}

/** Creates the signal table when missing (the pipeline reads its inserts; nothing else is kept there). */
async function ensureSignalTable(conn: mysql.Connection, table: string): Promise<void> {
  await conn.query(
    `CREATE TABLE IF NOT EXISTS ${quoted(table)} (
       id BIGINT AUTO_INCREMENT PRIMARY KEY,
       pipeline VARCHAR(190) NOT NULL,
       kind VARCHAR(32) NOT NULL,
       data TEXT NOT NULL,
       created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
     )`,
  );
}

/** Checks the request against the source (the table is replicated, the condition runs) and writes it. */
export async function requestMysqlSnapshot(
  config: MysqlSourceConfig | MysqlSourceConfigInput,
  ctx: ConnectorContext,
  request: SnapshotRequest,
): Promise<string> {
  const cfg = mysqlSourceConfig.parse(config);
  if (!cfg.signal_table) {
    throw new TributaryError('operator', `pipeline ${ctx.pipeline} has no signal table to receive the request`, {
      hint: 'Set source.signal_table (e.g. shop.tributary_signals) and restart the pipeline; the command creates the table, and its user needs INSERT on it (CREATE the first time).',
    });
  }
  const dot = request.table.indexOf('.');
  if (dot <= 0) {
    throw new TributaryError('operator', `expected database.table, got "${request.table}"`, {
      hint: 'Name the table with its database, e.g. --table shop.orders.',
    });
  }
  const db = request.table.slice(0, dot);
  const name = request.table.slice(dot + 1);
  if (!new TableFilter(cfg).replicates(db, name)) {
    throw new TributaryError('operator', `pipeline ${ctx.pipeline} does not replicate ${request.table}`, {
      hint: 'Name a table of its databases or tables, or add it to tables and restart the pipeline: an added table is copied on the next start.',
    });
  }
  const conn = await connect(parseMysqlUrl(cfg.url), cfg.connect_timeout_ms);
  try {
    const [found] = await conn.query(
      "SELECT 1 FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND TABLE_TYPE = 'BASE TABLE'",
      [db, name],
    );
    if ((found as unknown[]).length === 0) {
      throw new TributaryError('operator', `${request.table} does not exist at the source`, {
        hint: 'Check the name (database.table, as the server spells it).',
      });
    }
    if (request.where) {
      const [keys] = await conn.query(
        "SELECT 1 FROM INFORMATION_SCHEMA.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY'",
        [db, name],
      );
      if ((keys as unknown[]).length === 0) {
        throw new TributaryError('operator', `${request.table} has no primary key: --where cannot be used`, {
          hint: 'A table without a key is copied whole (its target table is emptied first); run the command without --where.',
        });
      }
      try {
        await conn.query(`SELECT 1 FROM ${quoted(request.table)} WHERE (${request.where}) LIMIT 0`);
      } catch (err) {
        throw new TributaryError('operator', `--where does not run on ${request.table}: ${(err as Error).message}`, {
          hint: 'Give an SQL condition on the columns of the table, e.g. --where "created_at >= \'2024-01-01\'".',
        });
      }
    }
    await ensureSignalTable(conn, cfg.signal_table);
    const data = JSON.stringify({ table: request.table, ...(request.where ? { where: request.where } : {}) });
    await conn.query(`INSERT INTO ${quoted(cfg.signal_table)} (pipeline, kind, data) VALUES (?, ?, ?)`, [
      ctx.pipeline,
      SNAPSHOT_SIGNAL,
      data,
    ]);
    return `re-snapshot of ${request.table}${request.where ? ` where ${request.where}` : ''} requested in ${cfg.signal_table}; pipeline ${ctx.pipeline} starts it when its stream reaches that row`;
  } finally {
    await conn.end().catch(() => undefined);
  }
}
