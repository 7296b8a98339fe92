import type { CheckpointStore } from '../../src/core/checkpoint-store.ts';
import { PostgresCheckpointStore } from './sink/checkpoint-store.ts';

/** The PostgreSQL connector as the registry sees it: source, target and checkpoint store. */
export { target } from './sink/index.ts';
export { source } from './source/index.ts';

export function postgresCheckpointStore(url: string): CheckpointStore {
  return new PostgresCheckpointStore(url);
}
