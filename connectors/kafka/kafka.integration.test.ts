import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ChangeBatch } from '../../src/core/change-batch.ts';
import type { ChangeEvent, TableSchema } from '../../src/core/change-event.ts';
import { ConnectionError, TributaryError } from '../../src/errors.ts';
import { kafkaTool, topicEndOffsets } from '../../test/harness/kafka-broker.ts';
import { testKafkaBrokers } from '../../test/harness/kafka-test-broker.ts';
import { kafkaTargetConfig } from './config.ts';
import { readTopicMessages } from './kafka-client.ts';
import { KafkaTarget } from './target.ts';

/**
 * Against a real broker: the run's broker (test/harness/kafka-global-setup.ts), or KAFKA_BROKERS=host:port. Without
 * one the broker tests are skipped and say why. The unreachable-broker test needs no broker and always runs.
 */
const { brokers, skipReason } = testKafkaBrokers();

const logger = pino({ level: 'silent' });
const ctx = { pipeline: 'it', logger };
const prefix = `tribit${Date.now().toString(36)}`;

const schema: TableSchema = {
  table: { schema: 'public', name: 'items' },
  columns: [
    { name: 'id', type: 'bigint', kind: 'int', isKey: true },
    { name: 'v', type: 'text', kind: 'text', isKey: false },
  ],
  keyColumns: ['id'],
  beforeImage: 'key',
};

function ev(op: ChangeEvent['op'], id: string, v: string | null, tx = '1'): ChangeEvent {
  return {
    op,
    table: schema.table,
    schema,
    key: { id },
    before: op === 'insert' ? null : { id },
    after: op === 'delete' ? null : { id, v },
    source: {
      connector: 'postgresql',
      db: 'db',
      position: { kind: 'postgres', lsn: '0/10', commitLsn: '0/28', commitRecordLsn: '0/20' },
      txId: tx,
      commitTimeMs: Date.now(),
      snapshot: false,
    },
  };
}

function batch(seq: number, events: ChangeEvent[]): ChangeBatch {
  return {
    seq,
    events,
    bytes: 0,
    checkpoint: { pipeline: 'it', phase: 'stream', position: { kind: 'postgres', lsn: '0/20' } },
  };
}

function config(extra: Record<string, unknown>) {
  return kafkaTargetConfig.parse({ type: 'kafka', brokers, topic_prefix: prefix, ...extra });
}

describe('Kafka client without a broker', () => {
  it('an unreachable broker makes open() fail with a retryable ConnectionError', async () => {
    const t = new KafkaTarget(
      kafkaTargetConfig.parse({
        type: 'kafka',
        brokers: ['127.0.0.1:1'],
        topic_prefix: 'x',
        retries: 1,
        connection_timeout_ms: 300,
      }),
      ctx,
    );
    const err = await t.open().catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err.kind).toBe('retryable');
    expect(err.message).toMatch(/cannot connect to Kafka brokers 127\.0\.0\.1:1: .*ECONNREFUSED/);
    expect(err.hint).toContain('reachable');
    await t.close().catch(() => {});
  });
});

