import mysql from 'mysql2/promise';
import {
  type ChangeEvent,
  type ColumnInfo,
  type Row,
  type TableRef,
  UNCHANGED,
} from '../../../src/core/change-event.ts';
import type { Checkpoint } from '../../../src/core/checkpoint.ts';
import type { ConnectorContext } from '../../../src/core/connector-context.ts';
import { ConnectionError, type ErrorKind, SchemaMismatchError, TributaryError } from '../../../src/errors.ts';
import { redactUrl } from '../../../src/observability/logger.ts';
import type { RowRun, TruncateRun } from '../../sql/apply-planner.ts';
import { groupByShape, knownColumns } from '../../sql/row-runs.ts';
import { TransactionalSqlTarget } from '../../sql/transactional-sql-target.ts';
import { connectionOptions, parseMysqlUrl } from '../connection.ts';
import { mysqlTlsFailure } from '../connection-tls.ts';
import { classifyMysqlError, isRetryableMysqlError, mysqlErrorKind } from '../errors.ts';
import { adoptLegacyCheckpoint, checkpointTableOf, LEGACY_CHECKPOINT_TABLE } from './checkpoint-location.ts';
import {
  ensureCheckpointTable,
  loadCheckpoint,
  MysqlCheckpointStore,
  saveCheckpoint,
  wrapConnectionError,
} from './checkpoint-store.ts';
import type { MysqlTargetConfig } from './config.ts';
import {
  deleteItem,
  deleteOneSql,
  deletePrefix,
  deleteSeparator,
  deleteSuffix,
  insertPrefix,
  nullSafeMatch,
  updateByKeySql,
  updateOneSql,
  upsertSuffix,
} from './statements.ts';
import { followTableRename, type SyncOptions, syncTable, type TargetTable } from './table-sync.ts';
import { NULLED, type SourceEngine, ValueConversionError } from './type-mapping.ts';

/**
 * Session settings: UTC, strict (a value that does not fit is an error, never silently cut), zero dates allowed
 * (MySQL sources pass them through), 0 stays 0 in AUTO_INCREMENT columns, and no autocommit: every statement runs in
 * the transaction that COMMIT ends, also after the implicit commit of a DDL statement or TRUNCATE.
 */
const SESSION_SQL = [
  "SET time_zone = '+00:00'",
  "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO'",
  'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED',
  'SET autocommit = 0',
];

/** Room left in max_allowed_packet for the statement text around the rows. */
const PACKET_MARGIN = 64 * 1024;

function engineOf(ev: ChangeEvent): SourceEngine {
  return ev.source.connector === 'mysql' ? 'mysql' : 'postgresql';
}

/**
 * Applies change batches to a MySQL or MariaDB server, in source commit order, one target transaction per run of
 * batches ending on a commit, with the checkpoint row written in the same transaction (exactly-once effect). The
 * shared shell runs the flow; this class is the MySQL dialect.
 */
export class MysqlTarget extends TransactionalSqlTarget<TargetTable, mysql.Connection> {
  readonly classifyError = classifyMysqlError;
  readonly checkpointStore: MysqlCheckpointStore;
  protected readonly serverNoun = 'target server';
  protected readonly rejectedRowsHint =
    'The target table does not accept the source rows (its definition differs from the source, or the user lacks a privilege). Make it match the source, then restart the pipeline.';
  private readonly checkpointTable: string;

  /** Source tables written in the open transaction (DDL on them would commit it halfway). */
  private readonly touched = new Set<string>();
  private flavor: 'mariadb' | 'mysql' = 'mariadb';
  private maxStatementBytes: number;

  constructor(
    private readonly config: MysqlTargetConfig,
    ctx: ConnectorContext,
  ) {
    super(ctx, {
      groupCommitMaxBatches: config.group_commit_max_batches,
      maxRunRows: config.statement_max_rows * 4,
    });
    this.checkpointTable = checkpointTableOf(config);
    this.checkpointStore = new MysqlCheckpointStore(config.url, this.checkpointTable, config.connect_timeout_ms);
    this.maxStatementBytes = config.statement_max_bytes;
  }

