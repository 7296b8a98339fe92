import { ConnectionError } from '../../src/errors.ts';
import type { KafkaClient, OutgoingMessage, TopicLayout, TopicSpec } from './client.ts';
import { type RecordText, readRecordContent } from './record-reader.test-support.ts';
import { recordSize } from './record-size.ts';

/** A message as the in-memory cluster keeps it: read back from its encoded record content. */
export interface ProducedMessage extends RecordText {
  topic: string;
  partition: number;
  /** Its record's size bound as the target counted it (record-size.ts). */
  size: number;
}

/**
 * A Kafka cluster in memory, for tests of the target's own logic (routing, ordering, acks, failures). It stands in
 * for the broker protocol only: keeps each partition's log in order, and lets a test delay
 * or fail acknowledgements.
 */
export class InMemoryKafkaClient implements KafkaClient {
  readonly topics = new Map<string, { spec: TopicSpec; partitions: ProducedMessage[][] }>();
  /** Every send call, in order. */
  readonly sends: ProducedMessage[][] = [];
  /** Messages acknowledged, in acknowledgement order. */
  readonly acked: ProducedMessage[] = [];
  connected = false;
  /** When set, `send` waits for it before acknowledging (resolve to ack, reject to fail). */
  ackGate: ((messages: ProducedMessage[]) => Promise<void>) | null = null;
  /** The broker is unreachable: every call fails with a connection error. */
  down = false;

  constructor(existing: string[] = [], defaultPartitions = 3) {
    for (const topic of existing)
      this.addTopic({ topic, partitions: defaultPartitions, replicationFactor: 1, configs: {} });
  }

  async connect(): Promise<void> {
    this.fail();
    this.connected = true;
  }

  async existingTopics(topics: string[]): Promise<Set<string>> {
    this.fail();
    return new Set(topics.filter((t) => this.topics.has(t)));
  }

  async createTopics(specs: TopicSpec[]): Promise<void> {
    this.fail();
    for (const s of specs) if (!this.topics.has(s.topic)) this.addTopic(s);
  }

  async describeTopics(topics: string[]): Promise<Map<string, TopicLayout>> {
    this.fail();
    const out = new Map<string, TopicLayout>();
    for (const topic of topics) {
      const t = this.topics.get(topic);
      if (!t) continue;
      out.set(topic, {
        partitions: t.partitions.length,
        maxMessageBytes: Number(t.spec.configs['max.message.bytes'] ?? 1_048_588),
        compacted: (t.spec.configs['cleanup.policy'] ?? 'delete').includes('compact'),
      });
    }
    return out;
  }

  async send(outgoing: OutgoingMessage[]): Promise<void> {
    const messages = outgoing.map(
      (m): ProducedMessage => ({
        topic: m.topic,
        partition: m.partition,
        ...readRecordContent(m.content),
        size: recordSize(m),
      }),
    );
    this.sends.push(messages);
    this.fail();
    for (const m of messages) {
      if (!this.topics.has(m.topic)) throw new Error(`UNKNOWN_TOPIC_OR_PARTITION ${m.topic}`);
    }
    if (this.ackGate) await this.ackGate(messages);
    this.fail();
    for (const m of messages) {
      const t = this.topics.get(m.topic)!;
      const partition = t.partitions[m.partition];
      if (!partition) throw new Error(`UNKNOWN_TOPIC_OR_PARTITION ${m.topic} partition ${m.partition}`);
      partition.push(m);
      this.acked.push(m);
    }
  }

  async disconnect(): Promise<void> {
    this.connected = false;
  }

  /** All messages of a topic, partition by partition. */
  messages(topic: string): ProducedMessage[] {
    return this.topics.get(topic)?.partitions.flat() ?? [];
  }

  private addTopic(spec: TopicSpec): void {
    const n = Math.max(1, spec.partitions);
    this.topics.set(spec.topic, { spec, partitions: Array.from({ length: n }, () => []) });
  }

  private fail(): void {
    if (this.down) {
      throw new ConnectionError('connect ECONNREFUSED 127.0.0.1:9092', 'broker down (in-memory test cluster)');
    }
  }
}
