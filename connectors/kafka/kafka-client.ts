/**
 * The kafkajs implementation of KafkaClient. The only file that imports kafkajs.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import {
  type Admin,
  CompressionTypes,
  Kafka,
  type KafkaConfig,
  logLevel,
  type Message,
  Partitioners,
  type Producer,
  type SASLOptions,
} from 'kafkajs';
import { ConnectionError, TributaryError } from '../../src/errors.ts';
import type { Logger } from '../../src/observability/logger.ts';
import type { KafkaClient, OutgoingMessage, TopicSpec } from './client.ts';
import type { KafkaTargetConfig } from './config.ts';

export function createKafkaJsClient(config: KafkaTargetConfig, logger: Logger): KafkaClient {
  return new KafkaJsClient(config, logger);
}

class KafkaJsClient implements KafkaClient {
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private admin: Admin | null = null;
  private readonly compression: CompressionTypes;

  constructor(
    private readonly config: KafkaTargetConfig,
    private readonly logger: Logger,
  ) {
    const kafkaConfig: KafkaConfig = {
      clientId: config.client_id,
      brokers: config.brokers,
      connectionTimeout: config.connection_timeout_ms,
      requestTimeout: config.request_timeout_ms,
      retry: { retries: config.retries },
      ssl: tlsOptions(config.tls),
      sasl: saslOptions(config.sasl),
      logLevel: logLevel.WARN,
      logCreator:
        () =>
        ({ level, log }) => {
          const { message, ...fields } = log;
          const entry = { event: 'kafka_client_log', message, ...fields };
          if (level <= logLevel.ERROR) this.logger.error(entry);
          else if (level === logLevel.WARN) this.logger.warn(entry);
          else this.logger.debug(entry);
        },
    };
    this.kafka = new Kafka(kafkaConfig);
    this.producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: config.retries },
    });
    this.compression = config.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  }

  async connect(): Promise<void> {
    try {
      await this.producer.connect();
    } catch (err) {
      throw translate(err, `cannot connect to Kafka brokers ${this.config.brokers.join(', ')}`);
    }
  }

  private async adminClient(): Promise<Admin> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      try {
        await admin.connect();
      } catch (err) {
        throw translate(err, 'cannot connect the Kafka admin client');
      }
      this.admin = admin;
    }
    return this.admin;
  }

  async existingTopics(topics: string[]): Promise<Set<string>> {
    const admin = await this.adminClient();
    try {
      const all = new Set(await admin.listTopics());
      return new Set(topics.filter((t) => all.has(t)));
    } catch (err) {
      throw translate(err, 'cannot list Kafka topics');
    }
  }

  async createTopics(specs: TopicSpec[]): Promise<void> {
    const admin = await this.adminClient();
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: specs.map((s) => ({
          topic: s.topic,
          numPartitions: s.partitions,
          replicationFactor: s.replicationFactor,
          configEntries: Object.entries(s.configs).map(([name, value]) => ({ name, value })),
        })),
      });
    } catch (err) {
      // Created meanwhile by someone else: fine.
      if ((err as { type?: string }).type === 'TOPIC_ALREADY_EXISTS') return;
      throw translate(err, `cannot create Kafka topics ${specs.map((s) => s.topic).join(', ')}`);
    }
  }

  async send(messages: OutgoingMessage[]): Promise<void> {
    const byTopic = new Map<string, Message[]>();
    for (const m of messages) {
      let list = byTopic.get(m.topic);
      if (!list) {
        list = [];
        byTopic.set(m.topic, list);
      }
      list.push({ key: m.key, value: m.value, headers: m.headers });
    }
    try {
      await this.producer.sendBatch({
        acks: -1,
        timeout: this.config.request_timeout_ms,
        compression: this.compression,
        topicMessages: [...byTopic].map(([topic, msgs]) => ({ topic, messages: msgs })),
      });
    } catch (err) {
      throw translate(err, 'Kafka did not acknowledge a produce request');
    }
  }

  async disconnect(): Promise<void> {
    await Promise.allSettled([this.producer.disconnect(), this.admin?.disconnect()]);
    this.admin = null;
  }
}

/** kafkajs error -> our error kinds. */
function translate(err: unknown, what: string): TributaryError {
  if (err instanceof TributaryError) return err;
  const e = err as { name?: string; type?: string; message?: string; retriable?: boolean; cause?: unknown };
  const detail = e.message ?? String(err);
  const type = e.type ?? causeType(e);
  switch (type) {
    case 'MESSAGE_TOO_LARGE':
    case 'RECORD_LIST_TOO_LARGE':
      return new TributaryError('operator', `${what}: ${detail}`, {
        hint: "A message exceeds the broker's or topic's size limit: lower max_message_bytes to match max.message.bytes (messages above it then fail or are skipped by the `oversize` setting), or raise the topic limit.",
        cause: err,
      });
    case 'TOPIC_AUTHORIZATION_FAILED':
    case 'CLUSTER_AUTHORIZATION_FAILED':
    case 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED':
      return new TributaryError('operator', `${what}: ${detail}`, {
        hint: 'Grant the principal WRITE (and CREATE when create_topics is on, IDEMPOTENT_WRITE on older brokers) on the topics.',
        cause: err,
      });
    case 'UNKNOWN_TOPIC_OR_PARTITION':
      return new TributaryError('operator', `${what}: ${detail}`, {
        hint: 'The topic does not exist: create it or set create_topics: true.',
        cause: err,
      });
    case 'INVALID_REPLICATION_FACTOR':
    case 'POLICY_VIOLATION':
    case 'INVALID_CONFIG':
      return new TributaryError('operator', `${what}: ${detail}`, {
        hint: 'Check topic_partitions, topic_replication_factor and topic_configs against the cluster.',
        cause: err,
      });
  }
  if (e.name === 'KafkaJSSASLAuthenticationError') {
    return new TributaryError('operator', `${what}: ${detail}`, {
      hint: 'Check the sasl mechanism, username and password.',
      cause: err,
    });
  }
  return new ConnectionError(
    `${what}: ${detail}`,
    'Check that the brokers are reachable and healthy; the pipeline retries from its last checkpoint.',
    err,
  );
}

