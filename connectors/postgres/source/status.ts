import type { Checkpoint } from '../../../src/core/checkpoint.ts';
import type { ConnectorContext } from '../../../src/core/connector-context.ts';
import type { SourceStatus } from '../../../src/core/source.ts';
import type { PostgresSourceConfig } from './config.ts';
import { PostgresSource } from './source.ts';

/** What the server knows of a pipeline's slot (WAL it retains for us), for `tributary status` without running. */
export function postgresSourceStatus(
  config: PostgresSourceConfig,
  ctx: ConnectorContext,
  _checkpoint: Checkpoint | null,
): Promise<SourceStatus> {
  return new PostgresSource(config, ctx).status();
}
