/**
 * The streaming replication connection, driven directly over the pg driver's CopyBoth support: slot creation with an
 * exported snapshot, START_REPLICATION, XLogData/keepalive framing, standby status updates that report only the LSN
 * the caller says is durable, and pausing the socket for backpressure.
 */
import type pg from 'pg';
import { formatLsn } from '../../../src/core/checkpoint.ts';
import { ConnectionError, SourceSetupError, TributaryError } from '../../../src/errors.ts';
import { connect } from './catalog.ts';
import type { PostgresSourceConfig } from './config.ts';

const PG_EPOCH_MS = 946_684_800_000;

interface CopyDataConnection {
  on(event: 'copyData', listener: (msg: { chunk: Buffer }) => void): void;
  removeAllListeners(event?: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  stream: { pause(): void; resume(): void; isPaused?(): boolean };
}

export interface StreamHandlers {
  /**
   * XLogData, framing removed: `data[start..]` is one pgoutput message; startHi/startLo is its WAL start (the change's
   * LSN). `data` belongs to the driver: copy what must outlive the call.
   */
  xlog(data: Buffer, start: number, startHi: number, startLo: number): void;
  /** Primary keepalive: the server's WAL end sent so far (BigInt) and whether it wants a reply now. */
  keepalive(walEnd: bigint, replyRequested: boolean): void;
}

/** Why reading is held: the consumer is behind, or a Relation message is being resolved from the catalog. */
export type HoldReason = 'backpressure' | 'relation';

export interface CreatedSlot {
  consistentPoint: string;
  snapshotName: string | null;
}

export class ReplicationStream {
  private client: pg.Client | null = null;
  private connection: CopyDataConnection | null = null;
  private streaming: Promise<void> | null = null;
  private paused = false;
  private readonly holds = new Set<HoldReason>();
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly statusBuf = Buffer.alloc(34);

  private constructor() {}

  static async open(config: PostgresSourceConfig): Promise<ReplicationStream> {
    const stream = new ReplicationStream();
    stream.client = await connect(config, { replication: true });
    stream.connection = (stream.client as unknown as { connection: CopyDataConnection }).connection;
    return stream;
  }

  /** CREATE_REPLICATION_SLOT; with exportSnapshot the snapshot stays importable until this connection's next command. */
  async createSlot(slot: string, exportSnapshot: boolean): Promise<CreatedSlot> {
    const res = await this.client!.query<{ consistent_point: string; snapshot_name: string | null }>(
      `CREATE_REPLICATION_SLOT "${slot}" LOGICAL pgoutput ${exportSnapshot ? 'EXPORT_SNAPSHOT' : 'NOEXPORT_SNAPSHOT'}`,
    );
    const row = res.rows[0]!;
    return { consistentPoint: row.consistent_point, snapshotName: row.snapshot_name };
  }

  /**
   * START_REPLICATION at `from`. Resolves once streaming runs; `onEnd` is called once when the stream stops (error,
   * or undefined after close()).
   */
  start(
    slot: string,
    from: bigint,
    publications: string[],
    handlers: StreamHandlers,
    onEnd: (err: unknown) => void,
  ): void {
    const connection = this.connection!;
    connection.on('copyData', ({ chunk }) => {
      const tag = chunk[0];
      if (tag === 0x77) {
        // XLogData: 'w', start LSN, end LSN, send time, payload
        handlers.xlog(chunk, 25, chunk.readUInt32BE(1), chunk.readUInt32BE(5));
      } else if (tag === 0x6b) {
        // Primary keepalive: 'k', WAL end, send time, reply requested
        handlers.keepalive(chunk.readBigUInt64BE(1), chunk[17] === 1);
      }
    });
    const sql = `START_REPLICATION SLOT "${slot}" LOGICAL ${formatLsn(from)} (proto_version '1', publication_names '${publications.join(',')}', messages 'true')`;
    this.streaming = this.client!.query(sql).then(
      () => {
        if (!this.closed)
          onEnd(
            new ConnectionError(
              'the PostgreSQL server ended logical replication',
              'The server may be shutting down; the pipeline restarts from its checkpoint.',
            ),
          );
        else onEnd(undefined);
      },
      (err: unknown) => onEnd(this.closed ? undefined : streamFailure(slot, err)),
    );
  }

  /** Standby status update: write = flush = apply = `durable` (never anything received but not durable). */
  sendStatus(durable: bigint, requestReply = false): void {
    if (!this.connection || this.closed || !this.streaming) return;
    const b = this.statusBuf;
    b[0] = 0x72;
    b.writeBigUInt64BE(durable, 1);
    b.writeBigUInt64BE(durable, 9);
    b.writeBigUInt64BE(durable, 17);
    b.writeBigInt64BE(BigInt(Date.now() - PG_EPOCH_MS) * 1000n, 25);
    b[33] = requestReply ? 1 : 0;
    // The driver copies the chunk into its own message buffer, so reusing statusBuf is safe.
    this.connection.sendCopyFromChunk(b);
  }

  /** Stops reading from the socket until every reason given is released (backpressure, a relation lookup). */
  hold(reason: HoldReason): void {
    this.holds.add(reason);
    if (this.paused || !this.connection) return;
    this.paused = true;
    this.connection.stream.pause();
  }

  release(reason: HoldReason): void {
    this.holds.delete(reason);
    if (!this.paused || this.holds.size > 0 || !this.connection) return;
    this.paused = false;
    this.connection.stream.resume();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Ends the stream; a later call waits for the first one (the source closes on a failure, then again in close()). */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = null;
    this.connection?.removeAllListeners('copyData');
    if (this.paused) this.connection?.stream.resume();
    if (this.streaming && this.connection) {
      // Graceful end (CopyDone both ways): the server releases the slot at once, so a restart can use it.
      try {
        this.connection.endCopyFrom();
        await Promise.race([this.streaming, new Promise((r) => setTimeout(r, 2000))]);
      } catch {
        // the connection is already gone
      }
    }
    await client?.end().catch(() => undefined);
    await this.streaming?.catch(() => undefined);
  }
}

/** Classifies an error of START_REPLICATION or of the running stream. */
export function streamFailure(slot: string, err: unknown): TributaryError {
  if (err instanceof TributaryError) return err;
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === '42704')
    return new SourceSetupError(
      `replication slot ${slot} does not exist: ${message}`,
      'The slot was dropped while the pipeline used it. Changes since the last checkpoint are gone from PostgreSQL; set on_slot_lost: resnapshot to copy the tables again, or run tributary teardown and start over.',
      err,
    );
  if (code === '55000' && /invalidated|removed|lost/i.test(message))
    return new SourceSetupError(
      `replication slot ${slot} can no longer be used: ${message}`,
      'PostgreSQL removed WAL the slot needed (max_slot_wal_keep_size?). Set on_slot_lost: resnapshot or run tributary teardown to start over.',
      err,
    );
  if (code === '55006')
    return new ConnectionError(
      `replication slot ${slot} is in use by another connection: ${message}`,
      'Another process (or a previous run whose connection is not yet closed) streams from this slot; the pipeline retries. Make sure only one pipeline uses each slot_name.',
      err,
    );
  if (code === '42P01' || code === '42704' || /publication .* does not exist/i.test(message))
    return new SourceSetupError(
      `publication missing for slot ${slot}: ${message}`,
      'Restart the pipeline so it recreates the publication, or check publication_name.',
      err,
    );
  return new ConnectionError(
    `logical replication stream failed: ${message}`,
    'The connection to PostgreSQL broke; the pipeline restarts from its checkpoint.',
    err,
  );
}
