import { Command, CommanderError } from 'commander';
import { configFile } from './commands/config-file.ts';
import { ConfigError, describeError, TributaryError } from './errors.ts';
import { ExitCode } from './exit-codes.ts';
import { redactUrl } from './observability/logger.ts';

/**
 * The `tributary` command. Thin: parses arguments and calls into the commands. A user mistake prints what to fix,
 * never a stack trace.
 */
const CONFIG_HELP = 'config file (YAML); default $TRIBUTARY_CONFIG, else ./tributary.yaml';

const program = new Command('tributary')
  .description('Change-data-capture replicator: PostgreSQL and MySQL changes to replicas, Kafka or JSON lines.')
  .version('0.1.0')
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(text) });

program
  .command('run')
  .description('run every pipeline of a config until SIGTERM/SIGINT, then drain and save checkpoints')
  .option('-c, --config <file>', CONFIG_HELP)
  .option('-p, --pipeline <name>', 'run only this pipeline of the config (repeatable)', collect, [])
  .addHelpText(
    'after',
    `
Examples:
  tributary run                                  ./tributary.yaml, every pipeline
  tributary run -c /etc/tributary/tributary.yaml --pipeline orders
  TRIBUTARY_CONFIG=prod.yaml tributary run`,
  )
  .action(async (opts: { config?: string; pipeline: string[] }) => {
    const { runCommand } = await import('./commands/run.ts');
    process.exitCode = await runCommand(configFile(opts.config), { pipelines: opts.pipeline });
  });

program
  .command('validate')
  .description('check a config file and, unless --offline, the servers it names (settings, privileges)')
  .option('-c, --config <file>', CONFIG_HELP)
  .option('--offline', 'check the file only, connect to no server')
  .addHelpText(
    'after',
    `
Examples:
  tributary validate                 the file, then every server it names
  tributary validate --offline -c tributary.yaml   the file only (e.g. in CI)`,
  )
  .action(async (opts: { config?: string; offline?: boolean }) => {
    const { validateCommand } = await import('./commands/validate.ts');
    process.exitCode = await validateCommand(configFile(opts.config), { offline: opts.offline ?? false });
  });

program
  .command('status')
  .description('per pipeline: phase, last checkpoint, lag and (PostgreSQL) WAL retained')
  .option('-c, --config <file>', CONFIG_HELP)
  .option('--json', 'print JSON')
  .addHelpText(
    'after',
    `
Examples:
  tributary status                   one block per pipeline
  tributary status --json | jq '.pipelines[] | {name, status, lag_seconds}'`,
  )
  .action(async (opts: { config?: string; json?: boolean }) => {
    const { statusCommand } = await import('./commands/status.ts');
    process.exitCode = await statusCommand(configFile(opts.config), { json: opts.json ?? false });
  });

program
  .command('teardown')
  .description(
    'drop what the pipelines created at their sources (replication slots, publications) and their checkpoints',
  )
  .option('-c, --config <file>', CONFIG_HELP)
  .option('-p, --pipeline <name>', 'only this pipeline')
  .option('--yes', 'do it (without it, only say what would be dropped)')
  .addHelpText(
    'after',
    `
Examples:
  tributary teardown --pipeline orders          say what would be dropped
  tributary teardown --pipeline orders --yes    drop it (stop the pipeline first)`,
  )
  .action(async (opts: { config?: string; pipeline?: string; yes?: boolean }) => {
    const { teardownCommand } = await import('./commands/teardown.ts');
    process.exitCode = await teardownCommand(configFile(opts.config), {
      pipeline: opts.pipeline,
      yes: opts.yes ?? false,
    });
  });

program
  .command('snapshot')
  .description(
    "copy a table's rows again into a pipeline's target while it streams (all rows, or those matching --where)",
  )
  .option('-c, --config <file>', CONFIG_HELP)
  .requiredOption('-p, --pipeline <name>', 'the pipeline')
  .requiredOption('-t, --table <table>', 'the source table (schema.table)')
  .option('--where <sql>', 'only rows matching this SQL condition (the target table is not emptied first)')
  .addHelpText(
    'after',
    `
Examples:
  tributary snapshot --pipeline orders --table public.orders
  tributary snapshot --pipeline orders --table public.orders --where "id between 1000 and 2000"`,
  )
  .action(async (opts: { config?: string; pipeline: string; table: string; where?: string }) => {
    const { snapshotCommand } = await import('./commands/snapshot.ts');
    process.exitCode = await snapshotCommand(configFile(opts.config), opts);
  });

