/** `validate` check of a jsonl target: the file's directory (or the nearest one that exists) is writable. */
import { existsSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import type { PreflightProblem } from '../../src/core/connector-context.ts';
import type { JsonlTargetConfig } from './config.ts';

export async function preflightJsonlTarget(config: JsonlTargetConfig): Promise<PreflightProblem[]> {
  if (config.path === '-') return [];
  // The target creates missing directories: check the nearest one that exists.
  let dir = path.dirname(path.resolve(config.path));
  while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  try {
    await access(dir, constants.W_OK);
    return [];
  } catch {
    return [
      {
        message: `jsonl target: directory ${dir} is not writable`,
        hint: 'Create the directory or choose another `path`.',
      },
    ];
  }
}
