import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonlTargetConfig } from '../../connectors/jsonl/config.ts';
import { JsonlTarget } from '../../connectors/jsonl/target.ts';
import { kafkaTargetConfig } from '../../connectors/kafka/config.ts';
import { InMemoryKafkaClient } from '../../connectors/kafka/in-memory-client.test-support.ts';
import { KafkaTarget } from '../../connectors/kafka/target.ts';
import { PostgresSource } from '../../connectors/postgres/source/index.ts';
import type { ChangeBatch } from '../../src/core/change-batch.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';

/**
 * A PostgreSQL schema change reaches the jsonl and Kafka outputs as a schema-change record derived from the Relation
 * message (logical decoding carries no DDL text), placed before the first change under the new shape. The columns it
 * describes are judged against the source catalog (pg_attribute, format_type) at that moment.
 */

const ctx = { pipeline: 'sce', logger: pino({ level: 'silent' }) };
let server: PgServer;
let dir: string;

beforeAll(async () => {
  server = await startPostgres();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-sce-'));
});
afterAll(async () => {
  await server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Line {
  key: Record<string, unknown> | null;
  value: Record<string, unknown> | null;
}

/** The source catalog's columns of public.t now, as the record describes them (name, type without modifiers). */
async function catalogColumns(db: string): Promise<{ name: string; typeName: string; optional: boolean }[]> {
  const rows = await server.query<{ name: string; type: string; nullable: boolean }>(
    db,
    `select attname as name, format_type(atttypid, null) as type, not attnotnull as nullable
       from pg_attribute where attrelid = 'public.t'::regclass and attnum > 0 and not attisdropped order by attnum`,
  );
  return rows.map((r) => ({ name: r.name, typeName: r.type, optional: r.nullable }));
}

describe('PostgreSQL schema changes in the jsonl and Kafka outputs', () => {
  it('a schema-change record per changed shape, before the first row under it; Kafka: the topic_prefix topic', async () => {
    const url = await server.createDatabase('sce_src');
    await server.query('sce_src', 'create table t (id int primary key, a text, n numeric(10,2))');
    await server.query('sce_src', "insert into t values (1, 'one', 1.5)");
    const source = new PostgresSource({ type: 'postgres', url, tables: ['public.t'] }, ctx, {
      batch: { max_events: 100, max_bytes: 1 << 20, max_wait_ms: 10 },
    });
    const file = path.join(dir, 'out.jsonl');
    const nativeFile = path.join(dir, 'native.jsonl');
    const jsonl = new JsonlTarget(jsonlTargetConfig.parse({ type: 'jsonl', path: file, fsync: false }), ctx);
    const native = new JsonlTarget(
      jsonlTargetConfig.parse({ type: 'jsonl', path: nativeFile, fsync: false, format: 'native' }),
      ctx,
    );
    const client = new InMemoryKafkaClient();
    const kafka = new KafkaTarget(
      kafkaTargetConfig.parse({ type: 'kafka', brokers: ['b:9092'], topic_prefix: 'srv', linger_ms: 0 }),
      ctx,
      { client },
    );
    await Promise.all([jsonl.open(), native.open(), kafka.open()]);
    await source.open(null);
    const expected: { name: string; typeName: string; optional: boolean }[][] = [];
    try {
      const iterator = source.batches()[Symbol.asyncIterator]();
      let rows = 0;
      const pullRows = async (n: number) => {
        while (rows < n) {
          const { value, done } = await iterator.next();
          if (done) throw new Error('source ended');
          const b = value as ChangeBatch;
          await Promise.all([jsonl.write(b), native.write(b), kafka.write(b)]);
          rows += b.events.filter((e) => e.op === 'insert' || e.op === 'read').length;
        }
      };
      await pullRows(1);
      const changes = [
        'alter table t add column b int default 5',
        'alter table t rename column a to a2',
        'alter table t alter column n type numeric(14,2)',
        'alter table t drop column b',
      ];
      for (const [i, ddl] of changes.entries()) {
        await server.query('sce_src', ddl);
        expected.push(await catalogColumns('sce_src'));
        await server.query('sce_src', `insert into t (id) values (${i + 2})`);
        await pullRows(i + 2);
      }
    } finally {
      await source.close();
      await Promise.all([jsonl.close(), native.close(), kafka.close()]);
    }

    const lines = fs
      .readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line);
    const isSchemaChange = (l: Line) => l.value !== null && 'tableChanges' in l.value;
    const described = lines.filter(isSchemaChange);
    expect(described).toHaveLength(4);
    // Each record describes the table as the catalog had it after its DDL, and precedes the row inserted after it.
    described.forEach((l, i) => {
      expect(l.key).toEqual({ databaseName: 'sce_src' });
      const v = l.value as {
        source: { connector: string; schema: string; table: string; lsn: number };
        databaseName: string;
        schemaName: string;
        ddl: null;
        tableChanges: { type: string; id: string; table: { primaryKeyColumnNames: string[]; columns: unknown[] } }[];
      };
      expect(v.source).toMatchObject({ connector: 'postgresql', schema: 'public', table: 't' });
      expect(v).toMatchObject({ databaseName: 'sce_src', schemaName: 'public', ddl: null });
      expect(v.tableChanges).toHaveLength(1);
      expect(v.tableChanges[0]).toMatchObject({ type: 'ALTER', id: '"public"."t"' });
      expect(v.tableChanges[0]!.table.primaryKeyColumnNames).toEqual(['id']);
      const cols = (v.tableChanges[0]!.table.columns as { name: string; typeName: string; optional: boolean }[]).map(
        (c) => ({ name: c.name, typeName: c.typeName, optional: c.optional }),
      );
      expect(cols).toEqual(expected[i]);
      const next = lines[lines.indexOf(l) + 1]?.value as { op?: string; after?: { id: number } } | undefined;
      expect(next?.op).toBe('c');
      expect(next?.after?.id).toBe(i + 2);
      // Where the first change under the new shape is.
      expect(v.source.lsn).toBe((next as unknown as { source: { lsn: number } }).source.lsn);
    });
    const numeric = (
      described[2]!.value as { tableChanges: { table: { columns: Record<string, unknown>[] } }[] }
    ).tableChanges[0]!.table.columns.find((c) => c.name === 'n');
    expect(numeric).toMatchObject({ jdbcType: 2, typeName: 'numeric', length: 14, scale: 2, nativeType: 1700 });

    // Native: the description itself (columns before and after, what changed by column identity).
    const nativeChanges = fs
      .readFileSync(nativeFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line)
      .filter(
        (l) => (l.value as { message?: { prefix?: string } } | null)?.message?.prefix === 'tributary.schema_change',
      )
      .map((l) =>
        JSON.parse(
          Buffer.from((l.value as { message: { content: string } }).message.content, 'base64').toString('utf8'),
        ),
      );
    expect(nativeChanges.map((c) => c.changes)).toEqual([
      [{ kind: 'add', column: 'b' }],
      [{ kind: 'rename', from: 'a', to: 'a2' }],
      [{ kind: 'type', column: 'n' }],
      [{ kind: 'drop', column: 'b' }],
    ]);
    expect(nativeChanges[2].before.columns.find((c: { name: string }) => c.name === 'n').type).toBe('numeric(10,2)');
    expect(nativeChanges[2].after.columns.find((c: { name: string }) => c.name === 'n').type).toBe('numeric(14,2)');

    // Kafka: the same records, on the topic named by the prefix alone (as Debezium's schema changes).
    const topic = client.topics.get('srv');
    const sent = (topic?.partitions ?? []).flat();
    expect(sent.map((m) => JSON.parse(String(m.value)).tableChanges[0].table.columns)).toEqual(
      described.map(
        (l) => (l.value as { tableChanges: { table: { columns: unknown } }[] }).tableChanges[0]!.table.columns,
      ),
    );
  });
});
