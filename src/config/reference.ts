import { parse } from 'yaml';
import type { z } from 'zod';
import { configSchema, renamedKeys } from './schema.ts';

/**
 * Generates docs/configuration.md from the config schema itself, so the reference cannot drift from what the
 * loader accepts (a test compares the file with this output; `npm run docs:config` rewrites it).
 */

interface Row {
  key: string;
  type: string;
  default: string;
  meaning: string;
}

type Def = { type: string; [k: string]: unknown };
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** Strips optional/default wrappers, collecting the default and whether the key may be left out. */
function unwrap(schema: z.ZodType): {
  inner: z.ZodType;
  optional: boolean;
  defaultValue?: unknown;
  description?: string;
} {
  let current = schema;
  let optional = false;
  let defaultValue: unknown;
  let description = schema.description;
  for (;;) {
    const def = defOf(current);
    if (def.type === 'optional') optional = true;
    else if (def.type === 'default') {
      optional = true;
      defaultValue = typeof def.defaultValue === 'function' ? (def.defaultValue as () => unknown)() : def.defaultValue;
    } else break;
    current = def.innerType as z.ZodType;
    description ??= current.description;
  }
  return { inner: current, optional, defaultValue, description };
}

/** A string as it must be written in YAML to stay a string: `"null"`, `"on"`, `"1"` quoted, others bare. */
function yamlString(value: string): string {
  return parse(value) === value ? value : JSON.stringify(value);
}

function typeName(schema: z.ZodType): string {
  const def = defOf(schema);
  switch (def.type) {
    case 'string':
      return 'string';
    case 'number':
      return (def as { checks?: { _zod: { def: { check: string; format?: string } } }[] }).checks?.some(
        (c) => c._zod.def.format === 'safeint',
      )
        ? 'integer'
        : 'number';
    case 'boolean':
      return 'boolean';
    case 'enum':
      return Object.values(def.entries as Record<string, string>)
        .map((v) => `\`${yamlString(v)}\``)
        .join(' \\| ');
    case 'literal':
      return (def.values as unknown[]).map((v) => `\`${String(v)}\``).join(' \\| ');
    case 'array':
      return `list of ${typeName(unwrap(def.element as z.ZodType).inner)}`;
    case 'record':
      return `map of ${typeName(unwrap(def.valueType as z.ZodType).inner)}`;
    case 'object':
      return 'mapping';
    case 'union':
      return (def.options as z.ZodType[]).map((o) => typeName(o)).join(' or ');
    default:
      return def.type;
  }
}

function walk(schema: z.ZodType, prefix: string, rows: Row[]): void {
  const { inner } = unwrap(schema);
  const def = defOf(inner);
  if (def.type === 'array') {
    walk(def.element as z.ZodType, `${prefix}[]`, rows);
    return;
  }
  if (def.type === 'union' && def.discriminator) {
    const key = String(def.discriminator);
    const shapes = (def.options as z.ZodType[]).map(
      (o) => (o as unknown as { shape: Record<string, z.ZodType> }).shape,
    );
    const tags = shapes.map((shape) => String((defOf(unwrap(shape[key]!).inner).values as unknown[])[0]));
    rows.push({
      key: `\`${prefix}.${key}\``,
      type: tags.map((t) => `\`${t}\``).join(' \\| '),
      default: 'required',
      meaning: `Which kind; the keys marked (${key}: ...) below apply to that kind only.`,
    });
    shapes.forEach((shape, i) => {
      walkObject(shape, prefix, rows, `${key}: ${tags[i]}`, key);
    });
    return;
  }
  if (def.type === 'object') walkObject((inner as unknown as { shape: Record<string, z.ZodType> }).shape, prefix, rows);
}

function walkObject(
  shape: Record<string, z.ZodType>,
  prefix: string,
  rows: Row[],
  variant?: string,
  discriminator?: string,
): void {
  for (const [key, value] of Object.entries(shape)) {
    if (key === discriminator) continue;
    const path = prefix ? `${prefix}.${key}` : key;
    const { inner, optional, defaultValue, description } = unwrap(value);
    const innerDef = defOf(inner);
    const isContainer =
      innerDef.type === 'object' ||
      (innerDef.type === 'union' && innerDef.discriminator) ||
      (innerDef.type === 'array' &&
        ['object', 'union'].includes(defOf(unwrap(innerDef.element as z.ZodType).inner).type));
    const shownDefault =
      defaultValue === undefined || isContainer
        ? optional
          ? '—'
          : 'required'
        : `\`${typeof defaultValue === 'string' ? defaultValue : JSON.stringify(defaultValue)}\``;
    rows.push({
      key: `\`${path}\`${variant ? ` (${variant})` : ''}`,
      type: isContainer ? (innerDef.type === 'array' ? 'list' : 'mapping') : typeName(inner),
      default: shownDefault,
      meaning: (description ?? '').replaceAll('|', '\\|').replaceAll('\n', ' '),
    });
    if (isContainer) walk(inner, path, rows);
  }
}

/** Every key the schema accepts: its path (`pipelines[].source.url`) and the variant it belongs to (`type: postgres`). */
export function knownKeys(): { path: string; variant?: string }[] {
  const rows: Row[] = [];
  walk(configSchema, '', rows);
  return rows.map((r) => {
    const m = /^`([^`]+)`(?: \((.+)\))?$/.exec(r.key);
    return { path: m?.[1] ?? r.key, variant: m?.[2] };
  });
}

export function configurationReference(): string {
  const rows: Row[] = [];
  walk(configSchema, '', rows);
  return [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run docs:config`; a test fails when this file is stale. -->',
    '',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: documents the interpolation syntax
    'A config file is YAML. Any string may use `${VAR}` or `${VAR:-default}` to read the environment (`$${` is a',
    "literal `${`). Unknown keys are errors. Relative paths are resolved against the config file's directory.",
    'Keys marked with a variant, e.g. `(type: postgres)`, apply only to that type.',
    '',
    '| key | type | default | meaning |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.key} | ${r.type} | ${r.default} | ${r.meaning} |`),
    '',
    '## Keys under an earlier name',
    '',
    'Still read as the key that replaced them; loading the config warns once for each, naming the current key.',
    'Setting both names is an error.',
    '',
    '| earlier key | current key |',
    '|---|---|',
    ...(['source', 'target'] as const).flatMap((section) =>
      Object.entries(renamedKeys[section]).flatMap(([type, keys]) =>
        Object.entries(keys).map(
          ([old, current]) => `| \`pipelines[].${section}.${old}\` (type: ${type}) | \`${current}\` |`,
        ),
      ),
    ),
    '',
  ].join('\n');
}
