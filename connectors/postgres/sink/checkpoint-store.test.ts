import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Checkpoint } from '../../../src/core/checkpoint.ts';
import { errorKind } from '../../../src/errors.ts';
import { type PgServer, startPostgres } from '../../../test/harness/postgres.ts';
import { PostgresCheckpointStore } from './checkpoint-store.ts';

let server: PgServer;
beforeAll(async () => {
  server = await startPostgres({ throwaway: true });
});
afterAll(async () => server?.stop());

const pgCp = (lsn: string, phase: Checkpoint['phase'] = 'stream', state?: Record<string, unknown>): Checkpoint => ({
  pipeline: 'p1',
  phase,
  position: { kind: 'postgres', lsn },
  ...(state ? { state } : {}),
});

describe('PostgresCheckpointStore', () => {
  it('loads what it saved and never moves backwards', async () => {
    const store = new PostgresCheckpointStore(await server.createDatabase('cp_store'));
    try {
      expect(await store.load('p1')).toBeNull();
      await store.save(pgCp('0/100', 'snapshot', { table: 'a', done: 10 }));
      await store.save(pgCp('0/100', 'snapshot', { table: 'a', done: 20 }));
      expect(await store.load('p1')).toEqual(pgCp('0/100', 'snapshot', { table: 'a', done: 20 }));
      await store.save({ ...pgCp('0/100'), sourceTimeMs: 1_700_000_000_123 });
      await store.save(pgCp('0/100', 'snapshot', { table: 'a', done: 30 })); // stream -> snapshot: refused
      expect(await store.load('p1')).toEqual({ ...pgCp('0/100'), sourceTimeMs: 1_700_000_000_123 });
      await store.save(pgCp('00000001/00000000'));
      await store.save(pgCp('0/FFFFFFFF')); // before 1/0: refused
      expect((await store.load('p1'))?.position).toEqual({ kind: 'postgres', lsn: '00000001/00000000' });

      const my = (file: string, pos: number, gtidSet?: string): Checkpoint => ({
        pipeline: 'm1',
        phase: 'stream',
        position: { kind: 'mysql', file, pos, ...(gtidSet ? { gtidSet } : {}) },
      });
      await store.save(my('binlog.000002', 500, '0-1-50'));
      await store.save(my('binlog.000002', 400, '0-1-40'));
      await store.save(my('binlog.000001', 900, '0-1-30'));
      expect((await store.load('m1'))?.position).toEqual(my('binlog.000002', 500, '0-1-50').position);
      await store.save(my('binlog.000003', 4, '0-1-60'));
      expect((await store.load('m1'))?.position).toEqual(my('binlog.000003', 4, '0-1-60').position);
      // After a failover the GTID sets decide, not the other server's binlog file names.
      await store.save(my('a-bin.000001', 400, '0-2-61'));
      expect((await store.load('m1'))?.position).toEqual(my('a-bin.000001', 400, '0-2-61').position);
      await store.save(my('z-bin.000001', 4, '0-1-60'));
      expect((await store.load('m1'))?.position).toEqual(my('a-bin.000001', 400, '0-2-61').position);
      // Without GTID sets: binlog file, then offset.
      await store.save(my('a-bin.000001', 300));
      await store.save(my('a-bin.000001', 500));
      expect((await store.load('m1'))?.position).toEqual(my('a-bin.000001', 500).position);

      await store.clear('p1');
      expect(await store.load('p1')).toBeNull();
      expect(await store.load('m1')).not.toBeNull();
    } finally {
      await store.close();
    }
  });

  it('fails retryably when the server is unreachable', async () => {
    const store = new PostgresCheckpointStore('postgres://postgres@127.0.0.1:1/none', { connectTimeoutMs: 2000 });
    try {
      const err = await store.load('p1').catch((e: unknown) => e);
      expect(errorKind(err)).toBe('retryable');
    } finally {
      await store.close();
    }
  });
});
