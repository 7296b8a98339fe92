import { describe, expect, it } from 'vitest';
import type { KnownTable } from './schema-history.ts';
import { rewriteOutcome } from './unannounced-rewrite.ts';

const INT = 23;
const NUMERIC = 1700;

function table(columns: [number, string, number, number?][], filenode: string, name = 't'): KnownTable {
  return {
    relid: 1,
    schema: 'public',
    name,
    natts: Math.max(0, ...columns.map((c) => c[0])),
    filenode,
    columns: columns.map(([attnum, name, typeOid, typmod]) => ({ attnum, name, typeOid, typmod: typmod ?? -1 })),
    keyColumns: ['id'],
  };
}

describe('rewriteOutcome', () => {
  const before = table(
    [
      [1, 'id', INT],
      [2, 'v', NUMERIC, 786444],
    ],
    '10',
  );

  it('a column retyped: named, and the history takes the new type and file node (key kept)', () => {
    const now = table(
      [
        [1, 'id', INT],
        [2, 'v', NUMERIC, 786441],
      ],
      '11',
    );
    const outcome = rewriteOutcome(before, now)!;
    expect(outcome.retyped).toEqual(['v']);
    expect(outcome.added).toEqual([]);
    expect(outcome.table).toMatchObject({ filenode: '11', keyColumns: ['id'], columns: now.columns });
  });

  it('a column added after the known ones: named as added', () => {
    const now = table(
      [
        [1, 'id', INT],
        [2, 'v', NUMERIC, 786444],
        [3, 'r', INT],
      ],
      '11',
    );
    expect(rewriteOutcome(before, now)).toMatchObject({ retyped: [], added: ['r'], table: { natts: 3 } });
  });

  it('nothing retyped or added (TRUNCATE, VACUUM FULL): only the file node is taken', () => {
    const outcome = rewriteOutcome(before, { ...before, filenode: '12' })!;
    expect(outcome).toMatchObject({ retyped: [], added: [], table: { filenode: '12' } });
  });

  it('the table renamed since: decided, under the new name, with the name the history had', () => {
    const outcome = rewriteOutcome(before, { ...before, schema: 'app', name: 'u', filenode: '11' })!;
    expect(outcome).toMatchObject({
      renamedFrom: { schema: before.schema, name: before.name },
      table: { schema: 'app', name: 'u', filenode: '11' },
      retyped: [],
    });
    expect(rewriteOutcome(before, { ...before, filenode: '11' })!.renamedFrom).toBeUndefined();
  });

  it('a column renamed or dropped: left to the next Relation message', () => {
    const renamed = table(
      [
        [1, 'id', INT],
        [2, 'w', NUMERIC, 786441],
      ],
      '11',
    );
    const dropped = table([[1, 'id', INT]], '11');
    const readded = table(
      [
        [1, 'id', INT],
        [3, 'v', INT],
      ],
      '11',
    );
    expect(rewriteOutcome(before, renamed)).toBeNull();
    expect(rewriteOutcome(before, dropped)).toBeNull();
    expect(rewriteOutcome(before, readded)).toBeNull();
  });
});
