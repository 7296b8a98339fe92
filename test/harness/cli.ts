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

/**
 * The lines a terminal shows after `output` was written to it: cursor moves (column 1, up, carriage return) and line
 * erasures are applied, other control sequences dropped. A progress bar redrawn in place, or cleared to print a log
 * line above it, leaves only what a person sees, so a test can judge the screen and not the byte stream.
 */
export function terminalScreen(output: string): string[] {
  const screen: string[] = [''];
  let row = 0;
  let col = 0;
  const write = (text: string) => {
    const line = screen[row]!.padEnd(col);
    screen[row] = line.slice(0, col) + text + line.slice(col + text.length);
    col += text.length;
  };
  const token = new RegExp(
    `${String.fromCharCode(27)}\\[([0-9;?]*)([A-Za-z])|\\r|\\n|[^\\r\\n${String.fromCharCode(27)}]+`,
    'g',
  );
  for (const match of output.matchAll(token)) {
    const [text, params, command] = match;
    if (text === '\n') {
      row += 1;
      col = 0;
      screen[row] ??= '';
    } else if (text === '\r' || command === 'G') {
      col = Math.max(0, Number(params || 1) - 1);
    } else if (command === 'A') {
      row = Math.max(0, row - Number(params || 1));
    } else if (command === 'K') {
      // 0 (or none): from the cursor to the end of the line; 2: the whole line.
      screen[row] = params === '2' ? '' : screen[row]!.slice(0, col);
    } else if (command === 'J') {
      screen.length = row + 1;
      screen[row] = screen[row]!.slice(0, col);
    } else if (command === undefined) {
      write(text);
    }
  }
  return screen.map((line) => line.trimEnd());
}
