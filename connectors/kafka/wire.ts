/**
 * The Kafka wire protocol as the producer (producer.ts) needs it: primitive types, request framing, and one socket
 * to one broker (TCP or TLS, then SASL) that matches responses to requests by correlation id.
 * Only non-flexible request versions are used (no tagged fields): request header v1, response header v0.
 */
import net from 'node:net';
import tls, { type ConnectionOptions } from 'node:tls';
import { kafkaErrorName } from './protocol-errors.ts';
import { type SaslCredentials, saslAuthenticate } from './sasl.ts';

export const API = {
  produce: 0,
  metadata: 3,
  saslHandshake: 17,
  initProducerId: 22,
  saslAuthenticate: 36,
} as const;

/** Builds a request body of small fields; large byte blocks (record batches) are appended as buffers of their own. */
export class ProtocolWriter {
  private buf = Buffer.allocUnsafe(256);
  private off = 0;
  private readonly parts: Buffer[] = [];

  private room(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }
  int8(v: number): this {
    this.room(1);
    this.off = this.buf.writeInt8(v, this.off);
    return this;
  }
  int16(v: number): this {
    this.room(2);
    this.off = this.buf.writeInt16BE(v, this.off);
    return this;
  }
  int32(v: number): this {
    this.room(4);
    this.off = this.buf.writeInt32BE(v, this.off);
    return this;
  }
  int64(v: bigint): this {
    this.room(8);
    this.off = this.buf.writeBigInt64BE(v, this.off);
    return this;
  }
  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }
  /** int16 length and UTF-8 bytes; -1 for null. */
  string(s: string | null): this {
    if (s === null) return this.int16(-1);
    const n = Buffer.byteLength(s);
    this.int16(n);
    this.room(n);
    this.off += this.buf.write(s, this.off);
    return this;
  }
  /** int32 length and the bytes, kept as a buffer of its own (not copied). */
  bytes(b: Buffer | null): this {
    if (b === null) return this.int32(-1);
    this.int32(b.length);
    this.parts.push(this.buf.subarray(0, this.off));
    this.buf = this.buf.subarray(this.off);
    this.off = 0;
    this.parts.push(b);
    return this;
  }
  array<T>(items: readonly T[] | null, each: (w: this, item: T) => void): this {
    if (items === null) return this.int32(-1);
    this.int32(items.length);
    for (const item of items) each(this, item);
    return this;
  }
  /** The body as buffers, in order. */
  finish(): Buffer[] {
    const out = [...this.parts, this.buf.subarray(0, this.off)];
    this.parts.length = 0;
    this.buf = Buffer.allocUnsafe(0);
    this.off = 0;
    return out;
  }
}

export class ProtocolReader {
  private off = 0;
  constructor(private readonly buf: Buffer) {}
  int8(): number {
    const v = this.buf.readInt8(this.off);
    this.off += 1;
    return v;
  }
  int16(): number {
    const v = this.buf.readInt16BE(this.off);
    this.off += 2;
    return v;
  }
  int32(): number {
    const v = this.buf.readInt32BE(this.off);
    this.off += 4;
    return v;
  }
  int64(): bigint {
    const v = this.buf.readBigInt64BE(this.off);
    this.off += 8;
    return v;
  }
  bool(): boolean {
    return this.int8() !== 0;
  }
  string(): string | null {
    const n = this.int16();
    if (n < 0) return null;
    const s = this.buf.toString('utf8', this.off, this.off + n);
    this.off += n;
    return s;
  }
  bytes(): Buffer | null {
    const n = this.int32();
    if (n < 0) return null;
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }
  array<T>(each: (r: this) => T): T[] {
    const n = this.int32();
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(each(this));
    return out;
  }
}

/** A failure of the connection itself (refused, closed, timed out): the request's outcome is unknown. */
export class BrokerConnectionError extends Error {
  override readonly name = 'BrokerConnectionError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** An error code in a broker's response, by Kafka's name for it (`type`, e.g. MESSAGE_TOO_LARGE). */
export class KafkaResponseError extends Error {
  override readonly name = 'KafkaResponseError';
  readonly type: string;
  constructor(
    readonly code: number,
    context: string,
    detail?: string | null,
  ) {
    const type = kafkaErrorName(code);
    super(`${context}: ${type}${detail ? ` (${detail})` : ''}`);
    this.type = type;
  }
}

export interface BrokerAddress {
  host: string;
  port: number;
}

export interface ConnectOptions {
  clientId: string;
  tls: ConnectionOptions | undefined;
  sasl: SaslCredentials | undefined;
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
}

interface Pending {
  resolve: (body: ProtocolReader) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** One socket to one broker. Requests may be pipelined; a failure of the socket fails every request waiting on it. */
export class BrokerConnection {
  private readonly pending = new Map<number, Pending>();
  private correlationId = 0;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failure: Error | null = null;