describe.skipIf(!brokers)(`Kafka target against a real broker${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('creates the topic and every message is readable once write() resolves', async () => {
    const t = new KafkaTarget(config({ topic_partitions: 3 }), ctx);
    await t.open();
    const events = [
      ev('insert', '1', 'a'),
      ev('update', '1', 'b'),
      ev('insert', '18446744073709551615', 'big'),
      ev('delete', '1', null),
    ];
    await t.write(batch(0, events));
    await t.close();
    const got = await readTopicMessages(config({}), `${prefix}.public.items`, 5, 20_000);
    expect(got).toHaveLength(5);
    const forKey1 = got
      .filter((m) => m.key === '{"id":1}')
      .map((m) => (m.value === null ? null : JSON.parse(m.value).op));
    expect(forKey1).toEqual(['c', 'u', 'd', null]);
    const big = got.find((m) => m.key === '{"id":18446744073709551615}')!;
    expect(big.value).toContain('"id":18446744073709551615');
    expect(big.headers['tributary.lsn']).toBe('0/10');
  });

  it('compression gzip: the broker takes the compressed record batches and a consumer reads every message', async () => {
    const topic = `${prefix}.gzip`;
    const t = new KafkaTarget(
      config({ topics: { 'public.items': topic }, topic_partitions: 2, compression: 'gzip' }),
      ctx,
    );
    await t.open();
    const events = Array.from({ length: 300 }, (_, i) => ev('insert', String(i), `value ${i} ${'x'.repeat(i)}`));
    await t.write(batch(0, events));
    await t.close();
    expect([...(await topicEndOffsets(brokers!.join(','), topic)).values()].reduce((a, b) => a + b, 0)).toBe(300);
    const got = await readTopicMessages(config({}), topic, 300, 20_000);
    expect(got.map((m) => JSON.parse(m.value!).after.v).sort()).toEqual(events.map((e) => e.after!.v).sort());
  });

  it('create_topics: false with a missing topic is an operator error naming it', async () => {
    const t = new KafkaTarget(config({ create_topics: false, topics: { 'public.items': `${prefix}.absent` } }), ctx);
    await t.open();
    const err = await t.write(batch(0, [ev('insert', '1', 'a')])).catch((e) => e);
    await t.close();
    expect(err).toBeInstanceOf(TributaryError);
    expect(err.kind).toBe('operator');
    expect(err.message).toContain(`${prefix}.absent`);
  });

  it('a message above the topic max.message.bytes is an operator error', async () => {
    const t = new KafkaTarget(
      config({
        topics: { 'public.items': `${prefix}.small` },
        topic_configs: { 'max.message.bytes': '2000' },
        retries: 1,
      }),
      ctx,
    );
    await t.open();
    const err = await t.write(batch(0, [ev('insert', '1', 'x'.repeat(10_000))])).catch((e) => e);
    await t.close();
    expect(err).toBeInstanceOf(TributaryError);
    expect(err.kind).toBe('operator');
  });

  it('transaction and heartbeat topics receive BEGIN/END and heartbeats', async () => {
    const t = new KafkaTarget(
      config({ transaction_topic: `${prefix}.transaction`, heartbeat_topic: `__debezium-heartbeat.${prefix}` }),
      ctx,
    );
    await t.open();
    await t.write(batch(0, [ev('insert', '5', 'a', '77'), ev('insert', '6', 'b', '77')]));
    await t.close();
    const tx = await readTopicMessages(config({}), `${prefix}.transaction`, 2, 20_000);
    expect(tx.map((m) => JSON.parse(m.value!).status)).toEqual(['BEGIN', 'END']);
    const hb = await readTopicMessages(config({}), `__debezium-heartbeat.${prefix}`, 1, 20_000);
    expect(hb).toHaveLength(1);
  });

  it('a 10,000-row transaction of ~500-byte rows reaches a broker with default limits (batches cut below message.max.bytes)', async () => {
    const t = new KafkaTarget(config({ topics: { 'public.items': `${prefix}.backlog` }, topic_partitions: 2 }), ctx);
    await t.open();
    const rows = Array.from({ length: 10_000 }, (_, i) => ev('insert', String(i), 'x'.repeat(450), '900'));
    expect(Buffer.byteLength(JSON.stringify(rows[0]!.after))).toBeGreaterThan(450);
    await t.write(batch(0, rows));
    await t.close();
    // Judged by the broker's own offsets (Kafka's GetOffsetShell), not by our client.
    const offsets = await topicEndOffsets(brokers!.join(','), `${prefix}.backlog`);
    expect([...offsets.values()].reduce((a, b) => a + b, 0)).toBe(10_000);
  });

  it('a topic whose max.message.bytes was lowered: batches fit it, and only a single larger message is refused, naming table and key', async () => {
    const topic = `${prefix}.lowered`;
    await kafkaTool('org.apache.kafka.tools.TopicCommand', [
      '--bootstrap-server',
      brokers!.join(','),
      '--create',
      '--topic',
      topic,
      '--partitions',
      '1',
      '--config',
      'max.message.bytes=20000',
    ]);
    const t = new KafkaTarget(config({ topics: { 'public.items': topic }, create_topics: false }), ctx);
    await t.open();
    await t.write(
      batch(
        0,
        Array.from({ length: 2_000 }, (_, i) => ev('insert', String(i), 'y'.repeat(450))),
      ),
    );
    const err = await t.write(batch(1, [ev('insert', '424242', 'z'.repeat(30_000))])).catch((e) => e);
    await t.close();
    expect(err).toBeInstanceOf(TributaryError);
    expect(err.kind).toBe('operator');
    expect(err.message).toContain('table public.items key {"id":424242}');
    expect(err.message).toContain('max.message.bytes 20000');
    const offsets = await topicEndOffsets(brokers!.join(','), topic);
    expect(offsets.get(0)).toBe(2_000);
  });
});