function causeType(e: { cause?: unknown }): string | undefined {
  let c = e.cause as { type?: string; cause?: unknown } | undefined;
  for (let i = 0; c && i < 5; i++) {
    if (c.type) return c.type;
    c = c.cause as typeof c;
  }
  return undefined;
}

function tlsOptions(tls: KafkaTargetConfig['tls']): boolean | ConnectionOptions | undefined {
  if (tls === false) return undefined;
  if (tls === true) return true;
  return {
    ca: readPem(tls.ca_file, 'ca_file'),
    cert: readPem(tls.cert_file, 'cert_file'),
    key: readPem(tls.key_file, 'key_file'),
    rejectUnauthorized: tls.reject_unauthorized,
    servername: tls.servername,
  };
}

function readPem(file: string | undefined, key: string): string | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new TributaryError('operator', `kafka target: cannot read tls.${key} ${file}`, {
      hint: 'Check the path and that this process may read it.',
      cause: err,
    });
  }
}

function saslOptions(sasl: KafkaTargetConfig['sasl']): SASLOptions | undefined {
  if (!sasl) return undefined;
  const { username, password } = sasl;
  switch (sasl.mechanism) {
    case 'plain':
      return { mechanism: 'plain', username, password };
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', username, password };
    case 'scram-sha-512':
      return { mechanism: 'scram-sha-512', username, password };
  }
}

/** Reads up to `max` messages of a topic from the beginning (for integration tests and diagnostics). */
export async function readTopicMessages(
  config: KafkaTargetConfig,
  topic: string,
  max: number,
  timeoutMs = 30_000,
): Promise<{ key: string | null; value: string | null; headers: Record<string, string>; partition: number }[]> {
  const kafka = new Kafka({
    clientId: `${config.client_id}-reader`,
    brokers: config.brokers,
    ssl: tlsOptions(config.tls),
    sasl: saslOptions(config.sasl),
    logLevel: logLevel.NOTHING,
  });
  const consumer = kafka.consumer({ groupId: `tributary-reader-${process.pid}-${Date.now()}` });
  const out: { key: string | null; value: string | null; headers: Record<string, string>; partition: number }[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => resolve(), timeoutMs);
      consumer
        .run({
          eachMessage: async ({ message, partition }) => {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
            out.push({
              key: message.key ? message.key.toString('utf8') : null,
              value: message.value ? message.value.toString('utf8') : null,
              headers,
              partition,
            });
            if (out.length >= max) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}
