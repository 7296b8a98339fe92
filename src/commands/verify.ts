import type { PipelineConfig } from '../config/schema.ts';
import { ConfigError, describeError } from '../errors.ts';
import { ExitCode } from '../exit-codes.ts';
import { redactUrl } from '../observability/logger.ts';
import { formatPipelineHeader, formatSummary, formatTable } from '../verify/report.ts';
import type { PipelineReport, VerifyReport } from '../verify/types.ts';
import { hasDatabaseTarget, verifyPipeline, worst } from '../verify/verify.ts';
import { loadCommandConfig } from './command-config.ts';

export interface VerifyCommandOptions {
  pipeline?: string;
  tables?: string[];
  maxDiffs: number;
  json: boolean;
  progress: boolean;
}

/**
 * `tributary verify`: compares the tables of each pipeline between source and target. Exit 0 when equal, 1 when
 * something differs, 2 when verify could not compare (config, connection, missing table).
 */
export async function verifyCommand(file: string, options: VerifyCommandOptions): Promise<number> {
  let pipelines: PipelineConfig[];
  try {
    pipelines = choosePipelines(loadCommandConfig(file).config.pipelines, options.pipeline);
  } catch (err) {
    if (err instanceof ConfigError)
      process.stderr.write(
        `${err.message}:\n${err.problems.map((p) => `  ${p.path || '(top level)'}: ${p.message}`).join('\n')}\n`,
      );
    else process.stderr.write(`error: ${redactUrl(describeError(err))}\n`);
    return ExitCode.failed;
  }
  if (!Number.isInteger(options.maxDiffs) || options.maxDiffs < 0) {
    process.stderr.write('error: --max-diffs expects a whole number (0 or more)\n');
    return ExitCode.usage;
  }
  const progress = progressPrinter(options.progress);
  const report: VerifyReport = { status: 'equal', pipelines: [] };
  for (const pipeline of pipelines) {
    if (!options.json) process.stdout.write(formatPipelineHeader(pipeline));
    const result: PipelineReport = await verifyPipeline(pipeline, {
      tables: options.tables,
      maxDiffs: options.maxDiffs,
      onProgress: progress.update,
      onTable: (t) => {
        progress.clear();
        if (!options.json) process.stdout.write(formatTable(t));
      },
    });
    progress.clear();
    if (result.error) process.stderr.write(`error: ${result.error}\n`);
    report.pipelines.push(result);
  }
  report.status = worst(report.pipelines.map((p) => p.status));
  if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(formatSummary(report));
  return report.status === 'equal' ? ExitCode.ok : report.status === 'different' ? ExitCode.invalid : ExitCode.failed;
}

function choosePipelines(all: PipelineConfig[], name: string | undefined): PipelineConfig[] {
  if (name) {
    const p = all.find((x) => x.name === name);
    if (!p) throw new Error(`no pipeline named ${name} (pipelines: ${all.map((x) => x.name).join(', ')})`);
    return [p];
  }
  const databases = all.filter(hasDatabaseTarget);
  if (databases.length === 0)
    throw new Error(
      `verify needs a database target (postgres or mysql); the pipelines of this config write to ${[...new Set(all.map((p) => p.target.type))].join(', ')}`,
    );
  for (const p of all.filter((x) => !hasDatabaseTarget(x)))
    process.stderr.write(`note: pipeline ${p.name} skipped: its ${p.target.type} target is not a database\n`);
  return databases;
}

/** Ranges done / total on stderr: rewritten in place on a terminal, a line every few seconds otherwise. */
function progressPrinter(forced: boolean) {
  const tty = Boolean(process.stderr.isTTY);
  const on = tty || forced;
  let last = 0;
  let shown = false;
  return {
    update(table: string, done: number, total: number) {
      if (!on) return;
      const now = Date.now();
      if (done < total && now - last < (tty ? 100 : 2000)) return;
      last = now;
      if (tty) {
        process.stderr.write(`\r\x1b[K${table}: ranges ${done}/${total}`);
        shown = true;
      } else process.stderr.write(`${table}: ranges ${done}/${total}\n`);
    },
    clear() {
      if (shown) process.stderr.write('\r\x1b[K');
      shown = false;
    },
  };
}
