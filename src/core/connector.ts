import type { BatchConfig } from '../config/batch.ts';
import type { SourceConfig, TargetConfig } from '../config/schema.ts';
import type { Checkpoint } from './checkpoint.ts';
import type { CheckpointStore } from './checkpoint-store.ts';
import type { ConnectorContext, PreflightProblem } from './connector-context.ts';
import type { Source, SourceStatus } from './source.ts';
import type { Target } from './target.ts';

/**
 * The face every connector shows the registry. Each engine builds it from files of the same names in `source/` and
 * `sink/`: the source or target class (`source.ts`, `target.ts`), `preflight.ts`, `teardown.ts`, `status.ts`; the
 * engine's error classifier (`errors.ts`) and identifier quoter (`identifiers.ts`) beside them. A connector that is
 * only a target (Kafka, jsonl) has the files of `sink/` at its top.
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
  /**
   * Present exactly when the target keeps checkpoints with its data (its `TargetTraits.holdsCheckpoints`): a store
   * reading them, for `status` and `teardown` without running.
   */
  checkpointStore?(config: C, ctx: ConnectorContext): CheckpointStore;
}

/**
 * What config loading knows of a target type without loading its connector (which loads its client library). Each
 * target declares it beside its config schema.
 */
export interface TargetTraits {
  /** The target can keep the pipeline's checkpoint in its own database, in the transaction of the data. */
  holdsCheckpoints: boolean;
}

/**
 * Keys a connector still accepts under an earlier name: old name -> current name. Config loading reads the value as
 * the current key and warns, naming it. Each connector declares them beside its config schema.
 */
export type RenamedConfigKeys = Readonly<Record<string, string>>;
