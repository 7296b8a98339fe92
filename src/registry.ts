import path from 'node:path';
import { FileCheckpointStore } from './checkpoint-stores/file-store.ts';
import type { PipelineConfig, SourceConfig, TargetConfig } from './config/schema.ts';
import type { CheckpointStore } from './core/checkpoint-store.ts';
import type { SourceConnector, TargetConnector } from './core/connector.ts';

/**
 * Where each connector type lives. Connectors are loaded on first use, so running a PostgreSQL pipeline never loads
 * the MySQL or Kafka client libraries. Their contract is in src/core/connector.ts.
 */
const sourceModules: Record<SourceConfig['type'], () => Promise<{ source: SourceConnector<never> }>> = {
  postgres: () => import('../connectors/postgres/index.ts'),
  mysql: () => import('../connectors/mysql/index.ts'),
};

const targetModules: Record<TargetConfig['type'], () => Promise<{ target: TargetConnector<never> }>> = {
  postgres: () => import('../connectors/postgres/index.ts'),
  mysql: () => import('../connectors/mysql/index.ts'),
  jsonl: () => import('../connectors/jsonl/index.ts'),
  kafka: () => import('../connectors/kafka/index.ts'),
};

export async function sourceConnector(config: SourceConfig): Promise<SourceConnector> {
  return (await sourceModules[config.type]()).source as SourceConnector;
}

export async function targetConnector(config: TargetConfig): Promise<TargetConnector> {
  return (await targetModules[config.type]()).target as TargetConnector;
}

/**
 * The checkpoint store of a pipeline: the configured one, else the target's own (exactly-once effect) when it has
 * one, else a file under ./state next to the config.
 */
export async function checkpointStoreFor(
  pipeline: PipelineConfig,
  configDir: string,
  ownStore: CheckpointStore | undefined,
): Promise<CheckpointStore> {
  return (await separateCheckpointStore(pipeline, configDir, ownStore !== undefined)) ?? ownStore!;
}

/**
 * The store a pipeline saves checkpoints to itself: the configured one, else, unless the target keeps them with its
 * data (undefined then), a file under ./state next to the config.
 */
export async function separateCheckpointStore(
  pipeline: PipelineConfig,
  configDir: string,
  targetHoldsCheckpoints: boolean,
): Promise<CheckpointStore | undefined> {
  const configured = pipeline.checkpoints;
  if (configured?.type === 'file') return new FileCheckpointStore(path.resolve(configDir, configured.path));
  if (configured?.type === 'postgres') {
    const { postgresCheckpointStore } = await import('../connectors/postgres/index.ts');
    return postgresCheckpointStore(configured.url);
  }
  if (targetHoldsCheckpoints) return undefined;
  return new FileCheckpointStore(defaultCheckpointFile(pipeline.name, configDir));
}

export function defaultCheckpointFile(pipeline: string, configDir: string): string {
  return path.resolve(configDir, 'state', `${pipeline}.json`);
}

/** Loads the connectors a pipeline needs. */
export async function loadConnectors(
  pipeline: PipelineConfig,
): Promise<{ source: SourceConnector; target: TargetConnector }> {
  const [source, target] = await Promise.all([sourceConnector(pipeline.source), targetConnector(pipeline.target)]);
  return { source, target };
}
