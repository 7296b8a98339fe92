import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tributary } from '../harness/cli.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { ReplicatorProcess } from '../harness/replicator-process.ts';

/**
 * `tributary status --json` shows the schema history a pipeline keeps with its checkpoint: per table, its columns
 * by identity. Judged against the source's own catalog (PostgreSQL pg_attribute), after a drop, an add and a rename
 * that the pipeline read, and again after a restart (the history comes from the checkpoint, not from memory).
 */

interface StatusJson {
  name: string;
  schema_history?: { table: string; columns: string[] }[];
}

async function statusJson(configFile: string): Promise<StatusJson> {
  const { code, stdout, stderr } = await tributary(['status', '-c', configFile, '--json']);
  expect(code, stdout + stderr).toBe(0);
  const parsed = JSON.parse(stdout) as StatusJson[] | { pipelines: StatusJson[] };
  const list = Array.isArray(parsed) ? parsed : parsed.pipelines;
  return list[0]!;
}

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('status --json shows the schema history (PostgreSQL source)', () => {
  let server: PgServer;
  let dir: string;
  let configFile: string;
  let out: string;

  beforeAll(async () => {
    server = await startPostgres();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-history-'));
    const url = await server.createDatabase('hist_src');
    await server.query('hist_src', 'create table t (id int primary key, a text, b int, c text)');
    await server.query('hist_src', "insert into t values (1, 'one', 1, 'x')");
    out = path.join(dir, 'out.jsonl');
    configFile = path.join(dir, 'tributary.yaml');
    fs.writeFileSync(
      configFile,
      `pipelines:
  - name: hist
    source: { type: postgres, url: "${url}", tables: [public.t] }
    target: { type: jsonl, path: "${out}" }
    checkpoints: { type: file, path: hist.checkpoint.json }
`,
    );
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The table's live columns as the catalog numbers them: `attnum:name`. */
  const catalog = async () =>
    (
      await server.query<{ col: string }>(
        'hist_src',
        `select attnum || ':' || attname as col from pg_attribute
          where attrelid = 'public.t'::regclass and attnum > 0 and not attisdropped order by attnum`,
      )
    ).map((r) => r.col);
  const lines = () => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).length : 0);

  it('per table, columns by attribute number as of the checkpoint, across schema changes and restarts', async () => {
    const replicator = new ReplicatorProcess(configFile, path.join(dir, 'run.log'));
    replicator.start();
    try {
      await waitUntil('the snapshot row', () => lines() >= 1);
      await replicator.stop();
      const before = await statusJson(configFile);
      expect(before.schema_history).toEqual([{ table: 'public.t', columns: await catalog() }]);
      expect(before.schema_history?.[0]?.columns).toEqual(['1:id', '2:a', '3:b', '4:c']);

      // Changes made while stopped: read after the restart, from the stream.
      await server.query('hist_src', 'alter table t drop column b');
      await server.query('hist_src', 'alter table t rename column c to c2');
      await server.query('hist_src', 'alter table t add column b int');
      await server.query('hist_src', "insert into t values (2, 'two', 'y', 2)");
      const seen = lines();
      replicator.start();
      await waitUntil(
        'the row after the changes',
        () => lines() > seen && fs.readFileSync(out, 'utf8').includes('"two"'),
      );
      await replicator.stop();
      const after = await statusJson(configFile);
      // b (attnum 3) dropped and added again as attnum 5; c renamed in place (still attnum 4).
      expect(after.schema_history).toEqual([{ table: 'public.t', columns: await catalog() }]);
      expect(after.schema_history?.[0]?.columns).toEqual(['1:id', '2:a', '4:c2', '5:b']);
    } finally {
      if (replicator.running) await replicator.stop();
    }
  });
});
