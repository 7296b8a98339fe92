import type { ChangeBatch } from '../../src/core/change-batch.ts';
import type { ChangeEvent, SourcePosition } from '../../src/core/change-event.ts';
import type { ConnectorContext } from '../../src/core/connector-context.ts';
import type { PlainTarget, WriteResult } from '../../src/core/target.ts';
import { envelopeOptions } from '../../src/envelope/config.ts';
import { type EncodedRecord, EnvelopeEncoder } from '../../src/envelope/encoder.ts';
import {
  beginJson,
  endJson,
  type TransactionBegin,
  type TransactionEnd,
  TransactionTracker,
} from '../../src/envelope/transaction.ts';
import { TributaryError } from '../../src/errors.ts';
import type { KafkaClient, OutgoingMessage, TopicLayout } from './client.ts';
import type { KafkaTargetConfig } from './config.ts';
import { partitionFor } from './partitioner.ts';
import { encodeRecordContent } from './record-batch.ts';
import { RECORD_BATCH_OVERHEAD, recordBatchBudget, recordSize } from './record-size.ts';
import { Sender } from './sender.ts';
import { TopicRouter } from './topic-router.ts';

/** A message before its topic is known to exist: no partition yet, and the event it came from (for errors). */
interface Pending {
  message: OutgoingMessage;
  event: ChangeEvent | null;
}

/** A message as text: key and value JSON (value null: a tombstone), headers. */
interface MessageText {
  topic: string;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

/** The message as it is sent: the record content encoded now, so the JSON text dies young (record-batch.ts). */
function outgoing(m: MessageText): OutgoingMessage {
  return { topic: m.topic, partition: -1, key: m.key, content: encodeRecordContent(m.key, m.value, m.headers) };
}

const TX_KEY_SCHEMA =
  '{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"}],"optional":false,"name":"io.debezium.connector.common.TransactionMetadataKey"}';
const TX_VALUE_SCHEMA =
  '{"type":"struct","fields":[{"type":"string","optional":false,"field":"status"},{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":true,"field":"event_count"},{"type":"array","items":{"type":"struct","fields":[{"type":"string","optional":false,"field":"data_collection"},{"type":"int64","optional":false,"field":"event_count"}],"optional":false},"optional":true,"field":"data_collections"},{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"name":"io.debezium.connector.common.TransactionMetadataValue"}';
const HEARTBEAT_KEY_SCHEMA =
  '{"type":"struct","fields":[{"type":"string","optional":false,"field":"serverName"}],"optional":false,"name":"io.debezium.connector.common.ServerNameKey"}';
const HEARTBEAT_VALUE_SCHEMA =
  '{"type":"struct","fields":[{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"name":"io.debezium.connector.common.Heartbeat"}';

export interface KafkaTargetOptions {
  /** The Kafka client; default: kafka-client.ts (loaded on open). */
  client?: KafkaClient;
  clock?: () => number;
}

/**
 * Produces change events to Kafka, one topic per table, keyed by the primary key, in the shared envelope
 * (docs/event-format.md). `write(batch)` resolves only when the brokers acknowledged every message of the batch
 * (acks=all, idempotent producer), so checkpoints advance only past acknowledged data. Delivery is at least once:
 * after a failure the pipeline replays from its checkpoint and consumers may see messages again.
 */
export class KafkaTarget implements PlainTarget {
  private readonly encoder: EnvelopeEncoder;
  private readonly router: TopicRouter;
  private readonly tracker: TransactionTracker | null;
  private readonly clock: () => number;
  private client: KafkaClient | null;
  private sender: Sender | null = null;
  /** Topics checked (created when allowed) and described since open(): partitions and size limit. */
  private readonly layouts = new Map<string, TopicLayout>();
  /** Each topic's partition count when this pipeline last wrote to it, from the checkpoint resumed from. */
  private readonly writtenPartitions = new Map<string, number>();
  private topicCheck: Promise<void> = Promise.resolve();
  private queueing: Promise<void> = Promise.resolve();
  private failed: unknown = null;
  private lastHeartbeatMs = Number.NEGATIVE_INFINITY;
  private readonly serverKey: string;

  constructor(
    readonly config: KafkaTargetConfig,
    private readonly ctx: ConnectorContext,
    options: KafkaTargetOptions = {},
  ) {
    this.clock = options.clock ?? Date.now;
    this.encoder = new EnvelopeEncoder({
      ...envelopeOptions(config, config.topic_prefix, config.tombstones),
      clock: this.clock,
    });
    this.router = new TopicRouter(config);
    this.tracker =
      config.transaction_metadata || config.transaction_topic !== undefined ? new TransactionTracker() : null;
    this.client = options.client ?? null;
    this.serverKey = `{"serverName":${JSON.stringify(config.topic_prefix)}}`;
  }