  private constructor(
    private readonly socket: net.Socket,
    readonly address: BrokerAddress,
    private readonly options: ConnectOptions,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) =>
      this.fail(new BrokerConnectionError(`connection to ${label(address)} failed: ${err.message}`, { cause: err })),
    );
    socket.on('close', () => this.fail(new BrokerConnectionError(`connection to ${label(address)} closed`)));
  }

  /** Connects (TLS when configured) and logs in (SASL when configured). */
  static async open(
    address: BrokerAddress,
    options: ConnectOptions,
    track: (s: net.Socket) => void,
  ): Promise<BrokerConnection> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const { host, port } = address;
      const s = options.tls
        ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...options.tls })
        : net.connect({ host, port });
      track(s);
      s.setNoDelay(true);
      s.setKeepAlive(true, 60_000);
      const timer = setTimeout(() => {
        s.destroy();
        reject(
          new BrokerConnectionError(
            `connection to ${label(address)} timed out after ${options.connectionTimeoutMs} ms`,
          ),
        );
      }, options.connectionTimeoutMs);
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      s.on('error', onError);
      s.once(options.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.off('error', onError);
        resolve(s);
      });
    });
    const connection = new BrokerConnection(socket, address, options);
    if (options.sasl) {
      try {
        await saslAuthenticate(connection, options.sasl);
      } catch (err) {
        connection.close();
        throw err;
      }
    }
    return connection;
  }

  get broken(): boolean {
    return this.failure !== null;
  }

  /** Sends a request and resolves with its response body. */
  request(apiKey: number, apiVersion: number, body: Buffer[]): Promise<ProtocolReader> {
    if (this.failure) return Promise.reject(this.failure);
    const correlationId = ++this.correlationId & 0x7fffffff;
    const clientId = this.options.clientId;
    const idLength = Buffer.byteLength(clientId);
    const header = Buffer.allocUnsafe(14 + idLength);
    let size = header.length - 4;
    for (const b of body) size += b.length;
    header.writeInt32BE(size, 0);
    header.writeInt16BE(apiKey, 4);
    header.writeInt16BE(apiVersion, 6);
    header.writeInt32BE(correlationId, 8);
    header.writeInt16BE(idLength, 12);
    header.write(clientId, 14);
    return new Promise<ProtocolReader>((resolve, reject) => {
      const timer = setTimeout(() => {
        // No answer in time: the socket is given up (a late answer could not be matched any more).
        this.fail(
          new BrokerConnectionError(`${label(this.address)} did not answer within ${this.options.requestTimeoutMs} ms`),
        );
        this.socket.destroy();
      }, this.options.requestTimeoutMs + 5_000);
      this.pending.set(correlationId, { resolve, reject, timer });
      this.socket.cork();
      this.socket.write(header);
      for (const b of body) if (b.length > 0) this.socket.write(b);
      this.socket.uncork();
    });
  }

  close(): void {
    this.fail(new BrokerConnectionError(`connection to ${label(this.address)} was closed by the producer`));
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < 4) return;
      if (this.chunks.length > 1) {
        this.chunks = [Buffer.concat(this.chunks, this.buffered)];
      }
      const head = this.chunks[0]!;
      const size = head.readInt32BE(0);
      if (this.buffered < 4 + size) return;
      const frame = head.subarray(4, 4 + size);
      const rest = head.subarray(4 + size);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      const correlationId = frame.readInt32BE(0);
      const waiting = this.pending.get(correlationId);
      if (!waiting) continue;
      this.pending.delete(correlationId);
      clearTimeout(waiting.timer);
      waiting.resolve(new ProtocolReader(frame.subarray(4)));
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(this.failure);
      this.pending.delete(id);
    }
  }
}

function label(a: BrokerAddress): string {
  return `Kafka broker ${a.host}:${a.port}`;
}
