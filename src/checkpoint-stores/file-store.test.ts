import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Checkpoint } from '../core/checkpoint.ts';
import { TributaryError } from '../errors.ts';
import { FileCheckpointStore } from './file-store.ts';

const cp = (lsn: string, phase: Checkpoint['phase'] = 'stream'): Checkpoint => ({
  pipeline: 'p',
  phase,
  position: { kind: 'postgres', lsn },
});
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-store-'));

describe('FileCheckpointStore', () => {
  it('saves atomically, loads back, leaves no temp file, and never moves backwards', async () => {
    const dir = tempDir();
    const store = new FileCheckpointStore(path.join(dir, 'state', 'p.json'));
    expect(await store.load('p')).toBeNull();
    await store.save(cp('0/20'));
    await store.save(cp('0/10'));
    expect(await store.load('p')).toEqual(cp('0/20'));
    await store.save(cp('0/30', 'snapshot'));
    expect(await store.load('p')).toEqual(cp('0/20'));
    await store.save(cp('1/0'));
    expect(await store.load('p')).toEqual(cp('1/0'));
    expect(fs.readdirSync(path.join(dir, 'state'))).toEqual(['p.json']);
  });

  it('orders MySQL checkpoints by GTID set when both have one (the binlog files of another server mean nothing)', async () => {
    const store = new FileCheckpointStore(path.join(tempDir(), 'p.json'));
    const my = (file: string, pos: number, gtidSet: string): Checkpoint => ({
      pipeline: 'p',
      phase: 'stream',
      position: { kind: 'mysql', file, pos, gtidSet },
    });
    await store.save(my('mariadb-bin.000040', 9000, '0-1-100'));
    // After a failover: the new primary's first transaction, in files that sort before the old primary's.
    await store.save(my('a-bin.000001', 400, '0-2-101'));
    expect(await store.load('p')).toEqual(my('a-bin.000001', 400, '0-2-101'));
    // A late save of the old primary's: covered, though its file sorts after.
    await store.save(my('mariadb-bin.000041', 4, '0-1-100'));
    expect(await store.load('p')).toEqual(my('a-bin.000001', 400, '0-2-101'));
  });

  it('an unwritable location is an operator error that names the file and says nothing was acknowledged', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'not-a-dir'), '');
    const file = path.join(dir, 'not-a-dir', 'p.json');
    const error = await new FileCheckpointStore(file).save(cp('0/1')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TributaryError);
    expect((error as TributaryError).kind).toBe('operator');
    expect((error as TributaryError).message).toContain(file);
    expect((error as TributaryError).hint).toContain('Nothing was acknowledged');
  });

  it('refuses a file of another pipeline and a corrupt file with a clear error', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'p.json');
    await new FileCheckpointStore(file).save(cp('0/1'));
    await expect(new FileCheckpointStore(file).load('other')).rejects.toThrow('belongs to pipeline "p"');
    fs.writeFileSync(file, '{"pipeline": "p", ');
    await expect(new FileCheckpointStore(file).load('p')).rejects.toThrow('not valid JSON');
  });
});
