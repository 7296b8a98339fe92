import pg from 'pg';
import type { ChangeBatch } from '../../../src/core/change-batch.ts';
import {
  type ChangeEvent,
  type Row,
  type TableRef,
  type TableSchema,
  UNCHANGED,
} from '../../../src/core/change-event.ts';
import type { Checkpoint } from '../../../src/core/checkpoint.ts';
import type { ConnectorContext } from '../../../src/core/connector-context.ts';
import type { TransactionalTarget, WriteResult } from '../../../src/core/target.ts';
import { ConnectionError, SchemaMismatchError, TributaryError } from '../../../src/errors.ts';
import { applyEvents, type RowRun, type SqlDialect, type TruncateRun } from '../../sql/apply-planner.ts';
import { groupByShape, knownColumns } from '../../sql/row-runs.ts';
import { TransactionalApply } from '../../sql/transactional-apply.ts';
import { postgresConnectionTarget, postgresTlsFailure } from '../connection-tls.ts';
import { classifyPostgresError, postgresErrorKind } from '../errors.ts';
import {
  ensureCheckpointTable,
  loadCheckpoint,
  PostgresCheckpointStore,
  saveCheckpoint,
  wrapConnectionError,
} from './checkpoint-store.ts';
import { type PostgresTargetConfig, targetTableName } from './config.ts';
import { copyRows } from './copy-writer.ts';
import { MysqlEventConversion } from './mysql-events.ts';
import {
  columnArrays,
  deleteOneSql,
  deleteSql,
  insertSql,
  type TargetTable,
  truncateSql,
  updateOneSql,
  updateSql,
  upsertSql,
} from './statements.ts';
import { followTableRename, syncTable } from './table-sync.ts';

/** Session settings matching the canonical value forms (docs/value-forms.md). */
const SESSION_SQL =
  "set timezone to 'UTC'; set datestyle to 'ISO, MDY'; set intervalstyle to 'postgres'; set extra_float_digits to 3";

/**
 * Changes are applied as PostgreSQL's own logical replication applies them: in replica mode, so target triggers
 * marked ENABLE REPLICA (or ALWAYS) fire, ordinary ones and foreign-key checks do not (the source checked them).
 */
const REPLICA_ROLE_SQL = 'set session_replication_role = replica';

/** Prepared statements kept per connection; beyond this, statements run unnamed. */
const MAX_PREPARED = 500;

/** Runs of a table that go as upserts after its rows were found to exist already (a replay), before COPY is tried again. */
const COPY_BACKOFF_RUNS = 16;

/**
 * Most COPY savepoints in one target transaction. Each is a subtransaction whose xid (and its lock) stays until the
 * top-level commit: beyond 64 every other session's snapshots overflow to pg_subtrans, and thousands (a snapshot of
 * millions of rows is one transaction) could exhaust the lock table.
 */
const MAX_COPY_SAVEPOINTS = 32;

interface CachedTable {
  schema: TableSchema;
  shape: string;
  table: TargetTable;
}

function shapeOf(schema: TableSchema): string {
  // A column that replaces a dropped one of the same name needs its table synced even when its type is unchanged.
  return JSON.stringify([
    schema.columns.map((c) => [c.name, c.type, c.replacesDropped === true]),
    schema.keyColumns,
    schema.beforeImage,
    schema.changes,
    schema.renamedFrom,
  ]);
}

/**
 * Applies change batches to a PostgreSQL database, in source commit order, one target transaction per run of
 * batches ending on a commit, with the checkpoint row written in the same transaction (exactly-once effect).
 */
export class PostgresTarget implements TransactionalTarget {
  readonly transactional = true;
  readonly classifyError = classifyPostgresError;
  readonly checkpointStore: PostgresCheckpointStore;

