/**
 * Schema history of a MySQL/MariaDB source: each replicated table's columns by identity at the current position of
 * the stream, saved with every stream checkpoint (`state.schemaHistory`) so a restart resumes with the shapes of its
 * position.
 *
 * The server keeps no column identity a client can read (nothing like PostgreSQL's attribute numbers), so the history
 * gives each column one: a number drawn from a counter when the column first appears (the snapshot, CREATE TABLE,
 * ADD COLUMN, a table map naming a column the history does not have). The DDL text, read at its binlog position, says
 * what a statement did by name, and the history turns that into identity: RENAME COLUMN and CHANGE keep the number,
 * DROP COLUMN ends it, ADD COLUMN draws a new one (so a column dropped and added again under its name is a new column),
 * DROP TABLE forgets the table and CREATE TABLE starts a new one with new numbers (a table re-created under an old name
 * is a new table), RENAME TABLE moves the table with its numbers. Each table map (full row metadata: the column names
 * in order) confirms the shape at its position: the order is taken from it, and a name the DDL text did not explain is
 * taken as added (one gone as dropped).
 *
 * Per table the history also keeps the columns as the target last got them (`delivered`: the columns of the table's
 * last committed row event). A row event's schema carries the difference by identity, drops and renames, which the
 * target applies before it adds columns by name.
 *
 * A table whose whole shape is not known (a checkpoint of an older version has no history; `snapshot: never` starts
 * without one) enters the history at its first table map. A DDL statement on it before then makes a partial entry:
 * only the columns the statements named, and for renamed and dropped ones the name the target had; at the first table
 * map every other column counts as unchanged since the target got it.
 */
import type { ColumnChange } from '../../../src/core/change-event.ts';
import type { TableDdl } from './ddl.ts';

export interface KnownColumn {
  /** The column's identity: drawn once when the column appears, kept through renames, never reused by the history. */
  id: number;
  name: string;
  /**
   * The column's type as the stream last told it (a table map's type, the catalog's when the snapshot read the table,
   * a MODIFY / CHANGE definition's); absent when not known. A type change that rewrote existing rows is found from it.
   */
  type?: string;
}

/** A column whose type a statement or a table map changed: its type before (when known) and after (null: not read). */
export interface TypeChange {
  /** The column's name after the change. */
  column: string;
  from?: string;
  to: string | null;
}

/** One table as of a stream position. */
export interface KnownTable {
  schema: string;
  name: string;
  /** The table's columns in table order (a partial entry: only those DDL statements named). */
  columns: KnownColumn[];
  /** The columns as the table's last committed row event carried them to the target; absent before the first. */
  delivered?: KnownColumn[];
  /** Only the columns DDL statements named are known; the others come with the first table map. */
  partial?: true;
}

/**
 * A table as a checkpoint saves it: `delivered` only when the target's columns differ from `columns` (so a table the
 * target is up to date with costs its columns alone), `undelivered` when no row of it reached the target yet.
 */
export interface SavedTable {
  schema: string;
  name: string;
  columns: KnownColumn[];
  delivered?: KnownColumn[];
  undelivered?: true;
  partial?: true;
}

/** How a table map compares with the history. */
export interface TableMapFit {
  /** The table was not in the history (or only in part): its columns were taken from the table map. */
  firstSeen: boolean;
  /** Column names the table map has and the history had not: added by a statement not understood. */
  added: string[];
  /** Column names the history had and the table map has not: dropped by a statement not understood. */
  removed: string[];
  /** Columns (same identity) whose type the table map tells otherwise than the history knew it. */
  retyped: TypeChange[];
}

const lower = (s: string) => s.toLowerCase();

export class MysqlSchemaHistory {
  private readonly tables = new Map<string, KnownTable>();
  private nextId = 1;
  private saved: SavedTable[] | null = null;

  /** The history a stream checkpoint carries (`state.schemaHistory`, `state.schemaHistoryNextId`); empty without one. */
  static fromState(state: Record<string, unknown> | undefined): MysqlSchemaHistory {
    const history = new MysqlSchemaHistory();
    const tables = state?.schemaHistory;
    if (Array.isArray(tables)) {
      for (const saved of tables as SavedTable[]) {
        if (typeof saved?.schema !== 'string' || typeof saved.name !== 'string' || !Array.isArray(saved.columns))
          continue;
        const { delivered, undelivered, ...t } = saved;
        const target = delivered ?? (undelivered ? undefined : t.columns);
        history.tables.set(`${t.schema}.${t.name}`, { ...t, ...(target ? { delivered: target } : {}) });
        for (const c of [...t.columns, ...(delivered ?? [])]) history.nextId = Math.max(history.nextId, c.id + 1);
      }
    }
    const next = Number(state?.schemaHistoryNextId);
    if (Number.isSafeInteger(next)) history.nextId = Math.max(history.nextId, next);
    if (!Array.isArray(tables)) history.takeOlderPending(state?.renamedColumns, state?.droppedColumns);
    return history;
  }

