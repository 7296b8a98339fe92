import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { copyCheckout as copyWorkingTree } from '../harness/checkout-copy.ts';
import { tributary } from '../harness/cli.ts';

const run = promisify(execFile);

describe('tributary demo', () => {
  it('replicates the live shop into the replica on an embedded PostgreSQL and cleans up', async () => {
    const { code, stdout, stderr } = await tributary(['demo', '--seconds', '4']);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/\+\d+ snapshot rows/);
    expect(stdout).toContain('schema change at the source');
    expect(stdout).toContain('Source and replica match.');
    expect(fs.existsSync('.tributary')).toBe(false);
  });
});

/**
 * As root, PostgreSQL runs as the `postgres` OS user, which cannot traverse a checkout in a private directory
 * (`git clone` into /root, or `mktemp -d`). The checkout here is a copy of this working tree (node_modules hard
 * linked) inside a fresh mode-700 directory, as a user's clone would be.
 */
describe.runIf(process.getuid?.() === 0)('as root, from a checkout inside a mode-700 directory', () => {
  const privateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-private-'));
  const checkout = path.join(privateDir, 'tributary');
  afterAll(() => fs.rmSync(privateDir, { recursive: true, force: true }));

  const copyCheckout = () => {
    if (fs.existsSync(checkout)) return;
    expect(fs.statSync(privateDir).mode & 0o777).toBe(0o700);
    copyWorkingTree(checkout);
  };

  it('npx tributary demo works and leaves nothing behind in the temporary directory', async () => {
    copyCheckout();
    // Its own temporary directory (reachable by every user, as /tmp is), so that other tests' files do not count.
    const passwordFiles = () => fs.readdirSync(os.tmpdir()).filter((e) => e.startsWith('pg-password'));
    const passwordFilesBefore = passwordFiles();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-demo-tmp-'));
    fs.chmodSync(tmp, 0o1777);
    try {
      const { stdout, stderr } = await run('npx', ['tributary', 'demo', '--seconds', '2'], {
        cwd: checkout,
        env: { ...process.env, TMPDIR: tmp },
        maxBuffer: 64 * 1024 * 1024,
        // Ended before the test's own timeout, so that a slow or stuck demo fails with its output shown.
        timeout: 110_000,
      }).catch((err: { stdout: string; stderr: string }) => ({ ...err, failed: true }));
      expect(stderr).not.toMatch(/EACCES|Unhandled|\n\s+at /);
      expect(stdout).toContain('Source and replica match.');
      expect(fs.readdirSync(tmp)).toEqual([]);
      expect(passwordFiles()).toEqual(passwordFilesBefore);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('the test harness starts the embedded PostgreSQL from there', async () => {
    copyCheckout();
    const script = `
      const { startPostgres } = await import('./test/harness/postgres.ts');
      const server = await startPostgres({ flavor: 'embedded' });
      const rows = await server.query('postgres', 'show wal_level');
      await server.stop();
      console.log('wal_level=' + rows[0].wal_level);
    `;
    const { stdout } = await run('node', ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: checkout,
    });
    expect(stdout).toContain('wal_level=logical');
  });
});
