import { type CellValue, type Row, UNCHANGED } from '../../../src/core/change-event.ts';
import type { TargetTable } from './statements.ts';

/**
 * A run of consecutive row changes to one keyed table, collapsed per key so it can be sent as a few set-based
 * statements (deletes, then upserts, then partial updates) with the same end result as applying the changes one by
 * one: for each key only its final state matters, and distinct keys do not interact.
 */
export type KeyState =
  | { kind: 'upsert'; row: Row }
  | { kind: 'delete'; key: Row }
  /** An update whose image lacks unchanged TOAST columns: only the known columns are set. */
  | { kind: 'partial'; row: Row };

export function keyText(keyColumns: string[], row: Row): string {
  return JSON.stringify(keyColumns.map((k) => row[k] ?? null));
}

export function hasUnchanged(row: Row): boolean {
  for (const v of Object.values(row)) if (v === UNCHANGED) return true;
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

export class KeyedRun {
  readonly ops = new Map<string, KeyState>();
  /** Partial updates that found their row deleted earlier in the run (the source and target disagree). */
  orphanedPartials = 0;

  constructor(readonly table: TargetTable) {}

  get size(): number {
    return this.ops.size;
  }

  private set(key: string, state: KeyState): void {
    // Re-insert so iteration follows the order of each key's last change.
    this.ops.delete(key);
    this.ops.set(key, state);
  }

  upsert(row: Row): void {
    this.set(keyText(this.table.keyColumns, row), { kind: 'upsert', row });
  }

  delete(key: Row): void {
    this.set(keyText(this.table.keyColumns, key), { kind: 'delete', key: keyOf(this.table.keyColumns, key) });
  }

  /** An update with unchanged columns: merged into an earlier full image of the same key when there is one. */
  partial(row: Row): void {
    const k = keyText(this.table.keyColumns, row);
    const prev = this.ops.get(k);
    const known: Row = {};
    for (const c of knownColumns(row)) known[c] = row[c] as CellValue;
    if (!prev) {
      this.set(k, { kind: 'partial', row: known });
    } else if (prev.kind === 'upsert') {
      this.set(k, { kind: 'upsert', row: { ...prev.row, ...known } });
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
  for (const row of rows) {
    const columns = Object.keys(row).sort();
    const shape = columns.join('\u0000');
    let g = groups.get(shape);
    if (!g) {
      g = { columns, rows: [] };
      groups.set(shape, g);
    }
    g.rows.push(row);
  }
  return groups;
}

/** Column-major text arrays for an unnest statement. */
export function columnArrays(columns: string[], rows: Row[]): (string | null)[][] {
  return columns.map((c) =>
    rows.map((r) => {
      const v = r[c];
      return v === undefined || v === null || v === UNCHANGED ? null : v;
    }),
  );
}
