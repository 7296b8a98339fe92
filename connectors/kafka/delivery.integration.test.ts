import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeBatch } from '../../src/core/change-batch.ts';
import type { ChangeEvent, TableSchema } from '../../src/core/change-event.ts';
import { type Checkpoint, parseLsn } from '../../src/core/checkpoint.ts';
import { TributaryError } from '../../src/errors.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { MemorySource, MemoryStore } from '../../test/fakes/memory-parts.ts';
import { type KafkaBroker, kafkaTool, startKafkaBroker, topicEndOffsets } from '../../test/harness/kafka-broker.ts';
import { testKafkaBrokers } from '../../test/harness/kafka-test-broker.ts';
import { kafkaTargetConfig } from './config.ts';
import { KafkaTarget } from './target.ts';

/**
 * Delivery guarantees on the run's real broker, each judged by the broker itself (its offsets, topic descriptions
 * and producer state, read with Kafka's own tools).
 */
const { brokers, skipReason } = testKafkaBrokers();
const bootstrap = brokers?.join(',') ?? '';
const prefix = `tribdel${Date.now().toString(36)}`;
const silent = { pipeline: 'del', logger: pino({ level: 'silent' }) };

function config(extra: Record<string, unknown>) {
  return kafkaTargetConfig.parse({ type: 'kafka', brokers, topic_prefix: prefix, ...extra });
}

const items: TableSchema = {
  table: { schema: 'public', name: 'items' },
  columns: [
    { name: 'id', type: 'bigint', kind: 'int', isKey: true },
    { name: 'v', type: 'text', kind: 'text', isKey: false },
  ],
  keyColumns: ['id'],
  beforeImage: 'key',
};

function ev(op: ChangeEvent['op'], id: string, v: string | null): ChangeEvent {
  return {
    op,
    table: items.table,
    schema: items,
    key: { id },
    before: op === 'insert' ? null : { id },
    after: op === 'delete' || op === 'truncate' ? null : { id, v },
    source: {
      connector: 'postgresql',
      db: 'db',
      position: { kind: 'postgres', lsn: '0/10', commitLsn: '0/28', commitRecordLsn: '0/20' },
      txId: '7',
      commitTimeMs: 1_700_000_000_000,
      snapshot: false,
    },
  };
}

function batch(seq: number, events: ChangeEvent[]): ChangeBatch {
  return {
    seq,
    events,
    bytes: 0,
    checkpoint: { pipeline: 'del', phase: 'stream', position: { kind: 'postgres', lsn: '0/20' } },
  };
}

const topicsTool = (args: string[], on = bootstrap) =>
  kafkaTool('org.apache.kafka.tools.TopicCommand', ['--bootstrap-server', on, ...args]);
