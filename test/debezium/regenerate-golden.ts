/**
 * Regenerates the Debezium golden files from real Debezium 3.6.1 on a throwaway PostgreSQL:
 *
 *   npx tsx test/debezium/regenerate-golden.ts
 *
 * Writes test/golden/debezium/postgres*.jsonl: Debezium's records with its defaults (schemas off), Debezium's
 * records with JSON schemas and transaction metadata, and Tributary's source events of the same run (the input the
 * fast test encodes); and test/golden/debezium/mysql*.jsonl the same for a throwaway MySQL 9.7 (needs root, see
 * test/harness/mysql-server.ts). `npx tsx test/debezium/regenerate-golden.ts mysql` (or `postgres`) does one. The expected output is always Debezium's, never our encoder's. Review the diff before
 * committing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startMysql } from '../harness/mysql-server.ts';
import { startPostgres } from '../harness/postgres.ts';
import { debeziumUnavailable, recordToGoldenLine } from './debezium.ts';
import { runMysqlWorkload } from './mysql-workload.ts';
import { runPostgresWorkload } from './postgres-workload.ts';
import { streamToLines } from './tributary-records.ts';

export const GOLDEN_DIR = path.resolve(import.meta.dirname, '../golden/debezium');

const reason = debeziumUnavailable();
if (reason) {
  console.error(reason);
  process.exit(1);
}
const only = process.argv[2];
fs.mkdirSync(GOLDEN_DIR, { recursive: true });
const write = (name: string, lines: string[]) => {
  fs.writeFileSync(path.join(GOLDEN_DIR, name), `${lines.join('\n')}\n`);
  console.log(`${name}: ${lines.length} lines`);
};
if (only === undefined || only === 'postgres') {
  const server = await startPostgres({ throwaway: true });
  try {
    const run = await runPostgresWorkload(server);
    write('postgres-defaults.jsonl', run.debezium.map(recordToGoldenLine));
    write('postgres-schemas-transactions.jsonl', run.debeziumSchemasTx.map(recordToGoldenLine));
    write('postgres-modes.jsonl', run.debeziumModes.map(recordToGoldenLine));
    write('postgres-source-events.jsonl', streamToLines(run.events));
  } finally {
    await server.stop();
  }
}
if (only === undefined || only === 'mysql') {
  const server = await startMysql();
  try {
    const run = await runMysqlWorkload(server);
    write('mysql-defaults.jsonl', run.debezium.map(recordToGoldenLine));
    write('mysql-schemas-transactions.jsonl', run.debeziumSchemas.map(recordToGoldenLine));
    write('mysql-modes.jsonl', run.debeziumModes.map(recordToGoldenLine));
    write('mysql-source-events.jsonl', streamToLines(run.events));
  } finally {
    await server.stop();
  }
}
