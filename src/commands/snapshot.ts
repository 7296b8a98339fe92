import { TributaryError } from '../errors.ts';
import { ExitCode } from '../exit-codes.ts';
import { createLogger } from '../observability/logger.ts';
import { sourceConnector } from '../registry.ts';
import { loadCommandConfig } from './command-config.ts';

/**
 * `tributary snapshot`: asks a pipeline to copy one table again while it keeps streaming. The request goes to the
 * source database, where the pipeline reads it in order with its changes (it need not be running right now).
 */
export async function snapshotCommand(
  file: string,
  options: { pipeline: string; table: string; where?: string },
): Promise<number> {
  const { config } = loadCommandConfig(file);
  const pipeline = config.pipelines.find((p) => p.name === options.pipeline);
  if (!pipeline) {
    throw new TributaryError('operator', `no pipeline named "${options.pipeline}" in ${file}`, {
      hint: `Pipelines: ${config.pipelines.map((p) => p.name).join(', ')}`,
    });
  }
  const source = await sourceConnector(pipeline.source);
  if (!source.requestSnapshot) {
    throw new TributaryError(
      'operator',
      `a ${pipeline.source.type} source cannot re-snapshot a table while streaming`,
      {
        hint: 'On-demand re-snapshots are available for PostgreSQL and MySQL/MariaDB sources; see docs/snapshots.md.',
      },
    );
  }
  const logger = createLogger({ level: 'warn' });
  const said = await source.requestSnapshot(pipeline.source, { pipeline: pipeline.name, logger }, options);
  process.stdout.write(`${said}\n`);
  return ExitCode.ok;
}
