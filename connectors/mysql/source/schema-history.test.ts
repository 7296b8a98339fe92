import { describe, expect, it } from 'vitest';
import { parseTableDdl } from './ddl.ts';
import { MysqlSchemaHistory } from './schema-history.ts';

const shape = (h: MysqlSchemaHistory, name = 't') => h.get('d', name)?.columns.map((c) => `${c.id}:${c.name}`) ?? null;

function alter(h: MysqlSchemaHistory, sql: string): void {
  const ddl = parseTableDdl(sql, 'd')!;
  h.alter('d', ddl.tables[0]!.name, ddl);
}

describe('MySQL schema history', () => {
  it('keeps a renamed column, gives a column dropped and added again a new identity, and says what the target must do', () => {
    const h = new MysqlSchemaHistory();
    h.create('d', 't', ['id', 'a', 'b', 'c'], { delivered: true });
    expect(shape(h)).toEqual(['1:id', '2:a', '3:b', '4:c']);
    alter(h, 'ALTER TABLE t RENAME COLUMN c TO c2, DROP COLUMN b');
    alter(h, 'ALTER TABLE t ADD COLUMN b INT NOT NULL DEFAULT 7');
    expect(shape(h)).toEqual(['1:id', '2:a', '4:c2', '5:b']);
    expect(h.changesSinceDelivered('d', 't')).toEqual([
      { kind: 'drop', column: 'b' },
      { kind: 'rename', from: 'c', to: 'c2' },
    ]);
    h.markDelivered('d', 't', h.get('d', 't')!.columns);
    expect(h.changesSinceDelivered('d', 't')).toEqual([]);
  });

  it('renames of one statement name the columns as they were (swaps); renames compose against the target', () => {
    const h = new MysqlSchemaHistory();
    h.create('d', 't', ['id', 'a', 'b'], { delivered: true });
    alter(h, 'ALTER TABLE t CHANGE a b BIGINT, CHANGE b a INT NOT NULL');
    expect(shape(h)).toEqual(['1:id', '2:b', '3:a']);
    alter(h, 'ALTER TABLE t RENAME COLUMN b TO x');
    alter(h, 'ALTER TABLE t RENAME COLUMN x TO y, DROP COLUMN a');
    expect(h.changesSinceDelivered('d', 't')).toEqual([
      { kind: 'drop', column: 'b' },
      { kind: 'rename', from: 'a', to: 'y' },
    ]);
  });

  it('places columns as FIRST and AFTER say; a table map gives the order and confirms the names', () => {
    const h = new MysqlSchemaHistory();
    h.create('d', 't', ['id', 'a', 'b']);
    alter(h, 'ALTER TABLE t ADD COLUMN z INT FIRST, ADD COLUMN m INT AFTER a, MODIFY b INT AFTER id');
    expect(shape(h)).toEqual(['4:z', '1:id', '3:b', '2:a', '5:m']);
    expect(h.fitTableMap('d', 't', ['z', 'id', 'b', 'a', 'm'])).toEqual({ firstSeen: false, added: [], removed: [] });
    // A statement the history did not understand: names taken by name.
    expect(h.fitTableMap('d', 't', ['ID', 'b', 'a', 'm', 'n'])).toEqual({
      firstSeen: false,
      added: ['n'],
      removed: ['z'],
    });
    expect(shape(h)).toEqual(['1:ID', '3:b', '2:a', '5:m', '6:n']);
  });

  it('a table created again under its name is a new table; a renamed table keeps its columns', () => {
    const h = new MysqlSchemaHistory();
    h.create('d', 't', ['id', 'v'], { delivered: true });
    h.rename({ db: 'd', name: 't' }, { db: 'd', name: 'u' });
    expect(shape(h, 'u')).toEqual(['1:id', '2:v']);
    expect(shape(h, 't')).toBeNull();
    h.drop('d', 'u');
    const ddl = parseTableDdl('CREATE TABLE u (id INT PRIMARY KEY, v INT, KEY (v))', 'd')!;
    h.create('d', 'u', ddl.createdColumns!);
    expect(shape(h, 'u')).toEqual(['3:id', '4:v']);
    // Never delivered: the target compares by name.
    expect(h.changesSinceDelivered('d', 'u')).toEqual([]);
    expect(h.fitTableMap('d', 'unknown', ['id'])).toEqual({ firstSeen: true, added: [], removed: [] });
  });

  it('a table known only from DDL statements: the other columns count as unchanged at its first table map', () => {
    const h = new MysqlSchemaHistory();
    alter(h, 'ALTER TABLE t RENAME COLUMN a TO b, DROP COLUMN c');
    alter(h, 'ALTER TABLE t ADD COLUMN c INT');
    expect(h.fitTableMap('d', 't', ['id', 'b', 'c'])).toMatchObject({ firstSeen: true });
    expect(h.changesSinceDelivered('d', 't')).toEqual([
      { kind: 'drop', column: 'c' },
      { kind: 'rename', from: 'a', to: 'b' },
    ]);
    expect(h.get('d', 't')?.partial).toBeUndefined();
  });

  it('takes the pending renames and drops of an older checkpoint', () => {
    const h = MysqlSchemaHistory.fromState({
      renamedColumns: { 'd.t': [{ from: 'a', to: 'y' }] },
      droppedColumns: { 'd.t': ['b'] },
    });
    h.fitTableMap('d', 't', ['id', 'y', 'b']);
    expect(h.changesSinceDelivered('d', 't')).toEqual([
      { kind: 'drop', column: 'b' },
      { kind: 'rename', from: 'a', to: 'y' },
    ]);
  });

  it('survives its checkpoint state; a state already saved keeps the shapes of its position', () => {
    const h = new MysqlSchemaHistory();
    h.create('d', 't', ['id', 'a'], { delivered: true });
    const saved = JSON.parse(JSON.stringify(h.toState()));
    const held = h.toState();
    expect(h.toState().schemaHistory).toBe(held.schemaHistory);
    alter(h, 'ALTER TABLE t RENAME COLUMN a TO b');
    expect(held.schemaHistory[0]!.columns.map((c) => c.name)).toEqual(['id', 'a']);
    const again = MysqlSchemaHistory.fromState(saved);
    expect(shape(again)).toEqual(['1:id', '2:a']);
    alter(again, 'ALTER TABLE t ADD COLUMN c INT');
    expect(shape(again)).toEqual(['1:id', '2:a', '3:c']);
  });

  it('saves the columns the target has only where they differ, and says when it has none', () => {
    const h = new MysqlSchemaHistory();
    h.create('d', 'same', ['id'], { delivered: true });
    h.create('d', 'renamed', ['id', 'a'], { delivered: true });
    alter(h, 'ALTER TABLE renamed RENAME COLUMN a TO b');
    h.create('d', 'fresh', ['id']);
    const saved = JSON.parse(JSON.stringify(h.toState()));
    expect(saved.schemaHistory).toEqual([
      { schema: 'd', name: 'same', columns: [{ id: 1, name: 'id' }] },
      {
        schema: 'd',
        name: 'renamed',
        columns: [
          { id: 2, name: 'id' },
          { id: 3, name: 'b' },
        ],
        delivered: [
          { id: 2, name: 'id' },
          { id: 3, name: 'a' },
        ],
      },
      { schema: 'd', name: 'fresh', columns: [{ id: 4, name: 'id' }], undelivered: true },
    ]);
    expect(saved.schemaHistoryNextId).toBe(5);
    const again = MysqlSchemaHistory.fromState(saved);
    expect(again.get('d', 'same')?.delivered).toEqual([{ id: 1, name: 'id' }]);
    expect(again.changesSinceDelivered('d', 'renamed')).toEqual([{ kind: 'rename', from: 'a', to: 'b' }]);
    expect(again.get('d', 'fresh')?.delivered).toBeUndefined();
  });
});
