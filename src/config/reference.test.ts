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
  it.each(examples)('config/%s passes validation, with no key under an earlier name', (file) => {
    expect(loadConfig(path.join('config', file), { ...process.env }).warnings).toEqual([]);
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

describe('settings whose value is the word null', () => {
  /** Keys the reference lists with the value `"null"`: YAML reads a bare null as no value, which the schema refuses. */
  const keys = configurationReference()
    .split('\n')
    .filter((l) => l.includes('`"null"`'))
    .map((l) => /^\| `[^`]*\.([a-z_]+)`/.exec(l)?.[1])
    .filter((k): k is string => !!k);

  /** Everything an operator reads: hints in the code that ships, the docs, the READMEs, the example configs. */
  function shippedTexts(): string[] {
    const files: string[] = ['README.md'];
    const walk = (dir: string, keep: (f: string) => boolean) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file, keep);
        else if (keep(entry.name)) files.push(file);
      }
    };
    const shipped = (f: string) => /\.(ts|md)$/.test(f) && !/\.(test|test-support)\.ts$/.test(f);
    for (const dir of ['src', 'connectors', 'docs']) walk(dir, shipped);
    walk('config', (f) => /\.ya?ml$/.test(f));
    return files;
  }

  it('are found in the reference', () => {
    expect(keys).toEqual(expect.arrayContaining(['float_nonfinite', 'date_out_of_range', 'mysql_zero_dates']));
  });

  it('every hint, doc and example writes the value quoted ("null"), never as YAML null', () => {
    const bare = new RegExp(`\\b(${keys.join('|')}):\\s*(?:\\w+\\s*#\\s*or\\s+)?null\\b`);
    const found = shippedTexts().flatMap((file) =>
      fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .map((line, i) => ({ at: `${file}:${i + 1}`, line }))
        .filter(({ line }) => bare.test(line))
        .map(({ at, line }) => `${at}: ${line.trim()}`),
    );
    expect(found).toEqual([]);
  });
});
