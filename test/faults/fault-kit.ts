import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, expect } from 'vitest';
import { mulberry32 } from '../fixtures/seeded-random.ts';
import { serviceAccount } from '../harness/os-user.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { pgTableDigest } from '../harness/table-digest.ts';

/** Helpers shared by the fault scenarios: load generators, the replicator as a child process, server outages. */

export const execFileAsync = promisify(execFile);

/** TRIBUTARY_FAULTS_LONG=1 lengthens every load (nightly or by hand); the default keeps `npm test` short. */
export const LONG = process.env.TRIBUTARY_FAULTS_LONG === '1';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A seeded generator, so a failing random schedule can be replayed: every scenario prints its seed, and
 * TRIBUTARY_FAULT_SEED=<n> (or TRIBUTARY_FAULTS_SEED) reuses it.
 */
export function seededRandom(label: string): { seed: number; next: () => number } {
  const given = process.env.TRIBUTARY_FAULT_SEED ?? process.env.TRIBUTARY_FAULTS_SEED;
  const seed = Number(given ?? Math.floor(Math.random() * 2 ** 31));
  console.info(`[faults] ${label}: seed ${seed} (replay with TRIBUTARY_FAULT_SEED=${seed})`);
  return { seed, next: mulberry32(seed) };
}

export const PGBENCH_TABLES = [
  'public.pgbench_accounts',
  'public.pgbench_branches',
  'public.pgbench_tellers',
  'public.pgbench_history',
];

function pgbenchBinary(server: PgServer): string {
  const own = server.binDir ? path.join(server.binDir, 'pgbench') : undefined;
  if (own && fs.existsSync(own)) return own;
  // The embedded server ships no pgbench: the system one speaks to any recent server.
  return '/usr/bin/pgbench';
}

function pgbenchConn(server: PgServer, database: string): string[] {
  return ['-h', server.host, '-p', String(server.port), '-U', 'postgres', database];
}

/** pgbench -i at the given scale; pgbench_history gets REPLICA IDENTITY FULL (it has no key). */
export async function pgbenchInit(server: PgServer, database: string, scale = 1): Promise<void> {
  await execFileAsync(pgbenchBinary(server), ['-i', '-s', String(scale), '-q', ...pgbenchConn(server, database)]);
  await server.query(database, 'alter table pgbench_history replica identity full');
}

/**
 * A pgbench load for `seconds`. Resolves with its exit status instead of rejecting: a load cut short by a server
 * restart is expected in some scenarios, and the comparison at the end decides.
 */
