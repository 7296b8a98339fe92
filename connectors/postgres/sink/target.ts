import pg from 'pg';
import type { ChangeEvent, Row, TableRef } from '../../../src/core/change-event.ts';
import type { Checkpoint } from '../../../src/core/checkpoint.ts';
import type { ConnectorContext } from '../../../src/core/connector-context.ts';
import type { RowBlock } from '../../../src/core/row-block.ts';
import { type ErrorKind, SchemaMismatchError, TributaryError } from '../../../src/errors.ts';
import type { RowRun, TruncateRun } from '../../sql/apply-planner.ts';
import { groupByShape, knownColumns } from '../../sql/row-runs.ts';
import { TransactionalSqlTarget } from '../../sql/transactional-sql-target.ts';
import { postgresConnectionTarget, postgresTlsFailure } from '../connection-tls.ts';
import { classifyPostgresError, postgresErrorKind } from '../errors.ts';
import { quoteIdent } from '../identifiers.ts';
import {
  ensureCheckpointTable,
  loadCheckpoint,
  PostgresCheckpointStore,
  saveCheckpoint,
  wrapConnectionError,
} from './checkpoint-store.ts';
import { type PostgresTargetConfig, targetTableName } from './config.ts';
import { copyMessages, copyRows } from './copy-writer.ts';
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

/**
 * The tables whose bare snapshot COPY met a key already there, per pipeline. Its context outlives the target objects
 * the pipeline's restarts create, and the retry that such a failure asks for must take the savepoint path: a new
 * target that forgot would fail the same way again, forever.
 */
const bareCopyFailedByPipeline = new WeakMap<ConnectorContext, Set<string>>();

function bareCopyFailedOf(ctx: ConnectorContext): Set<string> {
  let tables = bareCopyFailedByPipeline.get(ctx);
  if (!tables) {
    tables = new Set();
    bareCopyFailedByPipeline.set(ctx, tables);
  }
  return tables;
}

/**
 * Applies change batches to a PostgreSQL database, in source commit order, one target transaction per run of
 * batches ending on a commit, with the checkpoint row written in the same transaction (exactly-once effect). The
 * shared shell runs the flow; this class is the PostgreSQL dialect.
 */
export class PostgresTarget extends TransactionalSqlTarget<TargetTable, pg.Client> {
  readonly classifyError = classifyPostgresError;
  readonly checkpointStore: PostgresCheckpointStore;
  protected readonly serverNoun = 'target database';
  protected readonly rejectedRowsHint =
    'The target table does not accept the source rows (its definition differs from the source). Make it match the source, then restart the pipeline.';

  private readonly statementNames = new Map<string, string>();
  /** Per source table: runs left before fresh rows are tried with COPY again after a conflict. */
  private readonly copyBackoff = new Map<string, number>();
  /** COPY savepoints taken in the open transaction. */
  private copySavepoints = 0;
  /** Per table, in the open transaction: it held no row at all when first checked (see copySnapshotRun). */
  private readonly emptyAtStart = new Map<string, boolean>();
  /** Tables where a snapshot read met an existing row in a table thought empty: never COPY without a savepoint. */
  private readonly bareCopyFailed: Set<string>;
  /** Events from a MySQL source pass through this step first (types and values PostgreSQL accepts). */
  private readonly fromMysql: MysqlEventConversion;
  /** The session could be put in replica mode (the user may set session_replication_role). */
  private replicaRole = false;

  constructor(
    private readonly config: PostgresTargetConfig,
    ctx: ConnectorContext,
  ) {
    super(ctx, { groupCommitMaxBatches: config.group_commit_max_batches, maxRunRows: config.statement_max_rows });
    this.checkpointStore = new PostgresCheckpointStore(config.url, { connectTimeoutMs: config.connect_timeout_ms });
    this.fromMysql = new MysqlEventConversion(config.mysql_zero_dates, ctx.logger);
    this.bareCopyFailed = bareCopyFailedOf(ctx);
  }

