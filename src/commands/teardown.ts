import path from 'node:path';
import { TributaryError } from '../errors.ts';
import { ExitCode } from '../exit-codes.ts';
import { createLogger } from '../observability/logger.ts';
import { checkpointStoreFor, loadConnectors } from '../registry.ts';
import { loadCommandConfig } from './command-config.ts';
import { liveStates } from './live-status.ts';

/**
 * `tributary teardown`: drops the slots and publications a pipeline created, and its checkpoint. Without --yes it
 * only says what it would do: after a teardown the next run starts over with a new snapshot.
 */
export async function teardownCommand(file: string, options: { pipeline?: string; yes: boolean }): Promise<number> {
  const { config } = loadCommandConfig(file);
  const pipelines = config.pipelines.filter((p) => !options.pipeline || p.name === options.pipeline);
  if (pipelines.length === 0) {
    throw new TributaryError('operator', `no pipeline named "${options.pipeline}" in ${file}`, {
      hint: `Pipelines: ${config.pipelines.map((p) => p.name).join(', ')}`,
    });
  }
  if (!options.yes) {
    for (const p of pipelines) {
      process.stdout.write(
        `would drop the replication state of ${p.name} at its ${p.source.type} source and its checkpoint\n`,
      );
    }
    process.stdout.write('run again with --yes to do it (the next run re-snapshots)\n');
    return ExitCode.ok;
  }
  const live = config.http ? await liveStates(config.http.listen, config.http.bearer_token) : undefined;
  for (const pipeline of pipelines) {
    const state = live?.find((s) => s.name === pipeline.name);
    if (state && state.status !== 'failed' && state.status !== 'stopped') {
      throw new TributaryError(
        'operator',
        `pipeline ${pipeline.name} is running (${state.status}, per http://${config.http!.listen}/status)`,
        {
          hint: 'Stop it first (SIGTERM to tributary run), then run teardown again.',
        },
      );
    }
  }
  const logger = createLogger({ level: 'warn' });
  for (const pipeline of pipelines) {
    const ctx = { pipeline: pipeline.name, logger };
    const { source, target } = await loadConnectors(pipeline);
    const dropped = [...((await source.teardown?.(pipeline.source, ctx)) ?? [])];
    const store = await checkpointStoreFor(
      pipeline,
      path.dirname(path.resolve(file)),
      target.checkpointStore?.(pipeline.target, ctx),
    );
    try {
      const checkpoint = await store.load(pipeline.name).catch(() => null);
      await store.clear?.(pipeline.name);
      if (checkpoint) dropped.push(`checkpoint (${checkpoint.phase} phase)`);
    } finally {
      await store.close?.();
    }
    process.stdout.write(
      dropped.length ? `${pipeline.name}: dropped ${dropped.join(', ')}\n` : `${pipeline.name}: nothing to drop\n`,
    );
  }
  return ExitCode.ok;
}
