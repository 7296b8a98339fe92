import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { envelopeKeys, envelopeOptions } from '../../src/envelope/config.ts';
import type { MysqlServer } from '../harness/mariadb.ts';
import { mysqlUnavailableReason, startMysql } from '../harness/mysql-server.ts';
import { compareTopics, formatDifferences, unexplained } from './compare.ts';
import { debeziumUnavailable } from './debezium.ts';
import { mysqlKnownDifferences, withoutSnapshotSchemaChanges } from './known-differences.ts';
import { MYSQL_ALTERNATIVE_MODES, MYSQL_SERVER_NAME, type MysqlRun, runMysqlWorkload } from './mysql-workload.ts';
import { encodeToTopics } from './tributary-records.ts';

/**
 * Real Debezium 3.6.1 (connector-mysql, embedded) and Tributary on the same MySQL 9.7 server and workload, compared
 * event by event. Needs java, javac and mvn, and a throwaway MySQL (root; see test/harness/mysql-server.ts).
 */
const unavailable = debeziumUnavailable() ?? mysqlUnavailableReason() ?? null;
if (unavailable) console.warn(`MySQL Debezium comparison skipped: ${unavailable}`);

describe.skipIf(unavailable !== null)('Debezium 3.6.1 and Tributary on the same MySQL 9.7 workload', () => {
  let server: MysqlServer;
  let run: MysqlRun;
  const known = mysqlKnownDifferences(MYSQL_SERVER_NAME);

  beforeAll(async () => {
    server = await startMysql();
    run = await runMysqlWorkload(server);
  }, 900_000);
  afterAll(async () => server?.stop());

  it.each([
    ['defaults (schemas off)', false],
    ['JSON schemas and transaction metadata', true],
  ])('%s: only documented differences', (_name, schemas) => {
    const debezium = withoutSnapshotSchemaChanges(schemas ? run.debeziumSchemas : run.debezium, MYSQL_SERVER_NAME);
    const ours = encodeToTopics(run.events, { serverName: MYSQL_SERVER_NAME, schemas, transactionMetadata: schemas });
    expect(formatDifferences(unexplained(compareTopics(debezium, ours), known))).toBe('');
    expect(debezium.length).toBeGreaterThan(10);
  });

  it("Debezium's other modes, selected by the same option names", () => {
    const config = z.strictObject(envelopeKeys).parse({ ...MYSQL_ALTERNATIVE_MODES });
    const modes = envelopeOptions(config, MYSQL_SERVER_NAME, true).modes;
    const debezium = withoutSnapshotSchemaChanges(run.debeziumModes, MYSQL_SERVER_NAME);
    const ours = encodeToTopics(run.events, { serverName: MYSQL_SERVER_NAME, schemas: true, modes });
    expect(formatDifferences(unexplained(compareTopics(debezium, ours), known))).toBe('');
  });
});