  async open(): Promise<void> {
    if (!this.client) {
      const { createKafkaClient } = await import('./kafka-client.ts');
      this.client = createKafkaClient(this.config, this.ctx.logger);
    }
    await this.client.connect();
    // Topics are described anew on every start: partitions and limits may have changed meanwhile.
    this.layouts.clear();
    const compressed = this.config.compression !== 'none';
    this.sender = new Sender(this.client, {
      lingerMs: this.config.linger_ms,
      maxMessages: this.config.batch_max_messages,
      maxBytes: this.config.batch_max_bytes,
      sendTimeoutMs: this.config.send_timeout_ms,
      recordBatchBudget: (topic) => recordBatchBudget(this.layouts.get(topic)!.maxMessageBytes, compressed),
    });
    this.tracker?.reset();
    this.ctx.logger.info({ event: 'kafka_target_opened', brokers: this.config.brokers });
  }

  /** Remembered with each checkpoint: a key's partition depends on its topic's partition count. */
  checkpointState(): Record<string, unknown> {
    const partitions = Object.fromEntries(this.writtenPartitions);
    for (const [topic, layout] of this.layouts) partitions[topic] = layout.partitions;
    return { partitions };
  }

  resume(saved: Record<string, unknown> | undefined): void {
    this.writtenPartitions.clear();
    const partitions = saved?.partitions;
    if (!partitions || typeof partitions !== 'object') return;
    for (const [topic, count] of Object.entries(partitions)) {
      if (Number.isInteger(count)) this.writtenPartitions.set(topic, count as number);
    }
  }

  /** Durable once every message of the batch is acknowledged by the brokers (per the configured acks). */
  async write(batch: ChangeBatch): Promise<WriteResult> {
    const sender = this.sender;
    if (!sender) throw new TributaryError('fatal', 'kafka target written before open()');
    if (this.failed) throw this.failedError();
    const pending: Pending[] = [];
    try {
      this.collect(batch, pending);
    } catch (err) {
      this.failed ??= err;
      throw err;
    }
    // Messages are queued in write order even when a write waits for its topics to be created; a failure stops
    // every later write (a later message must never overtake a lost earlier one).
    const step = this.queueing.then(async () => {
      if (this.failed) throw this.failedError();
      let placed: { messages: OutgoingMessage[]; sizes: number[] };
      try {
        await this.ensureTopics(pending);
        placed = this.place(pending);
      } catch (err) {
        this.failed ??= err;
        throw err;
      }
      return { acked: sender.enqueue(placed.messages, placed.sizes) };
    });
    this.queueing = step.then(
      () => {},
      () => {},
    );
    const { acked } = await step;
    await acked;
    return 'durable';
  }

  async reset(): Promise<void> {
    await this.queueing;
    this.tracker?.reset();
    this.failed = null;
    await this.sender?.reset();
  }

  private failedError(): TributaryError {
    const cause = this.failed;
    return cause instanceof TributaryError
      ? cause
      : new TributaryError('retryable', 'an earlier write to the kafka target failed', { cause });
  }

  async close(): Promise<void> {
    try {
      await this.sender?.flush();
    } catch {
      // the failed write already reported it
    }
    this.sender = null;
    await this.client?.disconnect();
  }

  /** Encodes the batch into messages, with transaction and heartbeat records. Synchronous: order is batch order. */
  private collect(batch: ChangeBatch, messages: Pending[]): void {
    const records: EncodedRecord[] = [];
    const txTopic = this.config.transaction_topic;
    for (const event of batch.events) {
      let position = null;
      if (this.tracker) {
        const step = this.tracker.step(event);
        position = step.position;
        if (txTopic && step.ended) this.push(messages, this.transactionMessage(txTopic, step.ended));
        if (txTopic && step.began) this.push(messages, this.transactionMessage(txTopic, step.began));
      }
      this.encoder.encode(event, records, position);
      for (const r of records) this.pushRecord(r, messages);
      records.length = 0;
    }
    if (batch.checkpoint && this.tracker) {
      const ended = this.tracker.commit(batch.checkpoint);
      if (txTopic && ended) this.push(messages, this.transactionMessage(txTopic, ended));
    }
    const heartbeatTopic = this.config.heartbeat_topic;
    if (heartbeatTopic) {
      const now = this.clock();
      if (now - this.lastHeartbeatMs >= this.config.heartbeat_interval_ms) {
        this.lastHeartbeatMs = now;
        const key = this.config.schemas
          ? `{"schema":${HEARTBEAT_KEY_SCHEMA},"payload":${this.serverKey}}`
          : this.serverKey;
        const payload = `{"ts_ms":${now}}`;
        const value = this.config.schemas ? `{"schema":${HEARTBEAT_VALUE_SCHEMA},"payload":${payload}}` : payload;
        this.push(messages, { topic: heartbeatTopic, key, value, headers: this.baseHeaders() });
      }
    }
  }