  /**
   * A checkpoint of an older version kept, instead of a history, the column renames (`{from, to}`, `from` the
   * target's name) and drops (lower-cased names) not yet delivered per table: they become partial entries.
   */
  private takeOlderPending(renamed: unknown, dropped: unknown): void {
    const entries = (v: unknown) => (v && typeof v === 'object' ? Object.entries(v as Record<string, unknown>) : []);
    const partial = (id: string): KnownTable | null => {
      const dot = id.indexOf('.');
      if (dot < 0) return null;
      const t = this.tables.get(id) ?? {
        schema: id.slice(0, dot),
        name: id.slice(dot + 1),
        columns: [],
        delivered: [],
        partial: true,
      };
      this.tables.set(id, t);
      return t;
    };
    for (const [id, list] of entries(renamed)) {
      const t = Array.isArray(list) ? partial(id) : null;
      for (const r of (t ? list : []) as { from?: unknown; to?: unknown }[]) {
        if (typeof r?.from !== 'string' || typeof r.to !== 'string') continue;
        const c = this.column(r.from);
        t!.delivered!.push(c);
        t!.columns.push({ id: c.id, name: r.to });
      }
    }
    for (const [id, list] of entries(dropped)) {
      const t = Array.isArray(list) ? partial(id) : null;
      for (const name of (t ? list : []) as unknown[])
        if (typeof name === 'string') t!.delivered!.push(this.column(name));
    }
  }

  /** The values a stream checkpoint saves; the table list is shared by checkpoints until the history changes. */
  toState(): { schemaHistory: SavedTable[]; schemaHistoryNextId: number } {
    this.saved ??= [...this.tables.values()].map(({ delivered, ...t }) => {
      if (!delivered) return { ...t, undelivered: true };
      const same =
        delivered.length === t.columns.length &&
        delivered.every((c, i) => c.id === t.columns[i]!.id && c.name === t.columns[i]!.name);
      return same ? t : { ...t, delivered };
    });
    return { schemaHistory: this.saved, schemaHistoryNextId: this.nextId };
  }

  get(db: string, name: string): KnownTable | undefined {
    return this.tables.get(`${db}.${name}`);
  }

  /** Forgets every table (a new snapshot describes them again); identities are not drawn again. */
  clear(): void {
    this.tables.clear();
    this.saved = null;
  }

  /**
   * A table whose columns are known as a whole: from the snapshot (`delivered`: the snapshot carries these columns to
   * the target) or CREATE TABLE. Every column gets a new identity: a table created again is a new table.
   */
  create(
    db: string,
    name: string,
    columns: (string | { name: string; type: string })[],
    options: { delivered?: boolean } = {},
  ): void {
    const known = columns.map((c) =>
      typeof c === 'string' ? this.column(c) : { ...this.column(c.name), type: c.type },
    );
    this.put({ schema: db, name, columns: known, ...(options.delivered ? { delivered: known } : {}) });
  }

  /** DROP TABLE (or renamed out of the replicated tables). */
  drop(db: string, name: string): void {
    if (this.tables.delete(`${db}.${name}`)) this.saved = null;
  }

  /** RENAME TABLE: the table keeps its columns' identities under its new name. */
  rename(from: { db: string; name: string }, to: { db: string; name: string }): void {
    const t = this.get(from.db, from.name);
    this.drop(from.db, from.name);
    this.drop(to.db, to.name);
    if (t) this.put({ ...t, schema: to.db, name: to.name });
  }

  /**
   * ALTER TABLE's column changes, at its position: drops and renames name the columns as they were before the statement
   * (so renames in one statement may swap names), added columns get new identities, FIRST / AFTER move columns. A table
   * not in the history gets a partial entry of the columns the statement names. MODIFY / CHANGE give a column the
   * type of its definition: returned are those columns, with the type the history knew before.
   */
  alter(db: string, name: string, ddl: TableDdl): TypeChange[] {
    const current = this.get(db, name);
    const redefined = ddl.redefinedColumns ?? [];
    if (!current && ddl.droppedColumns.length + ddl.renamedColumns.length + ddl.addedColumns.length === 0)
      return redefined.map((r) => ({ column: r.column, to: r.type }));
    const t: KnownTable = current ?? { schema: db, name, columns: [], delivered: [], partial: true };
    const dropped = new Set(ddl.droppedColumns.map(lower));
    const renamed = new Map(ddl.renamedColumns.map((r) => [lower(r.from), r.to]));
    let delivered = t.delivered;
    let before = t.columns;
    if (t.partial) {
      // Columns the entry did not know were there, unchanged since the target got them, until this statement.
      const named = new Set(t.columns.map((c) => lower(c.name)));
      const unknown = [...dropped, ...renamed.keys()].filter((n) => !named.has(n));
      const original = new Map([
        ...ddl.droppedColumns.map((c) => [lower(c), c] as const),
        ...ddl.renamedColumns.map((r) => [lower(r.from), r.from] as const),
      ]);
      const found = unknown.map((n) => this.column(original.get(n)!));
      delivered = [...(delivered ?? []), ...found];
      before = [...before, ...found];
    }
    let columns = before
      .filter((c) => !dropped.has(lower(c.name)))
      .map((c) => {
        const to = renamed.get(lower(c.name));
        return to === undefined ? c : { ...c, name: to };
      });
    const present = new Set(columns.map((c) => lower(c.name)));
    for (const a of ddl.addedColumns) {
      if (present.has(lower(a))) continue; // ADD COLUMN IF NOT EXISTS of a column the table has
      present.add(lower(a));
      columns.push(this.column(a));
    }
    const retyped: TypeChange[] = [];
    for (const r of redefined) {
      const i = columns.findIndex((c) => lower(c.name) === lower(r.column));
      const c = columns[i];
      retyped.push({ column: c?.name ?? r.column, ...(c?.type !== undefined ? { from: c.type } : {}), to: r.type });
      if (!c) continue;
      const { type: _, ...rest } = c;
      columns = [...columns.slice(0, i), r.type === null ? rest : { ...rest, type: r.type }, ...columns.slice(i + 1)];
    }
    for (const p of ddl.placedColumns ?? []) columns = placed(columns, p.column, p.after);
    this.put({ ...t, columns, ...(delivered ? { delivered } : {}) });
    return retyped;
  }

