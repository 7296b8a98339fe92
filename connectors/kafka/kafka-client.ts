/**
 * The Kafka client behind KafkaClient: kafkajs for the cluster's administration (topics, their configs, the broker's
 * limits), and our own idempotent producer (producer.ts) for the data, which sends record batches we encode
 * ourselves (record-batch.ts): kafkajs's per-record encoding cost several times our whole pipeline. The only file
 * that imports kafkajs.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls, { type ConnectionOptions } from 'node:tls';
import kafkajs, { type Admin, type ISocketFactory, Kafka, type KafkaConfig, logLevel, type SASLOptions } from 'kafkajs';
import { ConnectionError, TributaryError } from '../../src/errors.ts';
import type { Logger } from '../../src/observability/logger.ts';
import { type TlsSettingNames, tlsFailure } from '../../src/tls/tls-failure.ts';
import type { KafkaClient, OutgoingMessage, TopicLayout, TopicSpec } from './client.ts';
import type { KafkaTargetConfig } from './config.ts';
import { IdempotentProducer, type PartitionRecords } from './producer.ts';
import type { BrokerAddress } from './wire.ts';

// Not found by Node's named-export detection of the CommonJS package: taken from its default export.
const { ConfigResourceTypes } = kafkajs;

export function createKafkaClient(config: KafkaTargetConfig, logger: Logger): KafkaClient {
  return new ClusterClient(config, logger);
}

/**
 * One connection's worth of client objects. The producer retries a produce request on its own (same batch, same
 * sequence number, so the broker keeps it once) until it is ended. A send given up by us must not be sent again
 * behind the replay that follows: so every connection has its own sockets, and an ended connection destroys them and
 * refuses new ones, which ends any retry still running inside it.
 */
class Connection {
  readonly kafka: Kafka;
  readonly producer: IdempotentProducer;
  private admin: Admin | null = null;
  private readonly sockets = new Set<net.Socket>();
  private ended = false;

  constructor(config: KafkaTargetConfig, logger: Logger) {
    const socketFactory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
      if (this.ended) {
        const refused = new net.Socket();
        process.nextTick(() => refused.destroy(new Error('this Kafka connection was ended')));
        return refused;
      }
      const socket = ssl
        ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
        : net.connect({ host, port }, onConnect);
      socket.setKeepAlive(true, 60_000);
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      return socket;
    };
    const ssl = tlsOptions(config.tls);
    const kafkaConfig: KafkaConfig = {
      clientId: config.client_id,
      brokers: config.brokers,
      connectionTimeout: config.connection_timeout_ms,
      requestTimeout: config.request_timeout_ms,
      // Backoff between tries capped at 5 s, so an unreachable cluster is reported within about half a minute.
      retry: { retries: config.retries, maxRetryTime: 5_000 },
      ssl,
      sasl: saslOptions(config.sasl),
      socketFactory,
      logLevel: logLevel.WARN,
      logCreator:
        () =>
        ({ level, log }) => {
          if (this.ended) return; // the retries of an ended connection failing: expected, not news
          const { message, ...fields } = log;
          const entry = { event: 'kafka_client_log', message, ...fields };
          // Error responses kafkajs retries itself (coordinator loading, leader moving): a request that finally
          // fails reports the cause through our own error.
          if (typeof message === 'string' && message.startsWith('Response ')) logger.debug(entry);
          // Connection failures: the pipeline says what is unreachable and when it tries again, once per try.
          else if (typeof message === 'string' && /Connection error|Failed to connect|Connection timeout/.test(message))
            logger.debug(entry);
          else if (level <= logLevel.ERROR) logger.error(entry);
          else if (level === logLevel.WARN) logger.warn(entry);
          else logger.debug(entry);
        },
    };
    this.kafka = new Kafka(kafkaConfig);
    // Idempotent with acks=all and one request per partition at a time: the broker drops a retried duplicate and
    // keeps order. No retry limit inside; send_timeout_ms bounds a send from the outside.
    this.producer = new IdempotentProducer(config.brokers.map(brokerAddress), {
      clientId: config.client_id,
      tls: ssl === true ? {} : ssl || undefined,
      sasl: config.sasl,
      connectionTimeoutMs: config.connection_timeout_ms,
      requestTimeoutMs: config.request_timeout_ms,
      ackTimeoutMs: config.request_timeout_ms,
    });
  }

  async adminClient(): Promise<Admin> {
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

  async end(): Promise<void> {
    this.ended = true;
    this.producer.end();
    for (const socket of this.sockets) socket.destroy();
    await Promise.allSettled([this.admin?.disconnect()]);
    this.admin = null;
  }
}

/** host:port (an IPv6 address in brackets) as the producer connects to it. */
function brokerAddress(broker: string): BrokerAddress {
  const colon = broker.lastIndexOf(':');
  const host = colon > 0 ? broker.slice(0, colon) : broker;
  const port = colon > 0 ? Number(broker.slice(colon + 1)) : 9092;
  return { host: host.replace(/^\[(.*)\]$/, '$1'), port };
}

