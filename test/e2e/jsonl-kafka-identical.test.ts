import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonlTargetConfig } from '../../connectors/jsonl/config.ts';
import { JsonlTarget } from '../../connectors/jsonl/jsonl-target.ts';
import { kafkaTargetConfig } from '../../connectors/kafka/config.ts';
import { InMemoryKafkaClient } from '../../connectors/kafka/in-memory-client.ts';
import { KafkaTarget } from '../../connectors/kafka/kafka-target.ts';
import { PostgresSource } from '../../connectors/postgres/source/index.ts';
import type { ChangeBatch } from '../../src/core/change-batch.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';

/**
 * The jsonl target and the Kafka target share one encoder: events from a live PostgreSQL source come out
 * byte-identical (keys and values) from both, tombstones and key changes included.
 */
describe('PostgreSQL -> jsonl equals what the Kafka target sends', () => {
  let server: PgServer;
  let dir: string;
  const ctx = { pipeline: 'same', logger: createLogger({ level: 'silent', pretty: false }) };

  beforeAll(async () => {
    server = await startPostgres();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-jsonl-kafka-'));
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('produces the same keys and values', async () => {
    const url = await server.createDatabase('same_src');
    await server.query(
      'same_src',
      `create table items (id bigint primary key, name text, price numeric(10,2), tags text[], data jsonb,
         seen timestamptz, blob bytea, big text);
       insert into items values (1, 'one', 1.50, '{a,b}', '{"k": 1}', '2024-01-02 03:04:05.123456+00', '\\xdead', repeat('x', 5000)),
                                (2, 'two', null, null, null, null, null, null);`,
    );
    const source = new PostgresSource({ type: 'postgres', url, tables: ['public.items'] }, ctx, {
      batch: { max_events: 100, max_bytes: 1 << 20, max_wait_ms: 10 },
    });
    const batches: ChangeBatch[] = [];
    await source.open(null);
    try {
      const iterator = source.batches()[Symbol.asyncIterator]();
      const pull = async (until: (b: ChangeBatch) => boolean) => {
        for (;;) {
          const { value, done } = await iterator.next();
          if (done) throw new Error('source ended');
          batches.push(value);
          if (until(value)) return;
        }
      };
      await pull((b) => b.checkpoint !== null); // the snapshot
      await server.query(
        'same_src',
        `insert into items values (3, 'three', 3, '{"with, comma"}', '[1,2]', 'infinity', '\\x00', null);
         update items set name = 'uno' where id = 1;
         update items set id = 4 where id = 2;
         delete from items where id = 3;
         select pg_logical_emit_message(true, 'app', 'hello');
         truncate items;`,
      );
      await pull((b) => b.events.some((e) => e.op === 'truncate'));
    } finally {
      await source.close();
    }

    const clock = () => 1_700_000_000_000;
    const file = path.join(dir, 'out.jsonl');
    const jsonl = new JsonlTarget(
      jsonlTargetConfig.parse({ type: 'jsonl', path: file, tombstones: true, server_name: 'app' }),
      ctx,
      {
        clock,
      },
    );
    const client = new InMemoryKafkaClient();
    const kafka = new KafkaTarget(
      kafkaTargetConfig.parse({ type: 'kafka', brokers: ['unused:9092'], topic_prefix: 'app' }),
      ctx,
      { client, clock },
    );
    await Promise.all([jsonl.open(), kafka.open()]);
    for (const batch of batches) {
      await jsonl.write(batch);
      await kafka.write(batch);
    }
    await Promise.all([jsonl.close(), kafka.close()]);

    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    const sent = client.acked.map((m) => `{"key":${m.key ?? 'null'},"value":${m.value ?? 'null'}}`);
    expect(sent.length).toBeGreaterThan(8);
    expect(lines).toEqual(sent);
    // The stream holds what was asked: snapshot reads, create, update, key change (delete + tombstone + create),
    // delete + tombstone, message, truncate.
    const ops = lines.map((l) => (JSON.parse(l).value as { op?: string } | null)?.op ?? 'tombstone');
    // A snapshot starts each table with a truncate (`source.snapshot` set): consumers drop what an earlier run left.
    expect(ops).toEqual(['t', 'r', 'r', 'c', 'u', 'd', 'tombstone', 'c', 'd', 'tombstone', 'm', 't']);
  });
});
