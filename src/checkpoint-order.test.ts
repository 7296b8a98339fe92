import { describe, expect, it } from 'vitest';
import { gtidCovers, gtidSetCovers } from '../connectors/mysql/gtid-set.ts';
import { advances, compareCoverage, comparePositions, isBackwards, laterCheckpoint } from './checkpoint-order.ts';
import type { Checkpoint } from './core/checkpoint.ts';

const A = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const B = '4f22ab58-82db-22f2-af44-d91bb0530673';

describe('MySQL checkpoint positions', () => {
  it('orders file+offset positions of one server', () => {
    const at = (file: string, pos: number) => ({ kind: 'mysql' as const, file, pos });
    expect(comparePositions(at('binlog.000002', 4), at('binlog.000001', 900))).toBeGreaterThan(0);
    expect(comparePositions(at('binlog.000001', 300), at('binlog.000001', 900))).toBeLessThan(0);
  });

  it('orders binlog files by number past .999999 (binlog.1000000 comes after binlog.999999)', () => {
    const at = (file: string, pos: number) => ({ kind: 'mysql' as const, file, pos });
    expect(comparePositions(at('binlog.1000000', 4), at('binlog.999999', 900))).toBeGreaterThan(0);
    expect(comparePositions(at('binlog.999999', 900), at('binlog.1000000', 4))).toBeLessThan(0);
    expect(comparePositions(at('binlog.1000001', 4), at('binlog.1000000', 900))).toBeGreaterThan(0);
    expect(
      compareCoverage(
        { kind: 'mysql', file: 'binlog.1000000', pos: 4 },
        { kind: 'mysql', file: 'binlog.999999', pos: 900 },
      ),
    ).toBeGreaterThan(0);
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

  /** A position on server `file`'s binlog, after the transactions of `gtidSet`. */
  const my = (file: string, pos: number, gtidSet?: string) => ({ kind: 'mysql' as const, file, pos, gtidSet });
  const cp = (position: Checkpoint['position'], phase: Checkpoint['phase'] = 'stream'): Checkpoint => ({
    pipeline: 'p',
    phase,
    position,
  });

  it('compares MariaDB positions with GTID positions by them, whatever the binlog files say', () => {
    // Stored on the old primary (server 1); the new primary (server 2) writes its own binlog files.
    const stored = my('mariadb-bin.000040', 9000, '0-1-100,1-1-7');
    // Its first own transaction: files sort before the old ones, yet it is new.
    expect(compareCoverage(my('a-bin.000001', 400, '0-2-101,1-1-7'), stored)).toBeGreaterThan(0);
    // A replay of what the old primary had: files sort after, yet it is covered.
    expect(compareCoverage(my('z-bin.000001', 300, '0-1-99,1-1-7'), stored)).toBeLessThan(0);
    // A new transaction in another domain only.
    expect(compareCoverage(my('a-bin.000001', 500, '0-1-100,1-2-8'), stored)).toBeGreaterThan(0);
    // Neither covers the other: the new one holds something new, so it may replace the stored one.
    expect(compareCoverage(my('a-bin.000001', 500, '0-2-101'), stored)).toBeGreaterThan(0);
    // The same set: no transaction between them, file+offset decides.
    expect(compareCoverage(my('mariadb-bin.000040', 9100, '1-1-7,0-1-100'), stored)).toBeGreaterThan(0);
    expect(compareCoverage(my('mariadb-bin.000040', 9000, '0-1-100,1-1-7'), stored)).toBe(0);
  });

  it('compares MySQL positions with GTID sets by them, whatever the binlog files say', () => {
    const stored = my('binlog.000040', 9000, `${A}:1-100`);
    // The new source (B) replicated A's transactions and adds its own.
    expect(compareCoverage(my('a.000001', 4, `${A}:1-100,${B}:1`), stored)).toBeGreaterThan(0);
    expect(compareCoverage(my('z.000009', 900, `${A}:1-99`), stored)).toBeLessThan(0);
    expect(compareCoverage(my('z.000009', 900, `${A}:1-50:52-100`), stored)).toBeLessThan(0);
    // A gap the stored set lacks (A:101) is new, though both miss something.
    expect(compareCoverage(my('a.000001', 4, `${A}:1-99:101`), stored)).toBeGreaterThan(0);
  });

  it('falls back to file+offset without a GTID set on both sides or when a set cannot be read', () => {
    expect(compareCoverage(my('a.000001', 4), my('b.000001', 4, `${A}:1-5`))).toBeLessThan(0);
    expect(compareCoverage(my('a.000001', 4, `${A}:1-9`), my('b.000001', 4))).toBeLessThan(0);
    expect(compareCoverage(my('a.000001', 4, '0-1-9'), my('b.000001', 4, `${A}:1-5`))).toBeLessThan(0);
    expect(compareCoverage(my('c.000001', 4, 'garbage'), my('b.000001', 4, '0-1-5'))).toBeGreaterThan(0);
    expect(compareCoverage({ kind: 'postgres', lsn: '0/20' }, { kind: 'postgres', lsn: '0/10' })).toBeGreaterThan(0);
  });

  it('keeps stores monotonic by GTID coverage (isBackwards for the file store, advances for database stores)', () => {
    const stored = cp(my('binlog.000040', 9000, `${A}:1-100`));
    const newer = cp(my('a.000001', 4, `${A}:1-100,${B}:1`));
    const older = cp(my('z.000001', 4, `${A}:1-90`));
    expect(isBackwards(stored, newer)).toBe(false);
    expect(isBackwards(stored, older)).toBe(true);
    expect(advances(stored, newer)).toBe(true);
    expect(advances(stored, older)).toBe(false);
    expect(laterCheckpoint(stored, newer)).toBe(newer);
    expect(laterCheckpoint(newer, stored)).toBe(newer);
    expect(laterCheckpoint(stored, older)).toBe(stored);
    // Snapshot progress at one position still moves (state changes, the position does not); stream -> snapshot never.
    const snap = cp(my('binlog.000040', 9000, '0-1-100'), 'snapshot');
    expect(advances(snap, { ...snap, state: { done: 2 } })).toBe(true);
    expect(advances(cp(snap.position), snap)).toBe(false);
    expect(isBackwards(cp(snap.position), snap)).toBe(true);
    expect(advances(cp(my('binlog.000040', 9000, '0-1-100')), cp(my('a.000001', 4, '0-2-101')))).toBe(true);
    expect(advances(cp(my('a.000001', 4, '0-2-101')), cp(my('binlog.000040', 9000, '0-1-100')))).toBe(false);
  });
});
