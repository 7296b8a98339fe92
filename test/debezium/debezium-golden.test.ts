import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { envelopeKeys, envelopeOptions } from '../../src/envelope/config.ts';
import { compareTopics, formatDifferences, unexplained } from './compare.ts';
import { goldenLineToRecord } from './debezium.ts';
import {
  mysqlKnownDifferences,
  POSTGRES_WORKLOAD_COLUMNS,
  postgresKnownDifferences,
  withoutSnapshotSchemaChanges,
} from './known-differences.ts';
import { MYSQL_ALTERNATIVE_MODES, MYSQL_SERVER_NAME } from './mysql-workload.ts';
import { ALTERNATIVE_MODES, SERVER_NAME } from './postgres-workload.ts';
import { encodeToTopics, linesToStream } from './tributary-records.ts';

/**
 * Our encoder against real Debezium 3.6.1's output, without running Debezium: test/golden/debezium/ holds what
 * Debezium wrote for the PostgreSQL and MySQL 9.7 comparison workloads and the events our source produced in the same run
 * (regenerate both with `npx tsx test/debezium/regenerate-golden.ts`). Every difference must be a documented one.
 */
const DIR = path.resolve(import.meta.dirname, '../golden/debezium');
const read = (name: string) =>
  fs
    .readFileSync(path.join(DIR, name), 'utf8')
    .split('\n')
    .filter((l) => l !== '');

describe('Debezium golden files (PostgreSQL)', () => {
  const stream = linesToStream(read('postgres-source-events.jsonl'));
  const known = postgresKnownDifferences(POSTGRES_WORKLOAD_COLUMNS);

  it('defaults (schemas off): only documented differences', () => {
    const debezium = read('postgres-defaults.jsonl').map(goldenLineToRecord);
    const ours = encodeToTopics(stream, { serverName: SERVER_NAME });
    const differences = compareTopics(debezium, ours);
    expect(formatDifferences(unexplained(differences, known))).toBe('');
    // The comparison saw every kind of record: snapshot reads, creates, updates, deletes with tombstones, a
    // primary-key change, unchanged TOAST, truncate, a logical message.
    const ops = new Set(debezium.map((r) => /"op":"(\w)"/.exec(r.value ?? '')?.[1] ?? 'tombstone'));
    expect([...ops].sort()).toEqual(['c', 'd', 'm', 'r', 't', 'tombstone', 'u']);
    expect(debezium.some((r) => r.value?.includes('__debezium_unavailable_value'))).toBe(true);
  });

  it('JSON schemas and transaction metadata: only documented differences', () => {
    const debezium = read('postgres-schemas-transactions.jsonl').map(goldenLineToRecord);
    const ours = encodeToTopics(stream, { serverName: SERVER_NAME, schemas: true, transactionMetadata: true });
    const differences = compareTopics(debezium, ours);
    expect(formatDifferences(unexplained(differences, known))).toBe('');
    expect(debezium.filter((r) => r.destination === `${SERVER_NAME}.transaction`).length).toBeGreaterThan(10);
  });

  it("Debezium's other modes, selected by its own option names: only documented differences", () => {
    const debezium = read('postgres-modes.jsonl').map(goldenLineToRecord);
    const ours = encodeToTopics(stream, {
      serverName: SERVER_NAME,
      schemas: true,
      modes: modesFromOptions(ALTERNATIVE_MODES),
    });
    const differences = compareTopics(debezium, ours);
    expect(formatDifferences(unexplained(differences, known))).toBe('');
  });
});

/** The envelope options of the same names as Debezium's (a target's config keys), parsed like a config. */
function modesFromOptions(options: Record<string, string>) {
  const config = z.strictObject(envelopeKeys).parse({ ...options });
  return envelopeOptions(config, SERVER_NAME, true).modes;
}

describe('Debezium golden files (MySQL 9.7)', () => {
  const stream = linesToStream(read('mysql-source-events.jsonl'));
  const known = mysqlKnownDifferences(MYSQL_SERVER_NAME);

  it.each([
    ['defaults (schemas off)', 'mysql-defaults.jsonl', false],
    ['JSON schemas and transaction metadata', 'mysql-schemas-transactions.jsonl', true],
  ])('%s: only documented differences', (_name, file, schemas) => {
    const debezium = withoutSnapshotSchemaChanges(read(file).map(goldenLineToRecord), MYSQL_SERVER_NAME);
    const ours = encodeToTopics(stream, { serverName: MYSQL_SERVER_NAME, schemas, transactionMetadata: schemas });
    const differences = compareTopics(debezium, ours);
    expect(formatDifferences(unexplained(differences, known))).toBe('');
    const ops = new Set(debezium.map((r) => /"op":"(\w)"/.exec(r.value ?? '')?.[1] ?? 'other'));
    expect([...ops].sort()).toEqual(['c', 'd', 'other', 'r', 'u']);
  });

  it("Debezium's other modes (unsigned bigint precise, decimal string, connect times, base64 binary)", () => {
    const debezium = withoutSnapshotSchemaChanges(read('mysql-modes.jsonl').map(goldenLineToRecord), MYSQL_SERVER_NAME);
    const modes = modesFromOptions(MYSQL_ALTERNATIVE_MODES);
    const ours = encodeToTopics(stream, { serverName: MYSQL_SERVER_NAME, schemas: true, modes });
    expect(formatDifferences(unexplained(compareTopics(debezium, ours), known))).toBe('');
  });
});
