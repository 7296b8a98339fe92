import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ChangeBatch } from '../../src/core/change-batch.ts';
import type { ChangeEvent } from '../../src/core/change-event.ts';
import {
  DEFAULT_UNAVAILABLE_VALUE,
  type EncodedRecord,
  EnvelopeEncoder,
  keyValueLine,
} from '../../src/envelope/encoder.ts';
import { TransactionTracker } from '../../src/envelope/transaction.ts';
import { TributaryError } from '../../src/errors.ts';
import { FIXED_NOW, postgresEvents } from '../../test/golden/events.ts';
import { type JsonlTargetConfig, jsonlTargetConfig } from './config.ts';
import { target } from './index.ts';
import { JsonlTarget } from './target.ts';

const ctx = { pipeline: 'p1', logger: pino({ level: 'silent' }) };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  vi.restoreAllMocks();
});

function tmpFile(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'jsonl-target-'));
  dirs.push(dir);
  return path.join(dir, 'out', 'events.jsonl');
}

function config(extra: Record<string, unknown>): JsonlTargetConfig {
  return jsonlTargetConfig.parse({ type: 'jsonl', ...extra });
}

function batch(seq: number, events: ChangeEvent[], withCheckpoint = true): ChangeBatch {
  return {
    seq,
    events,
    bytes: 0,
    checkpoint: withCheckpoint
      ? { pipeline: 'p1', phase: 'stream', position: { kind: 'postgres', lsn: `0/${seq + 1}` } }
      : null,
  };
}

describe('JsonlTarget', () => {
  it('writes exactly the golden lines ({"key","value"} per message, tombstones when enabled)', async () => {
    const file = tmpFile();
    const t = new JsonlTarget(
      config({ path: file, tombstones: true, transaction_metadata: true, server_name: 'tributary' }),
      ctx,
      { clock: () => FIXED_NOW },
    );
    await t.open();
    const events = postgresEvents();
    // Split mid-transaction: the first batch ends without a checkpoint.
    await t.write(batch(0, events.slice(0, 3), false));
    await t.write(batch(1, events.slice(3)));
    await t.close();
    // The file holds exactly what the envelope encoder makes of the events, in order, one line per record.
    const encoder = new EnvelopeEncoder({
      format: 'debezium',
      schemas: false,
      tombstones: true,
      unavailableValue: DEFAULT_UNAVAILABLE_VALUE,
      transactionMetadata: true,
      serverName: 'tributary',
      clock: () => FIXED_NOW,
    });
    const tracker = new TransactionTracker();
    const records: EncodedRecord[] = [];
    for (const e of events) encoder.encode(e, records, tracker.step(e).position);
    expect(readFileSync(file, 'utf8')).toBe(`${records.map(keyValueLine).join('\n')}\n`);
  });

  it('leaves tombstones out by default and uses the pipeline name as source.name', async () => {
    const file = tmpFile();
    const t = new JsonlTarget(config({ path: file }), ctx);
    await t.open();
    await t.write(batch(0, postgresEvents()));
    await t.close();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.every((l) => !l.endsWith('"value":null}'))).toBe(true);
    const first = JSON.parse(lines[0]!);
    expect(Object.keys(first)).toEqual(['key', 'value']);
    expect(first.value.source.name).toBe('p1');
    expect(first.value.transaction).toBeNull();
  });

  it('keeps batch order when writes overlap, and appends across reopen', async () => {
    const file = tmpFile();
    const events = postgresEvents();
    const t = new JsonlTarget(config({ path: file, format: 'native' }), ctx);
    await t.open();
    await Promise.all([t.write(batch(0, [events[0]!])), t.write(batch(1, [events[1]!])), t.write(batch(2, []))]);
    await t.close();
    const t2 = new JsonlTarget(config({ path: file, format: 'native' }), ctx);
    await t2.open();
    await t2.write(batch(0, [events[2]!]));
    await t2.close();
    const ops = readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l).value.op);
    expect(ops).toEqual(['r', 'c', 'u']);
  });

  it('cuts a line torn by a crash when it opens the file again', async () => {
    const file = tmpFile();
    const t = new JsonlTarget(config({ path: file }), ctx);
    await t.open();
    await t.write(batch(0, [postgresEvents()[1]!]));
    await t.close();
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, `${good}{"key":{"id":1},"val`);
    const t2 = new JsonlTarget(config({ path: file }), ctx);
    await t2.open();
    await t2.write(batch(1, [postgresEvents()[2]!]));
    await t2.close();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(good.trimEnd());
    for (const l of lines) JSON.parse(l);
  });

  it('writes to stdout for path "-" and resolves after the write callback', async () => {
    const chunks: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation(((text: string, cb?: (err?: Error) => void) => {
      chunks.push(text);
      setTimeout(() => cb?.(), 5);
      return true;
    }) as typeof process.stdout.write);
    const t = new JsonlTarget(config({ path: '-' }), ctx);
    await t.open();
    await t.write(batch(0, [postgresEvents()[1]!]));
    await t.close();
    expect(chunks.join('').split('\n').filter(Boolean)).toHaveLength(1);
  });

  it('rejects a write that fails, and every later write until reset', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(((_text: string, cb?: (err?: Error) => void) => {
      setTimeout(() => cb?.(new Error('EPIPE')), 1);
      return false;
    }) as typeof process.stdout.write);
    const t = new JsonlTarget(config({ path: '-' }), ctx);
    await t.open();
    const e = [postgresEvents()[1]!];
    await expect(t.write(batch(0, e))).rejects.toThrow('EPIPE');
    await expect(t.write(batch(1, e))).rejects.toBeInstanceOf(TributaryError);
    await t.reset();
    vi.restoreAllMocks();
    const ok = vi.spyOn(process.stdout, 'write').mockImplementation(((_t: string, cb?: () => void) => {
      cb?.();
      return true;
    }) as typeof process.stdout.write);
    await t.write(batch(2, e));
    expect(ok).toHaveBeenCalledTimes(1);
  });

  it('fails to open an unwritable path with an operator error', async () => {
    const file = tmpFile();
    writeFileSync(path.dirname(file), 'a file, not a directory');
    const t = new JsonlTarget(config({ path: file }), ctx);
    await expect(t.open()).rejects.toMatchObject({ kind: 'operator' });
    const problems = await target.preflight!(config({ path: file }), ctx);
    // preflight checks writability only; open() reports that `out` is not a directory
    expect(problems).toHaveLength(0);
  });

  it('config: every key is described and unknown keys are rejected', () => {
    for (const [key, schema] of Object.entries(jsonlTargetConfig.shape)) {
      if (key === 'type') continue;
      expect((schema as { description?: string }).description, key).toBeTruthy();
    }
    expect(() => jsonlTargetConfig.parse({ type: 'jsonl', path: 'x', tombstone: true })).toThrow();
  });
});
