import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { ReplicatorProcess } from '../harness/replicator-process.ts';
import { waitForEqualTables } from '../harness/table-digest.ts';

const execFileAsync = promisify(execFile);
const TABLES = [
  'public.pgbench_accounts',
  'public.pgbench_branches',
  'public.pgbench_tellers',
  'public.pgbench_history',
];

/**
 * The spine's promise: a pgbench load replicated PostgreSQL -> PostgreSQL while the replicator is SIGKILLed and
 * restarted several times ends with identical tables (sorted full-row hashes), pgbench_history (no key) included.
 */
describe('PostgreSQL -> PostgreSQL under pgbench with SIGKILL restarts', () => {
  let server: PgServer;
  let dir: string;
  let sourceUrl: string;
  let targetUrl: string;

  beforeAll(async () => {
    server = await startPostgres();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-crash-'));
    sourceUrl = await server.createDatabase('bench_src');
    targetUrl = await server.createDatabase('bench_dst');
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('ends identical after catch-up', async () => {
    const pgbench = path.join(server.binDir ?? '/usr/lib/postgresql/15/bin', 'pgbench');
    const conn = ['-h', server.host, '-p', String(server.port), '-U', 'postgres', 'bench_src'];
    await execFileAsync(pgbench, ['-i', '-s', '1', '-q', ...conn]);
    // pgbench_history has no key: the operator's fix is REPLICA IDENTITY FULL.
    await server.query('bench_src', 'alter table pgbench_history replica identity full');

    const configFile = path.join(dir, 'pipeline.yaml');
    fs.writeFileSync(
      configFile,
      `pipelines:
  - name: bench
    source: { type: postgres, url: "${sourceUrl}", tables: [${TABLES.join(', ')}] }
    target: { type: postgres, url: "${targetUrl}" }
    batch: { max_wait_ms: 20 }
    retry: { initial_backoff_ms: 100, max_backoff_ms: 1000 }
`,
    );
    const replicator = new ReplicatorProcess(configFile, path.join(dir, 'replicator.log'));
    replicator.start();

    const load = execFileAsync(pgbench, ['-T', '25', '-c', '4', '-j', '2', '-n', ...conn]);
    let kills = 0;
    const loadDone = load.then(() => true);
    while (!(await Promise.race([loadDone, sleep(1500 + Math.random() * 2500).then(() => false)]))) {
      await replicator.kill9();
      kills += 1;
      await sleep(200);
      replicator.start();
    }
    const comparison = await waitForEqualTables(sourceUrl, targetUrl, TABLES, 90_000);
    const exitCode = await replicator.stop();
    if (!comparison.equal) console.error(replicator.log().slice(-5000));
    expect(kills).toBeGreaterThanOrEqual(4);
    expect(comparison.tables.map((t) => t.table)).toEqual(TABLES);
    expect(comparison.equal, JSON.stringify(comparison.tables, null, 2)).toBe(true);
    expect(exitCode).toBe(0);
    // The load really ran through the crashes: thousands of pgbench transactions, each adding a history row.
    expect((comparison.tables[3]!.source as { rows: number }).rows).toBeGreaterThan(1000);
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
