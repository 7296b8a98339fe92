import { loadConfig } from '../config/load.ts';
import type { PreflightProblem } from '../core/connector-context.ts';
import { describeError } from '../errors.ts';
import { ExitCode } from '../exit-codes.ts';
import { createLogger, redactUrl } from '../observability/logger.ts';
import { loadConnectors } from '../registry.ts';

/**
 * `tributary validate`: every config problem at once (exit 1), then, unless offline, each pipeline's preflight
 * checks against its servers.
 */
export async function validateCommand(file: string, options: { offline: boolean }): Promise<number> {
  const { config } = loadConfig(file);
  if (options.offline) {
    process.stdout.write(
      `${file}: configuration is valid (${config.pipelines.length} pipeline(s); servers not checked)\n`,
    );
    return ExitCode.ok;
  }
  const logger = createLogger({ level: 'warn' });
  let failed = 0;
  for (const pipeline of config.pipelines) {
    const ctx = { pipeline: pipeline.name, logger };
    const problems: PreflightProblem[] = [];
    try {
      const { source, target } = await loadConnectors(pipeline);
      const [s, t] = await Promise.all([
        source.preflight?.(pipeline.source, ctx) ?? [],
        target.preflight?.(pipeline.target, ctx, pipeline.source) ?? [],
      ]);
      problems.push(...s.map((p) => ({ ...p, message: `source: ${p.message}` })));
      problems.push(...t.map((p) => ({ ...p, message: `target: ${p.message}` })));
    } catch (err) {
      problems.push({ message: describeError(err), hint: '' });
    }
    if (problems.length === 0) {
      process.stdout.write(`pipeline ${pipeline.name}: ok\n`);
      continue;
    }
    failed += 1;
    process.stdout.write(`pipeline ${pipeline.name}: ${problems.length} problem(s)\n`);
    for (const p of problems) {
      process.stdout.write(
        `  - ${redactUrl(p.message)}\n${p.hint ? `    fix: ${redactUrl(p.hint).replaceAll('\n', '\n         ')}\n` : ''}`,
      );
    }
  }
  logger.flush();
  return failed ? ExitCode.invalid : ExitCode.ok;
}
