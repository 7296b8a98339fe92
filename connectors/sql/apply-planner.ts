/**
 * The apply planner shared by the SQL targets: turns an ordered list of change events into runs of set-based work
 * per table, with the same end result as applying the events one by one. Each target supplies its dialect (how a
 * table is made ready, how a run, a truncate, a partial key change and a keyless change are written); the order
 * rules live here once.
 */
import type { ChangeEvent, Row, TableRef } from '../../src/core/change-event.ts';
import { hasUnchanged, KeyedRun, keyChanged } from './row-runs.ts';

/** What the planner needs of a target table. */
export interface PlannedTable {
  /** Source `schema.table`. */
  sourceId: string;
  keyColumns: string[];
  /** How rows are found for update/delete: by key, by the full old row, or not at all (inserts only). */
  identity: 'key' | 'full' | 'none';
  /** Takes part in a foreign key on the target (changes to other tables must keep their order around it). */
  hasForeignKeys: boolean;
}

export type RowRun<T extends PlannedTable> =
  | { kind: 'keyed'; table: T; run: KeyedRun<T> }
  | { kind: 'append'; table: T; rows: Row[] };

/** Consecutive truncates of one source statement (same position), applied together. */
export interface TruncateRun<T extends PlannedTable> {
  tables: T[];
  restartIdentity: boolean;
  /** Emptied before its snapshot rows, not by a source TRUNCATE. */
  snapshot: boolean;
}

export interface SqlDialect<T extends PlannedTable> {
  /** Called before each event (e.g. to open the target transaction); a promise only when there is work. */
  beforeEvent?(): Promise<void> | undefined;
  /** The event's target table when it is known and its definition unchanged, else null. */
  cachedTable(ev: ChangeEvent): T | null;
  /** Makes the target table ready for the event's table definition (creates, alters). */
  syncTable(ev: ChangeEvent): Promise<T>;
  /** Whether the target has the event's table now (without creating or changing it). */
  hasTable(ev: ChangeEvent): Promise<boolean>;
  /** The table whose changes are being written, for error messages (null when done). */
  setCurrentTable(sourceId: string | null): void;
  truncate(run: TruncateRun<T>): Promise<void>;
  /** Follows a source table rename: the target table of `from` becomes the one of `to` (a replay finds it done). */
  renameTable(from: TableRef, to: TableRef): Promise<void>;
  flushRun(run: RowRun<T>): Promise<void>;
  /** A key change without the full new row: the row moved in place. */
  moveKeyPartial(table: T, before: Row, after: Row): Promise<void>;
  /** An update or delete of a table without a key, matched by its full old row. */
  applyKeylessChange(table: T, ev: ChangeEvent): Promise<void>;
  warnOnce(key: string, fields: Record<string, unknown>): void;
}

export interface PlannerOptions {
  /** Most changes held in one run before it is sent. */
  maxRunRows: number;
}

function runSize<T extends PlannedTable>(run: RowRun<T>): number {
  return run.kind === 'keyed' ? run.run.size : run.rows.length;
}

function positionText(ev: ChangeEvent): string {
  const p = ev.source.position;
  return p.kind === 'postgres' ? (p.commitLsn ?? p.lsn) : `${p.file}:${p.pos}`;
}

/**
 * Applies events in order, merging consecutive row changes per table into set-based statements. Runs of different
 * tables are kept open side by side (and sent in order of first appearance) unless a table takes part in a foreign
 * key on the target, where the order between tables matters: then every switch of table sends what is pending.
 * Truncates of one source statement go together (tables linked by a foreign key can only be emptied together).
 */
