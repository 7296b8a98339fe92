import type { ChangeBatch } from '../../src/core/change-batch.ts';
import {
  type ChangeEvent,
  type ColumnInfo,
  type Row,
  type TableRef,
  type TableSchema,
  UNCHANGED,
} from '../../src/core/change-event.ts';
import type { Checkpoint } from '../../src/core/checkpoint.ts';
import type { CheckpointStore } from '../../src/core/checkpoint-store.ts';
import type { ConnectorContext } from '../../src/core/connector-context.ts';
import type { RowBlock } from '../../src/core/row-block.ts';
import type { TransactionalTarget, WriteResult } from '../../src/core/target.ts';
import { ConnectionError, type ErrorKind, TributaryError } from '../../src/errors.ts';
import {
  type PlannedTable,
  applyEvents as planAndApply,
  type RowRun,
  type SqlDialect,
  type TruncateRun,
} from './apply-planner.ts';
import { type KeyedRun, knownColumns } from './row-runs.ts';
import { TransactionalApply } from './transactional-apply.ts';

/** What the shell needs of a synced target table: the planner's part and the source columns it holds. */
export interface SqlTargetTable extends PlannedTable {
  columns: ReadonlyMap<string, unknown>;
}

export interface SqlTargetOptions {
  /** Most batches ending on a commit that share one target transaction. */
  groupCommitMaxBatches: number;
  /** Most changes the planner holds in one run before it is sent. */
  maxRunRows: number;
}

interface CachedTable<T> {
  schema: TableSchema;
  shape: string;
  table: T;
}

/** The final state of each key of a keyed run, by kind (see `rowChanges`). */
export interface RowChanges {
  deletes: Row[];
  upserts: Row[];
  /** Upserts of keys the run saw first as inserts (or snapshot reads), when asked for apart; else in `upserts`. */
  fresh: Row[];
  partials: Row[];
}

/**
 * The flow both database targets share, around one connection to their server: the write loop of
 * `TransactionalApply` (batches in order, group commit with the checkpoint row in the target transaction, replay
 * skipping, failure latch), connecting and reconnecting, rollback, the cache of synced tables (a table is synced
 * again when its definition changes), following renames, the verdict on a failed write, and the planner's steps
 * that read the same in every dialect. Each engine's target extends it with its dialect only: how it connects and
 * what its session needs, its statements and value encoding, truncates, table sync, and what its errors mean.
 */
export abstract class TransactionalSqlTarget<T extends SqlTargetTable, C> implements TransactionalTarget {
  readonly transactional = true;
  abstract readonly classifyError: (err: unknown) => ErrorKind | undefined;
  abstract readonly checkpointStore: CheckpointStore & { close(): Promise<void> };

  protected connection: C | null = null;
  /** The connection reported an error: it is replaced before the next write. */
  protected broken = false;
  /** A target transaction is open. */
  protected txOpen = false;
  /** The source table being written, for error messages. */
  protected currentTable: string | null = null;
  private readonly tables = new Map<string, CachedTable<T>>();
  private readonly warned = new Set<string>();
  private readonly writer: TransactionalApply;
  private readonly dialect: SqlDialect<T>;
  private readonly maxRunRows: number;