program
  .command('verify')
  .description('compare the replicated tables of source and target (exit 0 equal, 1 different, 2 error)')
  .option('-c, --config <file>', CONFIG_HELP)
  .option('-p, --pipeline <name>', 'only this pipeline')
  .option('-t, --table <table>', 'only this source table (schema.table; repeatable)', collect, [])
  .option('--max-diffs <n>', 'most differences listed per table', '20')
  .option('--json', 'print JSON')
  .option('--progress', 'show progress on stderr even when it is not a terminal')
  .addHelpText(
    'after',
    `
Examples:
  tributary verify                               every table of every pipeline
  tributary verify -p orders -t public.orders --json`,
  )
  .action(
    async (opts: {
      config?: string;
      pipeline?: string;
      table: string[];
      maxDiffs: string;
      json?: boolean;
      progress?: boolean;
    }) => {
      const { verifyCommand } = await import('./commands/verify.ts');
      process.exitCode = await verifyCommand(configFile(opts.config), {
        pipeline: opts.pipeline,
        tables: opts.table,
        maxDiffs: Number(opts.maxDiffs),
        json: opts.json ?? false,
        progress: opts.progress ?? false,
      });
    },
  );

program
  .command('demo')
  .description('replicate a live, changing database between two embedded PostgreSQL databases; nothing to install')
  .option('--seconds <n>', 'how long the workload runs', '20')
  .addHelpText('after', '\nExample:\n  npx tributary demo --seconds 10')
  .action(async (opts: { seconds: string }) => {
    const { demoCommand } = await import('./commands/demo.ts');
    process.exitCode = await demoCommand({ seconds: Number(opts.seconds) });
  });

program
  .command('completion')
  .description('print a shell completion script (bash or zsh)')
  .argument('<shell>', 'bash or zsh')
  .addHelpText(
    'after',
    `
Examples:
  source <(tributary completion bash)             this shell
  tributary completion zsh > "\${fpath[1]}/_tributary"   zsh, for good`,
  )
  .action(async (shell: string) => {
    const { completionScript } = await import('./commands/completion.ts');
    process.stdout.write(completionScript(shell, program));
  });

program.addHelpText(
  'after',
  `
Examples:
  npx tributary demo                 see it work, nothing to install
  tributary validate -c tributary.yaml
  tributary run -c tributary.yaml    until SIGTERM; then drains and saves checkpoints
  tributary status --json`,
);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = report(err);
}
// The command is done (a daemon has drained and saved its checkpoints): a driver's idle timer must not keep the
// process alive for seconds after it said "stopped". Output to a pipe is written asynchronously: let it drain first.
await Promise.all([process.stdout, process.stderr].map((s) => new Promise((resolve) => s.write('', resolve))));
process.exit();

function collect(value: string, all: string[]): string[] {
  return [...all, value];
}

function report(err: unknown): number {
  if (err instanceof CommanderError) {
    return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  if (err instanceof ConfigError) {
    process.stderr.write(
      `${err.message}:\n${err.problems.map((p) => `  ${p.path || '(top level)'}: ${p.message}`).join('\n')}\n`,
    );
    return ExitCode.invalid;
  }
  if (err instanceof TributaryError && err.kind !== 'fatal') {
    process.stderr.write(`error: ${redactUrl(describeError(err))}\n`);
    return ExitCode.failed;
  }
  const detail = process.env.TRIBUTARY_DEBUG ? (err as Error)?.stack : describeError(err);
  process.stderr.write(
    `internal error: ${redactUrl(String(detail))}\n(set TRIBUTARY_DEBUG=1 for details; please report it)\n`,
  );
  return ExitCode.internal;
}