export async function applyEvents<T extends PlannedTable>(
  events: ChangeEvent[],
  dialect: SqlDialect<T>,
  options: PlannerOptions,
): Promise<void> {
  const pending = new Map<T, RowRun<T>>();
  let truncate: (TruncateRun<T> & { at: string }) | null = null;
  let last: T | null = null;
  const flush = async () => {
    if (truncate) {
      const t = truncate;
      truncate = null;
      await dialect.truncate(t);
    }
    for (const run of pending.values()) await dialect.flushRun(run);
    pending.clear();
    last = null;
  };
  /** The open run of the table just written to, while it has room (no await per event on the common path). */
  const sameRun = (table: T): RowRun<T> | undefined => {
    const current = last === table ? pending.get(table) : undefined;
    return current && runSize(current) < options.maxRunRows ? current : undefined;
  };
  const runFor = async (table: T): Promise<RowRun<T>> => {
    if (truncate) await flush();
    const reorderable = !table.hasForeignKeys && ![...pending.keys()].some((t) => t.hasForeignKeys);
    const run = pending.get(table);
    if (run && (last === table || reorderable) && runSize(run) < options.maxRunRows) {
      last = table;
      return run;
    }
    if (run || !(pending.size === 0 || reorderable)) await flush();
    const fresh: RowRun<T> =
      table.identity === 'key'
        ? { kind: 'keyed', table, run: new KeyedRun(table) }
        : { kind: 'append', table, rows: [] };
    pending.set(table, fresh);
    last = table;
    return fresh;
  };

  for (const ev of events) {
    if (ev.op === 'message') {
      // A schema-change event of a renamed table: the target renames its table here, after the changes before it.
      if (!ev.schema.renamedFrom) continue;
      const before = dialect.beforeEvent?.();
      if (before) await before;
      await flush();
      dialect.setCurrentTable(`${ev.table.schema}.${ev.table.name}`);
      await dialect.renameTable(ev.schema.renamedFrom, ev.table);
      continue;
    }
    const before = dialect.beforeEvent?.();
    if (before) await before;
    let table = dialect.cachedTable(ev);
    if (!table) {
      // While a truncate is pending no row run is: the next table of the same TRUNCATE (same position) joins it.
      // Any other event is synced after it (a table emptied by a DROP may then be created again).
      if (!(ev.op === 'truncate' && truncate?.at === positionText(ev))) await flush();
      // A source TRUNCATE (or DROP TABLE) of a table the target does not have leaves nothing to empty. Creating it
      // would bring back a table the operator dropped, in the shape it had before the source created it again.
      if (ev.op === 'truncate' && ev.source.snapshot === false && !(await dialect.hasTable(ev))) continue;
      dialect.setCurrentTable(`${ev.table.schema}.${ev.table.name}`);
      table = await dialect.syncTable(ev);
    }
    dialect.setCurrentTable(table.sourceId);

    if (ev.op === 'truncate') {
      const at = positionText(ev);
      const restartIdentity = ev.truncate?.restartIdentity ?? false;
      const snapshot = ev.source.snapshot !== false;
      const current = truncate as (TruncateRun<T> & { at: string }) | null;
      if (
        current &&
        current.at === at &&
        current.restartIdentity === restartIdentity &&
        current.snapshot === snapshot
      ) {
        if (!current.tables.includes(table)) current.tables.push(table);
      } else {
        await flush();
        truncate = { tables: [table], restartIdentity, snapshot, at };
      }
      continue;
    }

    if (table.identity === 'key') {
      if (
        ev.op === 'update' &&
        ev.after &&
        hasUnchanged(ev.after) &&
        keyChanged(table.keyColumns, ev.before, ev.after)
      ) {
        await flush();
        await dialect.moveKeyPartial(table, ev.before!, ev.after);
        continue;
      }
      const run = sameRun(table) ?? (await runFor(table));
      if (run.kind === 'keyed') run.run.add(ev);
      continue;
    }

    // Tables without a key.
    if (ev.op === 'insert' || ev.op === 'read') {
      if (!ev.after) continue;
      const run = sameRun(table) ?? (await runFor(table));
      if (run.kind === 'append') run.rows.push(ev.after);
      continue;
    }
    if (table.identity === 'none') {
      dialect.warnOnce(`keyless:${table.sourceId}`, {
        event: 'target_keyless_change_skipped',
        table: table.sourceId,
        op: ev.op,
        hint: 'The table has neither a primary key nor a full before image at the source (PostgreSQL REPLICA IDENTITY FULL, MySQL binlog_row_image=FULL): only inserts can be applied. Add a primary key or send full before images.',
      });
      continue;
    }
    await flush();
    await dialect.applyKeylessChange(table, ev);
  }
  await flush();
  dialect.setCurrentTable(null);
}