  protected constructor(
    protected readonly ctx: ConnectorContext,
    options: SqlTargetOptions,
  ) {
    this.maxRunRows = options.maxRunRows;
    this.writer = new TransactionalApply(
      {
        connect: () => this.connect(),
        reload: () => this.reload(),
        rollback: () => this.rollback(),
        apply: (events) => this.applyEvents(events),
        applyBlocks: (blocks) => this.applyBlocks(blocks),
        commit: (cp) => this.commit(cp),
        classify: (err, batch) => this.classify(err, batch),
      },
      ctx,
      options.groupCommitMaxBatches,
    );
    this.dialect = {
      ...(this.begin && { beforeEvent: () => (this.txOpen ? undefined : this.begin!()) }),
      cachedTable: (ev) => this.cachedTable(ev),
      syncTable: (ev) => this.syncTable(ev),
      hasTable: (ev) => this.targetTableExists(ev.table),
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

  // ---- the dialect: what each engine supplies ------------------------------------------------------------------

  /** How the server is named in messages ('target database', 'target server'). */
  protected abstract readonly serverNoun: string;
  /** Opens a connection with its session set up, the checkpoint table ready, and the checkpoint stored there. */
  protected abstract openSession(): Promise<{ connection: C; stored: Checkpoint | null }>;
  /** Reads the stored checkpoint over an open connection. */
  protected abstract loadStored(connection: C): Promise<Checkpoint | null>;
  protected abstract rollbackTransaction(connection: C): Promise<void>;
  /** Writes the checkpoint row in the open transaction and commits it. */
  protected abstract commit(checkpoint: Checkpoint): Promise<void>;
  /** Drops a connection without waiting (it is broken or its state unknown). */
  protected abstract dropConnection(connection: C): void;
  /** Ends a connection on close. */
  protected abstract endConnection(connection: C): Promise<void>;
  /** What the `target_connected` log line says of the connection. */
  protected abstract connectedFields(): Record<string, unknown>;
  /** Opens the target transaction explicitly, for an engine that does (before the first statement of a batch). */
  protected begin?(): Promise<void>;
  /** Forgets what the engine kept of the open transaction: it was rolled back, or its connection is gone. */
  protected transactionDropped(): void {}

  /** A failed write's error when it means the connection is gone (retryable), else undefined. */
  protected abstract connectionFailure(err: unknown, context: string): unknown;
  /** The SQLSTATE of a server error. */
  protected abstract sqlState(err: unknown): unknown;
  /** The hint when the target rejects the rows (SQLSTATE classes 22, 23, 42). */
  protected abstract readonly rejectedRowsHint: string;
  /** The kind of any other server error. */
  protected abstract errorKind(err: unknown): ErrorKind;

  /** Creates or alters the event's target table to fit its definition. */
  protected abstract syncTargetTable(ev: ChangeEvent): Promise<T>;
  /** Whether the target table of a source table exists, as the open transaction sees it. */
  protected abstract targetTableExists(table: TableRef): Promise<boolean>;
  /** Renames the target table of `from` to the one of `to` (both forgotten by the cache already). */
  protected abstract followRename(from: TableRef, to: TableRef, fromId: string, toId: string): Promise<void>;
  protected abstract truncate(run: TruncateRun<T>): Promise<void>;
  protected abstract flushRun(run: RowRun<T>): Promise<void>;
  protected abstract moveKeyPartial(table: T, before: Row, after: Row): Promise<void>;
  /** How a keyless change finds its row from the old row's usable columns; null: it cannot (nothing is sent). */
  protected abstract keylessMatch(table: T, before: Row, columns: string[]): string[] | null;
  /** Deletes one row matching `match`; returns the rows deleted. */
  protected abstract deleteOneRow(table: T, match: string[], before: Row): Promise<number>;
  /** Sets `set` of one row matching `match`; returns the rows updated. */
  protected abstract updateOneRow(table: T, set: string[], after: Row, match: string[], before: Row): Promise<number>;

  /** What decides that a cached table must be synced again; a column replacing a dropped one of the same name does. */
  protected columnShape(c: ColumnInfo): unknown[] {
    return [c.name, c.type, c.replacesDropped === true];
  }

  // ---- the Target contract ---------------------------------------------------------------------------------------

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
    await this.reset().catch(() => undefined);
    const connection = this.connection;
    this.connection = null;
    if (connection) await this.endConnection(connection);
    await this.checkpointStore.close();
  }

  // ---- connection ----------------------------------------------------------------------------------------------

  /** For the engine's connection error handler: a later write reconnects. */
  protected connectionLost(connection: C, err: Error): void {
    if (this.connection === connection) this.broken = true;
    this.ctx.logger.warn({ event: 'target_connection_lost', err: err.message });
  }

  private discardConnection(): void {
    const connection = this.connection;
    this.connection = null;
    this.forgetSession();
    if (connection) this.dropConnection(connection);
  }

  private forgetSession(): void {
    this.broken = false;
    this.txOpen = false;
    this.transactionDropped();
    this.tables.clear();
  }

  /** Connects unless connected; a new connection returns the checkpoint stored at the target. */
  private async connect(): Promise<Checkpoint | null | undefined> {
    if (this.connection && !this.broken) return undefined;
    if (this.connection && this.txOpen) {
      // What the open transaction held is gone: the batches applied into it must come again.
      throw new ConnectionError(
        `the connection to the ${this.serverNoun} was lost with a transaction open`,
        'The target server restarted or the network failed; the pipeline retries from its checkpoint.',
      );
    }
    this.discardConnection();
    const { connection, stored } = await this.openSession();
    this.connection = connection;
    this.forgetSession();
    this.ctx.logger.info({ event: 'target_connected', ...this.connectedFields() });
    return stored;
  }

  private async reload(): Promise<Checkpoint | null | undefined> {
    if (!this.connection || this.broken) return undefined;
    try {
      return await this.loadStored(this.connection);
    } catch {
      this.discardConnection();
      return undefined;
    }
  }

  private async rollback(): Promise<void> {
    if (!this.txOpen) return;
    this.txOpen = false;
    this.transactionDropped();
    if (!this.connection || this.broken) {
      this.discardConnection();
      return;
    }
    try {
      await this.rollbackTransaction(this.connection);
    } catch {
      this.discardConnection();
    }
  }

  // ---- failure -------------------------------------------------------------------------------------------------

  private classify(err: unknown, batch: ChangeBatch): unknown {
    if (err instanceof TributaryError) return err;
    const where = this.currentTable ? ` (table ${this.currentTable})` : '';
    const failed = `writing batch ${batch.seq} to the target failed${where}`;
    const lost = this.connectionFailure(err, failed);
    if (lost !== undefined) return lost;
    const message = err instanceof Error ? err.message : String(err);
    const hint = this.rejectionHint(err, message);
    if (hint !== undefined) return new TributaryError('operator', `${failed}: ${message}`, { hint, cause: err });
    return new TributaryError(this.errorKind(err), `${failed}: ${message}`, { cause: err });
  }

  /** The hint when the error says the target refuses the rows (an operator error), else undefined. */
  protected rejectionHint(err: unknown, _message: string): string | undefined {
    const state = this.sqlState(err);
    return typeof state === 'string' && /^(22|23|42)/.test(state) ? this.rejectedRowsHint : undefined;
  }

  // ---- tables --------------------------------------------------------------------------------------------------

  private shapeOf(schema: TableSchema): string {
    return JSON.stringify([
      schema.columns.map((c) => this.columnShape(c)),
      schema.keyColumns,
      schema.beforeImage,
      schema.changes,
      schema.renamedFrom,
    ]);
  }

  private cachedTable(ev: ChangeEvent): T | null {
    const cached = this.tables.get(`${ev.table.schema}.${ev.table.name}`);
    if (!cached) return null;
    if (cached.schema === ev.schema) return cached.table;
    if (cached.shape === this.shapeOf(ev.schema)) {
      cached.schema = ev.schema;
      return cached.table;
    }
    return null;
  }

  private async syncTable(ev: ChangeEvent): Promise<T> {
    const table = await this.syncTargetTable(ev);
    this.tables.set(table.sourceId, { schema: ev.schema, shape: this.shapeOf(ev.schema), table });
    return table;
  }

  /** Forgets every synced table (DDL of a rolled-back transaction is gone with it). */
  protected forgetTables(): void {
    this.tables.clear();
  }

  private async renameTable(from: TableRef, to: TableRef): Promise<void> {
    const fromId = `${from.schema}.${from.name}`;
    const toId = `${to.schema}.${to.name}`;
    this.tables.delete(fromId);
    this.tables.delete(toId);
    await this.followRename(from, to, fromId, toId);
  }

  // ---- applying events -----------------------------------------------------------------------------------------

  /** Applies events none of which is durable yet through the shared planner, in the open transaction. */
  protected applyEvents(events: ChangeEvent[]): Promise<void> {
    return planAndApply(events, this.dialect, { maxRunRows: this.maxRunRows });
  }

  /**
   * Applies snapshot row blocks in order: consecutive blocks of one table definition go to `loadBlocks` once their
   * table is synced; what it does not take goes through the planner as events.
   */
  private async applyBlocks(blocks: RowBlock[]): Promise<void> {
    for (let i = 0; i < blocks.length; ) {
      const first = blocks[i]!;
      let j = i + 1;
      while (j < blocks.length && blocks[j]!.schema === first.schema) j++;
      const group = blocks.slice(i, j);
      i = j;
      if (this.loadBlocks) {
        if (this.begin && !this.txOpen) await this.begin();
        // The table as a read of the block would find it (created or altered to the block's definition).
        const probe: ChangeEvent = {
          op: 'read',
          table: first.table,
          schema: first.schema,
          key: null,
          before: null,
          after: null,
          source: first.source,
        };
        this.currentTable = `${first.table.schema}.${first.table.name}`;
        const table = this.cachedTable(probe) ?? (await this.syncTable(probe));
        const loaded = await this.loadBlocks(table, group);
        this.currentTable = null;
        if (loaded) continue;
      }
      await this.applyEvents(group.length === 1 ? group[0]!.events() : group.flatMap((b) => b.events()));
    }
  }

  /**
   * Loads snapshot row blocks of one table into the synced `table` as they are, when the engine reads their format and
   * the table allows it; false leaves them to the planner as events.
   */
  protected loadBlocks?(table: T, blocks: RowBlock[]): Promise<boolean>;

  protected warnOnce(key: string, fields: Record<string, unknown>): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.ctx.logger.warn(fields);
  }

