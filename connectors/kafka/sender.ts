import { ConnectionError, TributaryError } from '../../src/errors.ts';
import type { KafkaClient, OutgoingMessage } from './client.ts';

interface Group {
  messages: OutgoingMessage[];
  bytes: number;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface SenderLimits {
  lingerMs: number;
  maxMessages: number;
  maxBytes: number;
  sendTimeoutMs: number;
}

/**
 * Groups messages of consecutive writes into produce requests (up to linger_ms, batch_max_messages,
 * batch_max_bytes) and sends the groups one at a time, in order, so messages of one key keep their order.
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
    for (let i = 0; i < messages.length; i++) {
      if (!this.open) this.open = this.newGroup();
      const g = this.open;
      g.messages.push(messages[i]!);
      g.bytes += sizes[i]!;
      if (g.messages.length >= this.limits.maxMessages || g.bytes >= this.limits.maxBytes) this.seal();
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
    const g: Group = { messages: [], bytes: 0, done, resolve, reject };
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