  // ---- connection ----------------------------------------------------------------------------------------------

  /** No table is written in a transaction that is gone (see ddl). */
  protected override transactionDropped(): void {
    this.touched.clear();
  }

  protected dropConnection(conn: mysql.Connection): void {
    conn.destroy();
  }

  protected async endConnection(conn: mysql.Connection): Promise<void> {
    await conn.end().catch(() => conn.destroy());
  }

  protected async loadStored(conn: mysql.Connection): Promise<Checkpoint | null> {
    const cp = await loadCheckpoint(conn, this.checkpointTable, this.ctx.pipeline);
    await conn.query('COMMIT');
    return cp;
  }

  private async openConnection(): Promise<mysql.Connection> {
    const endpoint = parseMysqlUrl(this.config.url);
    let conn: mysql.Connection;
    try {
      conn = await mysql.createConnection({
        ...connectionOptions(endpoint, this.config.connect_timeout_ms),
        multipleStatements: true,
      });
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if (e.code === 'ER_ACCESS_DENIED_ERROR' || e.code === 'ER_DBACCESS_DENIED_ERROR') {
        throw new TributaryError('operator', `the target server refused the login: ${e.message}`, {
          hint: 'Check the user and password in the target url.',
          cause: err,
        });
      }
      const tls = mysqlTlsFailure(err, `the target server at ${endpoint.host}:${endpoint.port}`);
      if (tls) throw tls;
      throw new ConnectionError(
        `cannot connect to the target server at ${endpoint.host}:${endpoint.port}: ${e.message ?? String(err)}`,
        'Check that the server is running and the url (host, port, user, password) is right; the pipeline retries with backoff.',
        err,
      );
    }
    try {
      for (const sql of SESSION_SQL) await conn.query(sql);
    } catch (err) {
      conn.destroy();
      throw wrapConnectionError(err, 'setting up the target session failed');
    }
    return conn;
  }

  protected async openSession(): Promise<{ connection: mysql.Connection; stored: Checkpoint | null }> {
    const conn = await this.openConnection();
    conn.on('error', (err) => this.connectionLost(conn, err));
    let stored: Checkpoint | null;
    try {
      const [rows] = await conn.query('SELECT VERSION() AS v, @@max_allowed_packet AS p');
      const info = (rows as { v: string; p: string | number }[])[0]!;
      this.flavor = /mariadb/i.test(info.v) ? 'mariadb' : 'mysql';
      this.maxStatementBytes = Math.max(
        64 * 1024,
        Math.min(this.config.statement_max_bytes, Number(info.p) - PACKET_MARGIN),
      );
      await ensureCheckpointTable(conn, this.checkpointTable);
      if (await adoptLegacyCheckpoint(conn, this.checkpointTable, this.ctx.pipeline))
        this.ctx.logger.info({
          event: 'checkpoint_moved',
          from: LEGACY_CHECKPOINT_TABLE,
          to: this.checkpointTable,
        });
      stored = await this.loadStored(conn);
    } catch (err) {
      conn.destroy();
      throw wrapConnectionError(err, 'connecting to the target server failed');
    }
    return { connection: conn, stored };
  }

  protected connectedFields(): Record<string, unknown> {
    return { url: redactUrl(this.config.url), flavor: this.flavor };
  }

  protected async rollbackTransaction(conn: mysql.Connection): Promise<void> {
    await conn.query('ROLLBACK');
  }

  private async exec(sql: string): Promise<mysql.ResultSetHeader | mysql.ResultSetHeader[]> {
    this.txOpen = true;
    if (this.currentTable) this.touched.add(this.currentTable);
    const [result] = await this.connection!.query(sql);
    return result as mysql.ResultSetHeader | mysql.ResultSetHeader[];
  }

