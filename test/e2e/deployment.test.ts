import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { copyCheckout } from '../harness/checkout-copy.ts';

const run = promisify(execFile);

/** The final stage of the Dockerfile: what the image runs, as whom, with which environment and volumes. */
function imageSpec() {
  const text = fs.readFileSync('Dockerfile', 'utf8').replace(/\\\n\s*/g, ' ');
  const stages = text.split(/^FROM /m);
  const last = stages[stages.length - 1]!;
  const instruction = (name: string) =>
    last
      .split('\n')
      .filter((line) => line.startsWith(`${name} `))
      .map((line) => line.slice(name.length + 1).trim());
  const env: Record<string, string> = {};
  for (const line of instruction('ENV')) {
    for (const m of line.matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!;
  }
  return {
    entrypoint: JSON.parse(instruction('ENTRYPOINT')[0] ?? '[]') as string[],
    cmd: JSON.parse(instruction('CMD')[0] ?? '[]') as string[],
    user: instruction('USER')[0],
    workdir: instruction('WORKDIR')[0],
    env,
    volumes: instruction('VOLUME').flatMap((v) => JSON.parse(v) as string[]),
    stopSignal: instruction('STOPSIGNAL')[0],
  };
}

function composeService() {
  const compose = YAML.parse(fs.readFileSync('docker-compose.yml', 'utf8'));
  return compose.services.tributary as { command: string[]; environment: Record<string, string>; volumes: string[] };
}

describe('deployment files', () => {
  it('the image and the systemd unit run node directly, so SIGTERM reaches the daemon', () => {
    const image = imageSpec();
    expect(image.entrypoint).toEqual(['node', 'bin/tributary.js']);
    expect(image.stopSignal ?? 'SIGTERM').toBe('SIGTERM');
    expect(image.user).not.toBe('root');
    const unit = fs.readFileSync('deploy/tributary.service', 'utf8');
    const execStart = unit.match(/^ExecStart=(.*)$/m)?.[1] ?? '';
    expect(execStart).toMatch(/^\/usr\/bin\/node \S+\/bin\/tributary\.js run -c /);
    expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
    expect(unit).toMatch(/^Restart=on-failure$/m);
  });

  it('every compose volume is one the image declares', () => {
    const image = imageSpec();
    const mounted = composeService().volumes.map((v) => v.split(':')[1]);
    for (const target of mounted) expect(image.volumes).toContain(target);
  });

  /**
   * The image's entrypoint with the compose file's command, environment and volume, run as an unprivileged user on
   * a copy of the application that user does not own (as in the image): every file it writes must be writable.
   */
  describe.runIf(process.getuid?.() === 0)('as the image runs it: a non-root user, the compose paths', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-image-'));
    afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

    it('the checkpoint files land in the volume, which the image user can write', async () => {
      fs.chmodSync(root, 0o755);
      const app = path.join(root, 'app');
      copyCheckout(app);
      const image = imageSpec();
      const service = composeService();
      // The volume as the image prepares it: a directory owned by the image's user (here: nobody).
      const [volumeName, volumeTarget] = service.volumes[0]!.split(':') as [string, string];
      const volume = path.join(root, volumeName);
      fs.mkdirSync(volume);
      const nobody = { uid: 65534, gid: 65534 };
      fs.chownSync(volume, nobody.uid, nobody.gid);
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: root, ...image.env, ...service.environment };
      // The container's path of the volume, mapped onto this machine's copy of it.
      for (const [key, value] of Object.entries(env)) {
        if (value === volumeTarget) env[key] = volume;
      }
      expect(Object.values(env)).toContain(volume);
      const command = [...image.entrypoint, ...service.command];
      const runIndex = command.indexOf('run');
      // `validate --offline` writes where `run` would (it probes each file's directory), without the servers.
      command.splice(runIndex, 1, 'validate', '--offline');
      const result = await run(command[0]!, command.slice(1), { cwd: app, env, uid: nobody.uid, gid: nobody.gid })
        .then((r) => ({ code: 0, ...r }))
        .catch((err: { code: number; stdout: string; stderr: string }) => err);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toContain('configuration is valid');
      expect(fs.readdirSync(volume)).toEqual([]);
    });
  });
});
