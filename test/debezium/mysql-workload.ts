/**
 * One MySQL workload run through real Debezium (connector-mysql, schema history in a file) and through Tributary's
 * MySQL source at the same time: snapshot of every type in our MySQL type table, then inserts, updates, deletes, a
 * primary-key change and a DDL statement. Debezium runs with its defaults (schemas off) and with JSON schemas and
 * transaction metadata.
 */
import { mysqlSourceConfig } from '../../connectors/mysql/source/config.ts';
import { MysqlSource } from '../../connectors/mysql/source/source.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { MYSQL_TYPES_COLUMNS, MYSQL_TYPES_DDL, MYSQL_TYPES_VALUES } from '../fixtures/mysql-types.ts';
import type { MysqlServer } from '../harness/mariadb.ts';
import { type DebeziumRecord, runDebezium, sawWithEnd } from './debezium.ts';
import type { RecordedStream } from './tributary-records.ts';

export const MYSQL_SERVER_NAME = 'myref';
export const MYSQL_DATABASE = 'dbzref';

const SETUP_SQL = [
  MYSQL_TYPES_DDL,
  `INSERT INTO types (id, ${MYSQL_TYPES_COLUMNS}) VALUES (1, ${MYSQL_TYPES_VALUES.slice(1)}`,
  'INSERT INTO types (id) VALUES (2)',
  'CREATE TABLE done (id INT PRIMARY KEY)',
];

export const MYSQL_STREAM_SQL: string[] = [
  `INSERT INTO types (id, ${MYSQL_TYPES_COLUMNS}) SELECT id + 10, ${MYSQL_TYPES_COLUMNS} FROM types`,
  "UPDATE types SET vc = 'changed', d2 = 0.5, dt = '1969-12-31', tm = '00:00:00.5' WHERE id = 11",
  'DELETE FROM types WHERE id = 12',
  'UPDATE types SET id = 20 WHERE id = 11',
  'ALTER TABLE types ADD COLUMN extra INT',
  'INSERT INTO types (id, extra) VALUES (30, 7)',
  'INSERT INTO done VALUES (1)',
];

/** Debezium's non-default modes for MySQL, under its own option names. */
export const MYSQL_ALTERNATIVE_MODES = {
  'bigint.unsigned.handling.mode': 'precise',
  'decimal.handling.mode': 'string',
  'time.precision.mode': 'connect',
  'binary.handling.mode': 'base64',
} as const;

export interface MysqlRun {
  debezium: DebeziumRecord[];
  debeziumSchemas: DebeziumRecord[];
  /** Debezium with JSON schemas and MYSQL_ALTERNATIVE_MODES. */
  debeziumModes: DebeziumRecord[];
  events: RecordedStream;
}

const sawDone = (r: DebeziumRecord[]) => r.some((x) => x.destination === `${MYSQL_SERVER_NAME}.${MYSQL_DATABASE}.done`);
const snapshotDone = (r: DebeziumRecord[]) => r.some((x) => x.value?.includes('"snapshot":"last"'));

export async function runMysqlWorkload(server: MysqlServer): Promise<MysqlRun> {
  await server.createDatabase(MYSQL_DATABASE);
  // The type table holds zero dates, which MySQL's default sql_mode refuses (throwaway server: set globally).
  await server.query("SET GLOBAL sql_mode = ''");
  for (const sql of SETUP_SQL) await server.query(sql, [], MYSQL_DATABASE);
  const streamed = { started: false };
  const seen: { a: DebeziumRecord[]; b: DebeziumRecord[]; c: DebeziumRecord[] } = { a: [], b: [], c: [] };
  const props = (serverId: number, schemas: boolean) => ({
    name: `debezium-reference-${serverId}`,
    'connector.class': 'io.debezium.connector.mysql.MySqlConnector',
    'database.hostname': server.host,
    'database.port': server.port,
    'database.user': 'root',
    'database.password': '',
    'database.server.id': serverId,
    'topic.prefix': MYSQL_SERVER_NAME,
    'database.include.list': MYSQL_DATABASE,
    'key.converter.schemas.enable': schemas,
    'value.converter.schemas.enable': schemas,
  });
  const a = runDebezium({
    properties: props(5401, false),
    until: (r) => {
      seen.a = r;
      return streamed.started && sawDone(r);
    },
  });
  const b = runDebezium({
    properties: { ...props(5402, true), 'provide.transaction.metadata': true },
    until: (r) => {
      seen.b = r;
      return (
        streamed.started &&
        sawWithEnd(r, `${MYSQL_SERVER_NAME}.${MYSQL_DATABASE}.done`, `${MYSQL_SERVER_NAME}.transaction`)
      );
    },
  });
  const c = runDebezium({
    properties: { ...props(5404, true), ...MYSQL_ALTERNATIVE_MODES },
    until: (r) => {
      seen.c = r;
      return streamed.started && sawDone(r);
    },
  });
  const ctx = { pipeline: 'tributary_myref', logger: createLogger({ level: 'warn', pretty: false }) };
  const source = new MysqlSource(
    mysqlSourceConfig.parse({ type: 'mysql', url: server.url(), databases: [MYSQL_DATABASE], server_id: 5403 }),
    ctx,
  );
  const events: RecordedStream = [];
  let snapshotFinished = false;
  const tributary = (async () => {
    await source.open(null);
    try {
      for await (const batch of source.batches()) {
        events.push(...batch.events);
        if (batch.checkpoint) {
          events.push({ checkpoint: batch.checkpoint });
          await source.commit(batch.checkpoint);
          if (batch.checkpoint.phase === 'stream') snapshotFinished = true;
        }
        if (streamed.started && batch.events.some((e) => e.table.name === 'done')) break;
      }
    } finally {
      await source.close();
    }
  })();
  try {
    const deadline = Date.now() + 240_000;
    while (!(snapshotDone(seen.a) && snapshotDone(seen.b) && snapshotDone(seen.c) && snapshotFinished)) {
      if (Date.now() > deadline) throw new Error('snapshots did not finish in time');
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const sql of MYSQL_STREAM_SQL) await server.query(sql, [], MYSQL_DATABASE);
    streamed.started = true;
    const [debezium, debeziumSchemas, debeziumModes] = await Promise.all([a, b, c, tributary]);
    return { debezium, debeziumSchemas, debeziumModes, events };
  } finally {
    void source.close();
    await Promise.allSettled([a, b, c, tributary]);
  }
}
