import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { envelopeKeys, envelopeOptions } from '../../src/envelope/config.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { compareTopics, formatDifferences, unexplained } from './compare.ts';
import { debeziumUnavailable } from './debezium.ts';
import { POSTGRES_WORKLOAD_COLUMNS, postgresKnownDifferences } from './known-differences.ts';
import { ALTERNATIVE_MODES, type PostgresRun, runPostgresWorkload, SERVER_NAME } from './postgres-workload.ts';
import { encodeToTopics, jsonlToTopics } from './tributary-records.ts';

/**
 * Real Debezium 3.6.1 (embedded engine, JsonConverter) and Tributary on the same PostgreSQL database and workload,
 * each with its own slot and publication; compared event by event. Needs java, javac and mvn (CI has them).
 */
const unavailable = debeziumUnavailable();
if (unavailable) console.warn(unavailable);

describe.skipIf(unavailable !== null)('Debezium 3.6.1 and Tributary on the same PostgreSQL workload', () => {
  let server: PgServer;
  let run: PostgresRun;
  const known = postgresKnownDifferences(POSTGRES_WORKLOAD_COLUMNS);

  beforeAll(async () => {
    server = await startPostgres({ throwaway: true });
    run = await runPostgresWorkload(server);
  }, 600_000);
  afterAll(async () => server?.stop());

  it("the jsonl target's output equals Debezium's defaults, but for the documented differences", () => {
    const differences = compareTopics(run.debezium, jsonlToTopics(run.tributaryLines, SERVER_NAME));
    expect(formatDifferences(unexplained(differences, known))).toBe('');
    expect(run.debezium.length).toBeGreaterThan(30);
  });

  it("with Debezium's other modes, selected by the same option names", () => {
    const config = z.strictObject(envelopeKeys).parse({ ...ALTERNATIVE_MODES });
    const modes = envelopeOptions(config, SERVER_NAME, true).modes;
    const ours = encodeToTopics(run.events, { serverName: SERVER_NAME, schemas: true, modes });
    expect(formatDifferences(unexplained(compareTopics(run.debeziumModes, ours), known))).toBe('');
  });

  it('with JSON schemas and transaction metadata, too', () => {
    const ours = encodeToTopics(run.events, { serverName: SERVER_NAME, schemas: true, transactionMetadata: true });
    const differences = compareTopics(run.debeziumSchemasTx, ours);
    expect(formatDifferences(unexplained(differences, known))).toBe('');
  });
});
