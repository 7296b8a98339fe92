import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { loadCommandConfig } from './command-config.ts';

describe('the config a command loads', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'command-config-'));
  afterEach(() => vi.restoreAllMocks());
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('says each key under an earlier name once on stderr, naming the current key', () => {
    const file = path.join(dir, 'old-names.yaml');
    fs.writeFileSync(
      file,
      'pipelines:\n  - name: p\n    source: { type: mysql, url: x, read_buffer_events: 500, read_buffer_bytes: 2097152 }\n    target: { type: jsonl, path: "-" }\n',
    );
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    const { config } = loadCommandConfig(file);
    expect(config.pipelines[0]!.source).toMatchObject({ read_ahead_events: 500 });
    expect(written).toEqual([
      expect.stringMatching(
        /^warning: .*old-names\.yaml: pipelines\[0\]\.source\.read_buffer_events: renamed read_ahead_events;/,
      ),
      expect.stringMatching(
        /^warning: .*old-names\.yaml: pipelines\[0\]\.source\.read_buffer_bytes: renamed read_ahead_bytes;/,
      ),
    ]);
  });
});
