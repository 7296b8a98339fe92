import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MysqlIncrementalSnapshot, mysqlSnapshotStateOf } from './incremental-snapshot.ts';

/** An incremental snapshot that is never run: only its requests and the state checkpoints carry are looked at. */
function idle(): MysqlIncrementalSnapshot {
  return new MysqlIncrementalSnapshot(
    {
      pipeline: 'p',
      logger: pino({ level: 'silent' }),
      chunkRows: 100,
      serverId: 1,
      connect: () => Promise.reject(new Error('not connected')),
      startSnapshot: () => Promise.reject(new Error('not connected')),
      wake: () => undefined,
      describe: () => Promise.resolve(null),
    },
    { tables: ['d.t'], pending: [], emitted: 0 },
  );
}

describe('MySQL incremental snapshot requests', () => {
  it('keeps the retyped columns of a copy through further requests, renames and a checkpoint', () => {
    const s = idle();
    s.request('d.t', undefined, ['a']);
    // A copy for another reason (an added column) and a partial one asked for later: still every row, still `a`.
    s.request('d.t');
    s.request('d.t', 'id > 5', ['b']);
    expect(s.retypedColumns('d.t')).toEqual(['a', 'b']);
    expect(s.snapshotState().pending).toEqual([{ table: 'd.t', lastKey: null, rows: 0, retyped: ['a', 'b'] }]);
    // Renames of one statement are one step (a swap).
    s.renameRetyped('d.t', [
      { from: 'A', to: 'b' },
      { from: 'b', to: 'a' },
    ]);
    expect(s.retypedColumns('d.t')).toEqual(['b', 'a']);
    const restored = mysqlSnapshotStateOf(JSON.parse(JSON.stringify({ snapshot: s.snapshotState() })));
    expect(restored?.pending[0]?.retyped).toEqual(['b', 'a']);
    expect(s.retypedColumns('d.other')).toBeUndefined();
  });
});
