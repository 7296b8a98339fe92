import type mysql from 'mysql2/promise';
import { advances } from '../../../src/checkpoint-order.ts';
import type { Checkpoint, CheckpointPosition } from '../../../src/core/checkpoint.ts';
import type { CheckpointStore } from '../../../src/core/checkpoint-store.ts';
import { ConnectionError, TributaryError } from '../../../src/errors.ts';
import { connect, parseMysqlUrl } from '../connection.ts';
import { isRetryableMysqlError } from '../errors.ts';
import { quoteIdent } from '../identifiers.ts';
import { adoptLegacyCheckpoint } from './checkpoint-location.ts';

type Conn = mysql.Connection | mysql.PoolConnection;

/** Wraps a connection-level failure into a retryable ConnectionError with a hint; other errors pass through. */
export function wrapConnectionError(err: unknown, what: string): unknown {
  if (err instanceof TributaryError) return err;
  if (!isRetryableMysqlError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ConnectionError(
    `${what}: ${message}`,
    'The target MySQL/MariaDB server is unreachable or restarting; the pipeline retries with backoff. If it persists, check that the server runs and the url is right.',
    err,
  );
}

/** `db.table` -> quoted `` `db`.`table` `` and its parts. */
export function checkpointTable(qualified: string): { database: string; table: string; qname: string } {
  const dot = qualified.indexOf('.');
  const database = qualified.slice(0, dot);
  const table = qualified.slice(dot + 1);
  return { database, table, qname: `${quoteIdent(database)}.${quoteIdent(table)}` };
}

export async function ensureCheckpointTable(db: Conn, qualified: string): Promise<void> {
  const { database, qname } = checkpointTable(qualified);
  await db.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(database)} CHARACTER SET utf8mb4`);
  await db.query(
    `CREATE TABLE IF NOT EXISTS ${qname} (
      pipeline VARCHAR(190) NOT NULL PRIMARY KEY,
      phase VARCHAR(16) NOT NULL,
      position TEXT NOT NULL,
      state LONGTEXT NULL,
      source_time_ms BIGINT NULL,
      updated_at DATETIME(6) NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  );
}

interface StoredRow {
  pipeline: string;
  phase: 'snapshot' | 'stream';
  position: string;
  state: string | null;
  source_time_ms: string | number | null;
}

function toCheckpoint(row: StoredRow): Checkpoint {
  const cp: Checkpoint = {
    pipeline: row.pipeline,
    phase: row.phase,
    position: JSON.parse(row.position) as CheckpointPosition,
  };
  if (row.state !== null) cp.state = JSON.parse(row.state) as Record<string, unknown>;
  if (row.source_time_ms !== null) cp.sourceTimeMs = Number(row.source_time_ms);
  return cp;
}

export async function loadCheckpoint(
  db: Conn,
  qualified: string,
  pipeline: string,
  forUpdate = false,
): Promise<Checkpoint | null> {
  const { qname } = checkpointTable(qualified);
  const [rows] = await db.query(
    `SELECT pipeline, phase, position, state, source_time_ms FROM ${qname} WHERE pipeline = ?${forUpdate ? ' FOR UPDATE' : ''}`,
    [pipeline],
  );
  const row = (rows as StoredRow[])[0];
  return row ? toCheckpoint(row) : null;
}

/**
 * Saves monotonically (`advances`) inside the caller's transaction (the row is locked while compared). Returns false
 * when the stored checkpoint already covers this one.
 */
export async function saveCheckpoint(db: Conn, qualified: string, cp: Checkpoint): Promise<boolean> {
  const stored = await loadCheckpoint(db, qualified, cp.pipeline, true);
  if (stored && !advances(stored, cp)) return false;
  const { qname } = checkpointTable(qualified);
  await db.query(
    `INSERT INTO ${qname} (pipeline, phase, position, state, source_time_ms, updated_at)
     VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6))
     ON DUPLICATE KEY UPDATE phase = VALUES(phase), position = VALUES(position), state = VALUES(state),
       source_time_ms = VALUES(source_time_ms), updated_at = VALUES(updated_at)`,
    [
      cp.pipeline,
      cp.phase,
      JSON.stringify(cp.position),
      cp.state === undefined ? null : JSON.stringify(cp.state),
      cp.sourceTimeMs ?? null,
    ],
  );
  return true;
}

/**
 * Checkpoints in a MySQL table (`tributary.tributary_checkpoints` by default, created when missing). The MySQL target
 * writes the same table inside its data transactions; this store reads it for `status` and saves outside a pipeline.
 */
export class MysqlCheckpointStore implements CheckpointStore {
  private conn: mysql.Connection | null = null;

  constructor(
    private readonly url: string,
    private readonly table = 'tributary.tributary_checkpoints',
    private readonly connectTimeoutMs = 10_000,
  ) {}

  private async db(): Promise<mysql.Connection> {
    if (this.conn) return this.conn;
    const conn = await connect(parseMysqlUrl(this.url), this.connectTimeoutMs);
    conn.on('error', () => {
      if (this.conn === conn) this.conn = null;
    });
    try {
      await ensureCheckpointTable(conn, this.table);
    } catch (err) {
      conn.destroy();
      throw err;
    }
    this.conn = conn;
    return conn;
  }

  private async run<T>(what: string, fn: (db: mysql.Connection) => Promise<T>): Promise<T> {
    try {
      return await fn(await this.db());
    } catch (err) {
      const conn = this.conn;
      this.conn = null;
      conn?.destroy();
      throw wrapConnectionError(err, what);
    }
  }

  load(pipeline: string): Promise<Checkpoint | null> {
    return this.run('loading the checkpoint failed', async (db) => {
      await adoptLegacyCheckpoint(db, this.table, pipeline);
      return loadCheckpoint(db, this.table, pipeline);
    });
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    await this.run('saving the checkpoint failed', async (db) => {
      await db.query('START TRANSACTION');
      try {
        await saveCheckpoint(db, this.table, checkpoint);
        await db.query('COMMIT');
      } catch (err) {
        await db.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async clear(pipeline: string): Promise<void> {
    await this.run('clearing the checkpoint failed', (db) =>
      db.query(`DELETE FROM ${checkpointTable(this.table).qname} WHERE pipeline = ?`, [pipeline]),
    );
  }

  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = null;
    if (conn) await conn.end().catch(() => conn.destroy());
  }
}
