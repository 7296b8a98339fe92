/**
 * An idempotent Kafka producer for record batches we encode ourselves (record-batch.ts): one producer id from the
 * cluster (InitProducerId), a sequence number per partition, acks=all, and at most one produce request per partition
 * at a time (the sender hands over one group and waits for it).
 *
 * A batch keeps its bytes and its sequence number until the broker acknowledged it: every retry (leader moved,
 * broker busy, connection lost with the outcome unknown) sends the very same batch, so the broker writes it once and
 * in order. Errors that retrying cannot fix reject the send; `end()` stops every retry and closes every socket, and
 * an ended producer opens no new one.
 */
import type net from 'node:net';
import { DUPLICATE_SEQUENCE_NUMBER, leadershipChanged, notReadyYet, retriableProduceError } from './protocol-errors.ts';
import { type BatchCompression, encodeRecordBatch } from './record-batch.ts';
import {
  API,
  type BrokerAddress,
  BrokerConnection,
  BrokerConnectionError,
  type ConnectOptions,
  KafkaResponseError,
  type ProtocolReader,
  ProtocolWriter,
} from './wire.ts';

export interface PartitionRecords {
  topic: string;
  partition: number;
  /** Each record's encoded content (record-batch.ts), in order. */
  records: { content: Buffer }[];
}

export interface ProducerOptions extends ConnectOptions {
  /** Broker-side wait for the in-sync replicas (the produce request's timeout). */
  ackTimeoutMs: number;
}

interface Pending {
  topic: string;
  partition: number;
  count: number;
  batch: Buffer;
}

const PRODUCE_VERSION = 8;
const METADATA_VERSION = 4;
const INIT_PRODUCER_ID_VERSION = 1;
const MAX_BACKOFF_MS = 1_000;

export class ProducerEndedError extends BrokerConnectionError {
  constructor() {
    super('this Kafka producer was ended');
  }
}

export class IdempotentProducer {
  private readonly connections = new Map<string, Promise<BrokerConnection>>();
  private readonly sockets = new Set<net.Socket>();
  private ended = false;
  private producerId = -1n;
  private producerEpoch = 0;
  private readonly sequences = new Map<string, number>();
  /** Leader node of each partition, per topic; refreshed when a broker says leadership moved. */
  private readonly leaders = new Map<string, number[]>();
  private readonly brokers = new Map<number, BrokerAddress>();

  constructor(
    private readonly bootstrap: BrokerAddress[],
    private readonly options: ProducerOptions,
  ) {}

