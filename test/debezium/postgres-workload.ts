/**
 * One PostgreSQL workload run through real Debezium and through Tributary's PostgreSQL source at the same time, each
 * with its own slot and publication: snapshot of every type in our type table, then inserts, updates, deletes, a
 * primary-key change, an unchanged TOAST value, a multi-table transaction, a truncate and a logical message.
 *
 * Debezium runs twice side by side: with its defaults (schemas off), and with JSON schemas and transaction metadata
 * on. Tributary's events are written through the jsonl target (its real output) and kept as events, the input of
 * the fast golden test.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jsonlTargetConfig } from '../../connectors/jsonl/config.ts';
import { JsonlTarget } from '../../connectors/jsonl/target.ts';
import { PostgresSource } from '../../connectors/postgres/source/source.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { TYPE_ROWS, TYPES_DDL } from '../fixtures/postgres-types.ts';
import type { PgServer } from '../harness/postgres.ts';
import { type DebeziumRecord, postgresConnectorProperties, runDebezium, sawWithEnd } from './debezium.ts';
import type { RecordedStream } from './tributary-records.ts';

export const SERVER_NAME = 'ref';
export const DATABASE = 'dbzref';
const TABLES = ['public.alltypes', 'public.ext', 'public.toasted', 'public.full_image', 'public.done'];

export const SETUP_SQL = `${TYPES_DDL}
${TYPE_ROWS}
create table toasted (id int primary key, big text, n int);
-- md5 text does not compress well: stored out of line, so an update that leaves it alone does not resend it.
insert into toasted select 1, string_agg(md5(g::text), ''), 1 from generate_series(1, 400) g;
create table full_image (id int primary key, v text, n numeric(6,2));
alter table full_image replica identity full;
insert into full_image values (1, 'one', 1.5), (2, 'two', 2.5);
create table done (id int primary key);`;

/** Streamed changes, one transaction per entry. */
export const STREAM_SQL: string[] = [
  'insert into alltypes select id + 10, i2, i4, i8, n, n2, f4, f8, b, c, vc, t, ba, u, j, jb, d, tm, ttz, ts, ts3, tstz, iv, ai, at, mood, pi, ir, fr, pr, inet, cidr, mac, bt, vb, m, x, tv, pt, ln, bx, pg, ci, ls, pa from alltypes',
  `update alltypes t set (i2, i4, i8, n, n2, f4, f8, b, c, vc, t, ba, u, j, jb, d, tm, ttz, ts, ts3, tstz, iv, ai, at, mood, pi, ir, fr, pr, inet, cidr, mac, bt, vb, m, x, tv, pt, ln, bx, pg, ci, ls, pa) =
    (select i2, i4, i8, n, n2, f4, f8, b, c, vc, t, ba, u, j, jb, d, tm, ttz, ts, ts3, tstz, iv, ai, at, mood, pi, ir, fr, pr, inet, cidr, mac, bt, vb, m, x, tv, pt, ln, bx, pg, ci, ls, pa from alltypes where id = 2)
   where t.id = 11`,
  'delete from alltypes where id = 13',
  'update alltypes set id = 20 where id = 14',
  "insert into ext select id + 10, h, ct, hs from ext; update ext set ct = 'NEW' where id = 11",
  'update toasted set n = 2 where id = 1',
  "begin; update full_image set v = 'uno' where id = 1; delete from full_image where id = 2; insert into toasted values (2, 'small', 1); commit",
  `insert into alltypes (id, d, ts, tstz, tm, n, n2, iv, bt, vb) values
    (30, '10000-01-01', '10000-01-01 00:00:00', '10000-01-01 00:00:00+00', '00:00:00.000001', 100, 0, '1 day 00:00:01.5', B'1111', B'1000000001'),
    (31, '1969-12-31', '1969-12-31 23:59:59.999999', '1969-12-31 23:59:59.5-02:30', '12:00', 0, -1.1, '-00:00:00.000001', B'0001', B'0000000000000000000000000000000000000000000000000000000000000000001'),
    (32, '0001-01-01 BC', '0001-01-01 00:00:00 BC', '2024-01-01 00:00:00+05:45', '00:00:00', -1.10, 1, '3 mons', B'1000', B'1')`,
  'truncate full_image',
  "select pg_logical_emit_message(true, 'demo', 'hello')",
  'insert into done values (1)',
];

/** What one run produced. */
export interface PostgresRun {
  /** Debezium, default settings (schemas off). */
  debezium: DebeziumRecord[];
  /** Debezium with JSON schemas and transaction metadata. */
  debeziumSchemasTx: DebeziumRecord[];
  /** Debezium with JSON schemas and its other modes (ALTERNATIVE_MODES). */
  debeziumModes: DebeziumRecord[];
  /** Tributary's jsonl target output (schemas off, tombstones on), one line per record. */
  tributaryLines: string[];
  /** Tributary's source events, in order, with the commits that ended batches. */
  events: RecordedStream;
}

const sawDone = (records: DebeziumRecord[]) => records.some((r) => r.destination === `${SERVER_NAME}.public.done`);
const snapshotDone = (records: DebeziumRecord[]) =>
  records.some((r) => typeof r.value === 'string' && r.value.includes('"snapshot":"last"'));

