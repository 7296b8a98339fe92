/**
 * What must change at a target table so it holds a source table's columns, decided once for the database targets:
 * the column renames and drops the source made (known by identity), a key that must match, columns to add (anew where
 * the source dropped one and added another under its name), columns whose type must change, and what stops instead
 * (a change that would need values rewritten or guessed). Each engine judges its own types (`ColumnFit`) and writes
 * the plan in its DDL; nothing here runs a statement.
 */
import type { ColumnChange, ColumnInfo } from '../../src/core/change-event.ts';
import { SchemaMismatchError } from '../../src/errors.ts';

type ColumnRename = Extract<ColumnChange, { kind: 'rename' }>;

/** The renames and drops by identity that the target table still has to follow. */
export interface IdentityChanges {
  drops: string[];
  renames: ColumnRename[];
}

/**
 * The source's column renames and drops that apply to the target table's columns (`existing`): one whose column is
 * already gone or renamed (a replay) is left out, so the plan is null once all are done. Stops when the target may not
 * be altered, or when a rename would land on a column the target keeps.
 */
export function planIdentityChanges(
  /** `table a.b -> c.d`, the start of every message. */
  where: string,
  changes: readonly ColumnChange[],
  existing: Iterable<string>,
  options: {
    alterTables: boolean;
    /** Column names compare without case on the target (MySQL). */
    namesIgnoreCase: boolean;
  },
): IdentityChanges | null {
  const nameKey = options.namesIgnoreCase ? (name: string) => name.toLowerCase() : (name: string) => name;
  const have = new Set([...existing].map(nameKey));
  const has = (name: string) => have.has(nameKey(name));
  const drops = changes.flatMap((c) => (c.kind === 'drop' && has(c.column) ? [c.column] : []));
  const renames = changes.flatMap((c) => (c.kind === 'rename' && has(c.from) ? [c] : []));
  if (drops.length === 0 && renames.length === 0) return null;
  if (!options.alterTables)
    throw new SchemaMismatchError(
      `${where}: the source ${[...renames.map((r) => `renamed column ${r.from} to ${r.to}`), ...drops.map((d) => `dropped column ${d}`)].join(', ')}`,
      'Make the same change to the target table by hand, or set alter_tables: true to let the pipeline follow it; then restart the pipeline.',
    );
  const freed = new Set([...drops, ...renames.map((r) => r.from)].map(nameKey));
  for (const r of renames) {
    if (has(r.to) && !freed.has(nameKey(r.to)))
      throw new SchemaMismatchError(
        `${where}: the source renamed column ${r.from} to ${r.to}, but the target table already has a column ${r.to}`,
        `Drop or rename ${r.to} on the target table, then restart the pipeline.`,
      );
  }
  return { drops, renames };
}

/** Stops unless the target table's primary key has the same columns (in any order) as the source key. */
/** Whether the target's primary key is another than the source key (checkTargetKey stops then). */
export function keysDiffer(sourceKey: readonly string[], targetKey: readonly string[]): boolean {
  return !(targetKey.length === sourceKey.length && sourceKey.every((k) => targetKey.includes(k)));
}

/**
 * What a target table with another key than the source's, but no rows, gets: it is created again with the source
 * key (nothing is lost; a table created again at the source with another key arrives so, its old rows emptied by
 * the drop). The caller drops it when alter_tables allows and it is empty.
 */
export function tableRecreatedLog(where: string, sourceKey: readonly string[], targetKey: readonly string[]) {
  return {
    event: 'target_table_recreated',
    table: where,
    reason: `the source key (${sourceKey.join(', ') || 'none'}) differs from the target primary key (${targetKey.join(', ') || 'none'}) and the target table holds no rows`,
  };
}

export function checkTargetKey(where: string, sourceKey: readonly string[], targetKey: readonly string[]): void {
  if (!keysDiffer(sourceKey, targetKey)) return;
  throw new SchemaMismatchError(
    `${where}: the source key (${sourceKey.join(', ') || 'none'}) differs from the target primary key (${targetKey.join(', ') || 'none'})`,
    sourceKey.length > 0 && targetKey.length === 0
      ? 'Add the primary key to the target table (upserts need it), then restart the pipeline.'
      : 'The key changed at the source (the table was created again with another key, or its key altered), or the target table was made by hand. Drop the target table and restart the pipeline: it is created again with the source key, and the rows of a table created again at the source are copied again. After a key altered in place, also run tributary snapshot for the table to copy its rows (or change the target table the same way instead of dropping it).',
  );
}

