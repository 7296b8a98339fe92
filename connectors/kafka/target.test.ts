import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ChangeBatch } from '../../src/core/change-batch.ts';
import type { ChangeEvent, TableSchema } from '../../src/core/change-event.ts';
import { type Checkpoint, parseLsn } from '../../src/core/checkpoint.ts';
import { ConnectionError, TributaryError } from '../../src/errors.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { MemorySource, MemoryStore } from '../../test/fakes/memory-parts.ts';
import { FIXED_NOW, mysqlEvents, pgAllKinds, postgresEvents } from '../../test/golden/events.ts';
import { kafkaTargetConfig } from './config.ts';
import { InMemoryKafkaClient, type ProducedMessage } from './in-memory-client.test-support.ts';
import { RECORD_BATCH_OVERHEAD } from './record-size.ts';
import { KafkaTarget } from './target.ts';

const logger = pino({ level: 'silent' });
const ctx = { pipeline: 'p1', logger };

function target(extra: Record<string, unknown> = {}, client = new InMemoryKafkaClient(), clock = () => FIXED_NOW) {
  const config = kafkaTargetConfig.parse({
    type: 'kafka',
    brokers: ['b:9092'],
    topic_prefix: 'srv',
    linger_ms: 0,
    ...extra,
  });
  return { t: new KafkaTarget(config, ctx, { client, clock }), client };
}

function batch(seq: number, events: ChangeEvent[], checkpoint = true): ChangeBatch {
  return {
    seq,
    events,
    bytes: 0,
    checkpoint: checkpoint
      ? { pipeline: 'p1', phase: 'stream', position: { kind: 'postgres', lsn: `0/${seq + 1}` } }
      : null,
  };
}

const small: TableSchema = {
  table: { schema: 'public', name: 'orders' },
  columns: [
    { name: 'id', type: 'integer', kind: 'int', isKey: true },
    { name: 'v', type: 'text', kind: 'text', isKey: false },
  ],
  keyColumns: ['id'],
  beforeImage: 'key',
};

function ev(
  op: ChangeEvent['op'],
  id: string,
  v: string | null,
  tx = '10',
  schema = small,
  lsn = '0/100',
): ChangeEvent {
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
      position: { kind: 'postgres', lsn, commitLsn: '0/200', commitRecordLsn: '0/1F8' },
      txId: tx,
      commitTimeMs: 1000,
      snapshot: false,
    },
  };
}

const values = (ms: ProducedMessage[]) => ms.map((m) => (m.value === null ? null : JSON.parse(m.value)));