  /** Write queue, group commit, failure latch and replay skipping; this class does the PostgreSQL part. */
  private readonly writer: TransactionalApply;
  /** This target's part of the shared apply planner. */
  private readonly dialect: SqlDialect<TargetTable>;
  private client: pg.Client | null = null;
  private broken = false;
  private txOpen = false;
  private tables = new Map<string, CachedTable>();
  private readonly statementNames = new Map<string, string>();
  private readonly warned = new Set<string>();
  private currentTable: string | null = null;
  /** Per source table: runs left before fresh rows are tried with COPY again after a conflict. */
  private readonly copyBackoff = new Map<string, number>();
  /** COPY savepoints taken in the open transaction. */
  private copySavepoints = 0;
  /** Per table, in the open transaction: it held no row at all when first checked (see copySnapshotRun). */
  private readonly emptyAtStart = new Map<string, boolean>();
  /** Tables where a snapshot read met an existing row in a table thought empty: never COPY without a savepoint. */
  private readonly bareCopyFailed = new Set<string>();
  /** Events from a MySQL source pass through this step first (types and values PostgreSQL accepts). */
  private readonly fromMysql: MysqlEventConversion;
  /** The session could be put in replica mode (the user may set session_replication_role). */
  private replicaRole = false;

  constructor(
    private readonly config: PostgresTargetConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.checkpointStore = new PostgresCheckpointStore(config.url, { connectTimeoutMs: config.connect_timeout_ms });
    this.fromMysql = new MysqlEventConversion(config.mysql_zero_dates, ctx.logger);
    this.writer = new TransactionalApply(
      {
        connect: () => this.connect(),
        reload: () => this.reload(),
        rollback: () => this.rollback(),
        apply: (events) => this.applyEvents(events),
        commit: (cp) => this.commit(cp),
        classify: (err, batch) => this.classify(err, batch),
      },
      ctx,
      config.group_commit_max_batches,
    );
    this.dialect = {
      beforeEvent: () => (this.txOpen ? undefined : this.begin()),
      cachedTable: (ev) => this.cachedTable(ev),
      syncTable: (ev) => this.syncTable(ev),
      setCurrentTable: (id) => {
        this.currentTable = id;
      },
      truncate: (run) => this.truncate(run),
      renameTable: (from, to) => this.renameTable(from, to),
      flushRun: (run) => this.flushRun(run),
      moveKeyPartial: (table, before, after) => this.moveKeyPartial(table, before, after),
      applyKeylessChange: (table, ev) => this.applyKeylessChange(table, ev),
      warnOnce: (key, fields) => this.warnOnce(key, fields),
    };
  }

  open(): Promise<void> {
    return this.writer.open();
  }

  write(batch: ChangeBatch): Promise<WriteResult> {
    return this.writer.write(batch);
  }

  reset(): Promise<void> {
    return this.writer.reset();
  }

  async close(): Promise<void> {
    this.fromMysql.report(true);
    await this.reset().catch(() => undefined);
    const client = this.client;
    this.client = null;
    if (client) await client.end().catch(() => undefined);
    await this.checkpointStore.close();
  }

  // ---- connection ----------------------------------------------------------------------------------------------

  private discardClient(): void {
    const client = this.client;
    this.client = null;
    this.broken = false;
    this.txOpen = false;
    this.tables.clear();
    if (client) client.end().catch(() => undefined);
  }

  /** Connects unless connected; a new connection returns the checkpoint stored at the target. */
  private async connect(): Promise<Checkpoint | null | undefined> {
    if (this.client && !this.broken) return undefined;
    if (this.client && this.txOpen) {
      // What the open transaction held is gone: the batches applied into it must come again.
      throw new ConnectionError(
        'the connection to the target database was lost with a transaction open',
        'The target server restarted or the network failed; the pipeline retries from its checkpoint.',
      );
    }
    this.discardClient();
    const client = new pg.Client({
      ...postgresConnectionTarget(this.config.url),
      connectionTimeoutMillis: this.config.connect_timeout_ms,
      application_name: 'tributary-target',
    });
    client.on('error', (err) => {
      if (this.client === client) this.broken = true;
      this.ctx.logger.warn({ event: 'target_connection_lost', err: err.message });
    });
    let stored: Checkpoint | null;
    try {
      await client.connect();
      await client.query(SESSION_SQL);
      this.replicaRole = await this.enterReplicaRole(client);
      await ensureCheckpointTable(client);
      stored = await loadCheckpoint(client, this.ctx.pipeline);
    } catch (err) {
      client.end().catch(() => undefined);
      throw (
        postgresTlsFailure(err, 'the target PostgreSQL server') ??
        wrapConnectionError(err, 'connecting to the target database failed')
      );
    }
    this.client = client;
    this.broken = false;
    this.txOpen = false;
    this.tables.clear();
    this.ctx.logger.info({ event: 'target_connected', url: this.config.url });
    return stored;
  }

