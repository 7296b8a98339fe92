import { describe, expect, it } from 'vitest';
import type { ColumnInfo } from '../../src/core/change-event.ts';
import { SchemaMismatchError } from '../../src/errors.ts';
import { col } from '../../test/fixtures/change-events.ts';
import { type ColumnFit, checkTargetKey, planColumns, planIdentityChanges } from './column-plan.ts';

const where = 'table s.t -> d.t';

/** The error a plan stops with, or a failed expectation when it does not stop. */
function stopOf(plan: () => unknown): SchemaMismatchError {
  try {
    plan();
  } catch (err) {
    expect(err).toBeInstanceOf(SchemaMismatchError);
    return err as SchemaMismatchError;
  }
  throw new Error('the plan did not stop');
}

describe('planIdentityChanges', () => {
  const alter = { alterTables: true, namesIgnoreCase: false };

  it('keeps only the renames and drops whose column the target still has (a replay plans nothing)', () => {
    const changes = [
      { kind: 'drop', column: 'gone' },
      { kind: 'drop', column: 'old' },
      { kind: 'rename', from: 'a', to: 'b' },
      { kind: 'rename', from: 'x', to: 'y' },
      { kind: 'add', column: 'z' },
    ] as const;
    expect(planIdentityChanges(where, changes, ['id', 'old', 'a'], alter)).toEqual({
      drops: ['old'],
      renames: [{ kind: 'rename', from: 'a', to: 'b' }],
    });
    expect(planIdentityChanges(where, changes, ['id', 'b', 'y'], alter)).toBeNull();
  });

  it('compares names without case only where the target does', () => {
    const changes = [{ kind: 'drop', column: 'Old' }] as const;
    expect(planIdentityChanges(where, changes, ['old'], alter)).toBeNull();
    expect(planIdentityChanges(where, changes, ['old'], { ...alter, namesIgnoreCase: true })).toEqual({
      drops: ['Old'],
      renames: [],
    });
  });

  it('stops naming every change when the target may not be altered', () => {
    const err = stopOf(() =>
      planIdentityChanges(
        where,
        [
          { kind: 'drop', column: 'c' },
          { kind: 'rename', from: 'a', to: 'b' },
        ],
        ['a', 'c'],
        { ...alter, alterTables: false },
      ),
    );
    expect(err.message).toBe(`${where}: the source renamed column a to b, dropped column c`);
    expect(err.hint).toMatch(/alter_tables: true/);
  });

  it('lets renames swap names and land on a dropped column, but not on a column the target keeps', () => {
    const swap = [
      { kind: 'rename', from: 'a', to: 'b' },
      { kind: 'rename', from: 'b', to: 'a' },
    ] as const;
    expect(planIdentityChanges(where, swap, ['a', 'b'], alter)?.renames).toHaveLength(2);
    const ontoDropped = [
      { kind: 'drop', column: 'b' },
      { kind: 'rename', from: 'a', to: 'b' },
    ] as const;
    expect(planIdentityChanges(where, ontoDropped, ['a', 'b'], alter)).toEqual({
      drops: ['b'],
      renames: [ontoDropped[1]],
    });
    const err = stopOf(() => planIdentityChanges(where, [swap[0]], ['a', 'B'], { ...alter, namesIgnoreCase: true }));
    expect(err.message).toBe(`${where}: the source renamed column a to b, but the target table already has a column b`);
  });
});

describe('checkTargetKey', () => {
  it('accepts the same key columns in any order', () => {
    expect(() => checkTargetKey(where, ['a', 'b'], ['b', 'a'])).not.toThrow();
    expect(() => checkTargetKey(where, [], [])).not.toThrow();
  });

  it('stops on a different key, asking for a primary key where the target has none', () => {
    const missing = stopOf(() => checkTargetKey(where, ['id'], []));
    expect(missing.message).toBe(`${where}: the source key (id) differs from the target primary key (none)`);
    expect(missing.hint).toMatch(/^Add the primary key/);
    const other = stopOf(() => checkTargetKey(where, ['id'], ['id', 'k2']));
    expect(other.message).toBe(`${where}: the source key (id) differs from the target primary key (id, k2)`);
    expect(other.hint).toMatch(/^The key changed at the source/);
  });
});

