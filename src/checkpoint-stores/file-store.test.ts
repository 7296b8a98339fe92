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
