import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { targetTraits } from './config/schema.ts';
import type { TargetConnector } from './core/connector.ts';
import { targetConnector } from './registry.ts';

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(file);
    return entry.name.endsWith('.ts') ? [file] : [];
  });
}

describe('connector registry', () => {
  it('a target holds checkpoints exactly when its connector offers their store', async () => {
    for (const [type, traits] of Object.entries(targetTraits)) {
      const connector: TargetConnector = await targetConnector({ type } as never);
      expect({ type, holds: connector.checkpointStore !== undefined }).toEqual({
        type,
        holds: traits.holdsCheckpoints,
      });
    }
  });

  it('connectors and the core never import the registry (their contract is src/core/connector.ts)', () => {
    const importers = [...sourceFiles('connectors'), ...sourceFiles('src/core')].filter((file) =>
      /from '[./]*\/registry\.ts'/.test(fs.readFileSync(file, 'utf8')),
    );
    expect(importers).toEqual([]);
  });
});
