import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * `npm run test:unit` runs the tests that need no server, and all of them. Its own command line, with `list` for
 * `run`, tells which files it selects; each file's text tells whether it reaches the test harness (which starts
 * servers), directly or through a test-only helper beside it.
 */
describe('npm run test:unit', () => {
  const script = (JSON.parse(fs.readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts[
    'test:unit'
  ]!;

  function selected(): { file: string; projectName: string }[] {
    const args = script.split(/\s+/);
    expect(args.slice(0, 2)).toEqual(['vitest', 'run']);
    const out = execFileSync(
      path.resolve('node_modules/.bin/vitest'),
      ['list', ...args.slice(2), '--filesOnly', '--json'],
      { encoding: 'utf8', env: { ...process.env, CI: '1' } },
    );
    return (JSON.parse(out) as { file: string; projectName: string }[]).map((f) => ({
      ...f,
      file: path.relative(process.cwd(), f.file).split(path.sep).join('/'),
    }));
  }

  function reachesHarness(file: string): boolean {
    const text = fs.readFileSync(file, 'utf8');
    if (/harness\//.test(text)) return true;
    return [...text.matchAll(/from '(\.[^']*\.test-support\.ts)'/g)].some((m) =>
      reachesHarness(path.join(path.dirname(file), m[1]!)),
    );
  }

  function testsBesideCode(): string[] {
    const found: string[] = [];
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (entry.name.endsWith('.test.ts')) found.push(file.split(path.sep).join('/'));
      }
    };
    for (const root of ['src', 'connectors']) walk(root);
    return found;
  }

  it('selects every test beside the code that needs no server, and no other', { timeout: 60_000 }, () => {
    const files = selected();
    expect(new Set(files.map((f) => f.projectName))).toEqual(new Set(['unit']));
    const names = files.map((f) => f.file).sort();
    const serverless = testsBesideCode()
      .filter((f) => !reachesHarness(f) && !/\.integration\.test\.ts$/.test(f))
      .sort();
    expect(serverless.length).toBeGreaterThan(30);
    expect(names).toEqual(serverless);
  });
});