export async function pgbenchRun(
  server: PgServer,
  database: string,
  seconds: number,
  clients = 4,
): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(pgbenchBinary(server), [
      '-T',
      String(seconds),
      '-c',
      String(clients),
      '-j',
      '2',
      '-n',
      ...pgbenchConn(server, database),
    ]);
    return { ok: true, output: stdout + stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? e.message}` };
  }
}

/**
 * The real `tributary run` as a child process, with what the fault scenarios need beyond the harness's
 * ReplicatorProcess: its pid (for /proc RSS samples), its exit code, and waiting for it to exit on its own.
 */
export class Replicator {
  private child?: ChildProcess;
  private exit?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  starts = 0;
  lastExit: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(
    readonly configFile: string,
    readonly logFile: string,
    private readonly env: NodeJS.ProcessEnv = {},
  ) {}

  start(): void {
    if (this.running) throw new Error('the replicator is already running');
    const log = fs.openSync(this.logFile, 'a');
    fs.writeSync(log, `--- start ${this.starts + 1} at ${new Date().toISOString()}\n`);
    const child = spawn(process.execPath, ['bin/tributary.js', 'run', '-c', this.configFile], {
      stdio: ['ignore', log, log],
      env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'info', ...this.env },
    });
    fs.closeSync(log);
    this.child = child;
    this.starts += 1;
    this.lastExit = null;
    this.exit = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.lastExit = { code, signal };
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL: no draining, no last checkpoint. */
  async kill9(): Promise<void> {
    if (!this.child) return;
    this.child.kill('SIGKILL');
    await this.exit;
    this.child = undefined;
  }

  /**
   * SIGTERM, then the exit code of the drained shutdown. A process started moments ago gets its signal only once it
   * logged its first line (its signal handlers are set by then): before, SIGTERM ends Node at once, by the signal.
   */
  async stop(timeoutMs = 60_000): Promise<number | null> {
    if (!this.child) return this.lastExit?.code ?? null;
    await waitUntil(() => !this.running || this.loggedSinceStart(), 30_000, 100);
    if (!this.child) return this.lastExit?.code ?? null;
    this.child.kill('SIGTERM');
    const result = await this.waitForExit(timeoutMs);
    if (!result) {
      await this.kill9();
      throw new Error(`the replicator did not stop within ${timeoutMs} ms of SIGTERM`);
    }
    return result.code;
  }

  /** Waits for the process to exit on its own; undefined when it is still running after the timeout. */
  async waitForExit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    if (!this.exit) return undefined;
    const result = await Promise.race([this.exit, sleep(timeoutMs).then(() => undefined)]);
    if (result) this.child = undefined;
    return result;
  }

  /** Resident set size of the running process in KiB (VmRSS), or undefined when it is not running. */
  rssKb(): number | undefined {
    const pid = this.pid;
    if (pid === undefined) return undefined;
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      return m ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  log(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
  }

  /** Whether the current run wrote a JSON log line yet (after its `--- start N` marker). */
  private loggedSinceStart(): boolean {
    const log = this.log();
    const marker = log.lastIndexOf(`--- start ${this.starts} at `);
    return marker >= 0 && log.indexOf('\n{', marker) >= 0;
  }

  /** The JSON log lines with the given event name. */
  events(event: string): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.log().split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (parsed.event === event) out.push(parsed);
      } catch {}
    }
    return out;
  }
}

/**
 * Stops and starts a throwaway PostgreSQL server without deleting its data directory (the harness only offers
 * restart() and a stop() that removes everything). Found through `show data_directory`; the server log is the
 * harness's own, next to the data directory.
 */
export class PgOutage {
  private dataDir?: string;

  constructor(private readonly server: PgServer) {}

  private async run(args: string[]): Promise<void> {
    if (!this.server.binDir) throw new Error('PgOutage needs a throwaway server (binDir unknown)');
    const account = serviceAccount('postgres');
    await execFileAsync(path.join(this.server.binDir, 'pg_ctl'), args, { uid: account?.uid, gid: account?.gid });
  }

  /** A clean stop (`fast`), or a crash (`immediate`: every server process quits at once, recovery on the next start). */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    this.dataDir ??= (
      await this.server.query<{ d: string }>('postgres', "select current_setting('data_directory') as d")
    )[0]!.d;
    await this.run(['-D', this.dataDir, '-m', mode, '-w', 'stop']);
  }

  async start(): Promise<void> {
    if (!this.dataDir) throw new Error('start() before stop()');
    const log = path.join(path.dirname(this.dataDir), 'server.log');
    await this.run(['-D', this.dataDir, '-l', log, '-w', '-t', '60', 'start']);
  }
}

/** confirmed_flush_lsn of a replication slot (text), or null when the slot does not exist or has none. */
export async function slotConfirmedLsn(server: PgServer, database: string, slot: string): Promise<string | null> {
  const rows = await server.query<{ lsn: string | null }>(
    database,
    'select confirmed_flush_lsn::text as lsn from pg_replication_slots where slot_name = $1',
    [slot],
  );
  return rows[0]?.lsn ?? null;
}

/**
 * `tributary verify` as a second opinion after the digest comparison. Its exit code is for the scenario to judge:
 * only "equal" (0) is a pass; "could not compare" (2) is not.
 */
export async function runVerify(configFile: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, ['bin/tributary.js', 'verify', '-c', configFile], {
      timeout: 120_000,
    });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? e.message}` };
  }
}

/** Polls `check` until it returns true or the time is up. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 200) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(stepMs);
  }
  return false;
}

/** A pipeline config file for `tributary run` (YAML; the values are JSON, which YAML reads as is). */
/** What a parallel-snapshot fault test reads of one table's copy from the target's checkpoint. */
export interface DurableCopy {
  /** Rows of the table the checkpoint counts as copied. */
  rows: number;
  done: boolean;
}

/**
 * Kills 2 and 3 of a parallel-snapshot fault test: each restart resumes `table` exactly after the rows durable at
 * the last kill (its `incremental_snapshot_table_started` line says where), and is SIGKILLed at a seeded moment once a chunk of the resumed copy is durable. Returns the schedule lines.
 */