  /** Replica mode when the user may set it; otherwise said once, and tables with replica triggers stop (syncTable). */
  private async enterReplicaRole(client: pg.Client): Promise<boolean> {
    try {
      await client.query(REPLICA_ROLE_SQL);
      return true;
    } catch (err) {
      if ((err as { code?: unknown }).code !== '42501') throw err;
      this.warnOnce('replica-role', {
        event: 'target_replica_role_unavailable',
        hint: 'The target user may not set session_replication_role: ordinary target triggers and foreign-key checks fire on replicated rows, ENABLE REPLICA triggers do not. Run GRANT SET ON PARAMETER session_replication_role TO <user>; (PostgreSQL 15+) or connect as a superuser.',
      });
      return false;
    }
  }

  private async reload(): Promise<Checkpoint | null | undefined> {
    if (!this.client || this.broken) return undefined;
    try {
      return await loadCheckpoint(this.client, this.ctx.pipeline);
    } catch {
      this.discardClient();
      return undefined;
    }
  }

  private async rollback(): Promise<void> {
    if (!this.txOpen) return;
    this.txOpen = false;
    // DDL of the rolled-back transaction is gone too.
    this.tables.clear();
    if (!this.client || this.broken) {
      this.discardClient();
      return;
    }
    try {
      await this.client.query('rollback');
    } catch {
      this.discardClient();
    }
  }

  private async begin(): Promise<void> {
    if (this.txOpen) return;
    await this.client!.query('begin');
    this.txOpen = true;
    this.copySavepoints = 0;
    this.emptyAtStart.clear();
  }

  private async exec(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
    let name = this.statementNames.get(sql);
    if (!name && this.statementNames.size < MAX_PREPARED) {
      name = `tributary_${this.statementNames.size + 1}`;
      this.statementNames.set(sql, name);
    }
    return this.client!.query(name ? { name, text: sql, values: params } : { text: sql, values: params });
  }

  // ---- commit and failure -------------------------------------------------------------------------------------

  private async commit(cp: Checkpoint): Promise<void> {
    const client = this.client!;
    await saveCheckpoint(client, cp);
    if (this.txOpen) {
      this.txOpen = false;
      await client.query('commit');
    }
  }

  private classify(err: unknown, batch: ChangeBatch): unknown {
    if (err instanceof TributaryError) return err;
    const where = this.currentTable ? ` (table ${this.currentTable})` : '';
    const wrapped = wrapConnectionError(err, `writing batch ${batch.seq} to the target failed${where}`);
    if (wrapped !== err) return wrapped;
    const message = err instanceof Error ? err.message : String(err);
    const code = (err as { code?: unknown }).code;
    const label = /^invalid input value for enum (\S+): "(.*)"$/.exec(message);
    if (code === '22P02' && label)
      return new TributaryError('operator', `writing batch ${batch.seq} to the target failed${where}: ${message}`, {
        hint: `The source has a label the target's enum ${label[1]} lacks (added at the source after the type was copied). Run ALTER TYPE ${label[1]} ADD VALUE '${label[2]!.replace(/'/g, "''")}' on the target (at the same place in the order as at the source: BEFORE/AFTER), then restart the pipeline.`,
        cause: err,
      });
    if (typeof code === 'string' && /^(22|23|42)/.test(code)) {
      return new TributaryError('operator', `writing batch ${batch.seq} to the target failed${where}: ${message}`, {
        hint: 'The target table does not accept the source rows (its definition differs from the source). Make it match the source, then restart the pipeline.',
        cause: err,
      });
    }
    return new TributaryError(
      postgresErrorKind(err),
      `writing batch ${batch.seq} to the target failed${where}: ${message}`,
      {
        cause: err,
      },
    );
  }

