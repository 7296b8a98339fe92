import { describe, expect, it } from 'vitest';
import { UNCHANGED } from '../../src/core/change-event.ts';
import { col, EventSource, tableSchema } from '../../test/fixtures/change-events.ts';
import { KeyedRun } from './row-runs.ts';

const items = tableSchema('public.items', [col('id', 'int', 'int', true), col('name', 'text')]);

function runOf(build: Parameters<EventSource['tx']>[0]): KeyedRun {
  const run = new KeyedRun({ keyColumns: ['id'] });
  for (const ev of new EventSource().tx(build).events) run.add(ev);
  return run;
}

describe('KeyedRun', () => {
  it('keeps a run of snapshot reads unkeyed, in arrival order', () => {
    const run = runOf((t) => t.read(items, { id: '2', name: 'b' }).read(items, { id: '1', name: 'a' }));
    expect(run.unkeyedReads()).toEqual([
      { id: '2', name: 'b' },
      { id: '1', name: 'a' },
    ]);
    expect(run.size).toBe(2);
  });

  it('keys the reads once another change joins them: each key ends in its last state', () => {
    const run = runOf((t) =>
      t
        .read(items, { id: '1', name: 'a' })
        .read(items, { id: '2', name: 'b' })
        .update(items, { id: '1', name: 'a2' })
        .delete(items, { id: '2' })
        .read(items, { id: '3', name: 'c' }),
    );
    expect(run.unkeyedReads()).toBeNull();
    expect([...run.ops.entries()]).toEqual([
      ['1', { kind: 'upsert', row: { id: '1', name: 'a2' } }],
      ['2', { kind: 'delete', key: { id: '2' } }],
      ['3', { kind: 'upsert', row: { id: '3', name: 'c' }, fresh: true }],
    ]);
  });

  it('a key read twice is one upsert of the later read once keyed', () => {
    const run = runOf((t) => t.read(items, { id: '1', name: 'a' }).read(items, { id: '1', name: 'again' }));
    expect(run.unkeyedReads()).toHaveLength(2);
    expect([...run.ops.values()]).toEqual([{ kind: 'upsert', row: { id: '1', name: 'again' } }]);
    expect(run.unkeyedReads()).toBeNull();
  });

  it('a read carrying an unchanged marker is never kept unkeyed', () => {
    const run = runOf((t) => t.read(items, { id: '1', name: UNCHANGED as never }));
    expect(run.unkeyedReads()).toBeNull();
    expect([...run.ops.values()]).toEqual([{ kind: 'partial', row: { id: '1' } }]);
  });
});
