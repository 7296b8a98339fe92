import { describe, expect, it } from 'vitest';
import { parseTableDdl } from './ddl.ts';
import { MysqlSchemaHistory, type TypeChange } from './schema-history.ts';

const shape = (h: MysqlSchemaHistory, name = 't') => h.get('d', name)?.columns.map((c) => `${c.id}:${c.name}`) ?? null;

function alter(h: MysqlSchemaHistory, sql: string): TypeChange[] {
  const ddl = parseTableDdl(sql, 'd')!;
  return h.alter('d', ddl.tables[0]!.name, ddl);
}

/** Table map columns of type INT. */
const ints = (...names: string[]) => names.map((name) => ({ name, type: 'int' }));

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
    expect(h.fitTableMap('d', 't', ints('z', 'id', 'b', 'a', 'm'))).toEqual({
      firstSeen: false,
      added: [],
      removed: [],
      retyped: [],
    });
    // A statement the history did not understand: names taken by name.
    expect(h.fitTableMap('d', 't', ints('ID', 'b', 'a', 'm', 'n'))).toEqual({
      firstSeen: false,
      added: ['n'],
      removed: ['z'],
      retyped: [],
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
    expect(h.fitTableMap('d', 'unknown', ints('id'))).toEqual({ firstSeen: true, added: [], removed: [], retyped: [] });
  });

  it('a table known only from DDL statements: the other columns count as unchanged at its first table map', () => {
    const h = new MysqlSchemaHistory();
    alter(h, 'ALTER TABLE t RENAME COLUMN a TO b, DROP COLUMN c');
    alter(h, 'ALTER TABLE t ADD COLUMN c INT');
    expect(h.fitTableMap('d', 't', ints('id', 'b', 'c'))).toMatchObject({ firstSeen: true });
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
    h.fitTableMap('d', 't', ints('id', 'y', 'b'));
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

  it('keeps each column type in stream order: from the snapshot, a MODIFY / CHANGE definition, a table map', () => {
    const h = new MysqlSchemaHistory();
    h.create(
      'd',
      't',
      [
        { name: 'id', type: 'int' },
        { name: 'p', type: 'decimal(10,2)' },
        { name: 'w', type: 'datetime(6)' },
      ],
      { delivered: true },
    );
    expect(alter(h, 'ALTER TABLE t MODIFY p DEC(10,1) NOT NULL, CHANGE w w2 DATETIME, ADD COLUMN x INT')).toEqual([
      { column: 'p', from: 'decimal(10,2)', to: 'dec(10,1)' },
      { column: 'w2', from: 'datetime(6)', to: 'datetime' },
    ]);
    // A statement not understood changed p again: the table map tells it.
    const fit = h.fitTableMap('d', 't', [
      { name: 'id', type: 'int' },
      { name: 'p', type: 'varchar(20)' },
      { name: 'w2', type: 'datetime' },
      { name: 'x', type: 'int' },
    ]);
    expect(fit.retyped).toEqual([{ column: 'p', from: 'dec(10,1)', to: 'varchar(20)' }]);
    const again = MysqlSchemaHistory.fromState(JSON.parse(JSON.stringify(h.toState())));
    expect(again.get('d', 't')?.columns.map((c) => c.type)).toEqual(['int', 'varchar(20)', 'datetime', 'int']);
    // A column the history has no type for (a partial entry): the statement's type, nothing before.
    const p = new MysqlSchemaHistory();
    expect(alter(p, 'ALTER TABLE t MODIFY a BIGINT')).toEqual([{ column: 'a', to: 'bigint' }]);
  });
});
