/**
 * Connections to a MySQL/MariaDB server for every part of this engine (source, target, checkpoint store): the url
 * read once, the session options that keep values exact, connect with its timeout and a clear error.
 */
import type { SslOptions } from 'mysql2';
import mysql from 'mysql2/promise';
import { ConnectionError } from '../../src/errors.ts';
import { redactUrl } from '../../src/observability/logger.ts';
import { mysqlTlsFailure, mysqlTlsOptions } from './connection-tls.ts';

export interface MysqlEndpoint {
  host: string;
  port: number;
  user: string;
  password?: string;
  /** TLS options from the url's ssl-* parameters; undefined for plain text. */
  ssl?: SslOptions;
}

export function parseMysqlUrl(url: string): MysqlEndpoint {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConnectionError(`not a MySQL URL: ${redactUrl(url)}`, 'expected mysql://user:password@host:port/');
  }
  return {
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username || 'root'),
    password: u.password ? decodeURIComponent(u.password) : undefined,
    ssl: mysqlTlsOptions(u),
  };
}

/** Session options every connection uses: UTC, exact numbers, dates as text. */
export function connectionOptions(endpoint: MysqlEndpoint, connectTimeoutMs: number): mysql.ConnectionOptions {
  return {
    host: endpoint.host,
    port: endpoint.port,
    user: endpoint.user,
    password: endpoint.password,
    charset: 'utf8mb4',
    timezone: 'Z',
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
    connectTimeout: connectTimeoutMs,
    ...(endpoint.ssl ? { ssl: endpoint.ssl } : {}),
  };
}

export async function connect(endpoint: MysqlEndpoint, connectTimeoutMs: number): Promise<mysql.Connection> {
  try {
    const conn = await mysql.createConnection(connectionOptions(endpoint, connectTimeoutMs));
    await conn.query("SET time_zone = '+00:00'");
    return conn;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'ER_ACCESS_DENIED_ERROR' || e.code === 'ER_DBACCESS_DENIED_ERROR') throw err;
    const tls = mysqlTlsFailure(err, `MySQL at ${endpoint.host}:${endpoint.port}`);
    if (tls) throw tls;
    throw new ConnectionError(
      `cannot connect to MySQL at ${endpoint.host}:${endpoint.port}: ${e.message ?? String(err)}`,
      'check that the server is running and the url (host, port, user, password) is right',
      err,
    );
  }
}