  /**
   * DDL commits implicitly in MySQL. With nothing pending it runs here; with a transaction open it runs on a short
   * second connection, unless the open transaction already wrote the table (the second connection would wait for
   * our own metadata lock): then it runs here and commits what is pending early, which is logged.
   */
  private async ddl(sql: string | string[], table: string): Promise<void> {
    const run = async (conn: mysql.Connection | mysql.PoolConnection) => {
      const statements = typeof sql === 'string' ? [sql] : sql;
      for (const s of statements) await conn.query(s);
      // What followed the DDL (an UPDATE filling an added column) commits with it, not with the data.
      if (statements.length > 1) await conn.query('COMMIT');
    };
    if (!this.txOpen) {
      await run(this.connection!);
      return;
    }
    if (this.touched.has(table)) {
      this.ctx.logger.warn({
        event: 'target_ddl_commits_early',
        table,
        hint: 'A schema change inside a source transaction made MySQL commit the part applied so far (DDL cannot be rolled back); a crash right now would replay that part.',
      });
      await run(this.connection!);
      this.txOpen = false;
      this.touched.clear();
      return;
    }
    const side = await this.openConnection();
    try {
      await run(side);
    } finally {
      await side.end().catch(() => side.destroy());
    }
  }

  // ---- commit and failure -------------------------------------------------------------------------------------

  protected async commit(cp: Checkpoint): Promise<void> {
    const conn = this.connection!;
    this.txOpen = true;
    await saveCheckpoint(conn, this.checkpointTable, cp);
    await conn.query('COMMIT');
    this.txOpen = false;
    this.touched.clear();
  }

  protected connectionFailure(err: unknown, context: string): unknown {
    if (!isRetryableMysqlError(err)) return undefined;
    if (this.connection) this.broken = true;
    return wrapConnectionError(err, context);
  }

  protected sqlState(err: unknown): unknown {
    return (err as { sqlState?: unknown }).sqlState;
  }

  protected errorKind(err: unknown): ErrorKind {
    return mysqlErrorKind(err);
  }

  // ---- applying events -----------------------------------------------------------------------------------------

  private targetName(t: TableRef): { database: string; name: string } {
    const mapped = this.config.tables?.[`${t.schema}.${t.name}`];
    if (mapped) {
      const dot = mapped.indexOf('.');
      return { database: mapped.slice(0, dot), name: mapped.slice(dot + 1) };
    }
    return { database: this.config.database ?? t.schema, name: t.name };
  }

  /** The MySQL column type is chosen by value kind too (type-mapping.ts): a change of kind syncs the table again. */
  protected override columnShape(c: ColumnInfo): unknown[] {
    return [c.name, c.type, c.kind, c.replacesDropped === true];
  }

  private syncOptions(): SyncOptions {
    return {
      createTables: this.config.create_tables,
      alterTables: this.config.alter_tables,
      numericOverflow: this.config.numeric_overflow,
      floatNonfinite: this.config.float_nonfinite,
      dateOutOfRange: this.config.date_out_of_range,
      flavor: this.flavor,
      collation: this.flavor === 'mariadb' ? 'utf8mb4_nopad_bin' : 'utf8mb4_0900_bin',
    };
  }

  protected async syncTargetTable(ev: ChangeEvent): Promise<TargetTable> {
    return syncTable(
      this.connection!,
      (sql, t) => this.ddl(sql, t),
      ev.schema,
      engineOf(ev),
      this.targetName(ev.table),
      this.syncOptions(),
      this.ctx.logger,
      ev.schema.renamedFrom ? this.targetName(ev.schema.renamedFrom) : undefined,
    );
  }

  protected async targetTableExists(table: TableRef): Promise<boolean> {
    const t = this.targetName(table);
    const [rows] = await this.connection!.query(
      'select 1 from information_schema.tables where table_schema = ? and table_name = ?',
      [t.database, t.name],
    );
    return (rows as unknown[]).length > 0;
  }

  protected async followRename(from: TableRef, to: TableRef, fromId: string, toId: string): Promise<void> {
    // Renaming a table written in the open transaction: on a side connection it would wait for that transaction.
    await followTableRename(
      this.connection!,
      (sql) => this.ddl(sql, this.touched.has(fromId) ? fromId : toId),
      this.targetName(from),
      this.targetName(to),
      this.flavor,
      this.ctx.logger,
      toId,
    );
  }

