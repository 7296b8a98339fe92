import { describe, expect, it } from 'vitest';
import { targetTraits } from './config/schema.ts';
import type { TargetConnector } from './core/connector.ts';
import { targetConnector } from './registry.ts';

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
});
