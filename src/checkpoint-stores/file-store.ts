import fs from 'node:fs/promises';
import path from 'node:path';
import { isBackwards } from '../checkpoint-order.ts';
import type { Checkpoint } from '../core/checkpoint.ts';
import type { CheckpointStore } from '../core/checkpoint-store.ts';
import { TributaryError } from '../errors.ts';

/**
 * A checkpoint in a JSON file that survives a crash at any instant: write a temp file, fsync it, rename it over the
 * old one, fsync the directory. A reader sees either the old or the new checkpoint, never a torn one.
 */
export class FileCheckpointStore implements CheckpointStore {
  constructor(private readonly file: string) {}

  async load(pipeline: string): Promise<Checkpoint | null> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new TributaryError('operator', `cannot read the checkpoint file ${this.file}: ${(err as Error).message}`, {
        hint: 'Check the file permissions, or point checkpoints.path elsewhere.',
        cause: err,
      });
    }
    let checkpoint: Checkpoint;
    try {
      checkpoint = JSON.parse(text) as Checkpoint;
    } catch (err) {
      throw new TributaryError('operator', `the checkpoint file ${this.file} is not valid JSON`, {
        hint: 'It was not written by Tributary, or was edited by hand. Restore it, or remove it to start over (this re-snapshots).',
        cause: err,
      });
    }
    if (checkpoint.pipeline !== pipeline) {
      throw new TributaryError(
        'operator',
        `the checkpoint file ${this.file} belongs to pipeline "${checkpoint.pipeline}", not "${pipeline}"`,
        { hint: 'Give each pipeline its own checkpoints.path.' },
      );
    }
    return checkpoint;
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    const dir = path.dirname(this.file);
    const temp = `${this.file}.${process.pid}.tmp`;
    try {
      const current = await this.load(checkpoint.pipeline);
      if (current && isBackwards(current, checkpoint)) return;
      await fs.mkdir(dir, { recursive: true });
      const handle = await fs.open(temp, 'w', 0o600);
      try {
        await handle.writeFile(`${JSON.stringify(checkpoint, null, 2)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(temp, this.file);
      const dirHandle = await fs.open(dir, 'r');
      try {
        await dirHandle.sync();
      } finally {
        await dirHandle.close();
      }
    } catch (err) {
      await fs.rm(temp, { force: true }).catch(() => undefined);
      const reason = err instanceof TributaryError ? `${err.message}` : (err as Error).message;
      throw new TributaryError('operator', `cannot save the checkpoint to ${this.file}: ${reason}`, {
        hint: 'Nothing was acknowledged to the source. Free disk space or fix the permissions of the directory; the pipeline resumes from its last saved checkpoint.',
        cause: err,
      });
    }
  }

  async clear(): Promise<void> {
    await fs.rm(this.file, { force: true });
  }
}
