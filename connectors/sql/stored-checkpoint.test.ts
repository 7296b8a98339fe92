import { describe, expect, it } from 'vitest';
import type { ChangeEvent, SourcePosition } from '../../src/core/change-event.ts';
import type { Checkpoint } from '../../src/core/checkpoint.ts';
import { StoredCheckpoint } from './stored-checkpoint.ts';

const A = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const B = '4f22ab58-82db-22f2-af44-d91bb0530673';

/** A streamed row change of the transaction that starts at `file:pos`, with its GTID. */
function change(file: string, pos: number, gtid?: string): ChangeEvent {
  const position: SourcePosition = { kind: 'mysql', file, pos, serverId: 2, row: 0, ...(gtid ? { gtid } : {}) };
  return {
    op: 'insert',
    table: { schema: 'src', name: 't' },
    schema: { table: { schema: 'src', name: 't' }, columns: [], keyColumns: [], beforeImage: 'none' },
    key: null,
    before: null,
    after: {},
    source: { connector: 'mysql', db: 'src', position, commitTimeMs: 0, snapshot: false },
  };
}

function stored(file: string, pos: number, gtidSet?: string): StoredCheckpoint {
  const s = new StoredCheckpoint();
  s.set(at(file, pos, gtidSet));
  return s;
}

function at(file: string, pos: number, gtidSet?: string): Checkpoint {
  return { pipeline: 'p', phase: 'stream', position: { kind: 'mysql', file, pos, ...(gtidSet ? { gtidSet } : {}) } };
}

describe('StoredCheckpoint after a failover (stored on another server)', () => {
  it('covers MariaDB events by domain sequence, not by binlog file', () => {
    const s = stored('mariadb-bin.000040', 9000, '0-1-100,1-1-7');
    // The new primary's files sort before the old ones: only the GTID tells old from new.
    expect(s.coversEvent(change('a-bin.000001', 300, '0-1-100'))).toBe(true);
    expect(s.coversEvent(change('a-bin.000001', 400, '0-2-101'))).toBe(false);
    expect(s.coversEvent(change('a-bin.000001', 500, '1-1-7'))).toBe(true);
    expect(s.coversEvent(change('a-bin.000001', 600, '2-2-1'))).toBe(false);
    // And files that sort after them: a replay is still a replay.
    expect(s.coversEvent(change('z-bin.000001', 300, '0-1-99'))).toBe(true);
  });

  it('covers MySQL events by source id interval, not by binlog file', () => {
    const s = stored('binlog.000040', 9000, `${A}:1-10:12-20`);
    expect(s.coversEvent(change('a.000001', 4, `${A}:20`))).toBe(true);
    expect(s.coversEvent(change('a.000001', 100, `${A}:11`))).toBe(false);
    expect(s.coversEvent(change('a.000001', 200, `${B}:1`))).toBe(false);
    expect(s.coversEvent(change('z.000001', 300, `${A}:21`))).toBe(false);
  });

  it('decides by file+offset without a GTID on either side, or one it cannot read', () => {
    expect(stored('binlog.000040', 9000).coversEvent(change('binlog.000040', 100, `${A}:99`))).toBe(true);
    expect(stored('binlog.000040', 9000, `${A}:1-5`).coversEvent(change('binlog.000041', 4))).toBe(false);
    expect(stored('binlog.000040', 9000, '0-1-5').coversEvent(change('binlog.000040', 100, `${A}:9`))).toBe(true);
    // An event at the checkpoint itself starts the next transaction.
    expect(stored('binlog.000040', 9000).coversEvent(change('binlog.000040', 9000))).toBe(false);
  });

  it('decides again when the stored checkpoint changes, though the events of one transaction share a decision', () => {
    const s = stored('binlog.000040', 9000, `${A}:1-10`);
    expect(s.coversEvent(change('a.000001', 4, `${A}:11`))).toBe(false);
    s.set(at('a.000001', 90, `${A}:1-11`));
    expect(s.coversEvent(change('a.000001', 4, `${A}:11`))).toBe(true);
  });

  it('covers checkpoints by GTID set and keeps the one that covers more after a commit', () => {
    const s = stored('binlog.000040', 9000, `${A}:1-100`);
    expect(s.coversCheckpoint(at('z.000001', 4, `${A}:1-99`))).toBe(true);
    expect(s.coversCheckpoint(at('a.000001', 4, `${A}:1-100,${B}:1`))).toBe(false);
    s.committed(at('z.000001', 4, `${A}:1-99`));
    expect(s.get()?.position).toEqual(at('binlog.000040', 9000, `${A}:1-100`).position);
    s.committed(at('a.000001', 4, `${A}:1-100,${B}:1`));
    expect(s.get()?.position).toEqual(at('a.000001', 4, `${A}:1-100,${B}:1`).position);
    // Only a stored stream checkpoint covers anything.
    s.set({ ...at('a.000001', 4, `${A}:1-100,${B}:1`), phase: 'snapshot' });
    expect(s.coversCheckpoint(at('z.000001', 4, `${A}:1-99`))).toBe(false);
    expect(s.coversEvent(change('a.000001', 4, `${A}:5`))).toBe(false);
  });
});

describe('StoredCheckpoint during a PostgreSQL initial snapshot', () => {
  const pgAt = (lsn: string, snapshot?: object): Checkpoint => ({
    pipeline: 'p',
    phase: 'stream',
    position: { kind: 'postgres', lsn },
    ...(snapshot ? { state: { snapshot } } : {}),
  });
  it('takes a checkpoint at the position of a running snapshot as progress, and one after it as covered', () => {
    const s = new StoredCheckpoint();
    s.set(pgAt('0/100', { tables: [], pending: [{ table: 'public.t', lastKey: ['10'], rows: 10 }], initial: true }));
    // More chunks at the same consistent point, then the end of the snapshot there: both still to apply.
    expect(s.coversCheckpoint(pgAt('0/100', { tables: [], pending: [], initial: true }))).toBe(false);
    expect(s.coversCheckpoint(pgAt('0/100', { tables: ['public.t'], pending: [] }))).toBe(false);
    expect(s.coversCheckpoint(pgAt('0/90'))).toBe(true);
    // Once the end of the snapshot is stored, its replay is covered.
    s.committed(pgAt('0/100', { tables: ['public.t'], pending: [] }));
    expect(s.coversCheckpoint(pgAt('0/100', { tables: ['public.t'], pending: [] }))).toBe(true);
  });
});

describe('StoredCheckpoint while a MySQL incremental snapshot emits chunks at the stream position', () => {
  const mysqlAt = (emitted: number): Checkpoint => ({
    pipeline: 'p',
    phase: 'stream',
    position: { kind: 'mysql', file: 'binlog.000003', pos: 900, gtidSet: '0-1-40' },
    state: { snapshot: { tables: [], pending: [{ table: 'd.t', lastKey: ['10'], rows: 10 }], emitted } },
  });
  it('takes a chunk at the position of the stored checkpoint as progress when it counts more chunks', () => {
    const s = new StoredCheckpoint();
    s.set(mysqlAt(3));
    expect(s.coversCheckpoint(mysqlAt(4))).toBe(false);
    expect(s.coversCheckpoint(mysqlAt(3))).toBe(true);
    expect(s.coversCheckpoint(mysqlAt(2))).toBe(true);
    s.committed(mysqlAt(4));
    expect(s.coversCheckpoint(mysqlAt(4))).toBe(true);
  });
});
