import type { ChangeBatch } from '../../src/core/change-batch.ts';
import type { ChangeEvent, SourcePosition } from '../../src/core/change-event.ts';
import type { ConnectorContext } from '../../src/core/connector-context.ts';
import type { Target } from '../../src/core/target.ts';
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
import type { KafkaClient, OutgoingMessage } from './client.ts';
import type { KafkaTargetConfig } from './config.ts';
import { Sender } from './sender.ts';
import { TopicRouter } from './topic-router.ts';

/** Bytes a record adds beyond key, value and headers (record framing, timestamps, varints); an estimate. */
const RECORD_OVERHEAD = 64;

const TX_KEY_SCHEMA =
  '{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"}],"optional":false,"name":"io.debezium.connector.common.TransactionMetadataKey"}';
const TX_VALUE_SCHEMA =
  '{"type":"struct","fields":[{"type":"string","optional":false,"field":"status"},{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":true,"field":"event_count"},{"type":"array","items":{"type":"struct","fields":[{"type":"string","optional":false,"field":"data_collection"},{"type":"int64","optional":false,"field":"event_count"}],"optional":false},"optional":true,"field":"data_collections"},{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"name":"io.debezium.connector.common.TransactionMetadataValue"}';
const HEARTBEAT_KEY_SCHEMA =
  '{"type":"struct","fields":[{"type":"string","optional":false,"field":"serverName"}],"optional":false,"name":"io.debezium.connector.common.ServerNameKey"}';
const HEARTBEAT_VALUE_SCHEMA =
  '{"type":"struct","fields":[{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"name":"io.debezium.connector.common.Heartbeat"}';

export interface KafkaTargetOptions {
  /** The Kafka client; default: kafkajs (loaded on open). */
  client?: KafkaClient;
  clock?: () => number;
}

/**
 * Produces change events to Kafka, one topic per table, keyed by the primary key, in the shared envelope
 * (docs/event-format.md). `write(batch)` resolves only when the brokers acknowledged every message of the batch
 * (acks=all, idempotent producer), so checkpoints advance only past acknowledged data. Delivery is at least once:
 * after a failure the pipeline replays from its checkpoint and consumers may see messages again.
 */