/** Options of Debezium that both reference runs share: truncates are emitted (Debezium skips them by default). */
const COMMON = {
  'topic.prefix': SERVER_NAME,
  'table.include.list': TABLES.join(','),
  'skipped.operations': 'none',
};

/** Debezium's non-default modes, under its own option names (the envelope keys of the same names select them). */
export const ALTERNATIVE_MODES = {
  'decimal.handling.mode': 'string',
  'time.precision.mode': 'connect',
  'binary.handling.mode': 'hex',
  'interval.handling.mode': 'string',
} as const;

function schemasOption(on: boolean): Record<string, boolean> {
  return { 'key.converter.schemas.enable': on, 'value.converter.schemas.enable': on };
}

export async function runPostgresWorkload(server: PgServer): Promise<PostgresRun> {
  await server.createDatabase(DATABASE);
  await server.query(DATABASE, SETUP_SQL);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-dbzref-'));
  const jsonlFile = path.join(work, 'events.jsonl');
  const seen: { a: DebeziumRecord[]; b: DebeziumRecord[]; c: DebeziumRecord[] } = { a: [], b: [], c: [] };
  const streamed = { started: false };
  const debeziumA = runDebezium({
    properties: postgresConnectorProperties(server, DATABASE, {
      ...COMMON,
      ...schemasOption(false),
      'slot.name': 'dbz_plain',
      'publication.name': 'dbz_plain',
    }),
    until: (r) => {
      seen.a = r;
      return streamed.started && sawDone(r);
    },
  });
  const debeziumB = runDebezium({
    properties: postgresConnectorProperties(server, DATABASE, {
      ...COMMON,
      ...schemasOption(true),
      'provide.transaction.metadata': true,
      'slot.name': 'dbz_schemas',
      'publication.name': 'dbz_schemas',
    }),
    until: (r) => {
      seen.b = r;
      return streamed.started && sawWithEnd(r, `${SERVER_NAME}.public.done`, `${SERVER_NAME}.transaction`);
    },
  });
  const debeziumC = runDebezium({
    properties: postgresConnectorProperties(server, DATABASE, {
      ...COMMON,
      ...schemasOption(true),
      ...ALTERNATIVE_MODES,
      'slot.name': 'dbz_modes',
      'publication.name': 'dbz_modes',
    }),
    until: (r) => {
      seen.c = r;
      return streamed.started && sawDone(r);
    },
  });
  const tributary = runTributary(server, jsonlFile, streamed);
  try {
    const deadline = Date.now() + 240_000;
    while (!(snapshotDone(seen.a) && snapshotDone(seen.b) && snapshotDone(seen.c) && tributary.snapshotDone())) {
      if (Date.now() > deadline) throw new Error('snapshots did not finish in time');
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const sql of STREAM_SQL) await server.query(DATABASE, sql);
    streamed.started = true;
    const [debezium, debeziumSchemasTx, debeziumModes, events] = await Promise.all([
      debeziumA,
      debeziumB,
      debeziumC,
      tributary.done,
    ]);
    const tributaryLines = fs
      .readFileSync(jsonlFile, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    return { debezium, debeziumSchemasTx, debeziumModes, tributaryLines, events };
  } finally {
    tributary.stop();
    await Promise.allSettled([debeziumA, debeziumB, debeziumC, tributary.done]);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Tributary's PostgreSQL source into the jsonl target, until the `done` table's row arrives. */
function runTributary(server: PgServer, file: string, streamed: { started: boolean }) {
  const ctx = { pipeline: 'tributary_ref', logger: createLogger({ level: 'warn', pretty: false }) };
  const source = new PostgresSource(
    // Heartbeats and the table check write logical messages into the WAL, which Debezium, reading the same
    // database, publishes as message events of its own: neither runs within this workload (on a loaded CI machine
    // the table check once saw the TRUNCATE's new file node before the stream reached it, and wrote its note).
    {
      type: 'postgres',
      url: server.url(DATABASE),
      tables: TABLES,
      heartbeat_interval_ms: 3_600_000,
      table_check_interval_ms: 3_600_000,
    },
    ctx,
  );
  const target = new JsonlTarget(
    jsonlTargetConfig.parse({ type: 'jsonl', path: file, tombstones: true, server_name: SERVER_NAME }),
    ctx,
  );
  let snapshotFinished = false;
  const events: RecordedStream = [];
  const done = (async () => {
    await target.open();
    await source.open(null);
    try {
      for await (const batch of source.batches()) {
        await target.write(batch);
        events.push(...batch.events);
        if (batch.checkpoint) {
          events.push({ checkpoint: batch.checkpoint });
          await source.commit(batch.checkpoint);
          snapshotFinished = true;
        }
        if (streamed.started && batch.events.some((e) => e.table.name === 'done')) break;
      }
      return events;
    } finally {
      await source.close();
      await target.close();
    }
  })();
  return {
    done,
    snapshotDone: () => snapshotFinished,
    stop: () => void source.close(),
  };
}
