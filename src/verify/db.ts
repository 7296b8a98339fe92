import mysql from 'mysql2/promise';
import pg from 'pg';
import { mysqlTlsFailure, mysqlTlsOptions } from '../../connectors/mysql/connection-tls.ts';
import { postgresConnectionTarget, postgresTlsFailure } from '../../connectors/postgres/connection-tls.ts';
import { ConnectionError, TributaryError } from '../errors.ts';
import { redactUrl } from '../observability/logger.ts';
import type { Engine } from './types.ts';

/** Every value comes back as text (or null): verify computes the canonical text forms in SQL. */
export type Row = Record<string, string | null>;

/** One connection to one side of a pipeline. The only place verify touches the pg and mysql2 client libraries. */
export interface Db {
  engine: Engine;
  /** `source` or `target`, for messages. */
  role: string;
  /** PostgreSQL: server_version_num; MySQL: version string. */
  version: string;
  /** Database of the URL (PostgreSQL: the database holding the schemas). */
  database: string;
  query(sql: string, params?: unknown[]): Promise<Row[]>;
  /** A read-only transaction with one snapshot, so all queries about one table see the same rows. */
  snapshot<T>(work: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

async function inSnapshot<T>(db: Db, begin: string, work: () => Promise<T>): Promise<T> {
  await db.query(begin);
  try {
    const result = await work();
    await db.query('COMMIT');
    return result;
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

const rawText = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

export async function connect(engine: Engine, url: string, role: string, connectTimeoutMs = 10_000): Promise<Db> {
  return engine === 'postgres'
    ? connectPostgres(url, role, connectTimeoutMs)
    : connectMysql(url, role, connectTimeoutMs);
}

function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '(default port)'}${u.pathname}`;
  } catch {
    return redactUrl(url);
  }
}

function queryError(role: string, sql: string, err: unknown): Error {
  const message = (err as Error).message ?? String(err);
  const e = new TributaryError('operator', `${role}: query failed: ${message}`, {
    hint: `the query was: ${sql.length > 400 ? `${sql.slice(0, 400)}...` : sql}`,
    cause: err,
  });
  return e;
}

async function connectPostgres(url: string, role: string, connectTimeoutMs: number): Promise<Db> {
  const client = new pg.Client({
    ...postgresConnectionTarget(url),
    types: rawText,
    connectionTimeoutMillis: connectTimeoutMs,
    application_name: 'tributary-verify',
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    const tls = postgresTlsFailure(err, `the ${role} (PostgreSQL at ${where(url)})`);
    if (tls) throw tls;
    throw new ConnectionError(
      `cannot connect to the ${role} (PostgreSQL at ${where(url)}): ${(err as Error).message}`,
      'check that the server is running and that the url (host, port, database, user, password) is right',
      err,
    );
  }
  await client.query(
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; " +
      "SET bytea_output = 'hex'; SET standard_conforming_strings = on",
  );
  // JIT compiling the wide hash expressions costs more than it saves on range-sized queries.
  await client.query('SET jit = off').catch(() => undefined);
  const info = await client.query<{ v: string; d: string }>(
    "select current_setting('server_version_num') as v, current_database() as d",
  );
  const db: Db = {
    engine: 'postgres',
    role,
    version: info.rows[0]!.v,
    database: info.rows[0]!.d,
    async query(sql, params) {
      try {
        return (await client.query<Row>(sql, params as unknown[])).rows;
      } catch (err) {
        throw queryError(role, sql, err);
      }
    },
    snapshot: (work) => inSnapshot(db, 'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY', work),
    close: () => client.end().catch(() => undefined),
  };
  return db;
}

async function connectMysql(url: string, role: string, connectTimeoutMs: number): Promise<Db> {
  let conn: mysql.Connection;
  try {
    const u = new URL(url);
    const ssl = mysqlTlsOptions(u);
    conn = await mysql.createConnection({
      host: u.hostname || '127.0.0.1',
      port: Number(u.port || 3306),
      user: decodeURIComponent(u.username || 'root'),
      password: u.password ? decodeURIComponent(u.password) : undefined,
      database: u.pathname.length > 1 ? decodeURIComponent(u.pathname.slice(1)) : undefined,
      ...(ssl ? { ssl } : {}),
      charset: 'utf8mb4',
      timezone: 'Z',
      connectTimeout: connectTimeoutMs,
      typeCast: (field, next) => {
        if (field.type === 'NULL') return next();
        return field.string('utf8');
      },
    });
  } catch (err) {
    if (err instanceof TributaryError) throw err;
    const tls = mysqlTlsFailure(err, `the ${role} (MySQL at ${where(url)})`);
    if (tls) throw tls;
    throw new ConnectionError(
      `cannot connect to the ${role} (MySQL at ${where(url)}): ${(err as Error).message}`,
      'check that the server is running and that the url (host, port, user, password) is right',
      err,
    );
  }
  conn.on('error', () => undefined);
  await conn.query("SET time_zone = '+00:00'");
  await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  await conn.query(
    "SET SESSION sql_mode = REPLACE(REPLACE(@@sql_mode, 'ANSI_QUOTES', ''), 'NO_BACKSLASH_ESCAPES', '')",
  );
  const [rows] = await conn.query('select version() as v, database() as d');
  const info = (rows as Row[])[0]!;
  const db: Db = {
    engine: 'mysql',
    role,
    version: info.v ?? '',
    database: info.d ?? '',
    async query(sql, params) {
      try {
        const [result] = await conn.query(sql, params);
        return result as Row[];
      } catch (err) {
        throw queryError(role, sql, err);
      }
    },
    snapshot: (work) => inSnapshot(db, 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY', work),
    close: () => conn.end().catch(() => undefined),
  };
  return db;
}