  protected async truncate(run: TruncateRun<TargetTable>): Promise<void> {
    for (const table of run.tables) await this.truncateTable(table);
  }

  /**
   * Empties a table. TRUNCATE commits implicitly in MySQL, so it is used only when nothing is pending (then nothing
   * commits early, and a replay truncates again); inside a transaction a DELETE keeps it atomic.
   */
  private async truncateTable(table: TargetTable): Promise<void> {
    if (table.hasForeignKeys) {
      // The source emptied it together with the tables referencing it (TRUNCATE a, b), or before its snapshot:
      // no reference check applies to emptying it here (DELETE would refuse a parent before its children).
      await this.exec('SET SESSION foreign_key_checks = 0');
      try {
        await this.exec(`DELETE FROM ${table.qname}`);
      } finally {
        await this.exec('SET SESSION foreign_key_checks = 1');
      }
      return;
    }
    if (!this.txOpen) {
      try {
        await this.connection!.query(`TRUNCATE TABLE ${table.qname}`);
        return;
      } catch (err) {
        // Referenced by a foreign key: TRUNCATE is refused, DELETE works.
        if ((err as { errno?: number }).errno !== 1701) throw err;
      }
    }
    await this.exec(`DELETE FROM ${table.qname}`);
  }

  // ---- encoding ------------------------------------------------------------------------------------------------

  private keyDescription(table: TargetTable, row: Row): string {
    if (table.keyColumns.length === 0) return 'no key';
    return `key ${JSON.stringify(Object.fromEntries(table.keyColumns.map((k) => [k, row[k] === UNCHANGED ? '?' : (row[k] ?? null)])))}`;
  }

  /** The SQL literal of one value of a row (NULL for null), or a SchemaMismatchError naming table, column and key. */
  private literal(table: TargetTable, column: string, row: Row): string {
    const v = row[column];
    if (v === null || v === undefined || v === UNCHANGED) return 'NULL';
    const col = table.columns.get(column)!;
    let out: string | typeof NULLED;
    try {
      out = col.encode(v);
    } catch (err) {
      if (!(err instanceof ValueConversionError)) throw err;
      throw new SchemaMismatchError(
        `table ${table.sourceId} column ${column} (${this.keyDescription(table, row)}): ${err.message}`,
        err.hint,
      );
    }
    if (out === NULLED) {
      this.warnOnce(`nulled:${table.sourceId}:${column}`, {
        event: 'target_value_nulled',
        table: table.sourceId,
        column,
        key: this.keyDescription(table, row),
        value: v,
        hint: 'The target cannot hold this value; it was stored as NULL as configured (float_nonfinite / date_out_of_range). Logged once per column.',
      });
      return 'NULL';
    }
    return out;
  }

  private rowLiteral(table: TargetTable, columns: string[], row: Row): string {
    let s = '(';
    for (let i = 0; i < columns.length; i++) {
      if (i > 0) s += ', ';
      s += this.literal(table, columns[i]!, row);
    }
    return `${s})`;
  }

  /**
   * Sends `prefix item, item, ... suffix` in as few statements as the row and byte limits allow. Items are encoded
   * lazily, so the next statement is built while the previous one runs at the server (one statement in flight).
   */
  private async execChunked<T>(
    prefix: string,
    items: T[],
    encode: (item: T) => string,
    suffix: string,
    separator = ', ',
  ): Promise<void> {
    let sql = '';
    let count = 0;
    let inflight: Promise<unknown> | null = null;
    const send = async () => {
      if (count === 0) return;
      const statement = sql + suffix;
      sql = '';
      count = 0;
      if (inflight) await inflight;
      const running = this.exec(statement);
      // Awaited before the next statement or at the end; a failure must not go unhandled meanwhile.
      running.catch(() => undefined);
      inflight = running;
    };
    try {
      for (const item of items) {
        const text = encode(item);
        if (
          count > 0 &&
          (count >= this.config.statement_max_rows || sql.length + text.length > this.maxStatementBytes)
        ) {
          await send();
        }
        sql += count === 0 ? prefix + text : separator + text;
        count++;
      }
      await send();
      if (inflight) await inflight;
    } catch (err) {
      if (inflight) await (inflight as Promise<unknown>).catch(() => undefined);
      throw err;
    }
  }