  protected rowMissing(table: T, count: number): void {
    this.ctx.logger.warn({
      event: 'target_row_missing',
      table: table.sourceId,
      rows: count,
      hint: 'An update that left unchanged (TOAST) columns out, or a keyless update/delete, found no row on the target: the target lacks rows the source has. Resnapshot the table.',
    });
  }

  /** The final state of each key of a run, by kind; partial updates whose row the run deleted are reported missing. */
  protected rowChanges(run: KeyedRun<T>, freshApart: boolean): RowChanges {
    const changes: RowChanges = { deletes: [], upserts: [], fresh: [], partials: [] };
    for (const state of run.ops.values()) {
      if (state.kind === 'delete') changes.deletes.push(state.key);
      else if (state.kind === 'upsert') (freshApart && state.fresh ? changes.fresh : changes.upserts).push(state.row);
      else changes.partials.push(state.row);
    }
    if (run.orphanedPartials > 0) this.rowMissing(run.table, run.orphanedPartials);
    return changes;
  }

  /** Update or delete exactly one row equal to the old image (a table without a key, full before image). */
  private async applyKeylessChange(table: T, ev: ChangeEvent): Promise<void> {
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
    const usable = Object.keys(before).filter((c) => before[c] !== UNCHANGED && table.columns.has(c));
    const match = this.keylessMatch(table, before, usable);
    if (!match) return;
    if (ev.op === 'delete') {
      if ((await this.deleteOneRow(table, match, before)) === 0) this.rowMissing(table, 1);
      return;
    }
    if (ev.op === 'update' && ev.after) {
      const set = knownColumns(ev.after).filter((c) => table.columns.has(c));
      if (set.length === 0) return;
      if ((await this.updateOneRow(table, set, ev.after, match, before)) === 0) this.rowMissing(table, 1);
    }
  }
}
