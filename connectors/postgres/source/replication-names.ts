import type { ReplicationNames } from './catalog.ts';
import { defaultReplicationName, type PostgresSourceConfig } from './config.ts';

/** The slot and publications of a pipeline: configured, or named after the pipeline. */
export function replicationNames(config: PostgresSourceConfig, pipeline: string): ReplicationNames {
  const base = defaultReplicationName(pipeline);
  const publication = config.publication_name ?? base;
  return {
    slot: config.slot_name ?? base,
    publication,
    insertOnlyPublication: `${publication}_insert_only`.slice(0, 63),
  };
}
