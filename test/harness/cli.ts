import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs the real `tributary` bin and returns its exit code and output. */
export async function tributary(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string) {
  try {
    const { stdout, stderr } = await run('node', [path.resolve('bin/tributary.js'), ...args], {
      env: { ...process.env, ...env },
      cwd,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/**
 * Runs the real `tributary` bin on a pseudo-terminal (util-linux `script`), as a person at a terminal sees it:
 * stdout and stderr arrive together in `output`.
 */
export async function tributaryInTerminal(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  options: { stopAfterSeconds?: number } = {},
) {
  // A daemon (`run`) is stopped as an operator would: SIGTERM after a while.
  const stop = options.stopAfterSeconds
    ? ['timeout', '--preserve-status', '-s', 'TERM', String(options.stopAfterSeconds)]
    : [];
  const command = [...stop, 'node', 'bin/tributary.js', ...args].map(shellQuote).join(' ');
  const terminalEnv = { ...process.env, CI: '', NO_COLOR: '1', TERM: 'xterm', ...env };
  try {
    const { stdout } = await run('script', ['-qec', command, '/dev/null'], {
      env: terminalEnv,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, output: stdout.replaceAll('\r\n', '\n') };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, output: e.stdout.replaceAll('\r\n', '\n') };
  }
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}