  /** Runs independent statements, several per round trip; returns the rows each one matched. */
  private async execMany(statements: string[]): Promise<number[]> {
    const matched: number[] = [];
    let chunk: string[] = [];
    let bytes = 0;
    const send = async () => {
      if (chunk.length === 0) return;
      const result = await this.exec(chunk.join(';\n'));
      const headers = Array.isArray(result) ? result : [result];
      for (const h of headers) matched.push(h.affectedRows);
      chunk = [];
      bytes = 0;
    };
    for (const s of statements) {
      if (chunk.length > 0 && (chunk.length >= 1000 || bytes + s.length > this.maxStatementBytes)) await send();
      chunk.push(s);
      bytes += s.length + 2;
    }
    await send();
    return matched;
  }

  // ---- statements ----------------------------------------------------------------------------------------------

  protected async moveKeyPartial(table: TargetTable, before: Row, after: Row): Promise<void> {
    const set = knownColumns(after).filter((c) => table.columns.has(c));
    const sql = updateByKeySql(
      table,
      set.map((c) => [c, this.literal(table, c, after)]),
      table.keyColumns.map((k) => this.literal(table, k, before)),
    );
    const [matched] = await this.execMany([sql]);
    if (!matched) this.rowMissing(table, 1);
  }

  protected async flushRun(run: RowRun<TargetTable>): Promise<void> {
    const { table } = run;
    this.currentTable = table.sourceId;
    if (run.kind === 'append') {
      for (const { columns, rows } of groupByShape(run.rows).values()) {
        const cols = columns.filter((c) => table.columns.has(c));
        if (cols.length === 0) continue;
        await this.execChunked(insertPrefix(table, cols), rows, (r) => this.rowLiteral(table, cols, r), '');
      }
      return;
    }
    const { deletes, upserts, partials } = this.rowChanges(run.run, false);
    if (deletes.length > 0) {
      await this.execChunked(
        deletePrefix(table),
        deletes,
        (k) =>
          deleteItem(
            table,
            table.keyColumns.map((c) => this.literal(table, c, k)),
          ),
        deleteSuffix(table),
        deleteSeparator(table),
      );
    }
    for (const { columns, rows } of groupByShape(upserts).values()) {
      const cols = columns.filter((c) => table.columns.has(c));
      await this.execChunked(
        insertPrefix(table, cols),
        rows,
        (r) => this.rowLiteral(table, cols, r),
        upsertSuffix(table, cols),
      );
    }
    if (partials.length > 0) {
      const keys = new Set(table.keyColumns);
      const statements: string[] = [];
      for (const row of partials) {
        const set = Object.keys(row).filter((c) => !keys.has(c) && table.columns.has(c));
        if (set.length === 0) continue;
        statements.push(
          updateByKeySql(
            table,
            set.map((c) => [c, this.literal(table, c, row)]),
            table.keyColumns.map((k) => this.literal(table, k, row)),
          ),
        );
      }
      const matched = await this.execMany(statements);
      const missing = matched.filter((n) => n === 0).length;
      if (missing > 0) this.rowMissing(table, missing);
    }
  }

  /** A keyless row is matched by the old row's values, NULL-safe; without any there is nothing to match. */
  protected keylessMatch(table: TargetTable, before: Row, columns: string[]): string[] | null {
    const match = columns.map((c) => nullSafeMatch(table.columns.get(c)!, this.literal(table, c, before), this.flavor));
    return match.length === 0 ? null : match;
  }

  protected async deleteOneRow(table: TargetTable, match: string[]): Promise<number> {
    const [matched] = await this.execMany([deleteOneSql(table, match)]);
    return matched ?? 0;
  }

  protected async updateOneRow(table: TargetTable, set: string[], after: Row, match: string[]): Promise<number> {
    const [matched] = await this.execMany([
      updateOneSql(
        table,
        set.map((c) => [c, this.literal(table, c, after)]),
        match,
      ),
    ]);
    return matched ?? 0;
  }
}
