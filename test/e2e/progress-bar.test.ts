import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tributaryInTerminal } from '../harness/cli.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';

/** The node processes whose command line names this config file. */
function daemonsOf(file: string): string[] {
  return fs
    .readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid))
    .filter((pid) => {
      try {
        const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return cmdline[0]?.endsWith('node') && cmdline.includes(file);
      } catch {
        return false;
      }
    });
}

/** `run` at a terminal (a pseudo-terminal here) shows a bar per table while the snapshot copies it. */
describe('snapshot progress bars at a terminal', () => {
  let server: PgServer;
  let dir: string;
  let sourceUrl: string;
  const ROWS = 400_000;

  beforeAll(async () => {
    server = await startPostgres();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-bars-'));
    sourceUrl = await server.createDatabase('bars_src');
    await server.query('bars_src', 'create table big (id bigint primary key, pad text)');
    await server.query('bars_src', `insert into big select g, repeat('x', 100) from generate_series(1, ${ROWS}) g`);
    await server.query('bars_src', 'analyze big');
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('draws rows copied of the estimate with rate and ETA, ends at the full count, and keeps log lines whole above it', async () => {
    const file = path.join(dir, 'bars.yaml');
    const out = path.join(dir, 'bars.jsonl');
    fs.writeFileSync(
      file,
      `pipelines:
  - name: bars
    source: { type: postgres, url: "${sourceUrl}", tables: [public.big] }
    target: { type: jsonl, path: ${out} }
    checkpoints: { type: file, path: bars.checkpoint.json }
`,
    );
    const running = tributaryInTerminal(['run', '-c', file]);
    // Stopped as an operator would (SIGTERM), once every row reached the target.
    const copied = () =>
      fs.existsSync(out)
        ? fs
            .readFileSync(out, 'utf8')
            .split('\n')
            .filter((l) => l.includes('"op":"r"')).length
        : 0;
    const deadline = Date.now() + 240_000;
    while (copied() < ROWS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    await new Promise((r) => setTimeout(r, 1000));
    for (const pid of daemonsOf(file)) process.kill(Number(pid), 'SIGTERM');
    const { code, output } = await running;
    expect(code, output).toBe(0);
    // Every copied row reached the target before the bars say done.
    expect(
      fs
        .readFileSync(out, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"op":"r"')),
    ).toHaveLength(ROWS);
    // Without the terminal's control sequences (ESC [ ... letter).
    const plain = output.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g'), '');
    expect(plain).toMatch(/bars public\.big \[[█░]+\] +\d+% \d+\/\d+ rows, [\d,]+ rows\/s, ETA \d+/);
    expect(plain).toContain(`bars public.big [${'█'.repeat(40)}] 100% ${ROWS}/${ROWS} rows`);
    // The log lines around the copy are whole lines, not cut by a bar.
    expect(plain).toMatch(/^.*snapshot.*$/m);
    expect(plain).toMatch(/^.*stopped$/m);
  }, 300_000);
});