describe('planColumns', () => {
  /** A target type system of one word per type, with fits given by a table: `${target}<${source}` → fit kind. */
  function plan(
    columns: ColumnInfo[],
    existing: Record<string, string>,
    alterTables: boolean,
    fits: Record<string, ColumnFit['kind']> = {},
  ) {
    return planColumns({
      where,
      columns,
      wantedType: (i) => columns[i]!.type,
      existing: new Map(Object.entries(existing)),
      fit: (column, _, have) => {
        if (have === column.type) return { kind: 'holds' };
        const kind = fits[`${have}<${column.type}`] ?? 'differs';
        return kind === 'holds' ? { kind } : { kind, mismatch: `column ${column.name}: ${column.type} in ${have}` };
      },
      alterTables,
    });
  }
  const steps = (planned: ReturnType<typeof plan>) =>
    planned.map((s) => [s.kind, s.column.name, ...('existingRowsValue' in s ? [s.existingRowsValue] : [])]);

  it('keeps columns the target holds and adds missing ones, with the value existing rows read at the source', () => {
    const filled = { ...col('f', 'int'), missingValue: '7' };
    const nulled = { ...col('n', 'int'), missingValue: null };
    expect(
      steps(
        plan([col('id', 'int', 'int', true), col('w', 'big'), filled, nulled], { id: 'int', w: 'huge' }, true, {
          'huge<big': 'holds',
        }),
      ),
    ).toEqual([
      ['add', 'f', '7'],
      ['add', 'n', null],
    ]);
  });

  it('drops and adds anew a column the source dropped and added again under its name', () => {
    const again = { ...col('c', 'int'), missingValue: '0', replacesDropped: true };
    expect(steps(plan([again], { c: 'int' }, true))).toEqual([
      ['drop', 'c'],
      ['add', 'c', '0'],
    ]);
    // Not there any more (a replay after the drop): only added.
    expect(steps(plan([again], {}, true))).toEqual([['add', 'c', '0']]);
  });

  it('widens a column whose values the source type holds; retypes one that differs only when the source copies again', () => {
    const widened = col('w', 'big');
    const retyped = { ...col('r', 'text'), retyped: true };
    const retypedKey = { ...col('k', 'text', 'text', true), retyped: true };
    const planned = plan([widened, retyped, retypedKey], { w: 'small', r: 'int', k: 'int' }, true, {
      'small<big': 'widens',
    });
    expect(planned.map((s) => [s.kind, s.column.name, 'keepValues' in s ? s.keepValues : undefined])).toEqual([
      ['widen', 'w', undefined],
      ['retype', 'r', false],
      ['retype', 'k', true],
    ]);
    // A column that merely widens is widened even when retyped: its values convert exactly.
    expect(steps(plan([{ ...widened, retyped: true }], { w: 'small' }, true, { 'small<big': 'widens' }))).toEqual([
      ['widen', 'w'],
    ]);
  });

  it('retypes a column of another kind (unusable as it is) when the source copies the table again; a key keeps its values', () => {
    const toText = { ...col('c', 'text'), retyped: true };
    const keyToText = { ...col('k', 'text', 'text', true), retyped: true };
    const planned = plan([keyToText, toText], { k: 'int', c: 'int' }, true, {
      'int<text': 'unusable',
    });
    expect(planned.map((s) => [s.kind, s.column.name, 'keepValues' in s ? s.keepValues : undefined])).toEqual([
      ['retype', 'k', true],
      ['retype', 'c', false],
    ]);
    // Without the copy, or without alter_tables, it stops.
    expect(() => plan([{ ...toText, retyped: false }], { c: 'int' }, true, { 'int<text': 'unusable' })).toThrow(
      /column c: text in int/,
    );
    expect(() => plan([toText], { c: 'int' }, false, { 'int<text': 'unusable' })).toThrow(/column c: text in int/);
  });

  it('stops once, naming every column, before any change; an unusable column is not changed unless retyped', () => {
    const err = stopOf(() =>
      plan([col('a', 'int'), col('u', 'int'), col('d', 'text'), col('ok', 'int')], { u: 'blob', d: 'int' }, true, {
        'blob<int': 'unusable',
      }),
    );
    expect(err.message).toBe(
      `${where}: the target cannot hold the source rows faithfully: column u: int in blob; column d: text in int`,
    );
    expect(err.hint).toMatch(/^Change the target column \(or drop the table and resnapshot\)/);
  });

  it('changes nothing without alter_tables: missing, re-added, narrower and differing columns all stop', () => {
    const err = stopOf(() =>
      plan(
        [
          col('m', 'int'),
          { ...col('again', 'int'), missingValue: '1', replacesDropped: true },
          col('w', 'big'),
          { ...col('r', 'text'), retyped: true },
          col('same', 'int'),
        ],
        { again: 'int', w: 'small', r: 'int', same: 'int' },
        false,
        { 'small<big': 'widens' },
      ),
    );
    expect(err.message).toBe(
      `${where}: the target cannot hold the source rows faithfully: column m (int) is missing on the target; ` +
        'column again was dropped and added again at the source; drop it on the target so it is added anew; ' +
        'column w: big in small; column r: text in int',
    );
    expect(err.hint).toMatch(/alter_tables: true/);
    expect(plan([col('same', 'int')], { same: 'int' }, false)).toEqual([]);
  });
});
