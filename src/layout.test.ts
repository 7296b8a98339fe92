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
    const face = {
      engine: ['index.ts', 'errors.ts', 'identifiers.ts', 'type-names.ts', 'connection-tls.ts'],
      source: ['index.ts', 'config.ts', 'source.ts', 'preflight.ts', 'teardown.ts', 'status.ts'],
      sink: ['index.ts', 'config.ts', 'target.ts', 'preflight.ts', 'checkpoint-store.ts', 'column-types.ts'],
      sinkDialect: ['type-mapping.ts', 'statements.ts', 'table-sync.ts'],
      targetOnly: ['index.ts', 'config.ts', 'target.ts', 'preflight.ts'],
    };
    const missing: string[] = [];
    const expectFiles = (dir: string, names: string[]) =>
      missing.push(...names.filter((n) => !fs.existsSync(path.join(dir, n))).map((n) => path.join(dir, n)));
    for (const entry of fs.readdirSync('connectors', { withFileTypes: true })) {
      const dir = path.join('connectors', entry.name);
      if (!entry.isDirectory() || !fs.existsSync(path.join(dir, 'index.ts'))) continue; // shared machinery (sql/)
      const source = path.join(dir, 'source');
      const sink = path.join(dir, 'sink');
      if (!fs.existsSync(source) && !fs.existsSync(sink)) {
        expectFiles(dir, face.targetOnly);
        continue;
      }
      expectFiles(dir, face.engine);
      if (fs.existsSync(source)) expectFiles(source, face.source);
      if (fs.existsSync(sink)) expectFiles(sink, [...face.sink, ...face.sinkDialect]);
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
