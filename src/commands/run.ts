import { loadConfig } from '../config/load.ts';
import { Daemon } from '../daemon.ts';
import { ExitCode } from '../exit-codes.ts';
import { createLogger } from '../observability/logger.ts';

/** `tributary run`: the daemon, until SIGTERM/SIGINT; a second signal exits at once (checkpoints stay consistent). */
export async function runCommand(file: string): Promise<number> {
  const loaded = loadConfig(file);
  const logger = createLogger({ level: loaded.config.log?.level });
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
  try {
    await daemon.run();
    logger.info({ event: 'stopped' }, 'stopped');
    return ExitCode.ok;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    logger.flush();
  }
}
