import fs from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import { interpolate } from './interpolate.ts';
import { type Config, configSchema } from './schema.ts';

export interface LoadedConfig {
  file: string;
  config: Config;
}

/** Reads, interpolates and validates a config file. Throws a ConfigError listing every problem at once. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new ConfigError(file, [{ path: '', message: `cannot read the config file: ${reason}` }]);
  }
  return parseConfig(text, file, env);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const document = parseDocument(text, { prettyErrors: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      file,
      document.errors.map((e) => ({
        path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '',
        message: e.message.split('\n')[0] ?? e.message,
      })),
    );
  }
  const problems: ConfigProblem[] = [];
  const raw = interpolate(document.toJS(), env, problems);
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) problems.push(...parsed.error.issues.flatMap(describeIssue));
  if (parsed.success) problems.push(...crossChecks(parsed.data, file));
  if (problems.length > 0) throw new ConfigError(file, problems);
  return { file, config: parsed.data! };
}

/** Checks no single key can make: unique names, distinct checkpoint files, a target that can hold checkpoints. */
function crossChecks(config: Config, file: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const names = new Map<string, number>();
  const files = new Map<string, number>();
  config.pipelines.forEach((p, i) => {
    const seen = names.get(p.name);
    if (seen !== undefined)
      problems.push({ path: `pipelines[${i}].name`, message: `"${p.name}" is already the name of pipelines[${seen}]` });
    names.set(p.name, i);
    if (p.checkpoints?.type === 'file') {
      const resolved = path.resolve(path.dirname(file), p.checkpoints.path);
      const other = files.get(resolved);
      if (other !== undefined)
        problems.push({
          path: `pipelines[${i}].checkpoints.path`,
          message: `pipelines[${other}] already keeps its checkpoint in this file`,
        });
      files.set(resolved, i);
    }
    if (p.checkpoints?.type === 'target' && p.target.type !== 'postgres' && p.target.type !== 'mysql') {
      problems.push({
        path: `pipelines[${i}].checkpoints.type`,
        message: `a ${p.target.type} target cannot hold checkpoints: use type file or postgres`,
      });
    }
  });
  return problems;
}

export function formatPath(segments: readonly PropertyKey[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += out ? `.${String(s)}` : String(s);
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): ConfigProblem[] {
  const at = formatPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({
        path: at ? `${at}.${key}` : key,
        message: 'unknown key (check the spelling; docs/configuration.md lists every key)',
      }));
    case 'invalid_union': {
      const options = (issue as { options?: unknown[] }).options;
      if (options) return [{ path: at, message: `expected one of: ${options.join(', ')}` }];
      return [{ path: at, message: issue.message }];
    }
    case 'invalid_type':
      return [
        {
          path: at,
          message:
            issue.input === undefined
              ? `required (expected ${issue.expected})`
              : `expected ${issue.expected}, got ${typeName(issue.input)}`,
        },
      ];
    case 'invalid_value':
      return [{ path: at, message: `expected one of: ${issue.values.map((v) => JSON.stringify(v)).join(', ')}` }];
    default:
      return [{ path: at, message: issue.message }];
  }
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a mapping' : `${typeof value} ${JSON.stringify(value)}`;
}
