import { describe, expect, it } from 'vitest';
import { pipelineConfig } from '../config/schema.ts';
import { diffLeaf } from './compare-table.ts';
import { expandedTupleCompare } from './dialect.ts';
import { pairKinds } from './plan.ts';
import { targetTableFor } from './table-map.ts';
import type { ColumnDef } from './types.ts';

const target = (t: Record<string, unknown>) =>
  pipelineConfig.parse({ name: 'p', source: { type: 'postgres', url: 'postgres://x/db' }, target: t }).target;

describe('verify without a server', () => {
  it('maps source tables to target tables as the target config says', () => {
    const src = { schema: 'app', name: 'orders' };
    expect(targetTableFor(target({ type: 'postgres', url: 'u' }), src)).toEqual(src);
    expect(targetTableFor(target({ type: 'postgres', url: 'u', schema: 'replica' }), src)).toEqual({
      schema: 'replica',
      name: 'orders',
    });
    const renamed = target({ type: 'postgres', url: 'u', schema: 'replica', tables: { 'app.orders': 'arch.o2' } });
    expect(targetTableFor(renamed, src)).toEqual({ schema: 'arch', name: 'o2' });
    expect(targetTableFor(renamed, { schema: 'app', name: 'other' })).toEqual({ schema: 'replica', name: 'other' });
    expect(targetTableFor(target({ type: 'mysql', url: 'u' }), src)).toEqual(src);
  });

  it('lists leaf differences in key order', () => {
    const row = (k: string, h = 'h') => ({ key: [k], h });
    const src = [row('1'), row('2'), row('4', 'a'), row('6')];
    const tgt = [row('0'), row('1'), row('3'), row('4', 'b'), row('5')];
    // Without a comparator, a row only at the target follows the row before it at the target.
    expect(diffLeaf(src, tgt).map((d) => d.key[0])).toEqual(['0', '3', '2', '4', '5', '6']);
    expect(diffLeaf(src, tgt, (a, b) => Number(a[0]) - Number(b[0]))).toEqual([
      { kind: 'extra_at_target', key: ['0'] },
      { kind: 'missing_at_target', key: ['2'] },
      { kind: 'extra_at_target', key: ['3'] },
      { kind: 'different', key: ['4'] },
      { kind: 'extra_at_target', key: ['5'] },
      { kind: 'missing_at_target', key: ['6'] },
    ]);
  });

  it('spells out key tuple comparisons for MySQL', () => {
    expect(expandedTupleCompare(['a'], ['1'], '>')).toBe('a > 1');
    expect(expandedTupleCompare(['a', 'b'], ['1', '2'], '<=')).toBe('(a < 1 OR (a = 1 AND b <= 2))');
    expect(expandedTupleCompare(['a', 'b', 'c'], ['1', '2', '3'], '>')).toBe(
      '(a > 1 OR (a = 1 AND b > 2) OR (a = 1 AND b = 2 AND c > 3))',
    );
  });

  it('pairs column kinds across engines', () => {
    const col = (kind: ColumnDef['kind'], extra: Partial<ColumnDef> = {}): ColumnDef => ({
      name: 'c',
      type: kind,
      kind,
      ...extra,
    });
    expect(pairKinds(col('bool'), col('int', { maybeBool: true }), true)).toEqual(['bool', 'bool']);
    expect(pairKinds(col('bool'), col('int'), true)).toEqual(['bool', 'int']);
    expect(pairKinds(col('json'), col('text'), true)).toEqual(['json', 'json']);
    expect(pairKinds(col('float'), col('decimal'), true)).toEqual(['float', 'float']);
    expect(pairKinds(col('json'), col('text'), false)).toEqual(['json', 'text']);
  });
});