  override async close(): Promise<void> {
    this.fromMysql.report(true);
    await super.close();
  }

  // ---- connection ----------------------------------------------------------------------------------------------

  protected async openSession(): Promise<{ connection: pg.Client; stored: Checkpoint | null }> {
    const client = new pg.Client({
      ...postgresConnectionTarget(this.config.url),
      connectionTimeoutMillis: this.config.connect_timeout_ms,
      application_name: 'tributary-target',
    });
    client.on('error', (err) => this.connectionLost(client, err));
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
    return { connection: client, stored };
  }

  protected connectedFields(): Record<string, unknown> {
    return { url: this.config.url };
  }

  protected loadStored(client: pg.Client): Promise<Checkpoint | null> {
    return loadCheckpoint(client, this.ctx.pipeline);
  }

  protected dropConnection(client: pg.Client): void {
    client.end().catch(() => undefined);
  }

  protected async endConnection(client: pg.Client): Promise<void> {
    await client.end().catch(() => undefined);
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

  protected async rollbackTransaction(client: pg.Client): Promise<void> {
    await client.query('rollback');
  }

  /** DDL of the rolled-back transaction is gone too. */
  protected override transactionDropped(): void {
    this.forgetTables();
  }

  protected override async begin(): Promise<void> {
    if (this.txOpen) return;
    await this.connection!.query('begin');
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
    return this.connection!.query(name ? { name, text: sql, values: params } : { text: sql, values: params });
  }

  // ---- commit and failure -------------------------------------------------------------------------------------

  protected async commit(cp: Checkpoint): Promise<void> {
    const client = this.connection!;
    await saveCheckpoint(client, cp);
    if (this.txOpen) {
      this.txOpen = false;
      await client.query('commit');
    }
  }

  protected connectionFailure(err: unknown, context: string): unknown {
    const wrapped = wrapConnectionError(err, context);
    return wrapped !== err ? wrapped : undefined;
  }

  protected sqlState(err: unknown): unknown {
    return (err as { code?: unknown }).code;
  }

  protected errorKind(err: unknown): ErrorKind {
    return postgresErrorKind(err);
  }

  protected override rejectionHint(err: unknown, message: string): string | undefined {
    const label = /^invalid input value for enum (\S+): "(.*)"$/.exec(message);
    if (this.sqlState(err) === '22P02' && label)
      return `The source has a label the target's enum ${label[1]} lacks (added at the source after the type was copied). Run ALTER TYPE ${label[1]} ADD VALUE '${label[2]!.replace(/'/g, "''")}' on the target (at the same place in the order as at the source: BEFORE/AFTER), then restart the pipeline.`;
    return super.rejectionHint(err, message);
  }

  // ---- applying events -----------------------------------------------------------------------------------------

  private targetName(t: TableRef): { schema: string; name: string } {
    return targetTableName(this.config, t);
  }

  protected async syncTargetTable(ev: ChangeEvent): Promise<TargetTable> {
    const table = await syncTable(
      this.connection!,
      ev.source.connector === 'mysql' ? this.fromMysql.schema(ev.schema) : ev.schema,
      this.targetName(ev.table),
      { createTables: this.config.create_tables, alterTables: this.config.alter_tables },
      this.ctx.logger,
      ev.schema.renamedFrom ? this.targetName(ev.schema.renamedFrom) : undefined,
    );
    if (!this.replicaRole) await this.refuseReplicaTriggers(table);
    return table;
  }

  /** Triggers meant to fire on replicated rows only cannot fire outside replica mode: stop rather than skip them. */
  private async refuseReplicaTriggers(table: TargetTable): Promise<void> {
    const { rows } = await this.connection!.query<{ name: string }>(
      `select tgname as name from pg_trigger where tgrelid = to_regclass($1) and tgenabled = 'R' and not tgisinternal`,
      [table.qname],
    );
    if (rows.length === 0) return;
    throw new SchemaMismatchError(
      `target table ${table.schema}.${table.name} has trigger${rows.length === 1 ? '' : 's'} ${rows.map((r) => r.name).join(', ')} enabled for replication only (ENABLE REPLICA TRIGGER), but the target user may not set session_replication_role = replica, so ${rows.length === 1 ? 'it' : 'they'} would not fire`,
      'Run GRANT SET ON PARAMETER session_replication_role TO <target user>; (PostgreSQL 15+) or connect as a superuser, or ALTER TABLE ... ENABLE ALWAYS TRIGGER to fire it in any mode; then restart the pipeline.',
    );
  }

  protected async targetTableExists(table: TableRef): Promise<boolean> {
    const t = this.targetName(table);
    const { rows } = await this.connection!.query<{ oid: string | null }>('select to_regclass($1)::oid as oid', [
      `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`,
    ]);
    return rows[0]?.oid != null;
  }

  protected async followRename(from: TableRef, to: TableRef, _fromId: string, toId: string): Promise<void> {
    await followTableRename(this.connection!, this.targetName(from), this.targetName(to), this.ctx.logger, toId);
  }

  /** MySQL values the PostgreSQL types do not accept are converted first, then the shared planner applies them. */
  protected override async applyEvents(events: ChangeEvent[]): Promise<void> {
    const input = events[0]?.source.connector === 'mysql' ? events.map((ev) => this.fromMysql.event(ev)) : events;
    await super.applyEvents(input);
    this.fromMysql.report();
  }

  protected async truncate(run: TruncateRun<TargetTable>): Promise<void> {
    if (run.snapshot && run.tables.some((t) => t.hasForeignKeys)) {
      // Emptied before its snapshot rows: TRUNCATE refuses a table that another table references, even when that
      // one is emptied next. In replica mode DELETE checks no foreign key either.
      for (const t of run.tables) await this.exec(`delete from ${t.qname}`);
      return;
    }
    await this.exec(truncateSql(run.tables, run.restartIdentity));
  }

  protected async moveKeyPartial(table: TargetTable, before: Row, after: Row): Promise<void> {
    const set = knownColumns(after).filter((c) => table.columns.has(c));
    const result = await this.exec(updateSql(table, set), [
      ...columnArrays(set, [after]),
      ...columnArrays(table.keyColumns, [before]),
    ]);
    if ((result.rowCount ?? 0) === 0) this.rowMissing(table, 1);
  }

  protected async flushRun(run: RowRun<TargetTable>): Promise<void> {
    if (run.kind === 'append') {
      const copy = run.rows.length >= this.config.copy_min_rows;
      for (const { columns, rows } of groupByShape(run.rows).values()) {
        const cols = columns.filter((c) => run.table.columns.has(c));
        if (copy && cols.length > 0) await copyRows(this.connection!, run.table, cols, rows);
        else await this.exec(insertSql(run.table, cols), cols.length > 0 ? columnArrays(cols, rows) : [rows.length]);
      }
      return;
    }
    const { table } = run.run;
    // Snapshot reads only, in arrival order: into a table empty at the start of this transaction they go by COPY
    // without being keyed (a key read twice fails that COPY, and the transaction is applied again keyed).
    const reads = run.run.unkeyedReads();
    if (
      reads &&
      reads.length >= this.config.copy_min_rows &&
      !this.copyBackoff.has(table.sourceId) &&
      (await this.copySnapshotRun(table, reads))
    )
      return;
    const changes = this.rowChanges(run.run, true);
    const { deletes, fresh, partials } = changes;
    let upserts = changes.upserts;
    if (deletes.length > 0) await this.exec(deleteSql(table), columnArrays(table.keyColumns, deletes));
    // With foreign keys on the target, rows of one run must reach the table in one statement (checks run at its end).
    const copy =
      fresh.length >= this.config.copy_min_rows &&
      (!table.hasForeignKeys || upserts.length === 0) &&
      this.copyAllowed(table);
    const copied = copy && this.copySavepoints < MAX_COPY_SAVEPOINTS && (await this.copyFresh(table, fresh));
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
  private copySnapshotRun(table: TargetTable, rows: Row[]): Promise<boolean> {
    return this.copyIntoBare(table, async () => {
      for (const { columns, rows: group } of groupByShape(rows).values()) {
        await copyRows(
          this.connection!,
          table,
          columns.filter((c) => table.columns.has(c)),
          group,
        );
      }
    });
  }

  /**
   * Snapshot rows still in the COPY text a PostgreSQL source read them in (see src/core/row-block.ts) go into the table
   * as they are, without a row decoded: into a keyless table (rows are appended anyway), or into a keyed one that held
   * no row when first checked, as `copySnapshotRun` says. Otherwise (a table with rows, a column the target lacks)
   * false: the planner takes them as events.
   */
  protected override async loadBlocks(table: TargetTable, blocks: RowBlock[]): Promise<boolean> {
    // Blocks of one table definition: the same columns, in the same order.
    const columns = blocks[0]!.columns;
    if (blocks.some((b) => b.format !== 'postgres-copy-data')) return false;
    // A table without columns has nothing for COPY to name (its rows go as inserts of empty rows).
    if (columns.length === 0 || !columns.every((c) => table.columns.has(c))) return false;
    let rows = 0;
    for (const b of blocks) rows += b.rows;
    const copy = async () => {
      const loaded = await copyMessages(
        this.connection!,
        table,
        columns,
        blocks.map((b) => b.data),
      );
      if (loaded !== rows)
        throw new TributaryError('fatal', `COPY loaded ${loaded} rows into ${table.qname} from ${rows} snapshot rows`);
    };
    if (table.identity !== 'key') {
      await copy();
      return true;
    }
    if (this.copyBackoff.has(table.sourceId)) return false;
    return this.copyIntoBare(table, copy);
  }

  /** Runs `copy` when the table held no row at all when first checked in this transaction (see copySnapshotRun). */
  private async copyIntoBare(table: TargetTable, copy: () => Promise<void>): Promise<boolean> {
    if (this.bareCopyFailed.has(table.sourceId)) return false;
    let empty = this.emptyAtStart.get(table.sourceId);
    if (empty === undefined) {
      const result = await this.connection!.query(`select not exists (select from ${table.qname}) as empty`);
      empty = result.rows[0]?.empty === true;
      this.emptyAtStart.set(table.sourceId, empty);
    }
    if (!empty) return false;
    try {
      await copy();
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
          this.connection!,
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
      await this.connection!.query('rollback to savepoint tributary_copy; release savepoint tributary_copy');
      this.copyBackoff.set(table.sourceId, COPY_BACKOFF_RUNS);
      this.ctx.logger.debug({ event: 'target_copy_conflict', table: table.sourceId, rows: rows.length });
      return false;
    }
    return true;
  }

  /** A keyless row is matched by the old row's columns (REPLICA IDENTITY FULL), as parameters. */
  protected keylessMatch(_table: TargetTable, _before: Row, columns: string[]): string[] {
    return columns;
  }

  protected async deleteOneRow(table: TargetTable, match: string[], before: Row): Promise<number> {
    const result = await this.exec(
      deleteOneSql(table, match),
      match.map((c) => before[c]),
    );
    return result.rowCount ?? 0;
  }

  protected async updateOneRow(
    table: TargetTable,
    set: string[],
    after: Row,
    match: string[],
    before: Row,
  ): Promise<number> {
    const result = await this.exec(updateOneSql(table, set, match), [
      ...set.map((c) => after[c]),
      ...match.map((c) => before[c]),
    ]);
    return result.rowCount ?? 0;
  }
}