/** How a target column of a source column's name stands to it, as the engine's type knowledge judges it. */
export type ColumnFit =
  /** It holds every value of the source column: nothing to change. */
  | { kind: 'holds' }
  /** It does not, but a column of the source column's type holds every value it has now: a type change keeps them. */
  | { kind: 'widens'; mismatch: string }
  /** Neither holds the other's values: its type changes only when the source copies the table again (`retyped`). */
  | { kind: 'differs'; mismatch: string }
  /**
   * The target cannot take the source column's values in it at all (another kind of type): it changes only when the
   * source copies the table again (`retyped`), as one that differs; otherwise it stops.
   */
  | { kind: 'unusable'; mismatch: string };

/** One change of a target column, in the order the engine writes them (a `drop` comes right before its `add`). */
export type ColumnStep =
  /** The source dropped the column and added another under its name: the target's column goes first. */
  | { kind: 'drop'; column: ColumnInfo; index: number }
  /** `existingRowsValue`: what rows that were there before read for the column at the source (canonical text). */
  | { kind: 'add'; column: ColumnInfo; index: number; existingRowsValue: string | null }
  /** The column's type becomes the source's; every value it holds converts exactly. */
  | { kind: 'widen'; column: ColumnInfo; index: number }
  /** The column's type becomes the source's though old values may not convert: the source copies the table again.
   * `keepValues`: a key column keeps its values (it must stay unique until the copy empties the table); any other
   * column is emptied. */
  | { kind: 'retype'; column: ColumnInfo; index: number; keepValues: boolean };

/**
 * The column changes that make an existing target table (its columns by name in `existing`) hold the source table's
 * columns: each source column is kept, added, dropped and added anew, widened or retyped. Everything the target cannot
 * be made to hold (or may not be altered to) is gathered and stops in one error, before any change is made.
 */
export function planColumns<H>(input: {
  /** `table a.b -> c.d`, the start of every message. */
  where: string;
  columns: readonly ColumnInfo[];
  /** The target's spelling of the type a source column needs, as messages name it. */
  wantedType(index: number): string;
  existing: ReadonlyMap<string, H>;
  fit(column: ColumnInfo, index: number, have: H): ColumnFit;
  alterTables: boolean;
}): ColumnStep[] {
  const { alterTables } = input;
  const problems: string[] = [];
  const steps: ColumnStep[] = [];
  input.columns.forEach((column, index) => {
    let have = input.existing.get(column.name);
    if (have !== undefined && column.replacesDropped) {
      // Dropped and added again at the source: the target's column holds the dropped one's values and type.
      if (!alterTables) {
        problems.push(
          `column ${column.name} was dropped and added again at the source; drop it on the target so it is added anew`,
        );
        return;
      }
      steps.push({ kind: 'drop', column, index });
      have = undefined;
    }
    if (have === undefined) {
      if (!alterTables) problems.push(`column ${column.name} (${input.wantedType(index)}) is missing on the target`);
      else {
        const existingRowsValue = typeof column.missingValue === 'string' ? column.missingValue : null;
        steps.push({ kind: 'add', column, index, existingRowsValue });
      }
      return;
    }
    const fit = input.fit(column, index, have);
    if (fit.kind === 'holds') return;
    if (alterTables && fit.kind === 'widens') steps.push({ kind: 'widen', column, index });
    // A column retyped into another kind (int -> text) may be one the target's column cannot take at all: the copy
    // replaces its values, so it takes the new type as one that differs does.
    else if (alterTables && (fit.kind === 'differs' || fit.kind === 'unusable') && column.retyped)
      steps.push({ kind: 'retype', column, index, keepValues: column.isKey });
    else problems.push(fit.mismatch);
  });
  if (problems.length > 0) {
    throw new SchemaMismatchError(
      `${input.where}: the target cannot hold the source rows faithfully: ${problems.join('; ')}`,
      alterTables
        ? 'Change the target column (or drop the table and resnapshot) so it holds every source value exactly, then restart the pipeline.'
        : 'Change the target table by hand, or set alter_tables: true to let the pipeline add and widen columns.',
    );
  }
  return steps;
}