  private pushRecord(r: EncodedRecord, messages: Pending[]): void {
    const event = r.event;
    // Schema changes go to the topic named by the prefix alone, as Debezium's do.
    const topic =
      r.type === 'schema_change'
        ? this.config.topic_prefix
        : event.op === 'message'
          ? this.router.messageTopic()
          : this.router.topicFor(event.table);
    const headers = this.config.headers ? positionHeaders(event, this.ctx.pipeline) : {};
    if (r.newKey !== undefined) headers['__debezium.newkey'] = r.newKey;
    if (r.oldKey !== undefined) headers['__debezium.oldkey'] = r.oldKey;
    messages.push({ message: outgoing({ topic, key: r.key, value: r.value, headers }), event });
  }

  private push(messages: Pending[], m: MessageText): void {
    messages.push({ message: outgoing(m), event: null });
  }

  /**
   * Gives each message its partition and size, and refuses what its topic cannot take: a record larger than a whole
   * record batch may be (the only "too large" case: batches are cut below the limit), or a record without a key
   * for a compacted topic. Either stops the pipeline naming table and key; nothing is skipped.
   */
  private place(pending: Pending[]): { messages: OutgoingMessage[]; sizes: number[] } {
    const messages: OutgoingMessage[] = [];
    const sizes: number[] = [];
    const compressed = this.config.compression !== 'none';
    for (const { message: m, event } of pending) {
      const layout = this.layouts.get(m.topic)!;
      const group = event && event.op !== 'message' ? `${event.table.schema}.${event.table.name}` : m.topic;
      m.partition = partitionFor(m.key, group, layout.partitions);
      const size = recordSize(m);
      if (size > recordBatchBudget(layout.maxMessageBytes, compressed)) this.tooLarge(m, size, layout, event);
      if (m.key === null && layout.compacted) this.keylessOnCompacted(m, event);
      messages.push(m);
      sizes.push(size);
    }
    return { messages, sizes };
  }

  private tooLarge(m: OutgoingMessage, size: number, layout: TopicLayout, event: ChangeEvent | null): never {
    throw new TributaryError(
      'operator',
      `kafka target: the message for ${describeOrigin(m, event)} is ${size} bytes, more than topic ${m.topic} takes (max.message.bytes ${layout.maxMessageBytes}, of which a record batch header uses ${RECORD_BATCH_OVERHEAD}${this.config.compression === 'none' ? '' : ' and compression a safety margin'})`,
      {
        hint: `Raise the topic's max.message.bytes (kafka-configs --alter --entity-type topics --entity-name ${m.topic} --add-config max.message.bytes=N; for topics this target creates, topic_configs) and restart: limits are read at start.`,
      },
    );
  }

  /**
   * Keys are placed by the partition count (as Kafka's own producer places them), so after a topic grew a key's next
   * events go to another partition than its earlier ones, and a consumer may read them first. Stops unless the
   * operator said the consumers are ready for it.
   */
  private partitionCountChanged(topic: string, before: number, layout: TopicLayout): void {
    const what = `kafka target: topic ${topic} has ${layout.partitions} partitions, ${before} when this pipeline last wrote to it`;
    if (this.config.on_partition_count_change === 'continue') {
      this.ctx.logger.warn(
        { event: 'kafka_partition_count_changed', topic, before, now: layout.partitions },
        `${what}: keys are placed by the new count from now on (on_partition_count_change: continue)`,
      );
      return;
    }
    throw new TributaryError(
      'operator',
      `${what}: most keys would now go to another partition than their earlier events, and a consumer could read a key's new events before its old ones`,
      {
        hint: `Let every consumer of ${topic} read it to its end, then set on_partition_count_change: continue on this target and start again (the new count is remembered from then on; set it back to stop afterwards).`,
      },
    );
  }

  private keylessOnCompacted(m: OutgoingMessage, event: ChangeEvent | null): never {
    const what = event?.op === 'truncate' ? 'a TRUNCATE (it has no key)' : 'a row of a table without a primary key';
    throw new TributaryError(
      'operator',
      `kafka target: topic ${m.topic} is compacted (cleanup.policy compact) and refuses records without a key, but ${what} must go there: ${describeOrigin(m, event)}`,
      {
        hint: 'Give the table a primary key (or a replica identity index), route it to a topic with cleanup.policy delete (`topics` / `topic_routes`), or drop compact from the topic; restart afterwards.',
      },
    );
  }

