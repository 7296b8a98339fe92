import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('installing', () => {
  it('npm ci accepts package-lock.json (every optional platform package npm expects is in it)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-ci-'));
    try {
      for (const file of ['package.json', 'package-lock.json']) fs.copyFileSync(file, path.join(dir, file));
      const result = await run('npm', ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir })
        .then((r) => ({ code: 0, ...r }))
        .catch((err: { code: number; stdout: string; stderr: string }) => err);
      expect(result.code, result.stderr).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('npm install takes package-lock.json as it is (it resolves to the same tree, nothing to rewrite)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-install-'));
    try {
      for (const file of ['package.json', 'package-lock.json']) fs.copyFileSync(file, path.join(dir, file));
      const result = await run(
        'npm',
        ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'],
        { cwd: dir },
      )
        .then((r) => ({ code: 0, ...r }))
        .catch((err: { code: number; stdout: string; stderr: string }) => err);
      expect(result.code, result.stderr).toBe(0);
      expect(fs.readFileSync(path.join(dir, 'package-lock.json'), 'utf8')).toBe(
        fs.readFileSync('package-lock.json', 'utf8'),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