  // ---- applying events -----------------------------------------------------------------------------------------

  private targetName(t: TableRef): { schema: string; name: string } {
    return targetTableName(this.config, t);
  }

  private cachedTable(ev: ChangeEvent): TargetTable | null {
    const id = `${ev.table.schema}.${ev.table.name}`;
    const cached = this.tables.get(id);
    if (!cached) return null;
    if (cached.schema === ev.schema) return cached.table;
    if (cached.shape === shapeOf(ev.schema)) {
      cached.schema = ev.schema;
      return cached.table;
    }
    return null;
  }

  private async syncTable(ev: ChangeEvent): Promise<TargetTable> {
    const table = await syncTable(
      this.client!,
      ev.source.connector === 'mysql' ? this.fromMysql.schema(ev.schema) : ev.schema,
      this.targetName(ev.table),
      { createTables: this.config.create_tables, alterTables: this.config.alter_tables },
      this.ctx.logger,
      ev.schema.renamedFrom ? this.targetName(ev.schema.renamedFrom) : undefined,
    );
    if (!this.replicaRole) await this.refuseReplicaTriggers(table);
    this.tables.set(table.sourceId, { schema: ev.schema, shape: shapeOf(ev.schema), table });
    return table;
  }

  /** Triggers meant to fire on replicated rows only cannot fire outside replica mode: stop rather than skip them. */
  private async refuseReplicaTriggers(table: TargetTable): Promise<void> {
    const { rows } = await this.client!.query<{ name: string }>(
      `select tgname as name from pg_trigger where tgrelid = to_regclass($1) and tgenabled = 'R' and not tgisinternal`,
      [table.qname],
    );
    if (rows.length === 0) return;
    throw new SchemaMismatchError(
      `target table ${table.schema}.${table.name} has trigger${rows.length === 1 ? '' : 's'} ${rows.map((r) => r.name).join(', ')} enabled for replication only (ENABLE REPLICA TRIGGER), but the target user may not set session_replication_role = replica, so ${rows.length === 1 ? 'it' : 'they'} would not fire`,
      'Run GRANT SET ON PARAMETER session_replication_role TO <target user>; (PostgreSQL 15+) or connect as a superuser, or ALTER TABLE ... ENABLE ALWAYS TRIGGER to fire it in any mode; then restart the pipeline.',
    );
  }

  private async renameTable(from: TableRef, to: TableRef): Promise<void> {
    const toId = `${to.schema}.${to.name}`;
    this.tables.delete(`${from.schema}.${from.name}`);
    this.tables.delete(toId);
    await followTableRename(this.client!, this.targetName(from), this.targetName(to), this.ctx.logger, toId);
  }

