import { describe, expect, it } from 'vitest';
import type { RawRelation } from './pgoutput-decoder.ts';
import { type CatalogAttribute, type KnownTable, matchColumns } from './schema-history.ts';

const INT = 23;
const TEXT = 25;

function known(columns: [number, string, number][], natts?: number): KnownTable {
  return {
    relid: 1,
    schema: 'public',
    name: 't',
    natts: natts ?? Math.max(0, ...columns.map((c) => c[0])),
    filenode: '1',
    columns: columns.map(([attnum, name, typeOid]) => ({ attnum, name, typeOid, typmod: -1 })),
  };
}

function message(columns: [string, number][]): RawRelation {
  return {
    relid: 1,
    schema: 'public',
    name: 't',
    replicaIdentity: 'd',
    columns: columns.map(([name, typeOid]) => ({ name, typeOid, typmod: -1, isKey: name === 'id' })),
  };
}

/** attnum -> [name, type, dropped, settled (unchanged since before the message)] */
function catalog(attrs: Record<number, [string, number, boolean, boolean]>): Map<number, CatalogAttribute> {
  return new Map(
    Object.entries(attrs).map(([n, [name, typeOid, dropped, settled]]) => [
      Number(n),
      { attnum: Number(n), name, typeOid, typmod: -1, dropped, settled },
    ]),
  );
}

describe('matching a Relation message to attribute numbers', () => {
  it('a rename keeps the attribute number', () => {
    const got = matchColumns(
      known([
        [1, 'id', INT],
        [2, 'b', INT],
      ]),
      message([
        ['id', INT],
        ['b2', INT],
      ]),
      catalog({ 1: ['id', INT, false, true], 2: ['b2', INT, false, true] }),
    );
    expect(got).toEqual([[1, 2]]);
  });

  it('a drop and re-add under the same name and type (streaming: the catalog is settled) is a new column', () => {
    const got = matchColumns(
      known([
        [1, 'id', INT],
        [2, 'c', INT],
      ]),
      message([
        ['id', INT],
        ['c', INT],
      ]),
      catalog({ 1: ['id', INT, false, true], 2: ['', 0, true, true], 3: ['c', INT, false, true] }),
    );
    expect(got).toEqual([[1, 3]]);
  });

  it('behind: a message from before a later drop and re-add keeps the old column (its drop came later)', () => {
    const got = matchColumns(
      known([
        [1, 'id', INT],
        [2, 'c', INT],
      ]),
      message([
        ['id', INT],
        ['c', INT],
      ]),
      catalog({ 1: ['id', INT, false, true], 2: ['', 0, true, false], 3: ['c', TEXT, false, false] }),
    );
    expect(got).toEqual([[1, 2]]);
  });

  it('behind: a column added before the message and renamed after it is matched by position', () => {
    const got = matchColumns(
      known([
        [1, 'id', INT],
        [2, 'name', TEXT],
      ]),
      message([
        ['id', INT],
        ['name', TEXT],
        ['b', INT],
      ]),
      catalog({ 1: ['id', INT, false, true], 2: ['name', TEXT, false, true], 3: ['b2', INT, false, false] }),
    );
    expect(got).toEqual([[1, 2, 3]]);
  });

  it('no reading fits: none is returned (the caller stops)', () => {
    // Known a@2, b@3; the message lists only b, but both columns were dropped before it (settled drops).
    const got = matchColumns(
      known([
        [1, 'id', INT],
        [2, 'a', INT],
        [3, 'b', INT],
      ]),
      message([
        ['id', INT],
        ['b', INT],
      ]),
      catalog({ 1: ['id', INT, false, true], 2: ['', 0, true, true], 3: ['', 0, true, true] }),
    );
    expect(got).toEqual([]);
  });

  it('two readings that fit are both returned (the caller stops)', () => {
    // No history: c is 2 (dropped after the message, c re-added as 3 after it) or 3 (2 added and dropped before).
    const got = matchColumns(
      known([]),
      message([
        ['id', INT],
        ['c', INT],
      ]),
      catalog({ 1: ['id', INT, false, true], 2: ['', 0, true, false], 3: ['c', INT, false, false] }),
    );
    expect(got).toEqual([
      [1, 2],
      [1, 3],
    ]);
  });
});