export async function killResumedCopies(options: {
  replicator: Replicator;
  table: string;
  durable: () => Promise<DurableCopy | null>;
  durableRows: number;
  random: { next: () => number };
  maxDelayMs: number;
  pollMs: number;
}): Promise<string[]> {
  const { replicator, table, durable, random } = options;
  const schedule: string[] = [];
  let durableRows = options.durableRows;
  const resumedLine = (startsBefore: number) =>
    replicator
      .events('incremental_snapshot_table_started')
      .slice(startsBefore)
      .find((e) => e.table === table);
  for (let kill = 2; kill <= 3; kill++) {
    const startsBefore = replicator.events('incremental_snapshot_table_started').length;
    replicator.start();
    expect(await waitUntil(() => resumedLine(startsBefore) !== undefined, 60_000)).toBe(true);
    const resumed = resumedLine(startsBefore)!;
    expect(Number(resumed.rows_done)).toBe(durableRows);
    expect(Array.isArray(resumed.resume_after)).toBe(true);
    // Once a chunk of the resumed copy is durable, at a seeded moment.
    const moved = await waitUntil(async () => ((await durable())?.rows ?? 0) > durableRows, 60_000, options.pollMs);
    const delay = Math.floor(random.next() * options.maxDelayMs);
    await sleep(delay);
    const state = await durable();
    if (!moved || state?.done) {
      schedule.push(`kill ${kill}: not made, the copy of ${table} ended first`);
      break;
    }
    await replicator.kill9();
    const after = (await durable())!;
    schedule.push(
      `kill ${kill} at ${delay} ms after a resumed chunk was durable: resumed after ${durableRows} rows, ${after.rows} durable at the kill`,
    );
    expect(after.rows).toBeGreaterThanOrEqual(durableRows);
    durableRows = after.rows;
  }
  return schedule;
}

