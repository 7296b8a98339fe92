import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { copyCheckout } from '../harness/checkout-copy.ts';
import { buildStageCopies, composeService, imageSpec, NOBODY } from '../harness/deployment-files.ts';

const run = promisify(execFile);

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
   * The image's build stage runs `npm ci`, which runs the `prepare` script: everything that script and the build read
   * must be among the files the stage copies. Run here on exactly those files (node_modules linked in, as `npm ci`
   * would install them), the build must succeed and the entry point must run the build.
   */
  it("the image's build stage copies everything npm's prepare script needs", async () => {
    const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-build-stage-'));
    try {
      for (const source of buildStageCopies()) {
        fs.cpSync(source, path.join(stage, source), { recursive: true });
      }
      fs.symlinkSync(path.resolve('node_modules'), path.join(stage, 'node_modules'));
      await run('npm', ['run', 'prepare'], { cwd: stage });
      expect(fs.existsSync(path.join(stage, 'dist', '.build-stamp'))).toBe(true);
      const { stdout } = await run('node', ['bin/tributary.js', '--version'], { cwd: stage });
      expect(stdout.trim()).toBe(JSON.parse(fs.readFileSync('package.json', 'utf8')).version);
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }
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
      const nobody = NOBODY;
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
