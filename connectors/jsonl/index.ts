import { existsSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import type { TargetConnector } from '../../src/core/connector.ts';
import type { JsonlTargetConfig } from './config.ts';
import { JsonlTarget } from './jsonl-target.ts';

export { JsonlTarget };

export const target: TargetConnector<JsonlTargetConfig> = {
  create: (config, ctx) => new JsonlTarget(config, ctx),
  async preflight(config) {
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
  },
};
