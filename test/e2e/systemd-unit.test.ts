import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyCheckout } from '../harness/checkout-copy.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';

const run = promisify(execFile);
const UNIT = 'deploy/tributary.service';

/** The [Service] settings of the unit, each key with its values in order (systemd lets some keys repeat). */
function serviceSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[')) {
      section = line;
      continue;
    }
    if (section !== '[Service]') continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1)]);
  }
  return settings;
}

function hasSystemdAnalyze(): boolean {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const isRoot = process.getuid?.() === 0;
const canVerify = hasSystemdAnalyze();
if (!isRoot || !canVerify) {
  console.log(
    `skipping the systemd unit run: ${!isRoot ? 'needs root (to run the unit as another user)' : 'systemd-analyze is not installed (Debian package systemd)'}`,
  );
}

/**
 * The unit as systemd runs it, without systemd as the init process (a test machine has none): the file must pass
 * `systemd-analyze verify`, and its ExecStart, as an unprivileged user in its WorkingDirectory with its Environment,
 * EnvironmentFile and StateDirectory ($STATE_DIRECTORY), must replicate, stop on its KillSignal sent to the main
 * process only (KillMode=mixed) within TimeoutStopSec with exit 0 (no restart under Restart=on-failure), resume
 * after a restart without loss, and exit with a code of RestartPreventExitStatus on a bad config (no restart loop).
 * The install paths (/opt/tributary, /etc/tributary, /var/lib/tributary) are mapped into a scratch directory.
 */
describe.runIf(isRoot && canVerify)('the systemd unit, run the way systemd runs it', () => {
  let server: PgServer;
  let root: string;
  let unitText: string;
  let service: Map<string, string[]>;
  let child: ChildProcess | undefined;
  const nobody = { uid: 65534, gid: 65534 };

  const place = (p: string) =>
    p
      .replace('/opt/tributary', path.join(root, 'opt/tributary'))
      .replace('/etc/tributary', path.join(root, 'etc/tributary'))
      .replace(/^\/usr\/bin\/node(?= )/, process.execPath);
  const one = (key: string) => service.get(key)?.at(-1) ?? '';
  const stateDir = () => path.join(root, 'var/lib', one('StateDirectory'));

  beforeAll(async () => {
    server = await startPostgres();
    const sourceUrl = await server.createDatabase('unit_src');
    await server.query('unit_src', 'create table items (id int primary key, name text)');
    await server.query('unit_src', "insert into items values (1, 'before start')");
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-unit-'));
    fs.chmodSync(root, 0o755);
    unitText = fs.readFileSync(UNIT, 'utf8');
    service = serviceSettings(unitText);
    copyCheckout(path.join(root, 'opt/tributary'));
    const etc = path.join(root, 'etc/tributary');
    fs.mkdirSync(etc, { recursive: true });
    // Secrets in the EnvironmentFile, as the unit's comment says; checkpoints and output in the StateDirectory,
    // the one place ProtectSystem=strict leaves writable.
    fs.writeFileSync(path.join(etc, 'env'), `# secrets\nSOURCE_URL=${sourceUrl}\n`, { mode: 0o640 });
    fs.writeFileSync(
      path.join(etc, 'tributary.yaml'),
      `pipelines:
  - name: unit
    source: { type: postgres, url: "\${SOURCE_URL}", tables: [public.items] }
    target: { type: jsonl, path: "\${STATE_DIRECTORY}/unit.jsonl" }
    checkpoints: { type: file, path: "\${STATE_DIRECTORY}/unit.checkpoint.json" }
`,
    );
    // systemd creates the StateDirectory owned by the unit's User before ExecStart.
    fs.mkdirSync(stateDir(), { recursive: true });
    fs.chownSync(stateDir(), nobody.uid, nobody.gid);
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await server?.stop();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('passes systemd-analyze verify', async () => {
    // The unit as installed here (its paths mapped); `verify` checks every directive and that ExecStart exists.
    const mapped = path.join(root, 'tributary.service');
    fs.writeFileSync(
      mapped,
      unitText.replace(
        /^(ExecStart|WorkingDirectory|EnvironmentFile)=(.*)$/gm,
        (_m, k: string, v: string) => `${k}=${v.startsWith('-') ? `-${place(v.slice(1))}` : place(v)}`,
      ),
    );
    const { stdout, stderr } = await run('systemd-analyze', ['verify', '--man=no', mapped]);
    expect(stdout + stderr).toBe('');
  });

  /** ExecStart as systemd would start it: the unit's user, directory and environment. */
  function startUnit(configOverride?: string): { exited: Promise<number | null>; output: () => string } {
    const argv = place(one('ExecStart')).split(/\s+/);
    if (configOverride) argv[argv.indexOf('-c') + 1] = configOverride;
    const env: NodeJS.ProcessEnv = { PATH: '/usr/local/bin:/usr/bin:/bin', STATE_DIRECTORY: stateDir() };
    for (const assignment of service.get('Environment') ?? []) {
      const eq = assignment.indexOf('=');
      env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
    }
    for (const file of service.get('EnvironmentFile') ?? []) {
      const p = place(file.replace(/^-/, ''));
      if (!fs.existsSync(p)) continue;
      for (const line of fs.readFileSync(p, 'utf8').split('\n')) {
        const m = line.match(/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/);
        if (m) env[m[1]!] = m[2]!;
      }
    }
    let output = '';
    const proc = spawn(argv[0]!, argv.slice(1), {
      cwd: place(one('WorkingDirectory')),
      env,
      uid: nobody.uid,
      gid: nobody.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout!.on('data', (d) => (output += d));
    proc.stderr!.on('data', (d) => (output += d));
    child = proc;
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    return { exited, output: () => output };
  }

  const delivered = () => {
    const file = path.join(stateDir(), 'unit.jsonl');
    if (!fs.existsSync(file)) return [] as number[];
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        // One line per record: {key, value}, the value a Debezium envelope (with or without its schema block).
        const value = (JSON.parse(l) as { value?: { after?: { id?: number }; payload?: { after?: { id?: number } } } })
          .value;
        return Number((value?.payload ?? value)?.after?.id);
      })
      .filter((id) => !Number.isNaN(id));
  };
  const waitFor = async (what: string, check: () => boolean, output: () => string, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${output()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  /** KillMode=mixed: the KillSignal goes to the main process alone; SIGKILL to all only after TimeoutStopSec. */
  async function stopUnit(unit: { exited: Promise<number | null>; output: () => string }): Promise<number | null> {
    const signal = one('KillSignal') as NodeJS.Signals;
    const timeoutMs = Number(one('TimeoutStopSec')) * 1000;
    const started = Date.now();
    child!.kill(signal);
    const code = await Promise.race([
      unit.exited,
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs)),
    ]);
    expect(code, `no exit within TimeoutStopSec after ${signal}:\n${unit.output()}`).not.toBe('timeout');
    expect(Date.now() - started).toBeLessThan(10_000);
    child = undefined;
    return code as number | null;
  }

  it('replicates as the unit user, stops cleanly on KillSignal, and resumes without loss after a restart', async () => {
    expect(one('User')).not.toBe('root');
    const first = startUnit();
    await waitFor('the snapshot row', () => delivered().includes(1), first.output);
    await server.query('unit_src', "insert into items values (2, 'streamed')");
    await waitFor('the streamed row', () => delivered().includes(2), first.output);
    const code = await stopUnit(first);
    expect(code, first.output()).toBe(0); // Restart=on-failure does not restart a clean exit
    expect(fs.existsSync(path.join(stateDir(), 'unit.checkpoint.json'))).toBe(true);

    await server.query('unit_src', "insert into items values (3, 'while stopped')");
    const second = startUnit();
    await waitFor('the row written while stopped', () => delivered().includes(3), second.output);
    expect(await stopUnit(second), second.output()).toBe(0);
    expect(delivered().sort()).toEqual([1, 2, 3]);
  });

  it('exits with a code the unit does not restart on when the config is wrong', async () => {
    const bad = path.join(root, 'etc/tributary/bad.yaml');
    fs.writeFileSync(bad, 'pipelines:\n  - name: unit\n    sourse: {}\n');
    const unit = startUnit(bad);
    const code = await unit.exited;
    child = undefined;
    const noRestart = one('RestartPreventExitStatus').split(/\s+/).map(Number);
    expect(noRestart, unit.output()).toContain(code);
    expect(unit.output()).toContain('sourse');
  });
});
