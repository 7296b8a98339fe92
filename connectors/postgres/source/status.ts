import type { Checkpoint } from '../../../src/core/checkpoint.ts';
import type { ConnectorContext } from '../../../src/core/connector-context.ts';
import type { SourceStatus } from '../../../src/core/source.ts';
import type { PostgresSourceConfig } from './config.ts';
import { PostgresSource } from './source.ts';

/**
 * What the server knows of a pipeline's slot (WAL it retains for us), for `tributary status` without running: the
 * server's facts only (a source opened just to ask has no buffers of its own to report), and what an operator must
 * act on before the next start.
 */
export async function postgresSourceStatus(
  config: PostgresSourceConfig,
  ctx: ConnectorContext,
  checkpoint: Checkpoint | null,
): Promise<SourceStatus> {
  const status = await new PostgresSource(config, ctx).status();
  const d = status.details ?? {};
  const details = {
    slot: d.slot,
    publications: d.publications,
    slotExists: d.slotExists,
    confirmedFlushLsn: d.confirmedFlushLsn,
    restartLsn: d.restartLsn,
    active: d.active,
    walStatus: d.walStatus,
  };
  const warnings: string[] = [];
  if (checkpoint?.phase === 'stream' && d.slotExists === false) {
    warnings.push(
      `the replication slot ${String(d.slot)} is gone although the pipeline has a streaming checkpoint: changes since it are lost to replication; ` +
        `the next start stops (on_slot_lost: fail) or copies every table again (on_slot_lost: resnapshot)`,
    );
  } else if (d.walStatus === 'lost') {
    warnings.push(
      `the replication slot ${String(d.slot)} has lost WAL it needs (wal_status lost, max_slot_wal_keep_size): the pipeline cannot resume from it; ` +
        'drop the pipeline with tributary teardown and start over, and raise max_slot_wal_keep_size',
    );
  }
  return { retainedBytes: status.retainedBytes, details, warnings };
}
