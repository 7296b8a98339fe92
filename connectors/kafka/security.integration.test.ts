import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorKind, TributaryError } from '../../src/errors.ts';
import { tributary } from '../../test/harness/cli.ts';
import { type KafkaBroker, startKafkaBroker, topicEndOffsets } from '../../test/harness/kafka-broker.ts';
import { testKafkaBrokers } from '../../test/harness/kafka-test-broker.ts';
import {
  createTestCertificates,
  openSslAvailable,
  type TestCertificates,
} from '../../test/harness/tls-certificates.ts';
import { kafkaTargetConfig } from './config.ts';
import { createKafkaClient } from './kafka-client.ts';
import { encodeRecordContent } from './record-batch.ts';

/**
 * TLS and SASL to a real broker of its own, configured for them: an SSL listener with a certificate signed by a CA
 * this test makes, and a SASL_SSL listener offering PLAIN and SCRAM-SHA-256/512. Success is judged by the broker's
 * own offsets (read over its PLAINTEXT listener with Kafka's tools); failures must be operator errors saying what
 * to change.
 */
const { brokers, skipReason } = testKafkaBrokers();
const logger = pino({ level: 'silent' });
const USER = { name: 'replicator', password: 'replicator-secret' };

describe.skipIf(!brokers || !openSslAvailable())(
  `Kafka over TLS and SASL${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let broker: KafkaBroker;
    let certs: TestCertificates;
    let topics = 0;
    beforeAll(async () => {
      certs = createTestCertificates();
      broker = await startKafkaBroker({
        security: {
          serverCertFile: certs.serverCertFile,
          serverKeyFile: certs.serverKeyFile,
          users: [USER],
          clientCaFile: certs.caFile,
        },
      });
    });
    afterAll(async () => {
      await broker?.stop();
      certs?.remove();
    });

    /** Creates a topic through the client, sends three records, and returns what the broker holds. */
    async function produce(extra: Record<string, unknown>, bootstrap: string): Promise<number> {
      const topic = `secured${++topics}`;
      const config = kafkaTargetConfig.parse({
        type: 'kafka',
        brokers: [bootstrap],
        topic_prefix: 'secured',
        retries: 1,
        connection_timeout_ms: 15_000,
        ...extra,
      });
      const client = createKafkaClient(config, logger);
      try {
        await client.connect();
        await client.createTopics([{ topic, partitions: 1, replicationFactor: 1, configs: {} }]);
        await client.send(
          [1, 2, 3].map((i) => ({
            topic,
            partition: 0,
            key: `{"id":${i}}`,
            content: encodeRecordContent(`{"id":${i}}`, `{"v":${i}}`, {}),
          })),
        );
      } finally {
        await client.disconnect();
      }
      return [...(await topicEndOffsets(broker.bootstrap, topic)).values()].reduce((a, b) => a + b, 0);
    }

    async function failure(extra: Record<string, unknown>, bootstrap: string): Promise<TributaryError> {
      const err = await produce(extra, bootstrap).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TributaryError);
      return err as TributaryError;
    }

    const tls = () => ({ tls: { ca_file: certs.caFile } });
    /** The SSL listener requires a client certificate; the SASL_SSL listener does not. */
    const mutual = (extra: Record<string, unknown> = {}) => ({
      tls: { ca_file: certs.caFile, cert_file: certs.clientCertFile, key_file: certs.clientKeyFile, ...extra },
    });

    it('produces over mutual TLS: broker verified against the CA file, client certificate presented', async () => {
      expect(await produce(mutual(), broker.tlsBootstrap!)).toBe(3);
    });

    it('without the client certificate the listener refuses, and the error names tls.cert_file', async () => {
      const err = await failure(tls(), broker.tlsBootstrap!);
      expect(errorKind(err)).toBe('operator');
      expect(err.message).toMatch(/refused our client certificate/);
      expect(err.hint).toMatch(/tls\.cert_file and tls\.key_file/);
    });

    it.each(['plain', 'scram-sha-256', 'scram-sha-512'])('produces with SASL %s over TLS', async (mechanism) => {
      const sasl = { mechanism, username: USER.name, password: USER.password };
      expect(await produce({ ...tls(), sasl }, broker.saslTlsBootstrap!)).toBe(3);
    });

    it('a CA that did not sign the broker certificate is an operator error naming tls.ca_file', async () => {
      const err = await failure(mutual({ ca_file: certs.otherCaFile }), broker.tlsBootstrap!);
      expect(errorKind(err)).toBe('operator');
      expect(err.message).toMatch(
        /TLS to the Kafka brokers failed: the server's certificate is not signed by a CA we trust/,
      );
      expect(err.hint).toMatch(/tls\.ca_file/);
    });

    it('TLS to a plain-text listener says to check the port or turn TLS off (retried: a restart looks alike)', async () => {
      const err = await failure(tls(), broker.bootstrap);
      expect(errorKind(err)).toBe('retryable');
      expect(err.message).toMatch(/TLS to the Kafka brokers failed/);
      expect(err.hint).toMatch(/TLS port|tls: false/);
    });

    it('`tributary validate` reports a wrong CA with the setting to change', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-kafka-validate-'));
      try {
        const file = path.join(dir, 'kafka-tls.yaml');
        fs.writeFileSync(
          file,
          `pipelines:
  - name: kafkatls
    source: { type: postgres, url: "postgres://nobody@127.0.0.1:1/none" }
    target:
      type: kafka
      brokers: ["${broker.tlsBootstrap}"]
      topic_prefix: secured
      retries: 1
      tls: { ca_file: "${certs.otherCaFile}", cert_file: "${certs.clientCertFile}", key_file: "${certs.clientKeyFile}" }
`,
        );
        const result = await tributary(['validate', '-c', file]);
        expect(result.code).not.toBe(0);
        const out = result.stdout + result.stderr;
        expect(out).toMatch(
          /kafka target: .*TLS to the Kafka brokers failed: the server's certificate is not signed by a CA we trust/,
        );
        expect(out).toMatch(/tls\.ca_file/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a broker address the certificate does not list is an operator error naming tls.servername', async () => {
      const err = await failure(mutual(), broker.tlsBootstrap!.replace('localhost', '127.0.0.1'));
      expect(errorKind(err)).toBe('operator');
      expect(err.message).toMatch(/does not name the host we connected to/);
      expect(err.hint).toMatch(/tls\.servername/);
      // Naming the certificate's host explicitly is the documented way out.
      const ok = await produce(
        mutual({ servername: 'localhost' }),
        broker.tlsBootstrap!.replace('localhost', '127.0.0.1'),
      );
      expect(ok).toBe(3);
    });

    it.each(['plain', 'scram-sha-256', 'scram-sha-512'])(
      'a wrong SASL %s password is an operator error naming the sasl settings',
      async (mechanism) => {
        const sasl = { mechanism, username: USER.name, password: 'not-the-password' };
        const err = await failure({ ...tls(), sasl }, broker.saslTlsBootstrap!);
        expect(errorKind(err)).toBe('operator');
        expect(err.message).toMatch(/the broker refused the SASL login/);
        expect(err.hint).toMatch(/sasl\.username and sasl\.password/);
      },
    );

    it('an unknown SCRAM user is refused the same way', async () => {
      const sasl = { mechanism: 'scram-sha-512', username: 'nobody', password: USER.password };
      const err = await failure({ ...tls(), sasl }, broker.saslTlsBootstrap!);
      expect(errorKind(err)).toBe('operator');
      expect(err.message).toMatch(/the broker refused the SASL login/);
    });
  },
);
