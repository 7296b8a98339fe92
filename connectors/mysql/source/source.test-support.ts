/** Shared by this folder's integration tests (not a test file itself). */
import mysql from 'mysql2/promise';
import pino from 'pino';
import type { BatchOptions } from '../../../src/config/batch.ts';
import type { ChangeBatch } from '../../../src/core/change-batch.ts';
import { type Checkpoint, isSnapshotProgress } from '../../../src/core/checkpoint.ts';
import type { ConnectorContext } from '../../../src/core/connector-context.ts';
import type { TransactionalTarget } from '../../../src/core/target.ts';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlTargetConfig } from '../sink/config.ts';
import { MysqlTarget } from '../sink/target.ts';
import { type MysqlSourceConfig, type MysqlSourceConfigInput, mysqlSourceConfig } from './config.ts';
import { MysqlSource } from './source.ts';

export const silentLogger = pino({ level: process.env.TRIBUTARY_TEST_LOG ?? 'silent' });

export function sourceConfig(server: MysqlServer, extra: Partial<MysqlSourceConfigInput> = {}): MysqlSourceConfig {
  return mysqlSourceConfig.parse({ type: 'mysql', url: server.url(), heartbeat_interval_ms: 500, ...extra });
}

export function makeSource(
  server: MysqlServer,
  pipeline: string,
  extra: Partial<MysqlSourceConfigInput> = {},
  batch?: Partial<BatchOptions>,
): MysqlSource {
  return new MysqlSource(
    sourceConfig(server, extra),
    { pipeline, logger: silentLogger },
    {
      batch: { max_events: 1000, max_bytes: 4 * 1024 * 1024, max_wait_ms: 50, ...batch },
    },
  );
}

/** A session that allows zero dates and writes in UTC. */
export async function session(server: MysqlServer, database: string): Promise<mysql.Connection> {
  const conn = await mysql.createConnection({
    uri: server.url(database),
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    timezone: 'Z',
    multipleStatements: true,
  });
  await conn.query("SET time_zone = '+00:00', sql_mode = ''");
  return conn;
}

/**
 * Pulls batches until `done` says so (or the timeout), then stops pulling (the iterator stays open for more pulls).
 */
export class Puller {
  readonly batches: ChangeBatch[] = [];
  private readonly it: AsyncIterator<ChangeBatch>;
  private pending: Promise<IteratorResult<ChangeBatch>> | null = null;
  constructor(source: MysqlSource) {
    this.it = source.batches()[Symbol.asyncIterator]();
  }

  async until(done: (all: ChangeBatch[]) => boolean, timeoutMs = 30_000): Promise<ChangeBatch[]> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.batches)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms with ${this.batches.length} batches`);
      this.pending ??= this.it.next();
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        this.pending,
        new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), left);
        }),
      ]);
      clearTimeout(timer);
      if (r === 'timeout') continue;
      this.pending = null;
      if (r.done) break;
      this.batches.push(r.value);
    }
    return this.batches;
  }

  async end(): Promise<void> {
    await this.it.return?.();
  }
}

export function events(batches: ChangeBatch[]) {
  return batches.flatMap((b) => b.events);
}

/** A batch ending the initial snapshot: the first stream checkpoint that is not a chunk's progress. */
export function snapshotDone(batch: ChangeBatch): boolean {
  return batch.checkpoint?.phase === 'stream' && !isSnapshotProgress(batch.checkpoint);
}

export function lastCheckpoint(batches: ChangeBatch[]): Checkpoint | null {
  for (let i = batches.length - 1; i >= 0; i--) if (batches[i]!.checkpoint) return batches[i]!.checkpoint;
  return null;
}

/** One transaction's GTID as the server spells it (MariaDB `domain-server-seq`, MySQL `uuid:n`). */
export function gtidPattern(server: MysqlServer): RegExp {
  return server.flavor === 'mariadb' ? /^\d+-1-\d+$/ : /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}:\d+$/;
}

/** An executed GTID position or set as the server spells it (MariaDB `0-1-5,...`, MySQL `uuid:1-5,...`). */
export function gtidSetPattern(server: MysqlServer): RegExp {
  return server.flavor === 'mariadb' ? /^\d+-1-\d+/ : /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}:1-\d+/;
}

/**
 * A pipeline from `db` on this server into a MySQL target database `${db}_dst` on the same server (or into `target`),
 * with small batches and quick retries.
 */
export function mysqlSourcePipeline(
  server: MysqlServer,
  db: string,
  ctx: ConnectorContext,
  options: {
    source?: Partial<MysqlSourceConfigInput>;
    target?: () => TransactionalTarget;
    batch?: Partial<BatchOptions>;
  } = {},
): Pipeline {
  return new Pipeline({
    name: db,
    createParts: () => ({
      source: new MysqlSource(sourceConfig(server, { databases: [db], ...options.source }), ctx, {
        batch: { max_events: 500, max_bytes: 4 * 1024 * 1024, max_wait_ms: 50, ...options.batch },
      }),
      target:
        options.target?.() ??
        new MysqlTarget(mysqlTargetConfig.parse({ type: 'mysql', url: server.url(), database: `${db}_dst` }), ctx),
    }),
    maxInFlight: 2,
    maxInFlightBytes: 16 * 1024 * 1024,
    initialBackoffMs: 100,
    maxBackoffMs: 500,
    logger: ctx.logger,
  });
}

/**
 * The most snapshot chunk reads (`snapshot_chunk_read` log lines with their start and duration) outstanding at one
 * moment: reads of a parallel snapshot overlap.
 */
export function chunkReadsAtOnce(reads: Record<string, unknown>[]): number {
  const edges: [number, number][] = [];
  for (const r of reads) {
    const start = Number(r.started_at_ms);
    edges.push([start, 1], [start + Math.max(1, Number(r.ms)), -1]);
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of edges) {
    now += d;
    most = Math.max(most, now);
  }
  return most;
}
