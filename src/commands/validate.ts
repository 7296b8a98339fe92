import path from 'node:path';
import type { PipelineConfig } from '../config/schema.ts';
import type { TargetConnector } from '../core/connector.ts';
import type { PreflightProblem } from '../core/connector-context.ts';
import { describeError } from '../errors.ts';
import { ExitCode } from '../exit-codes.ts';
import { createLogger, redactUrl } from '../observability/logger.ts';
import { defaultCheckpointFile, loadConnectors } from '../registry.ts';
import { loadCommandConfig } from './command-config.ts';
import { unwritableReason } from './writable-location.ts';

/**
 * `tributary validate`: every config problem at once (exit 1), then, unless offline, each pipeline's preflight
 * checks against its servers.
 */
export async function validateCommand(file: string, options: { offline: boolean }): Promise<number> {
  const { config } = loadCommandConfig(file);
  const configDir = path.dirname(path.resolve(file));
  const logger = createLogger({ level: 'warn' });
  let failed = 0;
  for (const pipeline of config.pipelines) {
    const ctx = { pipeline: pipeline.name, logger };
    const problems: PreflightProblem[] = [];
    try {
      const { source, target } = await loadConnectors(pipeline);
      problems.push(...localFileProblems(pipeline, configDir, target));
      if (!options.offline) {
        const [s, t] = await Promise.all([
          source.preflight?.(pipeline.source, ctx) ?? [],
          target.preflight?.(pipeline.target, ctx, pipeline.source) ?? [],
        ]);
        problems.push(...s.map((p) => ({ ...p, message: `source: ${p.message}` })));
        problems.push(...t.map((p) => ({ ...p, message: `target: ${p.message}` })));
      }
    } catch (err) {
      problems.push({ message: describeError(err), hint: '' });
    }
    if (problems.length === 0) {
      if (!options.offline) process.stdout.write(`pipeline ${pipeline.name}: ok\n`);
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
  if (options.offline && !failed) {
    process.stdout.write(
      `${file}: configuration is valid (${config.pipelines.length} pipeline(s); servers not checked)\n`,
    );
  }
  return failed ? ExitCode.invalid : ExitCode.ok;
}

/** Files the pipeline writes on this machine (its checkpoint file, a JSON lines output) must be writable. */
function localFileProblems(pipeline: PipelineConfig, configDir: string, target: TargetConnector): PreflightProblem[] {
  const problems: PreflightProblem[] = [];
  const configured = pipeline.checkpoints;
  const checkpointFile =
    configured?.type === 'file'
      ? path.resolve(configDir, configured.path)
      : configured || target.checkpointStore
        ? undefined
        : defaultCheckpointFile(pipeline.name, configDir);
  const checkpointProblem = checkpointFile && unwritableReason(checkpointFile);
  if (checkpointProblem) {
    problems.push({
      message: `checkpoints: the checkpoint file ${checkpointFile} cannot be written: ${checkpointProblem}`,
      hint: 'Set checkpoints.path to a file in a directory this user can write (relative paths are relative to the config file).',
    });
  }
  if (pipeline.target.type === 'jsonl' && pipeline.target.path !== '-') {
    const output = path.resolve(configDir, pipeline.target.path);
    const outputProblem = unwritableReason(output);
    if (outputProblem) {
      problems.push({
        message: `target: the output file ${output} cannot be written: ${outputProblem}`,
        hint: 'Set target.path to a file in a directory this user can write, or "-" for stdout.',
      });
    }
  }
  return problems;
}