  /**
   * Takes the shape a table map shows at its position (`mapped` in table order, with their types). Known columns keep
   * their identity by name (every statement the history understood already renamed them); others are new, or, in a
   * partial entry, were there unchanged before. Types are taken from the table map.
   */
  fitTableMap(db: string, name: string, mapped: { name: string; type: string }[]): TableMapFit {
    const t = this.get(db, name);
    if (!t) {
      this.create(db, name, mapped);
      return { firstSeen: true, added: [], removed: [], retyped: [] };
    }
    const names = mapped.map((m) => m.name);
    const byName = new Map(t.columns.map((c) => [lower(c.name), c]));
    const added: string[] = [];
    const retyped: TypeChange[] = [];
    const unchanged: KnownColumn[] = [];
    const columns = mapped.map(({ name: n, type }) => {
      const c = byName.get(lower(n));
      if (c) {
        if (c.type !== undefined && c.type !== type) retyped.push({ column: n, from: c.type, to: type });
        return c.name === n && c.type === type ? c : { id: c.id, name: n, type };
      }
      const fresh = { ...this.column(n), type };
      if (t.partial) unchanged.push(fresh);
      else added.push(n);
      return fresh;
    });
    const seen = new Set(names.map(lower));
    const removed = t.columns.filter((c) => !seen.has(lower(c.name))).map((c) => c.name);
    const same = columns.length === t.columns.length && columns.every((c, i) => c === t.columns[i]);
    if (same && !t.partial) return { firstSeen: false, added, removed, retyped };
    const { partial: _, ...rest } = t;
    this.put({
      ...rest,
      columns,
      ...(t.delivered ? { delivered: [...t.delivered, ...unchanged] } : {}),
    });
    return { firstSeen: t.partial === true, added, removed, retyped };
  }

  /** The columns the target got with the table's rows just committed (`columns`: the shape those rows had). */
  markDelivered(db: string, name: string, columns: KnownColumn[]): void {
    const t = this.get(db, name);
    if (!t || t.delivered === columns) return;
    this.put({ ...t, delivered: columns });
  }

  /**
   * What the target must do before it takes rows of the table's current shape, by identity: drop the columns it has
   * that the table no longer has (by the name the target has), rename those renamed since (from the target's name).
   */
  changesSinceDelivered(db: string, name: string): ColumnChange[] {
    const t = this.get(db, name);
    if (!t?.delivered) return [];
    const now = new Map(t.columns.map((c) => [c.id, c]));
    const changes: ColumnChange[] = [];
    for (const d of t.delivered) if (!now.has(d.id)) changes.push({ kind: 'drop', column: d.name });
    for (const d of t.delivered) {
      const c = now.get(d.id);
      if (c && c.name !== d.name) changes.push({ kind: 'rename', from: d.name, to: c.name });
    }
    return changes;
  }

  private column(name: string): KnownColumn {
    return { id: this.nextId++, name };
  }

  /** Tables are replaced, never changed in place: a checkpoint emitted earlier keeps the shapes of its position. */
  private put(t: KnownTable): void {
    this.tables.set(`${t.schema}.${t.name}`, t);
    this.saved = null;
  }
}

/** `columns` with `column` moved first (`after` null) or right after `after` (left in place when either is not there). */
function placed(columns: KnownColumn[], column: string, after: string | null): KnownColumn[] {
  const i = columns.findIndex((c) => lower(c.name) === lower(column));
  if (i < 0) return columns;
  const rest = [...columns.slice(0, i), ...columns.slice(i + 1)];
  if (after === null) return [columns[i]!, ...rest];
  const j = rest.findIndex((c) => lower(c.name) === lower(after));
  if (j < 0) return columns;
  return [...rest.slice(0, j + 1), columns[i]!, ...rest.slice(j + 1)];
}
