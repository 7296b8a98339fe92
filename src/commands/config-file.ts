import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.ts';

/** Where a command finds its config: `-c FILE`, else $TRIBUTARY_CONFIG, else ./tributary.yaml (or .yml). */
export function configFile(given: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (given) return given;
  if (env.TRIBUTARY_CONFIG) return env.TRIBUTARY_CONFIG;
  for (const name of ['tributary.yaml', 'tributary.yml']) {
    if (fs.existsSync(name)) return name;
  }
  throw new ConfigError(path.resolve('tributary.yaml'), [
    {
      path: '',
      message: 'no config file: pass -c FILE, set TRIBUTARY_CONFIG, or create tributary.yaml in this directory',
    },
  ]);
}
