import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { terminalScreen, tributary, tributaryInTerminal } from '../harness/cli.ts';
import { freePort } from '../harness/free-port.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { ReplicatorProcess } from '../harness/replicator-process.ts';
import { waitForEqualTables } from '../harness/table-digest.ts';

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** What a person at a terminal reads: the daemon's log lines and `tributary status`. */
describe('at the terminal', () => {
  let server: PgServer;
  let dir: string;
  let sourceUrl: string;

  beforeAll(async () => {
    server = await startPostgres();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-terminal-'));
    sourceUrl = await server.createDatabase('term_src');
    await server.query('term_src', 'create table notes (id int primary key, body text)');
    await server.query('term_src', "insert into notes select g, 'note ' || g from generate_series(1, 100) g");
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('run writes each routine event as one short line: no empty level lines, no multi-line dumps', async () => {
    const file = path.join(dir, 'lines.yaml');
    fs.writeFileSync(
      file,
      `pipelines:
  - name: lines
    source: { type: postgres, url: "${sourceUrl}", tables: [public.notes] }
    target: { type: jsonl, path: ${path.join(dir, 'lines.jsonl')} }
    checkpoints: { type: file, path: lines.checkpoint.json }
`,
    );
    // Routine events while it runs: the snapshot, a stream of rows, a column added at the source.
    // Long enough for a loaded machine (CI once ended it before the schema change was logged).
    const running = tributaryInTerminal(['run', '-c', file], {}, { stopAfterSeconds: 20 });
    // The snapshot's 100 rows written (the file alone exists before the snapshot starts): the changes below stream.
    const out = path.join(dir, 'lines.jsonl');
    await waitFor(
      'the snapshot',
      () => fs.existsSync(out) && fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).length >= 100,
      30_000,
    );
    await server.query('term_src', "insert into notes select g, 'late ' || g from generate_series(101, 110) g");
    await server.query('term_src', 'alter table notes add column stars int');
    await server.query('term_src', "insert into notes values (111, 'starred', 5)");
    const { code, output } = await running;
    expect(code, output).toBe(0);
    // What the terminal shows: a progress bar drawn while the snapshot copied is erased before each log line written
    // meanwhile, and stays on the screen as it ended.
    const lines = terminalScreen(output).filter(Boolean);
    const logLine = /^\d\d:\d\d:\d\d\.\d{3} (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) \S/;
    const endedBar = /^lines public\.notes \[█+\] 100% 100\/100 rows, [\d,]+ rows\/s, done$/;
    // Every line is a log line of its own (a hint would be indented below a warning; routine events have none).
    for (const line of lines) {
      expect(line, output).toMatch(endedBar.test(line) ? endedBar : logLine);
      expect(line.length, line).toBeLessThanOrEqual(160);
    }
    expect(
      lines.some((l) => /snapshot/.test(l)),
      output,
    ).toBe(true);
    expect(
      lines.some((l) => /schema change|column/.test(l)),
      output,
    ).toBe(true);
    expect(lines.at(-1)).toMatch(/ stopped$/);
  }, 60_000);

  it('status reads as a person expects: phase, position, per-table snapshot progress while it copies, then lag', async () => {
    await server.query('term_src', 'create table big (id bigint primary key, pad text)');
    await server.query('term_src', "insert into big select g, repeat('x', 200) from generate_series(1, 600000) g");
    await server.query('term_src', 'analyze big');
    const targetUrl = await server.createDatabase('term_dst');
    const listen = `127.0.0.1:${await freePort()}`;
    const file = path.join(dir, 'status.yaml');
    fs.writeFileSync(
      file,
      `http: { listen: "${listen}" }
pipelines:
  - name: watched
    source: { type: postgres, url: "${sourceUrl}", tables: [public.big] }
    target: { type: postgres, url: "${targetUrl}" }
`,
    );
    const replicator = new ReplicatorProcess(file, path.join(dir, 'status.log'));
    replicator.start();
    try {
      let readable = '';
      await waitFor('a snapshot in progress in status', async () => {
        readable = (await tributary(['status', '-c', file])).stdout;
        return /snapshot +public\.big running: [1-9]\d* of ~\d+ rows, \d+ rows\/s, ETA \d+ s/.test(readable);
      });
      expect(readable, replicator.log()).toMatch(/^watched: running, phase snapshot\n/);
      // --json is the daemon's own /status, same shape.
      const json = JSON.parse((await tributary(['status', '-c', file, '--json'])).stdout).pipelines[0];
      const served = ((await (await fetch(`http://${listen}/status`)).json()) as { pipelines: object[] }).pipelines[0]!;
      expect(Object.keys(json).sort()).toEqual(Object.keys(served).sort());
      expect(json.snapshot_tables[0]).toMatchObject({ table: 'public.big', status: 'running' });

      expect((await waitForEqualTables(sourceUrl, targetUrl, ['public.big'], 240_000)).equal).toBe(true);
      await server.query('term_src', "insert into big values (600001, 'after')");
      await waitFor('the stream phase with a lag in status', async () => {
        readable = (await tributary(['status', '-c', file])).stdout;
        return /phase stream\n/.test(readable) && /\n +lag +\d+\.\d s\n/.test(readable);
      });
      expect(readable).toMatch(/\n +checkpoint +postgres lsn=[0-9A-F]+\/[0-9A-F]+/);
      expect(readable).toMatch(/\n +saved at +\d{4}-\d\d-\d\dT/);
    } finally {
      expect(await replicator.stop()).toBe(0);
    }
  }, 300_000);
});
