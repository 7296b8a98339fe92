import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Speed and memory goals live in `npm run bench`, where a baseline is measured in the same run; a test that only
 * times something (no assertion) passes whatever it measures. Every test file asserts, and none is a benchmark.
 */
describe('the test suite', () => {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== 'node_modules') walk(file);
      else if (entry.name.endsWith('.test.ts')) files.push(file.split(path.sep).join('/'));
    }
  };
  for (const root of ['src', 'connectors', 'test']) walk(root);

  it('has an assertion in every test file', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files.filter((f) => !/\bexpect[.(]/.test(fs.readFileSync(f, 'utf8')))).toEqual([]);
  });

  it('keeps benchmarks out of it (they belong to npm run bench)', () => {
    expect(files.filter((f) => /bench/i.test(path.basename(f)))).toEqual([]);
  });
});
