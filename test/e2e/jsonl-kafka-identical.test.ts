import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonlTargetConfig } from '../../connectors/jsonl/config.ts';
import { JsonlTarget } from '../../connectors/jsonl/target.ts';
import { kafkaTargetConfig } from '../../connectors/kafka/config.ts';
import { readTopicMessages } from '../../connectors/kafka/kafka-client.ts';
import { KafkaTarget } from '../../connectors/kafka/target.ts';
import { PostgresSource } from '../../connectors/postgres/source/index.ts';
import type { ChangeBatch } from '../../src/core/change-batch.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { testKafkaBrokers } from '../harness/kafka-test-broker.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';

const { brokers, skipReason } = testKafkaBrokers();

/**
 * The jsonl target and the Kafka target share one encoder: events from a live PostgreSQL source come out
 * byte-identical (keys and values) from the jsonl file and from the topics of a real broker, tombstones and key
 * changes included.
 */
describe.skipIf(!brokers)(
  `PostgreSQL -> jsonl equals what the Kafka broker holds${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
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
      const prefix = `same${Date.now().toString(36)}`;
      const file = path.join(dir, 'out.jsonl');
      const jsonl = new JsonlTarget(
        jsonlTargetConfig.parse({ type: 'jsonl', path: file, tombstones: true, server_name: prefix }),
        ctx,
        {
          clock,
        },
      );
      const kafkaConfig = kafkaTargetConfig.parse({ type: 'kafka', brokers, topic_prefix: prefix });
      const kafka = new KafkaTarget(kafkaConfig, ctx, { clock });
      await Promise.all([jsonl.open(), kafka.open()]);
      for (const batch of batches) {
        await jsonl.write(batch);
        await kafka.write(batch);
      }
      await Promise.all([jsonl.close(), kafka.close()]);

      const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
      const asLine = (m: { key: string | null; value: string | null }) =>
        `{"key":${m.key ?? 'null'},"value":${m.value ?? 'null'}}`;
      // One partition per topic: the table's topic holds the table's events in order, the message topic the message.
      const isMessage = (line: string) => (JSON.parse(line).value as { op?: string } | null)?.op === 'm';
      const tableLines = lines.filter((l) => !isMessage(l));
      const onTable = await readTopicMessages(kafkaConfig, `${prefix}.public.items`, tableLines.length);
      const onMessage = await readTopicMessages(kafkaConfig, `${prefix}.message`, 1);
      expect(tableLines.length).toBeGreaterThan(8);
      expect(tableLines).toEqual(onTable.map(asLine));
      expect(lines.filter(isMessage)).toEqual(onMessage.map(asLine));
      // The stream holds what was asked: snapshot reads, create, update, key change (delete + tombstone + create),
      // delete + tombstone, message, truncate.
      const ops = lines.map((l) => (JSON.parse(l).value as { op?: string } | null)?.op ?? 'tombstone');
      expect(ops).toEqual(['r', 'r', 'c', 'u', 'd', 'tombstone', 'c', 'd', 'tombstone', 'm', 't']);
    });
  },
);
