import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The real `tributary run` as a child process, for crash tests: SIGKILL it, start it again. */
export class ReplicatorProcess {
  private child?: ChildProcess;
  private exited?: Promise<number | null>;
  starts = 0;

  /**
   * `configFile` null runs without `-c` (the config is found as a user's would be: $TRIBUTARY_CONFIG or
   * ./tributary.yaml in `options.cwd`); `options.args` are added to `run`'s.
   */
  constructor(
    private readonly configFile: string | null,
    private readonly logFile: string,
    private readonly env: NodeJS.ProcessEnv = {},
    private readonly options: { cwd?: string; args?: string[] } = {},
  ) {}

  start(): void {
    const log = fs.openSync(this.logFile, 'a');
    const config = this.configFile === null ? [] : ['-c', this.configFile];
    this.child = spawn('node', [path.resolve('bin/tributary.js'), 'run', ...config, ...(this.options.args ?? [])], {
      stdio: ['ignore', log, log],
      cwd: this.options.cwd,
      env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'info', ...this.env },
    });
    fs.closeSync(log);
    this.starts += 1;
    const child = this.child;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL: no draining, no last checkpoint; the next start must recover. */
  async kill9(): Promise<void> {
    if (!this.child) return;
    this.child.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
  }

  /** SIGTERM and wait for a clean exit; returns the exit code. */
  async stop(): Promise<number | null> {
    if (!this.child) return null;
    this.child.kill('SIGTERM');
    const code = (await this.exited) ?? null;
    this.child = undefined;
    return code;
  }

  log(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
  }
}
