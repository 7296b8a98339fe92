import { type LoadedConfig, loadConfig } from '../config/load.ts';
import { Daemon, PipelinesFailedError } from '../daemon.ts';
import { errorKind, TributaryError } from '../errors.ts';
import { ExitCode } from '../exit-codes.ts';
import { createLogger } from '../observability/logger.ts';
import { SnapshotProgressBars } from '../observability/progress-bar.ts';
import { stopWhenNpmParentExits } from './parent-watch.ts';

/** `tributary run`: the daemon, until SIGTERM/SIGINT; a second signal exits at once (checkpoints stay consistent). */
export async function runCommand(file: string, options: { pipelines?: string[] } = {}): Promise<number> {
  const loaded = onlyPipelines(loadConfig(file), options.pipelines ?? []);
  const logger = createLogger({ level: loaded.config.log?.level });
  for (const w of loaded.warnings)
    logger.warn({ event: 'config_key_renamed', file: loaded.file, key: w.path }, w.message);
  const daemon = new Daemon(loaded, logger);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ event: 'forced_exit', signal }, 'second signal: exiting without draining');
      logger.flush();
      process.exit(ExitCode.failed);
    }
    logger.info({ event: 'stopping', signal }, 'draining in-flight batches and saving checkpoints');
    daemon.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const unwatch = stopWhenNpmParentExits(() => {
    logger.info({ event: 'npm_exited' }, 'npm, which started this process, has exited');
    onSignal('SIGTERM');
  });
  // On a terminal: a bar per table while tables are copied.
  const bars = SnapshotProgressBars.wanted()
    ? new SnapshotProgressBars(() =>
        daemon.pipelines.map((p) => ({ pipeline: p.state.name, tables: p.state.snapshot?.report() ?? [] })),
      )
    : null;
  try {
    await daemon.run();
    logger.info({ event: 'stopped' }, 'stopped');
    return ExitCode.ok;
  } catch (err) {
    // Each failure was logged, with what to do, when its pipeline stopped: say it once, not again here.
    if (!(err instanceof PipelinesFailedError)) throw err;
    logger.error({ event: 'stopped', failed: err.failures.map((f) => f.pipeline) }, `stopped: ${err.summary}`);
    return err.failures.some((f) => errorKind(f.error) === 'fatal') ? ExitCode.internal : ExitCode.failed;
  } finally {
    bars?.stop();
    unwatch();
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    logger.flush();
  }
}

/** The config with only the named pipelines (all when none is named); an unknown name is an operator error. */
function onlyPipelines(loaded: LoadedConfig, names: string[]): LoadedConfig {
  if (names.length === 0) return loaded;
  const known = loaded.config.pipelines.map((p) => p.name);
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) {
    throw new TributaryError(
      'operator',
      `no pipeline named ${unknown.map((n) => `"${n}"`).join(', ')} in ${loaded.file}`,
      {
        hint: `Pipelines of this config: ${known.join(', ')}`,
      },
    );
  }
  const pipelines = loaded.config.pipelines.filter((p) => names.includes(p.name));
  return { ...loaded, config: { ...loaded.config, pipelines } };
}