export class KafkaTarget implements Target {
  private readonly encoder: EnvelopeEncoder;
  private readonly router: TopicRouter;
  private readonly tracker: TransactionTracker | null;
  private readonly clock: () => number;
  private client: KafkaClient | null;
  private sender: Sender | null = null;
  private readonly knownTopics = new Set<string>();
  private topicCheck: Promise<void> = Promise.resolve();
  private queueing: Promise<void> = Promise.resolve();
  private failed: unknown = null;
  private lastHeartbeatMs = Number.NEGATIVE_INFINITY;
  private readonly serverKey: string;
  /** Messages skipped because of `oversize: skip`. */
  skippedOversize = 0;

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
      const { createKafkaJsClient } = await import('./kafka-client.ts');
      this.client = createKafkaJsClient(this.config, this.ctx.logger);
    }
    await this.client.connect();
    this.sender = new Sender(this.client, {
      lingerMs: this.config.linger_ms,
      maxMessages: this.config.batch_max_messages,
      maxBytes: this.config.batch_max_bytes,
      sendTimeoutMs: this.config.send_timeout_ms,
    });
    this.tracker?.reset();
    this.ctx.logger.info({ event: 'kafka_target_opened', brokers: this.config.brokers });
  }

  async write(batch: ChangeBatch): Promise<void> {
    const sender = this.sender;
    if (!sender) throw new TributaryError('fatal', 'kafka target written before open()');
    if (this.failed) throw this.failedError();
    const messages: OutgoingMessage[] = [];
    const sizes: number[] = [];
    try {
      this.collect(batch, messages, sizes);
    } catch (err) {
      this.failed ??= err;
      throw err;
    }
    // Messages are queued in write order even when a write waits for its topics to be created; a failure stops
    // every later write (a later message must never overtake a lost earlier one).
    const step = this.queueing.then(async () => {
      if (this.failed) throw this.failedError();
      try {
        await this.ensureTopics(messages);
      } catch (err) {
        this.failed ??= err;
        throw err;
      }
      return { acked: sender.enqueue(messages, sizes) };
    });
    this.queueing = step.then(
      () => {},
      () => {},
    );
    const { acked } = await step;
    await acked;
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
  private collect(batch: ChangeBatch, messages: OutgoingMessage[], sizes: number[]): void {
    const records: EncodedRecord[] = [];
    const txTopic = this.config.transaction_topic;
    for (const event of batch.events) {
      let position = null;
      if (this.tracker) {
        const step = this.tracker.step(event);
        position = step.position;
        if (txTopic && step.ended) this.push(messages, sizes, this.transactionMessage(txTopic, step.ended));
        if (txTopic && step.began) this.push(messages, sizes, this.transactionMessage(txTopic, step.began));
      }
      this.encoder.encode(event, records, position);
      for (const r of records) this.pushRecord(r, messages, sizes);
      records.length = 0;
    }
    if (batch.checkpoint && this.tracker) {
      const ended = this.tracker.commit(batch.checkpoint);
      if (txTopic && ended) this.push(messages, sizes, this.transactionMessage(txTopic, ended));
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
        this.push(messages, sizes, { topic: heartbeatTopic, key, value, headers: this.baseHeaders() });
      }
    }
  }

  private pushRecord(r: EncodedRecord, messages: OutgoingMessage[], sizes: number[]): void {
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
    const m: OutgoingMessage = { topic, key: r.key, value: r.value, headers };
    const size = messageSize(m, this.config.max_message_bytes);
    if (size > this.config.max_message_bytes) {
      this.oversize(m, size, event);
      return;
    }
    messages.push(m);
    sizes.push(size);
  }

  private push(messages: OutgoingMessage[], sizes: number[], m: OutgoingMessage): void {
    messages.push(m);
    sizes.push(messageSize(m, Number.POSITIVE_INFINITY));
  }

  private oversize(m: OutgoingMessage, size: number, event: ChangeEvent): void {
    const table = `${event.table.schema}.${event.table.name}`;
    const key = truncate(m.key ?? 'null', 300);
    const position = describePosition(event.source.position);
    if (this.config.oversize === 'skip') {
      this.skippedOversize++;
      this.ctx.logger.error({
        event: 'kafka_message_skipped_oversize',
        table,
        key,
        topic: m.topic,
        bytes: size,
        max_message_bytes: this.config.max_message_bytes,
        position,
      });
      return;
    }
    throw new TributaryError(
      'operator',
      `kafka target: the message for table ${table} key ${key} (${position}) is ${size} bytes, above max_message_bytes ${this.config.max_message_bytes}`,
      {
        hint: "Raise max_message_bytes together with the topic's max.message.bytes (and the broker's message.max.bytes), or set oversize: skip to log and skip such messages.",
      },
    );
  }

  private transactionMessage(topic: string, t: TransactionBegin | TransactionEnd): OutgoingMessage {
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

  /** Makes sure every topic of these messages exists (creating it when allowed). Checks run one at a time. */
  private ensureTopics(messages: OutgoingMessage[]): Promise<void> {
    let missing: string[] | null = null;
    for (const m of messages) {
      if (this.knownTopics.has(m.topic)) continue;
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
    const unknown = topics.filter((t) => !this.knownTopics.has(t));
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
    for (const t of unknown) this.knownTopics.add(t);
  }
}

/** Headers naming where the change came from, so consumers can deduplicate replays. */
export function positionHeaders(event: ChangeEvent, pipeline: string): Record<string, string> {
  const h: Record<string, string> = { 'tributary.pipeline': pipeline };
  const p = event.source.position;
  if (p.kind === 'postgres') {
    h['tributary.lsn'] = p.lsn;
    if (p.commitLsn) h['tributary.commit_lsn'] = p.commitLsn;
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

/**
 * Bytes of a message (UTF-8 key + value + headers + framing estimate). Strings shorter than a third of the limit
 * cannot exceed it, so the exact count is skipped for them.
 */
function messageSize(m: OutgoingMessage, limit: number): number {
  let chars = RECORD_OVERHEAD + (m.key?.length ?? 0) + (m.value?.length ?? 0);
  for (const k in m.headers) chars += k.length + m.headers[k]!.length + 2;
  if (chars * 3 <= limit) return chars; // an upper bound on UTF-8 bytes is within the limit: close enough
  let bytes = RECORD_OVERHEAD;
  if (m.key) bytes += Buffer.byteLength(m.key);
  if (m.value) bytes += Buffer.byteLength(m.value);
  for (const k in m.headers) bytes += Buffer.byteLength(k) + Buffer.byteLength(m.headers[k]!) + 2;
  return bytes;
}

function describePosition(p: SourcePosition): string {
  return p.kind === 'postgres' ? `LSN ${p.lsn}` : `binlog ${p.file}:${p.pos} row ${p.row}`;
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n)}...`;
}