  private transactionMessage(topic: string, t: TransactionBegin | TransactionEnd): MessageText {
    const keyPayload = `{"id":${JSON.stringify(t.id)}}`;
    const payload = 'eventCount' in t ? endJson(t) : beginJson(t);
    return {
      topic,
      key: this.config.schemas ? `{"schema":${TX_KEY_SCHEMA},"payload":${keyPayload}}` : keyPayload,
      value: this.config.schemas ? `{"schema":${TX_VALUE_SCHEMA},"payload":${payload}}` : payload,
      headers: this.config.headers ? positionHeaders(t.event, this.ctx.pipeline) : {},
    };
  }

  private baseHeaders(): Record<string, string> {
    return this.config.headers ? { 'tributary.pipeline': this.ctx.pipeline } : {};
  }

  /** Makes sure every topic of these messages exists (creating it when allowed) and is described. One at a time. */
  private ensureTopics(pending: Pending[]): Promise<void> {
    let missing: string[] | null = null;
    for (const { message: m } of pending) {
      if (this.layouts.has(m.topic)) continue;
      missing ??= [];
      if (!missing.includes(m.topic)) missing.push(m.topic);
    }
    if (!missing) return Promise.resolve();
    const wanted = missing;
    const run = this.topicCheck.then(() => this.checkTopics(wanted));
    this.topicCheck = run.catch(() => {});
    return run;
  }

  private async checkTopics(topics: string[]): Promise<void> {
    const client = this.client!;
    const unknown = topics.filter((t) => !this.layouts.has(t));
    if (unknown.length === 0) return;
    const existing = await client.existingTopics(unknown);
    const absent = unknown.filter((t) => !existing.has(t));
    if (absent.length > 0) {
      if (!this.config.create_topics) {
        throw new TributaryError('operator', `kafka target: topic ${absent.join(', ')} does not exist`, {
          hint: 'Create the topic (partitions, replication and cleanup policy to taste), set create_topics: true, or route the table elsewhere with `topics` / `topic_routes`.',
        });
      }
      await client.createTopics(
        absent.map((topic) => ({
          topic,
          partitions: this.config.topic_partitions,
          replicationFactor: this.config.topic_replication_factor,
          configs: this.config.topic_configs,
        })),
      );
      this.ctx.logger.info({ event: 'kafka_topics_created', topics: absent });
    }
    const layouts = await client.describeTopics(unknown);
    for (const topic of unknown) {
      const layout = layouts.get(topic);
      if (!layout) {
        throw new TributaryError('retryable', `kafka target: topic ${topic} has no metadata yet`, {
          hint: 'The topic was deleted or is still being created; the pipeline retries from its checkpoint.',
        });
      }
      const before = this.writtenPartitions.get(topic);
      if (before !== undefined && before !== layout.partitions) this.partitionCountChanged(topic, before, layout);
      this.layouts.set(topic, layout);
      this.ctx.logger.info({ event: 'kafka_topic_described', topic, ...layout });
    }
  }
}

function describeOrigin(m: OutgoingMessage, event: ChangeEvent | null): string {
  const key = truncate(m.key ?? 'null', 300);
  if (!event) return `topic ${m.topic} key ${key}`;
  return `table ${event.table.schema}.${event.table.name} key ${key} (${describePosition(event.source.position)})`;
}

/** Headers naming where the change came from, so consumers can deduplicate replays. */
export function positionHeaders(event: ChangeEvent, pipeline: string): Record<string, string> {
  const h: Record<string, string> = { 'tributary.pipeline': pipeline };
  const p = event.source.position;
  if (p.kind === 'postgres') {
    h['tributary.lsn'] = p.lsn;
    // The commit record's LSN, known from the transaction's Begin: a replayed change carries the same header.
    if (p.commitRecordLsn) h['tributary.commit_lsn'] = p.commitRecordLsn;
  } else {
    h['tributary.binlog_file'] = p.file;
    h['tributary.binlog_pos'] = String(p.pos);
    h['tributary.binlog_row'] = String(p.row);
    if (p.gtid) h['tributary.gtid'] = p.gtid;
  }
  if (event.source.txId !== undefined) h['tributary.tx_id'] = event.source.txId;
  if (event.source.snapshot !== false) h['tributary.snapshot'] = event.source.snapshot;
  return h;
}

function describePosition(p: SourcePosition): string {
  return p.kind === 'postgres' ? `LSN ${p.lsn}` : `binlog ${p.file}:${p.pos} row ${p.row}`;
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n)}...`;
}
