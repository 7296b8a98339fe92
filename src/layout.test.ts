import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(file);
    return entry.name.endsWith('.ts') ? [file] : [];
  });
}

/** Files the build leaves out by their name (tsconfig.build.json): tests, and the helpers and stand-ins only they use. */
const TEST_ONLY = /\.(test|test-support)\.ts$/;

describe('source layout', () => {
  it('connectors and the core never import the registry (their contract is src/core/connector.ts)', () => {
    const importers = [...sourceFiles('connectors'), ...sourceFiles('src/core')].filter((file) =>
      /from '[./]*\/registry\.ts'/.test(fs.readFileSync(file, 'utf8')),
    );
    expect(importers).toEqual([]);
  });

  it('every connector shows one face: the same file names wherever the concept is the same', () => {
    const has = (dir: string, names: string[]) => names.filter((n) => !fs.existsSync(path.join(dir, n)));
    const missing: string[] = [];
    for (const entry of fs.readdirSync('connectors', { withFileTypes: true })) {
      const dir = path.join('connectors', entry.name);
      if (!entry.isDirectory() || !fs.existsSync(path.join(dir, 'index.ts'))) continue; // shared machinery (sql/)
      const parts = ['source', 'sink'].filter((p) => fs.existsSync(path.join(dir, p)));
      const want: [string, string[]][] =
        parts.length === 0
          ? [[dir, ['index.ts', 'config.ts', 'target.ts', 'preflight.ts']]]
          : [
              [dir, ['index.ts', 'errors.ts', 'identifiers.ts', 'type-names.ts', 'connection-tls.ts']],
              ...(parts.includes('source')
                ? [
                    [
                      path.join(dir, 'source'),
                      ['index.ts', 'config.ts', 'source.ts', 'preflight.ts', 'teardown.ts', 'status.ts'],
                    ] as [string, string[]],
                  ]
                : []),
              ...(parts.includes('sink')
                ? [
                    [
                      path.join(dir, 'sink'),
                      [
                        'index.ts',
                        'config.ts',
                        'target.ts',
                        'preflight.ts',
                        'checkpoint-store.ts',
                        'column-types.ts',
                        'statements.ts',
                        'table-sync.ts',
                      ],
                    ] as [string, string[]],
                  ]
                : []),
            ];
      for (const [d, names] of want) missing.push(...has(d, names).map((n) => path.join(d, n)));
    }
    expect(missing).toEqual([]);
  });

  it('code that ships never imports a test-only file (*.test-support.ts: helpers and stand-ins)', () => {
    const importers = [...sourceFiles('connectors'), ...sourceFiles('src')]
      .filter((file) => !TEST_ONLY.test(file))
      .filter((file) => /from '[^']*\.test-support\.ts'/.test(fs.readFileSync(file, 'utf8')));
    expect(importers).toEqual([]);
  });

  it('a file beside the code is shipped (name.ts), a test (*.test.ts) or test-only (*.test-support.ts), nothing else', () => {
    const named = /^[a-z0-9-]+(\.(?:[a-z0-9-]+\.)*test|\.test-support)?\.ts$/;
    const others = [...sourceFiles('connectors'), ...sourceFiles('src')].filter((f) => !named.test(path.basename(f)));
    expect(others).toEqual([]);
  });

  it('the build leaves out test-only files by the two name patterns, not by a list of names', () => {
    const build = JSON.parse(fs.readFileSync('tsconfig.build.json', 'utf8')) as { exclude: string[] };
    expect(build.exclude).toEqual(['**/*.test.ts', '**/*.test-support.ts']);
  });
});
