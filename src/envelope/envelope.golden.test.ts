import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXED_NOW, mysqlEvents, postgresEvents } from '../../test/golden/events.ts';
import type { ChangeEvent } from '../core/change-event.ts';
import {
  DEFAULT_UNAVAILABLE_VALUE,
  type EncodedRecord,
  EnvelopeEncoder,
  type EnvelopeOptions,
  keyValueLine,
} from './encoder.ts';
import { TransactionTracker } from './transaction.ts';

/**
 * Snapshots of our own `native` format (no reference implementation exists for it): test/golden/<name>.jsonl hold
 * the exact jsonl lines of hand-built events. Regenerate with UPDATE_GOLDEN=1 and review the diff line by line.
 * The Debezium format is judged against real Debezium instead (test/debezium/debezium-golden.test.ts).
 */
const GOLDEN_DIR = path.resolve(import.meta.dirname, '../../test/golden');

function encodeAll(events: ChangeEvent[], options: Partial<EnvelopeOptions>): EncodedRecord[] {
  const encoder = new EnvelopeEncoder({
    format: 'debezium',
    schemas: false,
    tombstones: true,
    unavailableValue: DEFAULT_UNAVAILABLE_VALUE,
    transactionMetadata: true,
    serverName: 'tributary',
    clock: () => FIXED_NOW,
    ...options,
  });
  const tracker = new TransactionTracker();
  const out: EncodedRecord[] = [];
  for (const e of events) encoder.encode(e, out, tracker.step(e).position);
  return out;
}

function checkGolden(name: string, records: EncodedRecord[]): void {
  const lines = records.map(keyValueLine);
  for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
  const file = path.join(GOLDEN_DIR, `${name}.jsonl`);
  const text = `${lines.join('\n')}\n`;
  if (process.env.UPDATE_GOLDEN) writeFileSync(file, text);
  const expected = readFileSync(file, 'utf8').split('\n');
  const actual = text.split('\n');
  for (let i = 0; i < Math.max(expected.length, actual.length); i++) {
    expect(actual[i], `${name}.jsonl line ${i + 1}`).toBe(expected[i]);
  }
}

describe('native format snapshots', () => {
  it('postgres native format without tombstones, custom placeholder', () => {
    checkGolden(
      'postgres-native',
      encodeAll(postgresEvents(), {
        format: 'native',
        tombstones: false,
        transactionMetadata: false,
        unavailableValue: '__toast__',
      }),
    );
  });
  it('mysql native format', () => {
    checkGolden('mysql-native', encodeAll(mysqlEvents(), { format: 'native', tombstones: false }));
  });
});
