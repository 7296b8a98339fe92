import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { parseLsn } from '../../src/core/checkpoint.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { waitForEqualTables } from '../harness/table-digest.ts';
import {
  PGBENCH_TABLES,
  pgbenchInit,
  pgbenchRun,
  Replicator,
  rowDifferences,
  sleep,
  slotConfirmedLsn,
  waitUntil,
  writePipelineConfig,
} from './fault-kit.ts';

/**
 * Fault 4: the checkpoint file cannot be written any more while the pipeline streams (PostgreSQL -> PostgreSQL with
 * `checkpoints: {type: file}`). Permissions do not stop root, so the faults are ones that do: the checkpoint's
 * directory replaced by a regular file (works for any user) and a full file system (a tiny tmpfs, when this process
 * may mount one). Each time the process must exit non-zero by itself with an error naming the file and what to do,
 * and the slot's confirmed_flush_lsn must not be past the last checkpoint durably saved: nothing unsaved was
 * acknowledged. Once the fault is repaired, a restart resumes and must end equal.
 */

interface Streaming {
  name: string;
  sourceUrl: string;
  targetUrl: string;
  replicator: Replicator;
  load: Promise<unknown>;
  failedCleanly: boolean;
}

describe('fault: checkpoint file unwritable', () => {
  let server: PgServer;
  let dir: string;
  const mounts: string[] = [];

  beforeAll(async () => {
    server = await startPostgres();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-fault-ckpt-'));
  });
  afterAll(async () => {
    for (const m of mounts) {
      try {
        execFileSync('umount', [m]);
      } catch {}
    }
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Streams pgbench into the target until streaming checkpoints are on disk and acknowledged. */
  async function streamingPipeline(name: string, checkpointFile: string): Promise<Streaming> {
    const sourceUrl = await server.createDatabase(`${name}_src`);
    const targetUrl = await server.createDatabase(`${name}_dst`);
    await pgbenchInit(server, `${name}_src`, 1);
    const configFile = path.join(dir, `${name}.yaml`);
    writePipelineConfig(configFile, {
      name,
      source: { type: 'postgres', url: sourceUrl, tables: PGBENCH_TABLES, status_interval_ms: 500 },
      target: { type: 'postgres', url: targetUrl },
      checkpoints: { type: 'file', path: checkpointFile },
      batch: { max_wait_ms: 20 },
      retry: { initial_backoff_ms: 100, max_backoff_ms: 1000 },
    });
    const replicator = new Replicator(configFile, path.join(dir, `${name}.log`), {
      TRIBUTARY_LOG_LEVEL: process.env.TRIBUTARY_FAULTS_DEBUG ? 'debug' : 'info',
    });
    replicator.start();
    const load = pgbenchRun(server, `${name}_src`, 15, 2);
    const streaming = await waitUntil(() => readCheckpoint(checkpointFile)?.phase === 'stream', 60_000);
    expect(streaming, replicator.log().slice(-4000)).toBe(true);
    // Some streaming checkpoints saved and acknowledged before the fault.
    await sleep(2000);
    return { name, sourceUrl, targetUrl, replicator, load, failedCleanly: false };
  }

  /** The process exits non-zero by itself, saying which file and what to do; the slot is not past the saved LSN. */
  async function expectCleanFailure(run: Streaming, checkpointFile: string, savedFile: string): Promise<void> {
    const { name, replicator } = run;
    const exit = await replicator.waitForExit(30_000);
    const log = replicator.log();
    expect(exit, `still running 30 s after the fault:\n${log.slice(-4000)}`).toBeDefined();
    expect(exit!.code, log.slice(-4000)).toBe(2);
    // What the operator reads: the plain error line (and its hint) the command prints before exiting.
    const lastLines = operatorMessage(log);
    expect(lastLines).toContain(checkpointFile);
    expect(lastLines).toMatch(/checkpoints\.path|disk space|permissions/);
    expect(log).not.toMatch(/\n\s+at /); // no stack trace for an operator's problem

    const saved = readCheckpoint(savedFile);
    expect(saved?.phase).toBe('stream');
    const confirmed = await slotConfirmedLsn(server, `${name}_src`, `tributary_${name}`);
    expect(confirmed).not.toBeNull();
    const savedLsn = (saved!.position as { lsn: string }).lsn;
    console.info(
      `[faults] checkpoint ${name}: exit ${exit!.code}; saved checkpoint ${savedLsn}, slot confirmed_flush_lsn ${confirmed}; says: ${lastLines.replace(/\s+/g, ' ')}`,
    );
    expect(parseLsn(confirmed!) <= parseLsn(savedLsn), `slot at ${confirmed}, checkpoint at ${savedLsn}`).toBe(true);
    run.failedCleanly = true;
  }

  /**
   * After the repair, a restart resumes and catches up to equal tables. The target's own checkpoint (saved with its
   * data) is ahead of the lagging file; the pipeline resumes after the later of the two, so nothing the target
   * already holds is applied again (the keyless pgbench_history would show it as duplicate rows).
   */
  async function expectRecovery(run: Streaming | undefined, ctx: TestContext): Promise<void> {
    if (!run?.failedCleanly) return ctx.skip(); // the failure step did not pass; nothing to recover
    const { sourceUrl, targetUrl, replicator } = run;
    await run.load;
    replicator.start();
    const comparison = await waitForEqualTables(sourceUrl, targetUrl, PGBENCH_TABLES, 60_000);
    const exitCode = await replicator.stop();
    if (!comparison.equal) {
      const diffs = await rowDifferences(sourceUrl, targetUrl, 'public.pgbench_history', 5);
      expect(comparison.equal, `${JSON.stringify(comparison.tables, null, 2)}\n${JSON.stringify(diffs)}`).toBe(true);
    }
    expect(exitCode).toBe(0);
  }

  describe('directory replaced by a regular file', () => {
    const name = 'ckenotdir';
    let run: Streaming | undefined;

    it('exits non-zero naming the file; the slot is not past the saved checkpoint', { timeout: 120_000 }, async () => {
      const stateDir = path.join(dir, 'state-enotdir');
      const checkpointFile = path.join(stateDir, `${name}.json`);
      run = await streamingPipeline(name, checkpointFile);
      // The directory moves away (keeping the last saved checkpoint) and a regular file takes its place.
      const movedDir = `${stateDir}.moved`;
      fs.renameSync(stateDir, movedDir);
      fs.writeFileSync(stateDir, 'not a directory\n');
      await expectCleanFailure(run, checkpointFile, path.join(movedDir, `${name}.json`));
      // The repair: the directory is put back.
      fs.rmSync(stateDir);
      fs.renameSync(movedDir, stateDir);
    });

    it('after the repair, a restart resumes and ends equal', { timeout: 120_000 }, async (ctx) => {
      await expectRecovery(run, ctx);
    });
  });

  describe('file system full', () => {
    const name = 'ckfull';
    let run: Streaming | undefined;
    let filler = '';

    it('exits non-zero naming the file; the slot is not past the saved checkpoint', {
      timeout: 120_000,
    }, async (ctx) => {
      const mountPoint = path.join(dir, 'tiny-fs');
      fs.mkdirSync(mountPoint);
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mountPoint], { stdio: 'ignore' });
        mounts.push(mountPoint);
      } catch {
        console.info('[faults] checkpoint ckfull skipped: this process may not mount a tmpfs (needs root)');
        return ctx.skip();
      }
      const checkpointFile = path.join(mountPoint, `${name}.json`);
      run = await streamingPipeline(name, checkpointFile);

      // Fill the file system, and keep it full: a save racing with the first fill frees the page of the file it
      // replaces, so every freed page is taken again until the replicator gives up.
      filler = path.join(mountPoint, 'filler');
      const fd = fs.openSync(filler, 'w');
      const page = Buffer.alloc(4096, 1);
      const replicator = run.replicator;
      try {
        const until = Date.now() + 30_000;
        while (replicator.running && Date.now() < until) {
          try {
            fs.writeSync(fd, page);
          } catch (err) {
            expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
            await sleep(2);
          }
        }
      } finally {
        fs.closeSync(fd);
      }
      // The checkpoint file itself still holds the last saved checkpoint (no save could replace it).
      await expectCleanFailure(run, checkpointFile, checkpointFile);
      fs.rmSync(filler); // the repair
    });

    it('after the repair, a restart resumes and ends equal', { timeout: 120_000 }, async (ctx) => {
      await expectRecovery(run, ctx);
    });
  });

  it('parent of the checkpoint path is a regular file at startup: exits at once naming the file', {
    timeout: 60_000,
  }, async () => {
    const name = 'ckbadpath';
    const sourceUrl = await server.createDatabase(`${name}_src`);
    const targetUrl = await server.createDatabase(`${name}_dst`);
    await server.query(`${name}_src`, 'create table t (id int primary key)');
    const notADir = path.join(dir, 'plain-file');
    fs.writeFileSync(notADir, '');
    const checkpointFile = path.join(notADir, `${name}.json`);
    const configFile = path.join(dir, `${name}.yaml`);
    writePipelineConfig(configFile, {
      name,
      source: { type: 'postgres', url: sourceUrl, tables: ['public.t'] },
      target: { type: 'postgres', url: targetUrl },
      checkpoints: { type: 'file', path: checkpointFile },
    });
    const replicator = new Replicator(configFile, path.join(dir, `${name}.log`));
    replicator.start();
    const exit = await replicator.waitForExit(30_000);
    const log = replicator.log();
    expect(exit?.code, log).toBe(2);
    const lastLines = operatorMessage(log);
    expect(lastLines).toContain(checkpointFile);
    expect(lastLines).toMatch(/checkpoints\.path|permissions/);
    expect(log).not.toMatch(/\n\s+at /);
  });
});

/**
 * What the operator reads: the message and hint of the last failure the process logged (a `pipeline_failed` JSON
 * line; on a terminal the same text is one short line), or the `error: ...` line a command printed before any
 * pipeline ran ('' when there is none).
 */
function operatorMessage(log: string): string {
  const lines = log.trimEnd().split('\n');
  for (let at = lines.length - 1; at >= 0; at--) {
    const line = lines[at]!;
    if (line.startsWith('error: ')) return lines.slice(at, at + 2).join('\n');
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { event?: string; msg?: string };
      if (entry.event === 'pipeline_failed' && entry.msg) return entry.msg;
    } catch {
      // not a log line
    }
  }
  return '';
}

function readCheckpoint(file: string): { phase: string; position: unknown } | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}