describe('KafkaTarget routing and keys', () => {
  it('routes to <prefix>.<schema>.<table>, per-table and pattern overrides, messages to <prefix>.message', async () => {
    const other = { ...small, table: { schema: 'sales', name: 'q1_orders' } };
    const weird = { ...small, table: { schema: 'public', name: 'odd name$' } };
    const { t, client } = target({
      topics: { 'public.orders': 'orders-topic' },
      topic_routes: [{ pattern: 'sales\\.(q\\d)_(.*)', topic: 'sales-$2-$1' }],
    });
    await t.open();
    const msg = postgresEvents().find((e) => e.op === 'message')!;
    await t.write(
      batch(0, [ev('insert', '1', 'a'), ev('insert', '2', 'b', '10', other), ev('insert', '3', 'c', '10', weird), msg]),
    );
    expect([...client.topics.keys()].sort()).toEqual([
      'orders-topic',
      'sales-orders-q1',
      'srv.message',
      'srv.public.odd_name_',
    ]);
    expect(client.messages('srv.message')[0]!.key).toBe('{"prefix":"audit"}');
  });

  it('keys are the primary-key JSON (exact int8), with schemas when enabled; truncate has no key', async () => {
    const { t, client } = target({ schemas: true });
    await t.open();
    const events = postgresEvents();
    await t.write(batch(0, [events[0]!, events.find((e) => e.op === 'truncate')!]));
    const ms = client.messages('srv.public.all_kinds');
    expect(ms[0]!.key).toBe(
      '{"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"}],"optional":false,"name":"srv.public.all_kinds.Key"},"payload":{"id":9223372036854775807}}',
    );
    expect(JSON.parse(ms[0]!.value!).payload.op).toBe('r');
    expect(ms[1]!.key).toBeNull();
    expect(JSON.parse(ms[1]!.value!).payload.op).toBe('t');
  });

  it('sends a tombstone after each delete by default, none when disabled', async () => {
    const { t, client } = target();
    await t.open();
    await t.write(batch(0, [ev('insert', '1', 'a'), ev('delete', '1', null)]));
    const ms = client.messages('srv.public.orders');
    expect(ms.map((m) => [m.key, m.value === null ? null : JSON.parse(m.value).op])).toEqual([
      ['{"id":1}', 'c'],
      ['{"id":1}', 'd'],
      ['{"id":1}', null],
    ]);
    const off = target({ tombstones: false });
    await off.t.open();
    await off.t.write(batch(0, [ev('delete', '1', null)]));
    expect(off.client.messages('srv.public.orders')).toHaveLength(1);
  });

  it('a key change is delete + tombstone under the old key, then create under the new key, with key headers', async () => {
    const { t, client } = target();
    await t.open();
    const change: ChangeEvent = { ...ev('update', '2', 'x'), before: { id: '1' } };
    await t.write(batch(0, [change]));
    const ms = client.sends.flat();
    expect(ms.map((m) => [m.key, m.value === null ? null : JSON.parse(m.value).op])).toEqual([
      ['{"id":1}', 'd'],
      ['{"id":1}', null],
      ['{"id":2}', 'c'],
    ]);
    expect(ms[0]!.headers['__debezium.newkey']).toBe('{"id":2}');
    expect(ms[2]!.headers['__debezium.oldkey']).toBe('{"id":1}');
  });

  it('headers carry the source position (PostgreSQL LSNs, MySQL binlog coordinates and GTID)', async () => {
    const { t, client } = target();
    await t.open();
    await t.write(batch(0, [ev('insert', '1', 'a'), mysqlEvents()[1]!]));
    const [pg, my] = client.sends.flat();
    expect(pg!.headers).toEqual({
      'tributary.pipeline': 'p1',
      'tributary.lsn': '0/100',
      'tributary.commit_lsn': '0/1F8',
      'tributary.tx_id': '10',
    });
    expect(my!.headers).toMatchObject({
      'tributary.binlog_file': 'binlog.000003',
      'tributary.binlog_pos': '1000',
      'tributary.binlog_row': '0',
      'tributary.gtid': '3e11fa47-71ca-11e1-9e33-c80aa9429562:23',
    });
    expect(my!.topic).toBe('srv.shop.items');
    expect(my!.key).toBe('{"id":0}');
  });
});

