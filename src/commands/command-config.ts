import { type LoadedConfig, loadConfig } from '../config/load.ts';

/**
 * The config a command works from, each of its warnings (a key under its earlier name) said once on stderr before
 * the command's own output. `run` logs them among its log lines instead.
 */
export function loadCommandConfig(file: string): LoadedConfig {
  const loaded = loadConfig(file);
  for (const w of loaded.warnings) process.stderr.write(`warning: ${loaded.file}: ${w.path}: ${w.message}\n`);
  return loaded;
}
