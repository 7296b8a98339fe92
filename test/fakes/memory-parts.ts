import type { ChangeBatch } from '../../src/core/change-batch.ts';
import type { ChangeEvent, TableSchema } from '../../src/core/change-event.ts';
import { type Checkpoint, formatLsn, parseLsn } from '../../src/core/checkpoint.ts';
import type { CheckpointStore } from '../../src/core/checkpoint-store.ts';
import type { Source } from '../../src/core/source.ts';
import type { PlainTarget, WriteResult } from '../../src/core/target.ts';
import { ConnectionError, TributaryError } from '../../src/errors.ts';

/**
 * In-process source, target and store for pipeline tests. Not a database stand-in: the pipeline's own logic
 * (ordering, checkpoints, bounds, restarts) is what these exercise.
 */

const schema: TableSchema = {
  table: { schema: 'public', name: 't' },
  columns: [
    { name: 'id', type: 'integer', kind: 'int', isKey: true },
    { name: 'tx', type: 'integer', kind: 'int', isKey: false },
  ],
  keyColumns: ['id'],
  beforeImage: 'key',
};

/** Transaction i (1-based) commits at LSN i and holds `eventsPerTx` inserts. */
export class MemorySource implements Source {
  readonly committed: Checkpoint[] = [];
  /** Highest transaction handed out ahead of the last commit (read-ahead bound check). */
  maxAhead = 0;
  opens: (Checkpoint | null)[] = [];
  private closed = false;
  private startTx = 1;

  constructor(
    readonly pipeline: string,
    readonly transactions: number,
    readonly eventsPerTx: number,
    readonly txPerBatch = 1,
  ) {}

  async open(from: Checkpoint | null): Promise<void> {
    this.opens.push(from);
    this.closed = false;
    this.startTx = from && from.position.kind === 'postgres' ? Number(parseLsn(from.position.lsn)) + 1 : 1;
  }

  async *batches(): AsyncIterable<ChangeBatch> {
    let seq = 0;
    for (let tx = this.startTx; tx <= this.transactions && !this.closed; tx += this.txPerBatch) {
      const events: ChangeEvent[] = [];
      const last = Math.min(tx + this.txPerBatch - 1, this.transactions);
      for (let t = tx; t <= last; t++) {
        for (let i = 0; i < this.eventsPerTx; i++) events.push(event(t, i, this.eventsPerTx));
      }
      const lastCommitted = this.committed.length
        ? Number(parseLsn((this.committed[this.committed.length - 1]!.position as { lsn: string }).lsn))
        : 0;
      this.maxAhead = Math.max(this.maxAhead, last - lastCommitted);
      yield {
        seq: seq++,
        events,
        bytes: events.length * 100,
        checkpoint: {
          pipeline: this.pipeline,
          phase: 'stream',
          position: { kind: 'postgres', lsn: formatLsn(BigInt(last)) },
        },
      };
    }
    // Stay open like a streaming source until closed.
    while (!this.closed) await new Promise((r) => setTimeout(r, 5));
  }

  async commit(checkpoint: Checkpoint): Promise<void> {
    this.committed.push(checkpoint);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function event(tx: number, i: number, perTx: number): ChangeEvent {
  const id = String((tx - 1) * perTx + i);
  return {
    op: 'insert',
    table: schema.table,
    schema,
    key: { id },
    before: null,
    after: { id, tx: String(tx) },
    source: {
      connector: 'postgresql',
      db: 'db',
      position: { kind: 'postgres', lsn: formatLsn(BigInt(tx)) },
      commitTimeMs: Date.now(),
      snapshot: false,
    },
  };
}

export class MemoryStore implements CheckpointStore {
  saved: Checkpoint[] = [];
  failSaves = false;
  async load(): Promise<Checkpoint | null> {
    return this.saved[this.saved.length - 1] ?? null;
  }
  async save(checkpoint: Checkpoint): Promise<void> {
    if (this.failSaves) throw new TributaryError('operator', 'disk full');
    this.saved.push(checkpoint);
  }
}

export interface MemoryTargetOptions {
  /** Delay of each write in ms (a function to vary it per batch). */
  delayMs?: (seq: number) => number;
  /** Fail the Nth write (1-based, counted over the target's life) with this error. */
  failAt?: { write: number; error: Error };
}

/** Applies inserts into a map; writes may overlap and finish out of order. */
export class MemoryTarget implements PlainTarget {
  readonly rows = new Map<string, string>();
  /** Batches (seq) durable, in completion order. */
  readonly durable: number[] = [];
  writes = 0;
  inFlight = 0;
  maxInFlight = 0;

  constructor(private readonly options: MemoryTargetOptions = {}) {}

  async open(): Promise<void> {}
  async close(): Promise<void> {}

  async write(batch: ChangeBatch): Promise<WriteResult> {
    this.writes += 1;
    const n = this.writes;
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const delay = this.options.delayMs?.(batch.seq) ?? 0;
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      if (this.options.failAt?.write === n) throw this.options.failAt.error;
      for (const e of batch.events) this.rows.set(e.after!.id as string, e.after!.tx as string);
      this.durable.push(batch.seq);
      return 'durable';
    } finally {
      this.inFlight -= 1;
    }
  }
}

export const transientError = () => new ConnectionError('target went away', 'it comes back');