describe('KafkaTarget ordering and acknowledgements', () => {
  it('keeps per-key order across overlapping writes and lingered groups', async () => {
    const { t, client } = target({ linger_ms: 3, batch_max_messages: 7 });
    await t.open();
    const writes: Promise<unknown>[] = [];
    for (let b = 0; b < 10; b++) {
      const events: ChangeEvent[] = [];
      for (let i = 0; i < 5; i++) events.push(ev('update', String(i % 3), `${b}-${i}`));
      writes.push(t.write(batch(b, events)));
    }
    await Promise.all(writes);
    expect(client.sends.length).toBeGreaterThan(1);
    const byKey = new Map<string, string[]>();
    for (const m of client.messages('srv.public.orders')) {
      const list = byKey.get(m.key!) ?? [];
      list.push(JSON.parse(m.value!).after.v);
      byKey.set(m.key!, list);
    }
    for (const [key, seen] of byKey) {
      const expected: string[] = [];
      for (let b = 0; b < 10; b++)
        for (let i = 0; i < 5; i++) if (`{"id":${i % 3}}` === key) expected.push(`${b}-${i}`);
      expect(seen).toEqual(expected);
    }
  });

  it('write resolves only after the broker acknowledged every message of the batch', async () => {
    const client = new InMemoryKafkaClient();
    const releases: (() => void)[] = [];
    client.ackGate = () => new Promise<void>((resolve) => releases.push(resolve));
    const { t } = target({}, client);
    await t.open();
    let done = false;
    const w = t.write(batch(0, [ev('insert', '1', 'a'), ev('insert', '2', 'b')])).then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(false);
    expect(client.acked).toHaveLength(0);
    releases.shift()!();
    await w;
    expect(done).toBe(true);
    expect(client.acked).toHaveLength(2);
  });

  it('in a pipeline, checkpoints are saved only for acknowledged data', async () => {
    const client = new InMemoryKafkaClient();
    client.ackGate = () => new Promise((r) => setTimeout(r, Math.random() * 10));
    const { t } = target({ linger_ms: 2 }, client, Date.now);
    const source = new MemorySource('p', 30, 3, 2);
    const violations: string[] = [];
    class CheckingStore extends MemoryStore {
      override async save(checkpoint: Checkpoint): Promise<void> {
        const upTo = Number(parseLsn((checkpoint.position as { lsn: string }).lsn));
        const acked = new Set(client.acked.map((m) => JSON.parse(m.value!).after.id as number));
        for (let id = 0; id < upTo * 3; id++) if (!acked.has(id)) violations.push(`row ${id} not acked at tx ${upTo}`);
        await super.save(checkpoint);
      }
    }
    const store = new CheckingStore();
    const p = new Pipeline({
      name: 'p',
      createParts: () => ({ source, target: t, store }),
      maxInFlight: 4,
      maxInFlightBytes: 1 << 30,
      initialBackoffMs: 1,
      maxBackoffMs: 5,
      logger,
    });
    const running = p.run();
    const started = Date.now();
    while (source.committed.length === 0 || lsn(source.committed.at(-1)!) < 30) {
      if (Date.now() - started > 10_000) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 5));
    }
    p.stop();
    await running;
    expect(violations).toEqual([]);
    expect(store.saved.length).toBeGreaterThan(0);
    expect(client.acked).toHaveLength(90);
  });

  it('a broker outage rejects the write with a retryable ConnectionError; later writes fail until reset', async () => {
    const client = new InMemoryKafkaClient(['srv.public.orders']);
    const { t } = target({}, client);
    await t.open();
    await t.write(batch(0, [ev('insert', '1', 'a')]));
    client.down = true;
    const err = await t.write(batch(1, [ev('insert', '2', 'b')])).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err.kind).toBe('retryable');
    client.down = false;
    const sendsBefore = client.sends.length;
    await expect(t.write(batch(2, [ev('insert', '3', 'c')]))).rejects.toBeInstanceOf(ConnectionError);
    expect(client.sends.length).toBe(sendsBefore); // nothing after a lost message is sent
    await t.reset();
    await t.write(batch(1, [ev('insert', '2', 'b')]));
    expect(client.acked.map((m) => m.key)).toEqual(['{"id":1}', '{"id":2}']);
  });

  it('an unclassified send failure becomes a ConnectionError; an ack that never comes times out', async () => {
    const client = new InMemoryKafkaClient(['srv.public.orders']);
    client.ackGate = async () => {
      throw new Error('socket hang up');
    };
    const { t } = target({}, client);
    await t.open();
    await expect(t.write(batch(0, [ev('insert', '1', 'a')]))).rejects.toBeInstanceOf(ConnectionError);
    const slow = new InMemoryKafkaClient(['srv.public.orders']);
    slow.ackGate = () => new Promise(() => {});
    const s = target({ send_timeout_ms: 30 }, slow);
    await s.t.open();
    await expect(s.t.write(batch(0, [ev('insert', '1', 'a')]))).rejects.toThrow(/within 30 ms/);
  });
});

