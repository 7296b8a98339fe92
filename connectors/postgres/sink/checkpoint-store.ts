import pg from 'pg';
import { advances } from '../../../src/checkpoint-order.ts';
import type { Checkpoint, CheckpointPosition } from '../../../src/core/checkpoint.ts';
import type { CheckpointStore } from '../../../src/core/checkpoint-store.ts';
import { ConnectionError, TributaryError } from '../../../src/errors.ts';
import { postgresConnectionTarget, postgresTlsFailure } from '../connection-tls.ts';
import { postgresErrorKind } from '../errors.ts';

/** Anything that runs a query: a pg.Client inside an open transaction, or a pool. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
}

export const CHECKPOINT_TABLE = 'tributary.checkpoints';

const CREATE_SQL = `create schema if not exists tributary;
create table if not exists tributary.checkpoints (
  pipeline text primary key,
  phase text not null,
  position jsonb not null,
  state jsonb,
  source_time timestamptz,
  updated_at timestamptz not null default now()
)`;

/**
 * Upsert that takes effect only over the row the caller read (or where there was none): `saveCheckpoint` decides in
 * code whether the new checkpoint advances (GTID sets do not compare in SQL) and this makes the decision hold.
 */
const SAVE_SQL = `insert into tributary.checkpoints as c (pipeline, phase, position, state, source_time, updated_at)
values ($1, $2, $3::jsonb, $4::jsonb, $5::timestamptz, now())
on conflict (pipeline) do update set
  phase = excluded.phase, position = excluded.position, state = excluded.state,
  source_time = excluded.source_time, updated_at = now()
where c.phase = $6 and c.position = $7::jsonb`;

/** Rounds of read-decide-write lost to another writer of the same row before saving gives up (retryably). */
const SAVE_ATTEMPTS = 5;

export async function ensureCheckpointTable(db: Queryable): Promise<void> {
  try {
    await db.query(CREATE_SQL);
  } catch (err) {
    // Two pipelines creating the table at once: one loses the race on the catalog's unique index.
    if ((err as { code?: string }).code !== '23505' && (err as { code?: string }).code !== '42P07') throw err;
  }
}

/**
 * Saves monotonically (`advances`): inside a transaction or not, on one client or a pool. Returns false when the
 * stored checkpoint already covers this one.
 */
export async function saveCheckpoint(db: Queryable, cp: Checkpoint): Promise<boolean> {
  for (let attempt = 0; attempt < SAVE_ATTEMPTS; attempt++) {
    const stored = await loadCheckpoint(db, cp.pipeline);
    if (!advances(stored, cp)) return false;
    const result = await db.query(SAVE_SQL, [
      cp.pipeline,
      cp.phase,
      JSON.stringify(cp.position),
      cp.state === undefined ? null : JSON.stringify(cp.state),
      cp.sourceTimeMs === undefined ? null : new Date(cp.sourceTimeMs).toISOString(),
      stored?.phase ?? null,
      stored ? JSON.stringify(stored.position) : null,
    ]);
    if ((result.rowCount ?? 0) > 0) return true;
  }
  throw new TributaryError('retryable', `the checkpoint of pipeline ${cp.pipeline} kept changing while it was saved`, {
    hint: "Another process writes the same pipeline's checkpoint: give each pipeline its own name.",
  });
}

export async function loadCheckpoint(db: Queryable, pipeline: string): Promise<Checkpoint | null> {
  const result = await db.query(
    `select pipeline, phase, position, state, (extract(epoch from source_time) * 1000)::float8 as source_ms
     from tributary.checkpoints where pipeline = $1`,
    [pipeline],
  );
  const row = result.rows[0] as
    | {
        pipeline: string;
        phase: 'snapshot' | 'stream';
        position: CheckpointPosition;
        state: unknown;
        source_ms: number | null;
      }
    | undefined;
  if (!row) return null;
  const cp: Checkpoint = { pipeline: row.pipeline, phase: row.phase, position: row.position };
  if (row.state !== null && row.state !== undefined) cp.state = row.state as Record<string, unknown>;
  if (row.source_ms !== null) cp.sourceTimeMs = Math.round(row.source_ms);
  return cp;
}

/** Wraps a connection-level failure into a retryable error with a hint; other errors pass through. */
export function wrapConnectionError(err: unknown, what: string): unknown {
  if (postgresErrorKind(err) === 'retryable' && !(err instanceof ConnectionError)) {
    const message = err instanceof Error ? err.message : String(err);
    return new ConnectionError(
      `${what}: ${message}`,
      'The target PostgreSQL server is unreachable or restarting; the pipeline retries with backoff. If it persists, check that the server runs and the url is right.',
      err,
    );
  }
  return err;
}

/**
 * Checkpoints in a PostgreSQL table (`tributary.checkpoints`, created when missing). Usable with any target
 * (`checkpoints: {type: postgres, url}`); the PostgreSQL target writes the same table inside its data transactions.
 */
export class PostgresCheckpointStore implements CheckpointStore {
  private pool: pg.Pool | null = null;
  private ready: Promise<void> | null = null;

  constructor(
    private readonly url: string,
    private readonly options: { connectTimeoutMs?: number } = {},
  ) {}

  private async db(): Promise<pg.Pool> {
    if (!this.pool) {
      const pool = new pg.Pool({
        ...postgresConnectionTarget(this.url),
        max: 2,
        connectionTimeoutMillis: this.options.connectTimeoutMs ?? 10_000,
        application_name: 'tributary-checkpoints',
      });
      // An idle client losing its server must not crash the process; the pool drops it.
      pool.on('error', () => undefined);
      this.pool = pool;
    }
    const pool = this.pool;
    if (!this.ready) {
      this.ready = ensureCheckpointTable(pool).catch((err) => {
        this.ready = null;
        throw postgresTlsFailure(err, 'the checkpoint PostgreSQL server') ?? err;
      });
    }
    await this.ready;
    return pool;
  }

  async load(pipeline: string): Promise<Checkpoint | null> {
    try {
      return await loadCheckpoint(await this.db(), pipeline);
    } catch (err) {
      throw wrapConnectionError(err, 'loading the checkpoint failed');
    }
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    try {
      await saveCheckpoint(await this.db(), checkpoint);
    } catch (err) {
      throw wrapConnectionError(err, 'saving the checkpoint failed');
    }
  }

  async clear(pipeline: string): Promise<void> {
    try {
      await (await this.db()).query('delete from tributary.checkpoints where pipeline = $1', [pipeline]);
    } catch (err) {
      throw wrapConnectionError(err, 'clearing the checkpoint failed');
    }
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    this.ready = null;
    if (pool) await pool.end().catch(() => undefined);
  }
}