export function writePipelineConfig(
  file: string,
  pipeline: { name: string; source: object; target: object; checkpoints?: object; batch?: object; retry?: object },
  http?: { listen: string },
): void {
  const lines = [...(http ? [`http: ${JSON.stringify(http)}`] : []), 'pipelines:', `  - name: ${pipeline.name}`];
  for (const key of ['source', 'target', 'checkpoints', 'batch', 'retry'] as const) {
    const value = pipeline[key];
    if (value !== undefined) lines.push(`    ${key}: ${JSON.stringify(value)}`);
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

/** Rows whose count differs between source and target (as row text), for a failure message; at most `limit`. */
export async function rowDifferences(
  sourceUrl: string,
  targetUrl: string,
  table: string,
  limit = 20,
): Promise<{ row: string; source: number; target: number }[]> {
  const counts = async (url: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ row: string; n: string }>(
        `select t::text as row, count(*) as n from ${table} t group by 1`,
      );
      return new Map(rows.map((r) => [r.row, Number(r.n)]));
    } finally {
      await client.end();
    }
  };
  const [s, t] = await Promise.all([counts(sourceUrl), counts(targetUrl)]);
  const out: { row: string; source: number; target: number }[] = [];
  for (const row of new Set([...s.keys(), ...t.keys()])) {
    const a = s.get(row) ?? 0;
    const b = t.get(row) ?? 0;
    if (a !== b) out.push({ row, source: a, target: b });
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * The scenario of a PostgreSQL-to-PostgreSQL pipeline under a pgbench load, with source and target on separate
 * throwaway servers (so either can go down alone). Registers the servers' beforeAll/afterAll: call it inside the
 * scenario's describe. The fields are set once beforeAll has run.
 */
export interface PgPairScenario {
  source: PgServer;
  target: PgServer;
  dir: string;
  sourceDb: string;
  sourceUrl: string;
  targetUrl: string;
}

export function pgPairScenario(label: string, sourceDb: string, targetDb: string): PgPairScenario {
  const scenario = { sourceDb } as PgPairScenario;
  beforeAll(async () => {
    [scenario.source, scenario.target] = await Promise.all([
      startPostgres({ throwaway: true }),
      startPostgres({ throwaway: true }),
    ]);
    scenario.dir = fs.mkdtempSync(path.join(os.tmpdir(), `tributary-fault-${label}-`));
    scenario.sourceUrl = await scenario.source.createDatabase(sourceDb);
    scenario.targetUrl = await scenario.target.createDatabase(targetDb);
  });
  afterAll(async () => {
    await Promise.all([scenario.source?.stop(), scenario.target?.stop()]);
    if (scenario.dir) fs.rmSync(scenario.dir, { recursive: true, force: true });
  });
  return scenario;
}

/**
 * Initialises pgbench on the source, writes the pipeline config and starts the replicator; resolves once the
 * snapshot is done (the target has every pgbench account) and the replicator is streaming.
 */
export async function startStreaming(
  scenario: PgPairScenario,
  pipeline: { name: string; target?: object; retry: object },
): Promise<{ configFile: string; replicator: Replicator }> {
  await pgbenchInit(scenario.source, scenario.sourceDb, 1);
  const configFile = path.join(scenario.dir, 'pipeline.yaml');
  writePipelineConfig(configFile, {
    name: pipeline.name,
    source: { type: 'postgres', url: scenario.sourceUrl, tables: PGBENCH_TABLES },
    target: { type: 'postgres', url: scenario.targetUrl, ...pipeline.target },
    batch: { max_wait_ms: 20 },
    retry: pipeline.retry,
  });
  const replicator = new Replicator(configFile, path.join(scenario.dir, 'replicator.log'));
  replicator.start();
  const streaming = await waitUntil(
    async () =>
      (await pgTableDigest(scenario.targetUrl, 'public.pgbench_accounts').catch(() => ({ rows: 0 }))).rows === 100_000,
    60_000,
    300,
  );
  expect(streaming, replicator.log().slice(-4000)).toBe(true);
  return { configFile, replicator };
}

/**
 * What a running replicator says about itself over its HTTP endpoint: /metrics (Prometheus text) and /status. The
 * fault scenarios read it to show where a kill landed (events handed to the target, batches written, checkpoint).
 */
export class ReplicatorEndpoint {
  constructor(readonly port: number) {}

  /** The sum of the samples of one metric whose labels include all of `labels` (0 when none or unreachable). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await this.get('/metrics').catch(() => '');
    let sum = 0;
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const have = m[2] ?? '';
      if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) sum += Number(m[3]);
    }
    return sum;
  }

  /** The first pipeline of /status, or undefined when the endpoint does not answer (yet). */
  async status(): Promise<
    | {
        status: string;
        phase: string;
        checkpoint: Record<string, unknown> | null;
        snapshot_tables?: { table: string; status: string; rows_copied: number; estimated_rows: number | null }[];
      }
    | undefined
  > {
    const text = await this.get('/status').catch(() => undefined);
    if (!text) return undefined;
    return (JSON.parse(text) as { pipelines: never[] }).pipelines[0];
  }

  private async get(pathname: string): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${this.port}${pathname}`, { signal: AbortSignal.timeout(5000) });
    return res.text();
  }
}

/** Parses a PostgreSQL LSN (`16/B374D848`) into a bigint, for comparisons. */
export function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

/**
 * Inserts two rows and deletes one per transaction in the keyless table `ledger` (run int, n int, note varchar)
 * of the URL's database until stopped, resolving with the transactions tried; reconnecting while the server
 * is down (a transaction whose commit answer was lost may or may not be there: the comparison reads the source).
 */
export function mysqlLedgerLoop(url: string): { stop: () => Promise<number> } {
  let running = true;
  let n = 0;
  const done = (async () => {
    let c: mysql.Connection | undefined;
    while (running) {
      try {
        if (!c) {
          c = await mysql.createConnection({ uri: url });
          c.on('error', () => {});
        }
        n++;
        await c.query('begin');
        await c.query('insert into ledger values (?, 1, ?), (?, 2, ?)', [n, `loop ${n}`, n, `loop ${n}`]);
        if (n % 3 === 0) await c.query('delete from ledger where run = ? and n = 2', [n - 1]);
        await c.query('commit');
        await sleep(10);
      } catch {
        c?.destroy();
        c = undefined;
        await sleep(200);
      }
    }
    await c?.end().catch(() => undefined);
    return n;
  })();
  return {
    stop: async () => {
      running = false;
      return done;
    },
  };
}

/** The keyless table `mysqlLedgerLoop` writes (MySQL/MariaDB). */
export const MYSQL_LEDGER_DDL = 'create table ledger (run int not null, n int not null, note varchar(100))';
