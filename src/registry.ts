import path from 'node:path';
import { FileCheckpointStore } from './checkpoint-stores/file-store.ts';
import type { BatchConfig, PipelineConfig, SourceConfig, TargetConfig } from './config/schema.ts';
import type { Checkpoint } from './core/checkpoint.ts';
import type { CheckpointStore } from './core/checkpoint-store.ts';
import type { ConnectorContext, PreflightProblem } from './core/connector-context.ts';
import type { Source, SourceStatus } from './core/source.ts';
import type { Target } from './core/target.ts';

/**
 * Where each connector type lives. Connectors are loaded on first use, so running a PostgreSQL pipeline never loads
 * the MySQL or Kafka client libraries.
 */
export interface SourceConnector<C = SourceConfig> {
  create(config: C, ctx: ConnectorContext, options: { batch: BatchConfig }): Source;
  /** Server and privilege checks for `tributary validate`. */
  preflight?(config: C, ctx: ConnectorContext): Promise<PreflightProblem[]>;
  /** Drops what the source created at the server (slots, publications); returns what was there and was dropped. */
  teardown?(config: C, ctx: ConnectorContext): Promise<string[] | undefined>;
  /** Asks a pipeline to copy a table's rows again while it streams (`tributary snapshot`); says what was done. */
  requestSnapshot?(config: C, ctx: ConnectorContext, request: { table: string; where?: string }): Promise<string>;
  /** Facts for `tributary status` that only the server knows (e.g. WAL retained by the slot). */
  status?(config: C, ctx: ConnectorContext, checkpoint: Checkpoint | null): Promise<SourceStatus>;
}

export interface TargetConnector<C = TargetConfig> {
  create(config: C, ctx: ConnectorContext): Target;
  /** Checks of the target server; `source` lets it check what the source's tables need (e.g. their types). */
  preflight?(config: C, ctx: ConnectorContext, source?: SourceConfig): Promise<PreflightProblem[]>;
  /** A store reading the checkpoints the target keeps with its data, for `status` without running. */
  checkpointStore?(config: C, ctx: ConnectorContext): CheckpointStore;
}

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
  const configured = pipeline.checkpoints;
  if (configured?.type === 'file') return new FileCheckpointStore(path.resolve(configDir, configured.path));
  if (configured?.type === 'postgres') {
    const { postgresCheckpointStore } = await import('../connectors/postgres/index.ts');
    return postgresCheckpointStore(configured.url);
  }
  if (ownStore) return ownStore;
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
