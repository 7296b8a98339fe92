import { type FileHandle, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import type { ChangeBatch } from '../../src/core/change-batch.ts';
import type { ConnectorContext } from '../../src/core/connector-context.ts';
import type { PlainTarget, WriteResult } from '../../src/core/target.ts';
import { envelopeOptions } from '../../src/envelope/config.ts';
import { type EncodedRecord, EnvelopeEncoder, keyValueLine } from '../../src/envelope/encoder.ts';
import { TransactionTracker } from '../../src/envelope/transaction.ts';
import { TributaryError } from '../../src/errors.ts';
import type { JsonlTargetConfig } from './config.ts';

/** Text is handed to the file in pieces of about this size, so a large batch never becomes one huge string. */
const CHUNK_CHARS = 1 << 20;

/**
 * Appends one JSON line per message: `{"key":<key JSON or null>,"value":<envelope JSON or null>}`
 * (docs/event-format.md). `write` resolves once the lines are written and, for a file, fsynced.
 *
 * Delivery is at least once: after a crash the pipeline replays from its checkpoint and lines after it may appear
 * twice (each carries its source position for deduplication). A line torn by a crash is cut off when the file is
 * opened again.
 */
export class JsonlTarget implements PlainTarget {
  private readonly encoder: EnvelopeEncoder;
  private readonly tracker: TransactionTracker | null;
  private file: FileHandle | null = null;
  private chain: Promise<void> = Promise.resolve();
  private failed: unknown = null;

  constructor(
    readonly config: JsonlTargetConfig,
    private readonly ctx: ConnectorContext,
    options: { clock?: () => number } = {},
  ) {
    this.encoder = new EnvelopeEncoder({
      ...envelopeOptions(config, config.server_name ?? ctx.pipeline, config.tombstones),
      clock: options.clock,
    });
    this.tracker = config.transaction_metadata ? new TransactionTracker() : null;
  }

  private get toStdout(): boolean {
    return this.config.path === '-';
  }

  async open(): Promise<void> {
    this.failed = null;
    this.tracker?.reset();
    if (this.toStdout || this.file) return;
    const file = path.resolve(this.config.path);
    try {
      await mkdir(path.dirname(file), { recursive: true });
      this.file = await open(file, 'a+');
      await this.cutTornLine();
    } catch (err) {
      throw new TributaryError('operator', `cannot open ${file} for appending change events`, {
        hint: 'Check that the directory exists (or can be created) and is writable by this process.',
        cause: err,
      });
    }
  }

  /**
   * Durable once the lines are written and fsynced (`fsync: false` gives that up by configuration: a crash may lose
   * lines whose checkpoint was saved).
   */
  write(batch: ChangeBatch): Promise<WriteResult> {
    const run = this.chain.then(() => this.writeNow(batch)).then(() => 'durable' as const);
    // Later writes wait for this one; a failure makes every later write fail too (no gaps in the file).
    this.chain = run.then(
      () => undefined,
      (err) => {
        this.failed ??= err;
      },
    );
    return run;
  }

  async reset(): Promise<void> {
    await this.chain;
    this.tracker?.reset();
    this.failed = null;
  }

  async close(): Promise<void> {
    await this.chain;
    const f = this.file;
    this.file = null;
    await f?.close();
  }

  private async writeNow(batch: ChangeBatch): Promise<void> {
    if (this.failed) {
      throw new TributaryError('retryable', 'an earlier write to the jsonl target failed', { cause: this.failed });
    }
    const records: EncodedRecord[] = [];
    let text = '';
    for (const event of batch.events) {
      const tx = this.tracker ? this.tracker.step(event).position : null;
      this.encoder.encode(event, records, tx);
      for (const r of records) {
        if (r.type === 'tombstone' && !this.config.tombstones) continue;
        text += `${keyValueLine(r)}\n`;
      }
      records.length = 0;
      if (text.length >= CHUNK_CHARS) {
        await this.append(text);
        text = '';
      }
    }
    if (batch.checkpoint) this.tracker?.commit();
    if (text) await this.append(text);
    if (this.file && this.config.fsync && batch.events.length > 0) await this.file.sync();
    if (batch.events.length > 0) {
      this.ctx.logger.debug({ event: 'jsonl_batch_written', seq: batch.seq, events: batch.events.length });
    }
  }

  private async append(text: string): Promise<void> {
    if (this.toStdout) {
      await new Promise<void>((resolve, reject) => {
        process.stdout.write(text, (err) => (err ? reject(err) : resolve()));
      });
      return;
    }
    if (!this.file) throw new TributaryError('fatal', 'jsonl target written before open()');
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.file.write(buf, off, buf.length - off);
      off += bytesWritten;
    }
  }

  /** After a crash the file may end in a partial line: cut it back to the last newline. */
  private async cutTornLine(): Promise<void> {
    const f = this.file!;
    const { size } = await f.stat();
    if (size === 0) return;
    const tail = Buffer.alloc(1);
    await f.read(tail, 0, 1, size - 1);
    if (tail[0] === 0x0a) return;
    const chunk = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const { bytesRead } = await f.read(chunk, 0, end - start, start);
      const nl = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (nl >= 0) {
        await this.truncateTo(start + nl + 1, size);
        return;
      }
      end = start;
    }
    await this.truncateTo(0, size);
  }

  private async truncateTo(length: number, size: number): Promise<void> {
    await this.file!.truncate(length);
    await this.file!.sync();
    this.ctx.logger.warn({
      event: 'jsonl_torn_line_removed',
      path: this.config.path,
      bytes: size - length,
    });
  }
}
