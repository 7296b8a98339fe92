import type { RenamedConfigKeys } from '../core/connector.ts';
import type { ConfigProblem } from '../errors.ts';

/** The renamed keys of each section of a pipeline, by the section's `type`. */
export type RenamedKeysBySection = Record<'source' | 'target', Readonly<Record<string, RenamedConfigKeys>>>;

/**
 * Moves the value of a key given under its earlier name to its current name, in the raw config before it is checked,
 * and returns a warning for each (its path, naming the current key). Both names at once is a problem: which one was
 * meant cannot be told.
 */
export function followRenamedKeys(
  raw: unknown,
  renamed: RenamedKeysBySection,
  problems: ConfigProblem[],
): ConfigProblem[] {
  const warnings: ConfigProblem[] = [];
  const pipelines = (raw as { pipelines?: unknown } | null)?.pipelines;
  if (!Array.isArray(pipelines)) return warnings;
  pipelines.forEach((pipeline, i) => {
    for (const section of ['source', 'target'] as const) {
      const keys = (pipeline as Record<string, unknown> | null)?.[section];
      if (keys === null || typeof keys !== 'object' || Array.isArray(keys)) continue;
      const values = keys as Record<string, unknown>;
      const type = values.type;
      const names = typeof type === 'string' && Object.hasOwn(renamed[section], type) ? renamed[section][type]! : {};
      for (const [old, current] of Object.entries(names)) {
        if (!Object.hasOwn(values, old)) continue;
        const path = `pipelines[${i}].${section}.${old}`;
        const value = values[old];
        delete values[old];
        if (Object.hasOwn(values, current)) {
          problems.push({ path, message: `the old name of ${current}, which is set as well: keep ${current} only` });
          continue;
        }
        values[current] = value;
        warnings.push({ path, message: `renamed ${current}; the old name is still read but will be dropped` });
      }
    }
  });
  return warnings;
}