class ClusterClient implements KafkaClient {
  private connection: Connection | null = null;
  private brokerMaxMessageBytes: number | undefined;

  constructor(
    private readonly config: KafkaTargetConfig,
    private readonly logger: Logger,
  ) {}

  async connect(): Promise<void> {
    await this.connection?.end();
    const connection = new Connection(this.config, this.logger);
    this.connection = connection;
    this.logger.info(
      { event: 'kafka_connecting', brokers: this.config.brokers },
      `connecting to Kafka brokers ${this.config.brokers.join(', ')}`,
    );
    try {
      // The admin client connects with the bounded `retries`: an unreachable broker fails here, and the pipeline
      // retries with its own backoff (one line per try, and a stop is not held up); the producer's unlimited retries
      // only start once a broker answered.
      await connection.adminClient().catch((err) => {
        throw (err as { cause?: unknown }).cause ?? err;
      });
      await connection.producer.open();
    } catch (err) {
      throw translate(err, `cannot connect to Kafka brokers ${this.config.brokers.join(', ')}`);
    }
  }

  private current(): Connection {
    if (!this.connection) throw new TributaryError('fatal', 'kafka client used before connect()');
    return this.connection;
  }

  async existingTopics(topics: string[]): Promise<Set<string>> {
    const admin = await this.current().adminClient();
    try {
      const all = new Set(await admin.listTopics());
      return new Set(topics.filter((t) => all.has(t)));
    } catch (err) {
      throw translate(err, 'cannot list Kafka topics');
    }
  }

  async createTopics(specs: TopicSpec[]): Promise<void> {
    const admin = await this.current().adminClient();
    const topics = specs.map((s) => s.topic);
    try {
      await admin.createTopics({
        waitForLeaders: false,
        topics: specs.map((s) => ({
          topic: s.topic,
          numPartitions: s.partitions,
          replicationFactor: s.replicationFactor,
          configEntries: Object.entries(s.configs).map(([name, value]) => ({ name, value })),
        })),
      });
    } catch (err) {
      // Created meanwhile by someone else: fine.
      if (errorType(err) !== 'TOPIC_ALREADY_EXISTS')
        throw translate(err, `cannot create Kafka topics ${topics.join(', ')}`);
    }
    await this.waitForLeaders(admin, topics);
  }

  /**
   * A created topic takes a moment to reach the brokers' metadata; until then requests about it fail with
   * UNKNOWN_TOPIC_OR_PARTITION or LEADER_NOT_AVAILABLE. Waits until every partition has a leader.
   */
  private async waitForLeaders(admin: Admin, topics: string[]): Promise<void> {
    const deadline = Date.now() + this.config.request_timeout_ms;
    for (;;) {
      try {
        const { topics: found } = await admin.fetchTopicMetadata({ topics });
        const ready = found.length === topics.length && found.every((t) => t.partitions.every((p) => p.leader >= 0));
        if (ready) return;
      } catch (err) {
        if (Date.now() > deadline) throw translate(err, `Kafka topics ${topics.join(', ')} have no leader yet`);
      }
      if (Date.now() > deadline) {
        throw new ConnectionError(
          `Kafka topics ${topics.join(', ')} were created but have no leader after ${this.config.request_timeout_ms} ms`,
          'Check the brokers are healthy; the pipeline retries from its last checkpoint.',
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async describeTopics(topics: string[]): Promise<Map<string, TopicLayout>> {
    const admin = await this.current().adminClient();
    const out = new Map<string, TopicLayout>();
    try {
      const brokerLimit = await this.brokerLimit(admin);
      const metadata = await admin.fetchTopicMetadata({ topics });
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: topics.map((name) => ({
          type: ConfigResourceTypes.TOPIC,
          name,
          configNames: ['max.message.bytes', 'cleanup.policy'],
        })),
      });
      for (const t of metadata.topics) {
        const entries = configs.resources.find((r) => r.resourceName === t.name)?.configEntries ?? [];
        const value = (name: string) => entries.find((e) => e.configName === name)?.configValue;
        out.set(t.name, {
          partitions: t.partitions.length,
          maxMessageBytes: Number(value('max.message.bytes') ?? brokerLimit),
          compacted: (value('cleanup.policy') ?? '').includes('compact'),
        });
      }
    } catch (err) {
      throw translate(err, `cannot describe Kafka topics ${topics.join(', ')}`);
    }
    return out;
  }

  /** The broker's message.max.bytes (the default of every topic's max.message.bytes), read once and logged. */
  private async brokerLimit(admin: Admin): Promise<number> {
    if (this.brokerMaxMessageBytes === undefined) {
      const cluster = await admin.describeCluster();
      const broker = cluster.brokers.find((b) => b.nodeId === cluster.controller) ?? cluster.brokers[0];
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          { type: ConfigResourceTypes.BROKER, name: String(broker?.nodeId), configNames: ['message.max.bytes'] },
        ],
      });
      const value = configs.resources[0]?.configEntries.find((e) => e.configName === 'message.max.bytes')?.configValue;
      this.brokerMaxMessageBytes = Number(value ?? 1_048_588);
      this.logger.info({ event: 'kafka_broker_limits', message_max_bytes: this.brokerMaxMessageBytes });
    }
    return this.brokerMaxMessageBytes;
  }

  async send(messages: OutgoingMessage[]): Promise<void> {
    // One record batch per partition, its records in the order given.
    const batches = new Map<string, PartitionRecords>();
    for (const m of messages) {
      const key = `${m.topic}\u0000${m.partition}`;
      const batch = batches.get(key);
      if (batch) batch.records.push(m);
      else batches.set(key, { topic: m.topic, partition: m.partition, records: [m] });
    }
    try {
      await this.current().producer.send([...batches.values()], this.config.compression);
    } catch (err) {
      throw translate(err, 'Kafka did not acknowledge a produce request');
    }
  }

  async disconnect(): Promise<void> {
    const connection = this.connection;
    this.connection = null;
    await connection?.end();
  }
}

