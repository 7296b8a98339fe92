import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { tributary } from '../harness/cli.ts';

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