  private warnOnce(key: string, fields: Record<string, unknown>): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.ctx.logger.warn(fields);
  }

  /** MySQL values the PostgreSQL types do not accept are converted first, then the shared planner applies them. */
  private async applyEvents(events: ChangeEvent[]): Promise<void> {
    const input = events[0]?.source.connector === 'mysql' ? events.map((ev) => this.fromMysql.event(ev)) : events;
    await applyEvents(input, this.dialect, { maxRunRows: this.config.statement_max_rows });
    this.fromMysql.report();
  }

  private async truncate(run: TruncateRun<TargetTable>): Promise<void> {
    if (run.snapshot && run.tables.some((t) => t.hasForeignKeys)) {
      // Emptied before its snapshot rows: TRUNCATE refuses a table that another table references, even when that
      // one is emptied next. In replica mode DELETE checks no foreign key either.
      for (const t of run.tables) await this.exec(`delete from ${t.qname}`);
      return;
    }
    await this.exec(truncateSql(run.tables, run.restartIdentity));
  }

  private async moveKeyPartial(table: TargetTable, before: Row, after: Row): Promise<void> {
    const set = knownColumns(after).filter((c) => table.columns.has(c));
    const result = await this.exec(updateSql(table, set), [
      ...columnArrays(set, [after]),
      ...columnArrays(table.keyColumns, [before]),
    ]);
    if ((result.rowCount ?? 0) === 0) this.rowMissing(table, 1);
  }

  private rowMissing(table: TargetTable, count: number): void {
    this.ctx.logger.warn({
      event: 'target_row_missing',
      table: table.sourceId,
      rows: count,
      hint: 'An update that left unchanged (TOAST) columns out found no row on the target: the target lacks rows the source has. Resnapshot the table.',
    });
  }

  private async flushRun(run: RowRun<TargetTable>): Promise<void> {
    if (run.kind === 'append') {
      const copy = run.rows.length >= this.config.copy_min_rows;
      for (const { columns, rows } of groupByShape(run.rows).values()) {
        const cols = columns.filter((c) => run.table.columns.has(c));
        if (copy && cols.length > 0) await copyRows(this.client!, run.table, cols, rows);
        else await this.exec(insertSql(run.table, cols), cols.length > 0 ? columnArrays(cols, rows) : [rows.length]);
      }
      return;
    }
    const { table } = run.run;
    const deletes: Row[] = [];
    let upserts: Row[] = [];
    const fresh: Row[] = [];
    const partials: Row[] = [];
    for (const state of run.run.ops.values()) {
      if (state.kind === 'delete') deletes.push(state.key);
      else if (state.kind === 'upsert') (state.fresh ? fresh : upserts).push(state.row);
      else partials.push(state.row);
    }
    if (run.run.orphanedPartials > 0) this.rowMissing(table, run.run.orphanedPartials);
    if (deletes.length > 0) await this.exec(deleteSql(table), columnArrays(table.keyColumns, deletes));
    // With foreign keys on the target, rows of one run must reach the table in one statement (checks run at its end).
    const copy =
      fresh.length >= this.config.copy_min_rows &&
      (!table.hasForeignKeys || upserts.length === 0) &&
      this.copyAllowed(table);
    const copied =
      copy &&
      ((run.onlyReads && (await this.copySnapshotRun(table, fresh))) ||
        (this.copySavepoints < MAX_COPY_SAVEPOINTS && (await this.copyFresh(table, fresh))));
    if (!copied) upserts = upserts.length === 0 ? fresh : upserts.concat(fresh);
    for (const { columns, rows } of groupByShape(upserts).values()) {
      const cols = columns.filter((c) => table.columns.has(c));
      await this.exec(upsertSql(table, cols), columnArrays(cols, rows));
    }
    const keys = new Set(table.keyColumns);
    for (const { columns, rows } of groupByShape(partials).values()) {
      const set = columns.filter((c) => !keys.has(c) && table.columns.has(c));
      if (set.length === 0) continue;
      const result = await this.exec(updateSql(table, set), [
        ...columnArrays(set, rows),
        ...columnArrays(table.keyColumns, rows),
      ]);
      const missing = rows.length - (result.rowCount ?? 0);
      if (missing > 0) this.rowMissing(table, missing);
    }
  }

  private copyAllowed(table: TargetTable): boolean {
    const left = this.copyBackoff.get(table.sourceId);
    if (left === undefined) return true;
    if (left <= 1) this.copyBackoff.delete(table.sourceId);
    else this.copyBackoff.set(table.sourceId, left - 1);
    return false;
  }

  /**
   * A snapshot run into a table that held no row at all when first checked in this transaction: every row there now
   * was written by this transaction after the check, and a snapshot reads each key once, so its rows go by COPY
   * without a savepoint (a large snapshot is one transaction: savepoints would pile up). Should a key exist after
   * all (a table snapshotted while changes to it were applied in the same transaction), the whole transaction fails
   * as retryable and the table takes the savepoint path from then on.
   */
  private async copySnapshotRun(table: TargetTable, rows: Row[]): Promise<boolean> {
    if (this.bareCopyFailed.has(table.sourceId)) return false;
    let empty = this.emptyAtStart.get(table.sourceId);
    if (empty === undefined) {
      const result = await this.client!.query(`select not exists (select from ${table.qname}) as empty`);
      empty = result.rows[0]?.empty === true;
      this.emptyAtStart.set(table.sourceId, empty);
    }
    if (!empty) return false;
    try {
      for (const { columns, rows: group } of groupByShape(rows).values()) {
        await copyRows(
          this.client!,
          table,
          columns.filter((c) => table.columns.has(c)),
          group,
        );
      }
    } catch (err) {
      if ((err as { code?: unknown }).code !== '23505') throw err;
      this.bareCopyFailed.add(table.sourceId);
      throw new TributaryError(
        'retryable',
        `a snapshot row of ${table.sourceId} already exists in the target table; the transaction is applied again with upserts`,
        { cause: err },
      );
    }
    return true;
  }

  /**
   * Loads rows the source says are new with COPY straight into the table, inside a savepoint. The primary key is
   * the proof that none existed: the result then equals the upsert's. When one did exist (a replayed snapshot, rows
   * both snapshotted and streamed), the COPY fails on the key, is undone, and false sends the rows as upserts.
   */
  private async copyFresh(table: TargetTable, rows: Row[]): Promise<boolean> {
    const groups = [...groupByShape(rows).values()];
    this.copySavepoints++;
    try {
      for (let i = 0; i < groups.length; i++) {
        const { columns, rows: group } = groups[i]!;
        await copyRows(
          this.client!,
          table,
          columns.filter((c) => table.columns.has(c)),
          group,
          {
            before: i === 0 ? 'savepoint tributary_copy' : undefined,
            after: i === groups.length - 1 ? 'release savepoint tributary_copy' : undefined,
          },
        );
      }
    } catch (err) {
      if ((err as { code?: unknown }).code !== '23505' || this.broken) throw err;
      await this.client!.query('rollback to savepoint tributary_copy; release savepoint tributary_copy');
      this.copyBackoff.set(table.sourceId, COPY_BACKOFF_RUNS);
      this.ctx.logger.debug({ event: 'target_copy_conflict', table: table.sourceId, rows: rows.length });
      return false;
    }
    return true;
  }

  /** Update or delete exactly one row equal to the old image (REPLICA IDENTITY FULL, no key). */
  private async applyKeylessChange(table: TargetTable, ev: ChangeEvent): Promise<void> {
    const before = ev.before;
    if (!before) {
      this.warnOnce(`nobefore:${table.sourceId}`, {
        event: 'target_keyless_change_skipped',
        table: table.sourceId,
        op: ev.op,
        hint: 'An update or delete of a table without a key came without the old row; it cannot be matched.',
      });
      return;
    }
    const match = Object.keys(before).filter((c) => before[c] !== UNCHANGED && table.columns.has(c));
    if (ev.op === 'delete') {
      const result = await this.exec(
        deleteOneSql(table, match),
        match.map((c) => before[c]),
      );
      if ((result.rowCount ?? 0) === 0) this.rowMissing(table, 1);
      return;
    }
    if (ev.op === 'update' && ev.after) {
      const after = ev.after;
      const set = knownColumns(after).filter((c) => table.columns.has(c));
      if (set.length === 0) return;
      const result = await this.exec(updateOneSql(table, set, match), [
        ...set.map((c) => after[c]),
        ...match.map((c) => before[c]),
      ]);
      if ((result.rowCount ?? 0) === 0) this.rowMissing(table, 1);
    }
  }
}