/** kafkajs error -> our error kinds. */
function translate(err: unknown, what: string): TributaryError {
  if (err instanceof TributaryError) return err;
  const e = err as { name?: string; type?: string; message?: string; retriable?: boolean; cause?: unknown };
  const detail = e.message ?? String(err);
  const type = errorType(err);
  switch (type) {
    case 'MESSAGE_TOO_LARGE':
    case 'RECORD_LIST_TOO_LARGE':
      return new TributaryError('operator', `${what}: ${detail}`, {
        hint: "A record batch was cut below the topic's max.message.bytes as read at start: the topic's or broker's limit was lowered since. Restart the pipeline to read the limits again.",
        cause: err,
      });
    case 'INVALID_RECORD':
      return new TributaryError('operator', `${what}: the broker refused a record as invalid: ${detail}`, {
        hint: 'A compacted topic refuses records without a key (TRUNCATE, tables without a primary key): route such tables to a topic with cleanup.policy delete.',
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
  const tls = tlsFailure(err, 'the Kafka brokers', KAFKA_TLS_SETTINGS);
  if (tls)
    return tls.kind === 'retryable'
      ? new ConnectionError(`${what}: ${tls.message}`, tls.hint ?? '', err)
      : new TributaryError(tls.kind, `${what}: ${tls.message}`, { hint: tls.hint, cause: err });
  const sasl = saslFailure(err);
  if (sasl) {
    const unsupported = /unsupported sasl mechanism|UNSUPPORTED_SASL_MECHANISM/i.test(sasl);
    return new TributaryError('operator', `${what}: the broker refused the SASL login: ${sasl}`, {
      hint: unsupported
        ? "Choose a sasl.mechanism the broker's listener enables (sasl.enabled.mechanisms on the broker), or enable it there."
        : 'Check sasl.username and sasl.password, and that the user exists for this mechanism on the broker (SCRAM users: kafka-configs --alter --entity-type users --entity-name <user> --add-config SCRAM-SHA-256=[password=...]).',
      cause: err,
    });
  }
  return new ConnectionError(
    `${what}: ${detail}`,
    'Check that the brokers are reachable and healthy; the pipeline retries from its last checkpoint.',
    err,
  );
}

const KAFKA_TLS_SETTINGS: TlsSettingNames = {
  ca: 'tls.ca_file',
  skipHostname: 'set tls.servername to a name the certificate lists (or list the brokers by that name)',
  clientCertificate: 'tls.cert_file and tls.key_file',
  disable: 'set tls: false',
};

/** The message of a SASL authentication failure somewhere in a kafkajs error chain. */
function saslFailure(err: unknown): string | undefined {
  let c = err as
    | { name?: string; type?: string; message?: string; cause?: unknown; originalError?: unknown }
    | undefined;
  for (let i = 0; c && i < 6; i++) {
    if (
      c.name === 'KafkaJSSASLAuthenticationError' ||
      c.type === 'SASL_AUTHENTICATION_FAILED' ||
      c.type === 'UNSUPPORTED_SASL_MECHANISM'
    )
      return c.message ?? c.type;
    c = (c.cause ?? c.originalError) as typeof c;
  }
  return undefined;
}

/** The Kafka error code name of a kafkajs error, looking through the wrappers of its retry machinery. */
function errorType(err: unknown): string | undefined {
  let c = err as { type?: string; cause?: unknown; originalError?: unknown } | undefined;
  for (let i = 0; c && i < 6; i++) {
    if (c.type) return c.type;
    c = (c.cause ?? c.originalError) as typeof c;
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
