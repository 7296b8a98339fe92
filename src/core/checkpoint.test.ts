import { describe, expect, it } from 'vitest';
import { comparePositions, gtidCovers, gtidSetCovers } from './checkpoint.ts';

const A = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const B = '4f22ab58-82db-22f2-af44-d91bb0530673';

describe('MySQL checkpoint positions', () => {
  it('orders file+offset positions of one server', () => {
    const at = (file: string, pos: number) => ({ kind: 'mysql' as const, file, pos });
    expect(comparePositions(at('binlog.000002', 4), at('binlog.000001', 900))).toBeGreaterThan(0);
    expect(comparePositions(at('binlog.000001', 300), at('binlog.000001', 900))).toBeLessThan(0);
  });

  it('tells whether a MariaDB GTID position includes a transaction', () => {
    expect(gtidCovers('0-1-100', '0-1-100')).toBe(true);
    expect(gtidCovers('0-1-100', '0-1-99')).toBe(true);
    expect(gtidCovers('0-1-100', '0-1-101')).toBe(false);
    // Another server of the same domain (after a failover) continues the domain's sequence.
    expect(gtidCovers('0-1-100', '0-2-101')).toBe(false);
    expect(gtidCovers('0-1-100,1-5-7', '1-5-7')).toBe(true);
    expect(gtidCovers('0-1-100', '1-5-1')).toBe(false);
    expect(gtidCovers('', '0-1-1')).toBeUndefined();
    expect(gtidCovers('0-1-100', `${A}:5`)).toBeUndefined();
  });

  it('tells whether a MySQL GTID set includes a transaction', () => {
    expect(gtidCovers(`${A}:1-10:15-20,${B}:1-3`, `${A}:12`)).toBe(false);
    expect(gtidCovers(`${A}:1-10:15-20,${B}:1-3`, `${A}:15`)).toBe(true);
    expect(gtidCovers(`${A}:1-10:15-20,${B}:1-3`, `${B}:3`)).toBe(true);
    expect(gtidCovers(`${A}:1-10`, `${B}:1`)).toBe(false);
    expect(gtidCovers(`${A}:1-10,${A}:tag:1-2`, `${A}:tag:2`)).toBe(true);
    expect(gtidCovers(`${A}:1-10`, `${A}:tag:2`)).toBe(false);
  });

  it('tells whether one executed GTID set includes another', () => {
    expect(gtidSetCovers('0-1-100,1-2-5', '0-1-90,1-2-5')).toBe(true);
    expect(gtidSetCovers('0-1-100', '0-1-90,1-2-5')).toBe(false);
    expect(gtidSetCovers('0-1-100', '0-2-101')).toBe(false);
    expect(gtidSetCovers(`${A}:1-20,${B}:1-3`, `${A}:1-20`)).toBe(true);
    expect(gtidSetCovers(`${A}:1-10:15-20`, `${A}:1-20`)).toBe(false);
    expect(gtidSetCovers(`${A}:1-20`, `${A}:1-20,${B}:1`)).toBe(false);
    expect(gtidSetCovers('0-1-100', `${A}:1-20`)).toBeUndefined();
    expect(gtidSetCovers('nonsense', '0-1-1')).toBeUndefined();
  });
});
