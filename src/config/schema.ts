import { z } from 'zod';
import { jsonlTargetConfig, jsonlTargetTraits } from '../../connectors/jsonl/config.ts';
import { kafkaTargetConfig, kafkaTargetTraits } from '../../connectors/kafka/config.ts';
import { mysqlTargetConfig, mysqlTargetTraits } from '../../connectors/mysql/sink/config.ts';
import { mysqlSourceConfig, mysqlSourceRenamedKeys } from '../../connectors/mysql/source/config.ts';
import { postgresTargetConfig, postgresTargetTraits } from '../../connectors/postgres/sink/config.ts';
import { postgresSourceConfig } from '../../connectors/postgres/source/config.ts';
import type { TargetTraits } from '../core/connector.ts';
import { batchConfig } from './batch.ts';
import type { RenamedKeysBySection } from './renamed-keys.ts';

export { batchConfig };

/**
 * The whole configuration file. Strict: an unknown key is an error (a typo must not silently fall back to a default).
 * docs/configuration.md is checked against this schema by a test; every key has a description.
 */

export const sourceConfig = z.discriminatedUnion('type', [postgresSourceConfig, mysqlSourceConfig]);
export const targetConfig = z.discriminatedUnion('type', [
  postgresTargetConfig,
  mysqlTargetConfig,
  jsonlTargetConfig,
  kafkaTargetConfig,
]);

/** What each target type declares of itself beside its config schema (e.g. whether it can hold checkpoints). */
export const targetTraits: Record<z.infer<typeof targetConfig>['type'], TargetTraits> = {
  postgres: postgresTargetTraits,
  mysql: mysqlTargetTraits,
  jsonl: jsonlTargetTraits,
  kafka: kafkaTargetTraits,
};

/** Keys each connector still accepts under an earlier name, declared beside its schema: loading warns, naming the new one. */
export const renamedKeys: RenamedKeysBySection = {
  source: { mysql: mysqlSourceRenamedKeys },
  target: {},
};

export const checkpointsConfig = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('file'),
    path: z.string().describe('JSON file holding the checkpoint; written atomically (temp file, fsync, rename).'),
  }),
  z.strictObject({
    type: z.literal('postgres'),
    url: z
      .string()
      .describe(
        'PostgreSQL database holding the tributary.checkpoints table (created when missing); TLS parameters as in a PostgreSQL source url.',
      ),
  }),
  z.strictObject({
    type: z.literal('target'),
  }),
]);

export const retryConfig = z.strictObject({
  initial_backoff_ms: z.number().int().positive().default(500).describe('First wait after a retryable failure.'),
  max_backoff_ms: z.number().int().positive().default(30_000).describe('Longest wait between restarts.'),
});

export const pipelineConfig = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'lowercase letters, digits, - and _; it names slots and state files')
    .max(40)
    .describe('Unique pipeline name.'),
  source: sourceConfig.describe('Where changes come from.'),
  target: targetConfig.describe('Where changes go.'),
  checkpoints: checkpointsConfig
    .optional()
    .describe('Where checkpoints live; default: in the target when it supports it, else ./state/<name>.json.'),
  batch: batchConfig
    .default(batchConfig.parse({}))
    .describe('Batching and in-flight bounds (memory stays within them).'),
  retry: retryConfig
    .default(retryConfig.parse({}))
    .describe('Backoff after a retryable failure (server down, network).'),
});

export const configSchema = z.strictObject({
  http: z
    .strictObject({
      listen: z
        .string()
        .regex(/^[^:\s]+:\d+$/, 'expected host:port')
        .default('127.0.0.1:9464')
        .describe(
          'host:port of /metrics, /healthz and /status. The default listens on the loopback interface only; 0.0.0.0:9464 listens on every interface (then set bearer_token, or guard the port otherwise).',
        ),
      bearer_token: z
        .string()
        .min(16, 'expected a token of at least 16 characters')
        .optional()
        .describe(
          'When set, /status and /metrics answer only requests with the header `Authorization: Bearer <token>` (401 otherwise); /healthz stays open for probes. Take it from the environment (config interpolation) to keep it out of the file.',
        ),
    })
    .optional()
    .describe('HTTP endpoint; omitted means no endpoint.'),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info').describe('Log level.'),
    })
    .optional()
    .describe('Logging (JSON lines on stderr; pretty when stderr is a terminal).'),
  pipelines: z.array(pipelineConfig).min(1).describe('Source -> target pairs.'),
});

export type Config = z.infer<typeof configSchema>;
export type PipelineConfig = z.infer<typeof pipelineConfig>;
export type SourceConfig = z.infer<typeof sourceConfig>;
export type TargetConfig = z.infer<typeof targetConfig>;
export type { BatchConfig } from './batch.ts';
