import { type CellValue, type ChangeEvent, type Row, UNCHANGED } from '../../src/core/change-event.ts';

/** What a run needs of its table: the key columns that identify a row. */
export interface KeyedTable {
  keyColumns: string[];
}

/**
 * A run of consecutive row changes to one keyed table, collapsed per key so it can be sent as a few set-based
 * statements (deletes, then upserts, then partial updates) with the same end result as applying the changes one by
 * one: for each key only its final state matters, and distinct keys do not interact.
 */
export type KeyState =
  /** `fresh`: an insert (or snapshot read) of a key with no earlier change in the run; it should not exist yet. */
  | { kind: 'upsert'; row: Row; fresh?: boolean }
  | { kind: 'delete'; key: Row }
  /** An update whose image lacks unchanged TOAST columns: only the known columns are set. */
  | { kind: 'partial'; row: Row };

export function keyText(keyColumns: string[], row: Row): string {
  return JSON.stringify(keyColumns.map((k) => row[k] ?? null));
}

export function hasUnchanged(row: Row): boolean {
  for (const c in row) if (row[c] === UNCHANGED) return true;
  return false;
}

/** The columns of a row that carry a value (not the unchanged marker), in the row's order. */
export function knownColumns(row: Row): string[] {
  return Object.keys(row).filter((c) => row[c] !== UNCHANGED);
}

export function keyOf(keyColumns: string[], row: Row): Row {
  const key: Row = {};
  for (const k of keyColumns) key[k] = row[k] ?? null;
  return key;
}

export function keyChanged(keyColumns: string[], before: Row | null, after: Row): boolean {
  if (!before) return false;
  return keyColumns.some((k) => k in before && before[k] !== after[k]);
}

/** A key's identity in a run: the value itself for a one-column key (no per-row string building), else its text. */
function runKey(keyColumns: string[], row: Row): string | null {
  if (keyColumns.length === 1) {
    const v = row[keyColumns[0]!];
    return v === undefined || v === UNCHANGED ? null : v;
  }
  return keyText(keyColumns, row);
}

export class KeyedRun<T extends KeyedTable = KeyedTable> {
  private readonly keyed = new Map<string | null, KeyState>();
  /**
   * Full rows of snapshot reads, in arrival order, while the run holds nothing else: a snapshot reads each key once,
   * so they are kept unkeyed (a large snapshot is mostly such runs) and keyed only when the run needs it.
   */
  private reads: Row[] | null = [];
  /** Partial updates that found their row deleted earlier in the run (the source and target disagree). */
  orphanedPartials = 0;

  constructor(readonly table: T) {}

  /** The final state of each key, in order of each key's last change. */
  get ops(): Map<string | null, KeyState> {
    this.keyAll();
    return this.keyed;
  }

  get size(): number {
    return this.reads ? this.reads.length : this.keyed.size;
  }

  /**
   * The rows of a run that holds only snapshot reads of full rows, in arrival order, not checked for a key read twice
   * (a COPY of them fails on the key then, and `ops` has the keyed form); null once the run holds anything else.
   */
  unkeyedReads(): Row[] | null {
    return this.reads;
  }

  private keyAll(): void {
    const reads = this.reads;
    if (!reads) return;
    this.reads = null;
    for (const row of reads) this.insert(row);
  }

  /** Adds one change of this table; a key change becomes a delete of the old key and an upsert of the new row. */
  add(ev: ChangeEvent): void {
    const keys = this.table.keyColumns;
    if (this.reads && ev.op === 'read' && ev.after && !hasUnchanged(ev.after)) {
      this.reads.push(ev.after);
      return;
    }
    this.keyAll();
    switch (ev.op) {
      case 'insert':
      case 'read':
        if (ev.after) {
          if (hasUnchanged(ev.after)) this.partial(ev.after);
          else this.insert(ev.after);
        }
        return;
      case 'update': {
        const after = ev.after;
        if (!after) return;
        if (keyChanged(keys, ev.before, after)) {
          if (hasUnchanged(after)) return; // a key change with unchanged columns is moved in place by the target
          this.delete(keyOf(keys, ev.before!));
          this.upsert(after);
          return;
        }
        if (hasUnchanged(after)) this.partial(after);
        else this.upsert(after);
        return;
      }
      case 'delete': {
        const key = ev.before ?? ev.key;
        if (key) this.delete(key);
        return;
      }
      default:
        return;
    }
  }

  private set(key: string | null, state: KeyState): void {
    // Re-insert so iteration follows the order of each key's last change.
    this.keyed.delete(key);
    this.keyed.set(key, state);
  }

  private upsert(row: Row): void {
    this.set(runKey(this.table.keyColumns, row), { kind: 'upsert', row });
  }

  /** An insert or snapshot read of a full row: an upsert, marked fresh when the run has not seen its key. */
  private insert(row: Row): void {
    const k = runKey(this.table.keyColumns, row);
    if (this.keyed.has(k)) this.set(k, { kind: 'upsert', row });
    else this.keyed.set(k, { kind: 'upsert', row, fresh: true });
  }

  private delete(key: Row): void {
    this.set(runKey(this.table.keyColumns, key), { kind: 'delete', key: keyOf(this.table.keyColumns, key) });
  }

  /** An update with unchanged columns: merged into an earlier full image of the same key when there is one. */
  private partial(row: Row): void {
    const k = runKey(this.table.keyColumns, row);
    const prev = this.keyed.get(k);
    const known: Row = {};
    for (const c of knownColumns(row)) known[c] = row[c] as CellValue;
    if (!prev) {
      this.set(k, { kind: 'partial', row: known });
    } else if (prev.kind === 'upsert') {
      this.set(k, { kind: 'upsert', row: { ...prev.row, ...known }, fresh: prev.fresh });
    } else if (prev.kind === 'partial') {
      this.set(k, { kind: 'partial', row: { ...prev.row, ...known } });
    } else {
      this.orphanedPartials++;
    }
  }
}

/** Groups rows by the list of columns they carry, so each group goes as one statement. */
export function groupByShape(rows: Row[]): Map<string, { columns: string[]; rows: Row[] }> {
  const groups = new Map<string, { columns: string[]; rows: Row[] }>();
  // Rows of one source mostly list their columns in the same order: a row whose keys match the previous row's
  // goes to the same group without sorting and joining its keys.
  let lastKeys: string[] = [];
  let lastGroup: { columns: string[]; rows: Row[] } | null = null;
  for (const row of rows) {
    const keys = Object.keys(row);
    if (lastGroup && sameKeys(keys, lastKeys)) {
      lastGroup.rows.push(row);
      continue;
    }
    const columns = [...keys].sort();
    const shape = columns.join('\u0000');
    let g = groups.get(shape);
    if (!g) {
      g = { columns, rows: [] };
      groups.set(shape, g);
    }
    g.rows.push(row);
    lastKeys = keys;
    lastGroup = g;
  }
  return groups;
}

function sameKeys(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
