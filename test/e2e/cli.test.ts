import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tributary } from '../harness/cli.ts';

describe('tributary CLI', () => {
  it('prints help', async () => {
    const { code, stdout } = await tributary(['--help']);
    expect(code).toBe(0);
    for (const command of ['run', 'validate', 'status', 'teardown', 'demo']) expect(stdout).toContain(command);
  });

  it('validate reports all three mistakes with key paths, exit 1, no stack trace', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-cli-')), 'bad.yaml');
    fs.writeFileSync(
      file,
      `pipelines:
  - name: orders
    source: { type: postgres, url: "postgres://u:hunter2@db/app", snapshot: sometimes }
    target: { type: jsonl, path: out.jsonl, colour: red }
    batch: { max_events: 0 }
`,
    );
    const { code, stderr } = await tributary(['validate', '-c', file]);
    expect(code).toBe(1);
    expect(stderr).toContain('3 problems');
    expect(stderr).toContain('pipelines[0].source.snapshot');
    expect(stderr).toContain('pipelines[0].target.colour');
    expect(stderr).toContain('pipelines[0].batch.max_events');
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stderr).not.toContain('hunter2');
  });

  it('a missing config file is a clear error', async () => {
    const { code, stderr } = await tributary(['run', '-c', '/nonexistent/tributary.yaml']);
    expect(code).toBe(1);
    expect(stderr).toContain('cannot read the config file: no such file');
  });

  it('an unknown command is a usage error', async () => {
    const { code } = await tributary(['frobnicate']);
    expect(code).toBe(64);
  });
});
