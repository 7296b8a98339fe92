import fs from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import { interpolate } from './interpolate.ts';
import { knownKeys } from './reference.ts';
import { followRenamedKeys } from './renamed-keys.ts';
import { type Config, configSchema, renamedKeys, targetTraits } from './schema.ts';

export interface LoadedConfig {
  file: string;
  config: Config;
  /** Keys given under an earlier name (read as their current one): each path, naming the current key. */
  warnings: ConfigProblem[];
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
  if (document.errors.length > 0) throw new ConfigError(file, document.errors.map(yamlProblem));
  const problems: ConfigProblem[] = [];
  const raw = interpolate(document.toJS(), env, problems);
  const warnings = followRenamedKeys(raw, renamedKeys, problems);
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) problems.push(...parsed.error.issues.flatMap((issue) => describeIssue(issue, raw)));
  if (parsed.success) problems.push(...crossChecks(parsed.data, file));
  if (problems.length > 0) throw new ConfigError(file, problems);
  return { file, config: resolvePaths(parsed.data!, path.dirname(path.resolve(file))), warnings };
}

/** A YAML syntax error: where (line, column) and what, with the offending line and a caret under the spot. */
function yamlProblem(error: {
  message: string;
  linePos?: [{ line: number; col: number }, ...unknown[]];
}): ConfigProblem {
  const [first = '', ...frame] = error.message.split('\n');
  const what = first.replace(/ at line \d+, column \d+:?$/, '');
  const context = frame.filter((line) => line.trim() !== '').map((line) => `    ${line}`);
  return {
    path: error.linePos ? `line ${error.linePos[0].line}, column ${error.linePos[0].col}` : '',
    message: [what, ...context].join('\n'),
  };
}

/** Relative file paths in the config mean relative to the config file, wherever the command runs. */
function resolvePaths(config: Config, configDir: string): Config {
  for (const pipeline of config.pipelines) {
    const target = pipeline.target;
    if (target.type === 'jsonl' && target.path !== '-') target.path = path.resolve(configDir, target.path);
  }
  return config;
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
    if (p.checkpoints?.type === 'target' && !targetTraits[p.target.type].holdsCheckpoints) {
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

/** The value at a key path of the raw config, and whether the key is there at all. */
function valueAt(raw: unknown, segments: readonly PropertyKey[]): { present: boolean; value?: unknown } {
  let current: unknown = raw;
  for (const s of segments) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, s)) return { present: false };
    current = (current as Record<PropertyKey, unknown>)[s];
  }
  return { present: true, value: current };
}

/** The valid key nearest in spelling to an unknown one, among the keys its mapping accepts. */
function nearestKey(raw: unknown, parent: readonly PropertyKey[], key: string): string | undefined {
  const parentPath = parent
    .map((s) => (typeof s === 'number' ? '[]' : `.${String(s)}`))
    .join('')
    .replace(/^\./, '');
  const type = (valueAt(raw, parent).value as { type?: unknown } | undefined)?.type;
  const siblings = knownKeys()
    .filter((k) => !k.variant || k.variant === `type: ${String(type)}`)
    .map((k) => k.path)
    .filter((p) => p.startsWith(parentPath ? `${parentPath}.` : '') && !p.slice(parentPath.length + 1).includes('.'))
    .map((p) => p.slice(parentPath ? parentPath.length + 1 : 0))
    .filter((k) => !k.includes('['));
  let best: { key: string; distance: number } | undefined;
  for (const candidate of new Set(siblings)) {
    const distance = editDistance(key.toLowerCase(), candidate);
    if (!best || distance < best.distance) best = { key: candidate, distance };
  }
  return best && best.distance <= Math.max(2, Math.floor(key.length / 3)) ? best.key : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): ConfigProblem[] {
  const at = formatPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const suggestion = nearestKey(raw, issue.path, key);
        return {
          path: at ? `${at}.${key}` : key,
          message: suggestion
            ? `unknown key: did you mean ${suggestion}?`
            : 'unknown key (check the spelling; docs/configuration.md lists every key)',
        };
      });
    case 'invalid_union': {
      const options = (issue as { options?: unknown[] }).options;
      if (options) return [{ path: at, message: `expected one of: ${options.join(', ')}` }];
      return [{ path: at, message: issue.message }];
    }
    case 'invalid_type': {
      const given = valueAt(raw, issue.path);
      const expected =
        issue.expected === 'array' ? 'a list' : issue.expected === 'object' ? 'a mapping' : issue.expected;
      return [
        {
          path: at,
          message: given.present
            ? `expected ${expected}, got ${typeName(given.value)}`
            : `required (expected ${expected})`,
        },
      ];
    }
    case 'invalid_value': {
      const given = valueAt(raw, issue.path);
      const quoteNull =
        given.present && given.value === null && issue.values.includes('null')
          ? ' (write "null" in quotes: a bare null is YAML for "no value")'
          : '';
      return [
        {
          path: at,
          message: `expected one of: ${issue.values.map((v) => JSON.stringify(v)).join(', ')}${given.present ? `, got ${typeName(given.value)}` : ''}${quoteNull}`,
        },
      ];
    }
    default:
      return [{ path: at, message: issue.message }];
  }
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a mapping' : `${typeof value} ${JSON.stringify(value)}`;
}