const total = (offsets: Map<number, number>) => [...offsets.values()].reduce((a, b) => a + b, 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!brokers)(
  `Kafka delivery guarantees on a real broker${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    it('the idempotent producer is what the broker sees (producer state per partition), and the client warns of nothing', async () => {
      const lines: { level: number; msg?: string; message?: string }[] = [];
      const logger = pino({ level: 'warn' }, { write: (s: string) => lines.push(JSON.parse(s)) });
      const topic = `${prefix}.idem`;
      const target = new KafkaTarget(config({ topics: { 'public.items': topic } }), { pipeline: 'idem', logger });
      await target.open();
      await target.write(batch(0, [ev('insert', '1', 'a'), ev('insert', '2', 'b')]));
      await target.close();
      expect(lines.filter((l) => /retr|EoS|idempot/i.test(`${l.message ?? ''} ${l.msg ?? ''}`))).toEqual([]);
      expect(lines.filter((l) => l.level >= 40)).toEqual([]);
      const { stdout } = await kafkaTool('org.apache.kafka.tools.TransactionsCommand', [
        '--bootstrap-server',
        bootstrap,
        'describe-producers',
        '--topic',
        topic,
        '--partition',
        '0',
      ]);
      // Header line, then one line per producer: ProducerId ProducerEpoch ... (a non-idempotent producer has none).
      const rows = stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.trim().split(/\s+/));
      expect(rows.length).toBe(1);
      expect(Number(rows[0]![0])).toBeGreaterThanOrEqual(0);
    });

    it('creates missing topics with the configured partitions, replication factor and configs', async () => {
      const topic = `${prefix}.created`;
      const target = new KafkaTarget(
        config({
          topics: { 'public.items': topic },
          topic_partitions: 3,
          topic_replication_factor: 1,
          topic_configs: { 'retention.ms': '123456789', 'max.message.bytes': '300000' },
        }),
        silent,
      );
      await target.open();
      await target.write(batch(0, [ev('insert', '1', 'a')]));
      await target.close();
      const { stdout } = await topicsTool(['--describe', '--topic', topic]);
      expect(stdout).toMatch(/PartitionCount:\s*3/);
      expect(stdout).toMatch(/ReplicationFactor:\s*1/);
      expect(stdout).toContain('retention.ms=123456789');
      expect(stdout).toContain('max.message.bytes=300000');
    });

    it('a compacted topic and a record without a key (TRUNCATE): an operator error naming the cause, nothing retried', async () => {
      const topic = `${prefix}.compacted`;
      const target = new KafkaTarget(
        config({ topics: { 'public.items': topic }, topic_configs: { 'cleanup.policy': 'compact' } }),
        silent,
      );
      await target.open();
      await target.write(batch(0, [ev('insert', '1', 'a'), ev('delete', '1', null)]));
      const started = Date.now();
      const err = await target.write(batch(1, [ev('truncate', '1', null)])).catch((e) => e);
      await target.close();
      expect(Date.now() - started).toBeLessThan(5000);
      expect(err).toBeInstanceOf(TributaryError);
      expect(err.kind).toBe('operator');
      expect(err.message).toMatch(/topic \S+compacted is compacted .* TRUNCATE/);
      // The insert, the delete and its tombstone reached the broker; the truncate did not.
      expect(total(await topicEndOffsets(bootstrap, topic))).toBe(3);
    });

    it('a topic grown since the pipeline last wrote to it stops the next start before anything reaches it; continue takes the new count', async () => {
      const topic = `${prefix}.grown`;
      await topicsTool(['--create', '--topic', topic, '--partitions', '2']);
      const store = new MemoryStore();
      const lastLsn = (source: MemorySource) => (source.committed.length ? lsnOf(source.committed.at(-1)!) : 0);
      const run = async (transactions: number, extra: Record<string, unknown>) => {
        const source = new MemorySource('grown', transactions, 10);
        const target = new KafkaTarget(config({ topics: { 'public.t': topic }, ...extra }), silent);
        const pipeline = new Pipeline({
          name: 'grown',
          createParts: () => ({ source, target, store }),
          maxInFlight: 4,
          maxInFlightBytes: 1 << 30,
          initialBackoffMs: 100,
          maxBackoffMs: 1000,
          logger: silent.logger,
        });
        let ended = false;
        const running = pipeline.run().then(
          () => null,
          (e: unknown) => e,
        );
        void running.then(() => {
          ended = true;
        });
        const deadline = Date.now() + 60_000;
        while (!ended && lastLsn(source) < transactions && Date.now() < deadline) await sleep(100);
        pipeline.stop();
        return await running;
      };
      expect(await run(5, {})).toBeNull();
      expect(total(await topicEndOffsets(bootstrap, topic))).toBe(50);
      expect(store.saved.at(-1)!.state?.target).toEqual({ partitions: { [topic]: 2 } });

      await topicsTool(['--alter', '--topic', topic, '--partitions', '4']);
      const err = (await run(8, {})) as TributaryError;
      expect(err).toBeInstanceOf(TributaryError);
      expect(err.kind).toBe('operator');
      expect(err.message).toContain(`topic ${topic} has 4 partitions, 2 when this pipeline last wrote to it`);
      expect(err.hint).toContain('on_partition_count_change: continue');
      // Judged by the broker: nothing more arrived, in the old partitions or the new.
      const offsets = await topicEndOffsets(bootstrap, topic);
      expect(total(offsets)).toBe(50);
      expect([offsets.get(2), offsets.get(3)]).toEqual([0, 0]);

      expect(await run(8, { on_partition_count_change: 'continue' })).toBeNull();
      expect(total(await topicEndOffsets(bootstrap, topic))).toBe(80);
      expect(store.saved.at(-1)!.state?.target).toEqual({ partitions: { [topic]: 4 } });
      // Remembered: the next start with the default goes on.
      expect(await run(9, {})).toBeNull();
      expect(total(await topicEndOffsets(bootstrap, topic))).toBe(90);
    });
  },
);

function lsnOf(c: Checkpoint): number {
  return Number(parseLsn((c.position as { lsn: string }).lsn));
}

/** A source that hands out nothing until released: the test pauses the broker between open and the first write. */
class GatedSource extends MemorySource {
  opened = false;
  private release!: () => void;
  private readonly gate = new Promise<void>((resolve) => {
    this.release = resolve;
  });

  override async open(from: Checkpoint | null): Promise<void> {
    await super.open(from);
    this.opened = true;
  }

  openGate(): void {
    this.release();
  }

  override async *batches(): AsyncIterable<ChangeBatch> {
    await this.gate;
    yield* super.batches();
  }
}

/** Acknowledgements need a broker of its own: this one is paused (SIGSTOP) and logs every request it completes. */
describe.skipIf(!brokers)(
  `Kafka acknowledgements and checkpoints on a broker of its own${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let broker: KafkaBroker;
    beforeAll(async () => {
      broker = await startKafkaBroker({ requestLog: true });
    });
    afterAll(async () => {
      await broker?.stop();
    });

    it('acks=all, and while the broker answers nothing no checkpoint is saved; afterwards every saved checkpoint trails the broker offsets', async () => {
      const topic = `${prefix}.acks`;
      await topicsTool(['--create', '--topic', topic, '--partitions', '2'], broker.bootstrap);
      const target = new KafkaTarget(
        kafkaTargetConfig.parse({
          type: 'kafka',
          brokers: [broker.bootstrap],
          topic_prefix: prefix,
          client_id: 'acks-check',
          topics: { 'public.t': topic },
          create_topics: false,
        }),
        silent,
      );
      const source = new GatedSource('acks', 20, 50, 5);
      const offsetsAtSave: { upToTx: number; onBroker: number }[] = [];
      class BrokerCheckingStore extends MemoryStore {
        override async save(checkpoint: Checkpoint): Promise<void> {
          offsetsAtSave.push({
            upToTx: lsnOf(checkpoint),
            onBroker: total(await topicEndOffsets(broker.bootstrap, topic)),
          });
          await super.save(checkpoint);
        }
      }
      const store = new BrokerCheckingStore();
      const pipeline = new Pipeline({
        name: 'acks',
        createParts: () => ({ source, target, store }),
        maxInFlight: 4,
        maxInFlightBytes: 1 << 30,
        initialBackoffMs: 100,
        maxBackoffMs: 1000,
        logger: silent.logger,
      });
      const running = pipeline.run();
      try {
        const deadline = Date.now() + 60_000;
        while (!source.opened && Date.now() < deadline) await sleep(50);
        expect(source.opened).toBe(true);
        broker.pause();
        source.openGate();
        await sleep(4000);
        expect(store.saved).toEqual([]);
        expect(source.committed).toEqual([]);
        broker.resume();
        while ((source.committed.length === 0 || lsnOf(source.committed.at(-1)!) < 20) && Date.now() < deadline) {
          await sleep(100);
        }
      } finally {
        broker.resume();
        pipeline.stop();
        await running;
      }
      expect(lsnOf(source.committed.at(-1)!)).toBe(20);
      expect(offsetsAtSave.length).toBeGreaterThan(0);
      for (const { upToTx, onBroker } of offsetsAtSave) expect(onBroker).toBeGreaterThanOrEqual(upToTx * 50);
      expect(total(await topicEndOffsets(broker.bootstrap, topic))).toBe(1000);
      // Every produce request of ours asked for acknowledgement by all in-sync replicas.
      const ours = broker.produceRequests().filter((r) => r.clientId === 'acks-check');
      expect(ours.length).toBeGreaterThan(0);
      expect(new Set(ours.map((r) => r.acks))).toEqual(new Set([-1]));
    });
  },
);
