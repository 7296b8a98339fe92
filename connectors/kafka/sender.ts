import { ConnectionError, TributaryError } from '../../src/errors.ts';
import type { KafkaClient, OutgoingMessage } from './client.ts';

interface Group {
  messages: OutgoingMessage[];
  bytes: number;
  /** Record bytes per topic partition: each becomes one record batch, which must fit the topic's limit. */
  partitionBytes: Map<string, number>;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface SenderLimits {
  lingerMs: number;
  maxMessages: number;
  maxBytes: number;
  sendTimeoutMs: number;
  /** Record bytes one record batch of the topic may carry (record-size.ts). */
  recordBatchBudget(topic: string): number;
}

/**
 * Groups messages of consecutive writes into produce requests (up to linger_ms, batch_max_messages,
 * batch_max_bytes) and sends the groups one at a time, in order, so messages of one key keep their order.
 * A group closes before a message that would take it past a limit, so the limits are upper bounds: on the request
 * (messages, bytes), and on each partition's record batch (the topic's `max.message.bytes`). Only a message larger
 * than batch_max_bytes on its own goes alone; the target refuses any message its topic cannot take.
 *
 * A group's promise resolves when the client reports every message acknowledged. After a failure every later group
 * fails without being sent, until `reset()`: a later message must never overtake a lost earlier one.
 */
export class Sender {
  private open: Group | null = null;
  private last: Promise<void> = Promise.resolve();
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private failure: TributaryError | null = null;

  constructor(
    private readonly client: KafkaClient,
    private readonly limits: SenderLimits,
  ) {}

  /** Queues messages (with their sizes); resolves when all of them, and everything queued before, are acknowledged. */
  enqueue(messages: OutgoingMessage[], sizes: number[]): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (messages.length === 0) return this.open ? this.open.done : this.last;
    const { maxMessages, maxBytes } = this.limits;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const size = sizes[i]!;
      const partition = `${m.topic}\u0000${m.partition}`;
      let g = this.open;
      if (
        g &&
        (g.messages.length >= maxMessages ||
          g.bytes + size > maxBytes ||
          (g.partitionBytes.get(partition) ?? 0) + size > this.limits.recordBatchBudget(m.topic))
      ) {
        this.seal();
        g = null;
      }
      if (!g) {
        g = this.newGroup();
        this.open = g;
      }
      g.messages.push(m);
      g.bytes += size;
      g.partitionBytes.set(partition, (g.partitionBytes.get(partition) ?? 0) + size);
      if (g.messages.length >= maxMessages || g.bytes >= maxBytes) this.seal();
    }
    const waitFor = this.open ? this.open.done : this.last;
    if (this.open) {
      if (this.limits.lingerMs === 0) this.seal();
      else this.timer ??= setTimeout(() => this.seal(), this.limits.lingerMs);
    }
    return waitFor;
  }

  /** Sends what is waiting now and resolves when everything queued is acknowledged (or rejects). */
  flush(): Promise<void> {
    const waitFor = this.open ? this.open.done : this.last;
    this.seal();
    return waitFor;
  }

  /** Forgets a failure so the target can be used again after the pipeline restarts. Waits for in-flight sends. */
  async reset(): Promise<void> {
    this.seal();
    await this.chain;
    this.failure = null;
  }

  private newGroup(): Group {
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => {}); // callers observe it; never an unhandled rejection
    const g: Group = { messages: [], bytes: 0, partitionBytes: new Map(), done, resolve, reject };
    this.last = done;
    return g;
  }

  private seal(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const g = this.open;
    if (!g) return;
    this.open = null;
    this.chain = this.chain.then(() => this.sendGroup(g));
  }

  private async sendGroup(g: Group): Promise<void> {
    if (this.failure) {
      g.reject(this.failure);
      return;
    }
    try {
      await withTimeout(this.client.send(g.messages), this.limits.sendTimeoutMs);
      g.resolve();
    } catch (err) {
      this.failure =
        err instanceof TributaryError
          ? err
          : new ConnectionError(
              `Kafka did not acknowledge ${g.messages.length} messages: ${(err as Error)?.message ?? String(err)}`,
              'Check that the brokers are reachable and healthy; the pipeline retries from its last checkpoint.',
              err,
            );
      g.reject(this.failure);
    }
  }
}

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ConnectionError(
            `Kafka did not acknowledge a produce request within ${ms} ms`,
            'Check broker health and network; raise send_timeout_ms for slow clusters.',
          ),
        ),
      ms,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
