import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './load.ts';
import { configurationReference } from './reference.ts';

describe('configuration reference', () => {
  it('docs/configuration.md is generated from the current schema (run npm run docs:config)', () => {
    expect(fs.readFileSync('docs/configuration.md', 'utf8')).toBe(configurationReference());
  });

  it('every key in the schema has a description', () => {
    const undocumented = configurationReference()
      .split('\n')
      .filter((line) => line.startsWith('| `') && line.trimEnd().endsWith('|  |'));
    expect(undocumented).toEqual([]);
  });

  const examples = fs.readdirSync('config').filter((f) => /\.ya?ml$/.test(f));
  it.each(examples)('config/%s passes validation', (file) => {
    expect(() => loadConfig(path.join('config', file), { ...process.env })).not.toThrow();
  });
});

describe('configuration reference spelling', () => {
  it('shows values YAML would not read as strings in quotes, as they must be written', () => {
    const line = configurationReference()
      .split('\n')
      .find((l) => l.includes('`pipelines[].target.float_nonfinite`'));
    expect(line).toContain('`"null"`');
  });
});
