import { z } from 'zod';
import type { TargetTraits } from '../../src/core/connector.ts';
import { envelopeKeys } from '../../src/envelope/config.ts';

const topicName = z
  .string()
  .regex(/^[a-zA-Z0-9._-]{1,249}$/, 'a Kafka topic name: letters, digits, `.`, `_`, `-`, at most 249 characters');

export const kafkaTargetConfig = z.strictObject({
  type: z.literal('kafka'),
  brokers: z.array(z.string()).min(1).describe('Bootstrap brokers, host:port.'),
  topic_prefix: z
    .string()
    .regex(/^[a-zA-Z0-9._-]+$/, 'letters, digits, `.`, `_`, `-`')
    .describe('Topic prefix; topics are <topic_prefix>.<schema>.<table>. Also the source.name field of events.'),
  client_id: z.string().default('tributary').describe('Kafka client id the producer announces to the brokers.'),
  ...envelopeKeys,
  tombstones: z
    .boolean()
    .default(true)
    .describe('After each delete, send a tombstone (same key, null value) so compacted topics drop the row.'),
  topics: z
    .record(z.string(), topicName)
    .default({})
    .describe('Per-table topic overrides: {"<schema>.<table>": "<topic>"}; checked before topic_routes.'),
  topic_routes: z
    .array(
      z.strictObject({
        pattern: z
          .string()
          .describe('Regular expression matched against the whole "<schema>.<table>" (anchored at both ends).'),
        topic: z.string().describe("Topic name; $1, $2... insert the pattern's capture groups."),
      }),
    )
    .default([])
    .describe('Pattern topic overrides, first match wins; tables matching none use <topic_prefix>.<schema>.<table>.'),
  create_topics: z
    .boolean()
    .default(true)
    .describe('Create missing topics; when false, a missing topic stops the pipeline with an error naming it.'),
  topic_partitions: z.number().int().positive().default(1).describe('Partitions of topics this target creates.'),
  on_partition_count_change: z
    .enum(['stop', 'continue'])
    .default('stop')
    .describe(
      "When a topic has more partitions than when this pipeline last wrote to it: 'stop' (a key's next events would land in another partition than its earlier ones, so a consumer could read them out of order) or 'continue' (after consumers read the topic to its end; the new count is remembered).",
    ),
  topic_replication_factor: z
    .number()
    .int()
    .min(-1)
    .refine((n) => n !== 0, 'use -1 (broker default) or a positive number')
    .default(-1)
    .describe('Replication factor of topics this target creates; -1 uses the broker default.'),
  topic_configs: z
    .record(z.string(), z.string())
    .default({})
    .describe('Topic configs for topics this target creates, e.g. {"cleanup.policy": "compact"}.'),
  compression: z
    .enum(['none', 'gzip'])
    .default('none')
    .describe('Compression of produced record batches (gzip is built in; other codecs are not bundled).'),
  linger_ms: z
    .number()
    .int()
    .nonnegative()
    .default(5)
    .describe('How long messages of consecutive writes may wait to share one produce request.'),
  batch_max_messages: z.number().int().positive().default(10_000).describe('Most messages in one produce request.'),
  batch_max_bytes: z
    .number()
    .int()
    .positive()
    .default(4 * 1024 * 1024)
    .describe(
      "Most record bytes in one produce request (an upper bound; a larger single message goes alone). Each partition's record batch also stays below its topic's max.message.bytes, read from the cluster at start.",
    ),
  retries: z
    .number()
    .int()
    .positive()
    .default(8)
    .describe(
      'Retries of connecting to the cluster and of admin requests. A produce request is retried until send_timeout_ms; then the producer is replaced and the pipeline restarts from its checkpoint.',
    ),
  request_timeout_ms: z.number().int().positive().default(30_000).describe('Timeout of one request to a broker.'),
  connection_timeout_ms: z.number().int().positive().default(10_000).describe('Timeout of connecting to a broker.'),
  send_timeout_ms: z
    .number()
    .int()
    .positive()
    .default(120_000)
    .describe('Longest a write waits for acknowledgements before it fails as retryable.'),
  headers: z
    .boolean()
    .default(true)
    .describe('Add headers with the source position (tributary.lsn, tributary.binlog_file, ...) to every message.'),
  transaction_topic: topicName
    .optional()
    .describe('Topic for BEGIN/END transaction records with per-table event counts (e.g. <prefix>.transaction).'),
  heartbeat_topic: topicName
    .optional()
    .describe('Topic for heartbeat records {"ts_ms"} keyed by the topic prefix (e.g. __debezium-heartbeat.<prefix>).'),
  heartbeat_interval_ms: z
    .number()
    .int()
    .positive()
    .default(10_000)
    .describe('Least time between heartbeat records; they go out with writes, idle heartbeat batches included.'),
  tls: z
    .union([
      z.boolean(),
      z.strictObject({
        ca_file: z.string().optional().describe("PEM file of the CA that signed the brokers' certificates."),
        cert_file: z.string().optional().describe('PEM client certificate (mutual TLS).'),
        key_file: z.string().optional().describe('PEM private key of the client certificate.'),
        reject_unauthorized: z.boolean().default(true).describe("Verify the brokers' certificates."),
        servername: z.string().optional().describe('Server name for SNI and certificate checks.'),
      }),
    ])
    .default(false)
    .describe('TLS to the brokers: true for system CAs, or an object with files.'),
  sasl: z
    .strictObject({
      mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).describe('SASL mechanism.'),
      username: z.string().describe('SASL user name.'),
      password: z
        .string()
        .describe('SASL password; take it from the environment with config interpolation. Never logged.'),
    })
    .optional()
    .describe('SASL authentication; omitted means none.'),
});
export type KafkaTargetConfig = z.infer<typeof kafkaTargetConfig>;

/** Cannot keep checkpoints: a pipeline to it keeps them in a file or a PostgreSQL store. */
export const kafkaTargetTraits: TargetTraits = { holdsCheckpoints: false };