  /** Asks the cluster for a producer id; a broker still getting ready is asked again for up to request_timeout_ms. */
  async open(): Promise<void> {
    const deadline = Date.now() + this.options.requestTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) await sleep(backoff(attempt));
      this.checkNotEnded();
      const r = await this.anyBroker((c) =>
        c.request(
          API.initProducerId,
          INIT_PRODUCER_ID_VERSION,
          new ProtocolWriter().string(null).int32(60_000).finish(),
        ),
      );
      r.int32(); // throttle time
      const code = r.int16();
      const producerId = r.int64();
      const producerEpoch = r.int16();
      if (code === 0) {
        this.producerId = producerId;
        this.producerEpoch = producerEpoch;
        this.sequences.clear();
        return;
      }
      if (!notReadyYet(code) || Date.now() > deadline) throw new KafkaResponseError(code, 'InitProducerId');
    }
  }

  /**
   * Produces each partition's records as one record batch; resolves when the broker acknowledged every batch.
   * Retries inside (same bytes, same sequence) until it succeeds, meets an error retrying cannot fix, or is ended.
   */
  async send(partitions: PartitionRecords[], compression: BatchCompression = 'none'): Promise<void> {
    this.checkNotEnded();
    if (this.producerId < 0n) throw new BrokerConnectionError('the Kafka producer has no producer id: open() first');
    const now = Date.now();
    let waiting: Pending[] = partitions.map((p) => ({
      topic: p.topic,
      partition: p.partition,
      count: p.records.length,
      batch: encodeRecordBatch(
        p.records,
        {
          producerId: this.producerId,
          producerEpoch: this.producerEpoch,
          baseSequence: this.sequences.get(sequenceKey(p.topic, p.partition)) ?? 0,
        },
        now,
        compression,
      ),
    }));
    let staleMetadata = false;
    for (let attempt = 0; waiting.length > 0; attempt++) {
      if (attempt > 0) await sleep(backoff(attempt));
      this.checkNotEnded();
      if (staleMetadata || waiting.some((p) => this.leaderOf(p) === undefined)) {
        await this.refreshMetadata([...new Set(waiting.map((p) => p.topic))]).catch(() => {});
        staleMetadata = false;
      }
      const byLeader = new Map<number, Pending[]>();
      const retry: Pending[] = [];
      for (const p of waiting) {
        const leader = this.leaderOf(p);
        if (leader === undefined || !this.brokers.has(leader)) {
          retry.push(p);
          continue;
        }
        const list = byLeader.get(leader);
        if (list) list.push(p);
        else byLeader.set(leader, [p]);
      }
      let fatal: unknown = null;
      await Promise.all(
        [...byLeader].map(async ([leader, batches]) => {
          let answers: Map<string, { code: number; message: string | null }>;
          try {
            answers = await this.produceTo(leader, batches);
          } catch (err) {
            // The outcome is unknown: the same batches go again (to whichever broker leads then).
            if (err instanceof BrokerConnectionError && !this.ended) {
              this.dropConnection(leader);
              staleMetadata = true;
              retry.push(...batches);
            } else fatal ??= err;
            return;
          }
          for (const p of batches) {
            const answer = answers.get(sequenceKey(p.topic, p.partition));
            const code = answer?.code ?? 0;
            if (!answer || code === 0 || code === DUPLICATE_SEQUENCE_NUMBER) {
              if (answer) this.acknowledged(p);
              else retry.push(p);
            } else if (retriableProduceError(code)) {
              if (leadershipChanged(code)) staleMetadata = true;
              retry.push(p);
            } else {
              fatal ??= new KafkaResponseError(
                code,
                `Kafka refused the record batch for ${p.topic} partition ${p.partition}`,
                answer.message,
              );
            }
          }
        }),
      );
      if (fatal) throw fatal;
      waiting = retry;
    }
  }

  /** Closes every connection; sends still retrying stop, and no new connection is opened. */
  end(): void {
    this.ended = true;
    for (const c of this.connections.values()) c.then((conn) => conn.close()).catch(() => {});
    this.connections.clear();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private acknowledged(p: Pending): void {
    const key = sequenceKey(p.topic, p.partition);
    this.sequences.set(key, nextSequence(this.sequences.get(key) ?? 0, p.count));
  }

  private leaderOf(p: Pending): number | undefined {
    const leader = this.leaders.get(p.topic)?.[p.partition];
    return leader === undefined || leader < 0 ? undefined : leader;
  }

  private async produceTo(
    leader: number,
    batches: Pending[],
  ): Promise<Map<string, { code: number; message: string | null }>> {
    const byTopic = new Map<string, Pending[]>();
    for (const p of batches) {
      const list = byTopic.get(p.topic);
      if (list) list.push(p);
      else byTopic.set(p.topic, [p]);
    }
    const body = new ProtocolWriter()
      .string(null) // transactional id
      .int16(-1) // acks: all in-sync replicas
      .int32(this.options.ackTimeoutMs)
      .array([...byTopic], (w, [topic, list]) => {
        w.string(topic).array(list, (w2, p) => {
          w2.int32(p.partition).bytes(p.batch);
        });
      })
      .finish();
    const connection = await this.connectionTo(leader);
    const r = await connection.request(API.produce, PRODUCE_VERSION, body);
    return parseProduceResponse(r);
  }

  private async refreshMetadata(topics: string[]): Promise<void> {
    const r = await this.anyBroker((c) =>
      c.request(
        API.metadata,
        METADATA_VERSION,
        new ProtocolWriter()
          .array(topics, (w, t) => {
            w.string(t);
          })
          .bool(false) // never create topics as a side effect
          .finish(),
      ),
    );
    r.int32(); // throttle time
    const brokers = r.array((b) => {
      const nodeId = b.int32();
      const host = b.string() ?? '';
      const port = b.int32();
      b.string(); // rack
      return { nodeId, host, port };
    });
    r.string(); // cluster id
    r.int32(); // controller id
    const found = r.array((t) => {
      const code = t.int16();
      const name = t.string() ?? '';
      t.bool(); // internal
      const partitions = t.array((p) => {
        p.int16();
        const index = p.int32();
        const leader = p.int32();
        p.array((x) => x.int32()); // replicas
        p.array((x) => x.int32()); // in-sync replicas
        return { index, leader };
      });
      return { code, name, partitions };
    });
    for (const b of brokers) {
      const known = this.brokers.get(b.nodeId);
      if (known && (known.host !== b.host || known.port !== b.port)) this.dropConnection(b.nodeId);
      this.brokers.set(b.nodeId, { host: b.host, port: b.port });
    }
    for (const t of found) {
      if (t.code !== 0) {
        this.leaders.delete(t.name);
        continue;
      }
      const leaders: number[] = [];
      for (const p of t.partitions) leaders[p.index] = p.leader;
      this.leaders.set(t.name, leaders);
    }
  }

  /** Runs a request on the first broker that answers: the known brokers, then the configured ones. */
  private async anyBroker(run: (c: BrokerConnection) => Promise<ProtocolReader>): Promise<ProtocolReader> {
    let lastError: unknown;
    const candidates = [...this.brokers.entries()].map(([id, a]) => ({ key: String(id), address: a }));
    for (const address of this.bootstrap)
      candidates.push({ key: `bootstrap:${address.host}:${address.port}`, address });
    for (const { key, address } of candidates) {
      this.checkNotEnded();
      try {
        return await run(await this.connection(key, address));
      } catch (err) {
        lastError = err;
        if (!(err instanceof BrokerConnectionError)) throw err;
        this.connections.delete(key);
      }
    }
    throw lastError;
  }

  private connectionTo(nodeId: number): Promise<BrokerConnection> {
    const address = this.brokers.get(nodeId);
    if (!address) return Promise.reject(new BrokerConnectionError(`Kafka broker ${nodeId} is not in the metadata`));
    return this.connection(String(nodeId), address);
  }

  private async connection(key: string, address: BrokerAddress): Promise<BrokerConnection> {
    const existing = this.connections.get(key);
    if (existing) {
      const c = await existing.catch(() => null);
      if (c && !c.broken) return c;
      if (this.connections.get(key) === existing) this.connections.delete(key);
    }
    this.checkNotEnded();
    const opening = BrokerConnection.open(address, this.options, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      if (this.ended) socket.destroy();
    });
    this.connections.set(key, opening);
    try {
      return await opening;
    } catch (err) {
      if (this.connections.get(key) === opening) this.connections.delete(key);
      // Refused, reset or timed out before a broker answered: a connection failure like any other.
      if (err instanceof KafkaResponseError || err instanceof BrokerConnectionError) throw err;
      throw new BrokerConnectionError(
        `cannot connect to Kafka broker ${address.host}:${address.port}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  private dropConnection(nodeId: number): void {
    const c = this.connections.get(String(nodeId));
    this.connections.delete(String(nodeId));
    c?.then((conn) => conn.close()).catch(() => {});
  }

  private checkNotEnded(): void {
    if (this.ended) throw new ProducerEndedError();
  }
}

function parseProduceResponse(r: ProtocolReader): Map<string, { code: number; message: string | null }> {
  const out = new Map<string, { code: number; message: string | null }>();
  r.array((t) => {
    const topic = t.string() ?? '';
    t.array((p) => {
      const partition = p.int32();
      const code = p.int16();
      p.int64(); // base offset
      p.int64(); // log append time
      p.int64(); // log start offset
      const recordErrors = p.array((e) => {
        e.int32();
        return e.string();
      });
      const message = p.string();
      out.set(sequenceKey(topic, partition), {
        code,
        message: [message, ...recordErrors].filter(Boolean).join('; ') || null,
      });
    });
  });
  return out;
}

function sequenceKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** Sequence numbers wrap from 2^31-1 to 0, as Kafka's own producer counts them. */
function nextSequence(sequence: number, count: number): number {
  const max = 0x7fffffff;
  return sequence > max - count ? count - (max - sequence) - 1 : sequence + count;
}

function backoff(attempt: number): number {
  const base = Math.min(MAX_BACKOFF_MS, 50 * 2 ** Math.min(attempt, 5));
  return base / 2 + Math.random() * (base / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
