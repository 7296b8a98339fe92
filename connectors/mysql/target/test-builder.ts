/**
 * Test-only builders for change events, table definitions and batches, as a PostgreSQL or a MySQL source would
 * produce them (no source needed).
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import type { ChangeBatch } from '../../../src/core/change-batch.ts';
import type {
  ChangeEvent,
  ColumnInfo,
  Op,
  Row,
  SourcePosition,
  TableSchema,
  ValueKind,
} from '../../../src/core/change-event.ts';
import { type Checkpoint, type CheckpointPosition, formatLsn } from '../../../src/core/checkpoint.ts';
import type { ConnectorContext } from '../../../src/core/connector-context.ts';

export function col(
  name: string,
  type: string,
  kind: ValueKind = 'text',
  isKey = false,
  elementKind?: ValueKind,
): ColumnInfo {
  return { name, type, kind, isKey, nullable: !isKey, ...(elementKind ? { elementKind } : {}) };
}

export function tableSchema(
  qualified: string,
  columns: ColumnInfo[],
  options: { keys?: string[]; beforeImage?: TableSchema['beforeImage'] } = {},
): TableSchema {
  const [schema, name] = qualified.split('.') as [string, string];
  const keys = options.keys ?? columns.filter((c) => c.isKey).map((c) => c.name);
  return {
    table: { schema, name },
    columns: columns.map((c) => ({ ...c, isKey: keys.includes(c.name) })),
    keyColumns: keys,
    beforeImage: options.beforeImage ?? (keys.length > 0 ? 'key' : 'none'),
  };
}

type Tx = { events: ChangeEvent[]; checkpoint: Checkpoint };

/** Collects the events of one source transaction. */
export class TxBuilder {
  readonly events: ChangeEvent[] = [];
  constructor(
    private readonly source: EventSource,
    private readonly start: SourcePosition,
  ) {}

  private add(op: Op, schema: TableSchema, before: Row | null, after: Row | null): this {
    const keyRow = after ?? before;
    const key =
      schema.keyColumns.length > 0 && keyRow
        ? (Object.fromEntries(schema.keyColumns.map((k) => [k, keyRow[k] ?? null])) as Row)
        : null;
    const position: SourcePosition =
      this.start.kind === 'postgres'
        ? { kind: 'postgres', lsn: formatLsn(this.source.nextLsn()) }
        : { ...this.start, row: this.events.length };
    this.events.push({
      op,
      table: schema.table,
      schema,
      key,
      before,
      after,
      source: {
        connector: this.source.engine,
        db: 'src',
        position,
        commitTimeMs: Date.now(),
        snapshot: op === 'read' ? 'true' : false,
      },
    });
    return this;
  }

  insert(schema: TableSchema, after: Row): this {
    return this.add('insert', schema, null, after);
  }
  read(schema: TableSchema, after: Row): this {
    return this.add('read', schema, null, after);
  }
  update(schema: TableSchema, after: Row, before: Row | null = null): this {
    return this.add('update', schema, before, after);
  }
  delete(schema: TableSchema, before: Row): this {
    return this.add('delete', schema, before, null);
  }
  truncate(schema: TableSchema): this {
    this.add('truncate', schema, null, null);
    this.events[this.events.length - 1]!.truncate = { cascade: false, restartIdentity: false };
    return this;
  }
}

/** Hands out increasing positions and builds whole transactions and batches. */
export class EventSource {
  private lsn = 0x1000000n;
  private binlogPos = 4;
  private seq = 0;
  constructor(
    readonly pipeline = 'test',
    readonly engine: 'postgresql' | 'mysql' = 'postgresql',
  ) {}

  nextLsn(): bigint {
    this.lsn += 0x28n;
    return this.lsn;
  }

  /** One committed source transaction: its events and the checkpoint after its commit. */
  tx(build: (tx: TxBuilder) => void): Tx {
    const start: SourcePosition =
      this.engine === 'postgresql'
        ? { kind: 'postgres', lsn: '0/0' }
        : { kind: 'mysql', file: 'binlog.000001', pos: this.binlogPos, serverId: 1, row: 0 };
    const tx = new TxBuilder(this, start);
    build(tx);
    let position: CheckpointPosition;
    if (this.engine === 'postgresql') {
      const commitLsn = formatLsn(this.nextLsn());
      for (const ev of tx.events) {
        if (ev.source.position.kind === 'postgres') ev.source.position.commitLsn = commitLsn;
      }
      position = { kind: 'postgres', lsn: commitLsn };
    } else {
      this.binlogPos += 100 + tx.events.length * 10;
      position = { kind: 'mysql', file: 'binlog.000001', pos: this.binlogPos };
    }
    return { events: tx.events, checkpoint: { pipeline: this.pipeline, phase: 'stream', position } };
  }

  /** A batch of whole transactions, carrying the checkpoint of the last one. */
  batch(...txs: Tx[]): ChangeBatch {
    return {
      seq: this.seq++,
      events: txs.flatMap((t) => t.events),
      checkpoint: txs.length > 0 ? txs[txs.length - 1]!.checkpoint : null,
      bytes: 0,
    };
  }

  /** A batch ending mid-transaction (no checkpoint). */
  partial(events: ChangeEvent[]): ChangeBatch {
    return { seq: this.seq++, events, checkpoint: null, bytes: 0 };
  }

  /** The last part of a transaction split across batches. */
  last(tx: Tx, events: ChangeEvent[]): ChangeBatch {
    return { seq: this.seq++, events, checkpoint: tx.checkpoint, bytes: 0 };
  }

  heartbeat(): ChangeBatch {
    return { seq: this.seq++, events: [], checkpoint: this.tx(() => undefined).checkpoint, bytes: 0 };
  }
}

/** A context whose logger keeps every line for assertions. */
export function testContext(pipeline = 'test'): ConnectorContext & { logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      done();
    },
  });
  const logger = pino({ level: 'debug', base: undefined }, stream);
  return { pipeline, logger, logs };
}