describe('KafkaTarget topics, oversize, transactions, heartbeats', () => {
  it('creates missing topics with partitions, replication factor and configs', async () => {
    const { t, client } = target({
      topic_partitions: 6,
      topic_replication_factor: 3,
      topic_configs: { 'cleanup.policy': 'compact' },
    });
    await t.open();
    await t.write(batch(0, [ev('insert', '1', 'a')]));
    expect(client.topics.get('srv.public.orders')!.spec).toEqual({
      topic: 'srv.public.orders',
      partitions: 6,
      replicationFactor: 3,
      configs: { 'cleanup.policy': 'compact' },
    });
  });

  it('a missing topic with create_topics off stops with an operator error naming it', async () => {
    const { t, client } = target({ create_topics: false });
    await t.open();
    const err = await t.write(batch(0, [ev('insert', '1', 'a')])).catch((e) => e);
    expect(err).toBeInstanceOf(TributaryError);
    expect(err.kind).toBe('operator');
    expect(err.message).toContain('srv.public.orders');
    expect(client.sends).toHaveLength(0);
  });

  it("a message its topic's max.message.bytes cannot take fails with table, key and position; nothing is sent", async () => {
    const big = ev('insert', '7', 'x'.repeat(5000));
    const { t, client } = target({ topic_configs: { 'max.message.bytes': '2000' } });
    await t.open();
    const err = await t.write(batch(0, [ev('insert', '1', 'a'), big])).catch((e) => e);
    expect(err).toBeInstanceOf(TributaryError);
    expect(err.kind).toBe('operator');
    expect(err.message).toMatch(
      /table public\.orders key \{"id":7\} \(LSN 0\/100\) is \d+ bytes, more than topic srv\.public\.orders takes \(max\.message\.bytes 2000/,
    );
    expect(client.sends).toHaveLength(0); // nothing of the batch went out
  });

  it('record batches stay below the topic limit and produce requests below batch_max_bytes', async () => {
    const client = new InMemoryKafkaClient();
    const { t } = target(
      { topic_partitions: 3, topic_configs: { 'max.message.bytes': '20000' }, batch_max_bytes: 50_000, linger_ms: 5 },
      client,
    );
    await t.open();
    const events = Array.from({ length: 600 }, (_, i) => ev('insert', String(i), 'v'.repeat(400)));
    await t.write(batch(0, events));
    const size = (m: ProducedMessage) => m.size;
    for (const request of client.sends) {
      expect(request.reduce((n, m) => n + size(m), 0)).toBeLessThanOrEqual(50_000);
      const perPartition = new Map<number, number>();
      for (const m of request) perPartition.set(m.partition, (perPartition.get(m.partition) ?? 0) + size(m));
      for (const bytes of perPartition.values()) expect(bytes + RECORD_BATCH_OVERHEAD).toBeLessThanOrEqual(20_000);
    }
    expect(client.acked).toHaveLength(600);
  });

  it('a record without a key for a compacted topic is an operator error naming the cause', async () => {
    const { t, client } = target({ topic_configs: { 'cleanup.policy': 'compact' } });
    await t.open();
    const err = await t.write(batch(0, [ev('insert', '1', 'a'), ev('truncate', '1', null)])).catch((e) => e);
    expect(err).toBeInstanceOf(TributaryError);
    expect(err.kind).toBe('operator');
    expect(err.message).toContain('compacted');
    expect(err.message).toContain('TRUNCATE');
    expect(client.sends).toHaveLength(0);
  });

  it('transaction topic: BEGIN before the first event, END with per-table counts at the commit', async () => {
    const other = { ...small, table: { schema: 'public', name: 'lines' } };
    const { t, client } = target({ transaction_topic: 'srv.transaction', transaction_metadata: true });
    await t.open();
    // tx 10 spans two batches (the first has no checkpoint); tx 11 ends at the batch's checkpoint
    await t.write(batch(0, [ev('insert', '1', 'a'), ev('insert', '2', 'b', '10', other)], false));
    await t.write(batch(1, [ev('update', '1', 'c'), ev('insert', '3', 'd', '11', small, '0/300')]));
    const tx = values(client.messages('srv.transaction'));
    expect(tx).toEqual([
      { status: 'BEGIN', id: '10:256', event_count: null, data_collections: null, ts_ms: 1000 },
      {
        status: 'END',
        id: '10:512',
        event_count: 3,
        data_collections: [
          { data_collection: 'public.orders', event_count: 2 },
          { data_collection: 'public.lines', event_count: 1 },
        ],
        ts_ms: 1000,
      },
      { status: 'BEGIN', id: '11:768', event_count: null, data_collections: null, ts_ms: 1000 },
      {
        status: 'END',
        id: '11:512',
        event_count: 1,
        data_collections: [{ data_collection: 'public.orders', event_count: 1 }],
        ts_ms: 1000,
      },
    ]);
    expect(client.messages('srv.transaction')[0]!.key).toBe('{"id":"10:256"}');
    const orders = values(client.messages('srv.public.orders'));
    expect(orders.map((v) => v.transaction)).toEqual([
      // Debezium's ids: txId and the LSN of the event itself (BEGIN has the first event's, END the commit's)
      { id: '10:256', total_order: 1, data_collection_order: 1 },
      { id: '10:256', total_order: 3, data_collection_order: 2 },
      { id: '11:768', total_order: 1, data_collection_order: 1 },
    ]);
    // BEGIN precedes the transaction's events and END follows them in send order
    const order = client.sends
      .flat()
      .map((m) => (m.topic === 'srv.transaction' ? JSON.parse(m.value!).status : m.topic));
    expect(order).toEqual([
      'BEGIN',
      'srv.public.orders',
      'srv.public.lines',
      'srv.public.orders',
      'END',
      'BEGIN',
      'srv.public.orders',
      'END',
    ]);
  });

  it('heartbeat topic: {ts_ms} keyed by the server name, at most once per interval, idle batches included', async () => {
    let now = 10_000;
    const { t, client } = target(
      { heartbeat_topic: '__debezium-heartbeat.srv', heartbeat_interval_ms: 1000 },
      undefined,
      () => now,
    );
    await t.open();
    await t.write(batch(0, []));
    now += 500;
    await t.write(batch(1, [ev('insert', '1', 'a')]));
    now += 600;
    await t.write(batch(2, []));
    const hb = client.messages('__debezium-heartbeat.srv');
    expect(hb.map((m) => [m.key, m.value])).toEqual([
      ['{"serverName":"srv"}', '{"ts_ms":10000}'],
      ['{"serverName":"srv"}', '{"ts_ms":11100}'],
    ]);
  });

  it('config: every key is described; defaults are acks-safe', () => {
    const config = kafkaTargetConfig.parse({ type: 'kafka', brokers: ['b'], topic_prefix: 'srv' });
    expect(config.tombstones).toBe(true);
    expect(config.format).toBe('debezium');
    for (const [key, schema] of Object.entries(kafkaTargetConfig.shape)) {
      if (key === 'type') continue;
      expect((schema as { description?: string }).description, key).toBeTruthy();
    }
    expect(() =>
      kafkaTargetConfig.parse({ type: 'kafka', brokers: ['b'], topic_prefix: 'srv', topics: { 'a.b': 'bad topic' } }),
    ).toThrow();
  });
});

function lsn(c: Checkpoint): number {
  return Number(parseLsn((c.position as { lsn: string }).lsn));
}

void pgAllKinds;

describe('KafkaTarget write order', () => {
  it('a write that waits for topic creation is not overtaken by a later write', async () => {
    const client = new InMemoryKafkaClient(['srv.public.orders']);
    const slowCreate = client.createTopics.bind(client);
    client.createTopics = async (specs) => {
      await new Promise((r) => setTimeout(r, 30));
      await slowCreate(specs);
    };
    const { t } = target({}, client);
    await t.open();
    const other = { ...small, table: { schema: 'public', name: 'fresh' } };
    await t.write(batch(0, [ev('insert', '0', 'warm')])); // srv.public.orders is known from now on
    client.acked.length = 0;
    await Promise.all([
      t.write(batch(0, [ev('insert', '1', 'a')])),
      t.write(batch(1, [ev('insert', '2', 'b', '10', other)])),
      t.write(batch(2, [ev('update', '1', 'c')])),
    ]);
    expect(client.acked.map((m) => `${m.topic}:${JSON.parse(m.value!).after.v}`)).toEqual([
      'srv.public.orders:a',
      'srv.public.fresh:b',
      'srv.public.orders:c',
    ]);
  });

  it('after a failed write (oversize), later writes fail instead of leaving a gap', async () => {
    const { t, client } = target({ topic_configs: { 'max.message.bytes': '500' } });
    await t.open();
    await expect(t.write(batch(0, [ev('insert', '1', 'x'.repeat(1000))]))).rejects.toMatchObject({ kind: 'operator' });
    await expect(t.write(batch(1, [ev('insert', '2', 'b')]))).rejects.toBeInstanceOf(TributaryError);
    expect(client.sends).toHaveLength(0);
  });
});
