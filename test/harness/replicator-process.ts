import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';

/** The real `tributary run` as a child process, for crash tests: SIGKILL it, start it again. */
export class ReplicatorProcess {
  private child?: ChildProcess;
  private exited?: Promise<number | null>;
  starts = 0;

  constructor(
    private readonly configFile: string,
    private readonly logFile: string,
    private readonly env: NodeJS.ProcessEnv = {},
  ) {}

  start(): void {
    const log = fs.openSync(this.logFile, 'a');
    this.child = spawn('node', ['bin/tributary.js', 'run', '-c', this.configFile], {
      stdio: ['ignore', log, log],
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
