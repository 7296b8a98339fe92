/**
 * Follows transaction boundaries through the event stream: numbers events within their transaction (the envelope's
 * `transaction` block) and reports BEGIN / END with per-table counts (the Kafka transaction topic).
 *
 * A transaction is the run of consecutive streamed events with the same `source.txId`. It ends when an event of
 * another transaction arrives, or when a batch that carries a checkpoint ends (batches end on commits only).
 * Snapshot reads and events without a transaction id (non-transactional messages) are not part of a transaction.
 */
import type { ChangeEvent } from '../core/change-event.ts';
import type { TransactionPosition } from './encoder.ts';
import { lsnToDecimal } from './encoder.ts';

export interface TransactionBegin {
  id: string;
  /** Commit time at the source (ms). */
  tsMs: number;
  /** First event (for routing/headers). */
  event: ChangeEvent;
}

export interface TransactionEnd {
  id: string;
  eventCount: number;
  /** Per table (`schema.table`), in first-seen order. */
  dataCollections: { dataCollection: string; eventCount: number }[];
  tsMs: number;
  /** Last event of the transaction. */
  event: ChangeEvent;
}

export interface TransactionStep {
  /** The event's place in its transaction, or null when it is not in one. */
  position: TransactionPosition | null;
  /** A transaction that ended before this event (the previous one). */
  ended: TransactionEnd | null;
  /** The transaction this event opened. */
  began: TransactionBegin | null;
}

interface OpenTransaction {
  txId: string;
  id: string;
  count: number;
  perTable: Map<string, number>;
  last: ChangeEvent;
}

export class TransactionTracker {
  private open: OpenTransaction | null = null;

  /** Call for every event, in order. */
  step(event: ChangeEvent): TransactionStep {
    const txId = event.source.txId;
    const inTx =
      txId !== undefined &&
      event.op !== 'read' &&
      event.source.snapshot === false &&
      (event.op !== 'message' || event.message?.transactional !== false);
    if (!inTx) return { position: null, ended: null, began: null };
    let ended: TransactionEnd | null = null;
    let began: TransactionBegin | null = null;
    if (this.open && this.open.txId !== txId) ended = this.finish();
    if (!this.open) {
      const id = transactionId(event);
      this.open = { txId, id, count: 0, perTable: new Map(), last: event };
      began = { id, tsMs: event.source.commitTimeMs, event };
    }
    const tx = this.open;
    tx.count++;
    tx.last = event;
    const collection = event.op === 'message' ? '' : `${event.table.schema}.${event.table.name}`;
    const n = (tx.perTable.get(collection) ?? 0) + 1;
    tx.perTable.set(collection, n);
    return { position: { id: tx.id, totalOrder: tx.count, dataCollectionOrder: n }, ended, began };
  }

  /** The stream reached a commit (a batch with a checkpoint ended): closes the open transaction, if any. */
  commit(): TransactionEnd | null {
    return this.open ? this.finish() : null;
  }

  /** Forgets an open transaction (the pipeline restarts and replays from its checkpoint). */
  reset(): void {
    this.open = null;
  }

  private finish(): TransactionEnd {
    const tx = this.open!;
    this.open = null;
    return {
      id: tx.id,
      eventCount: tx.count,
      dataCollections: [...tx.perTable].map(([dataCollection, eventCount]) => ({ dataCollection, eventCount })),
      tsMs: tx.last.source.commitTimeMs,
      event: tx.last,
    };
  }
}

/** PostgreSQL: `txId:commitLSN` (decimal, like Debezium); MySQL: the GTID, else the transaction id. */
export function transactionId(event: ChangeEvent): string {
  const p = event.source.position;
  if (p.kind === 'postgres') return `${event.source.txId}:${lsnToDecimal(p.commitLsn ?? p.lsn)}`;
  return p.gtid ?? String(event.source.txId);
}

const q = JSON.stringify as (s: string) => string;

/** Transaction-topic value: `{"status":"BEGIN"|"END","id",...}` in Debezium's shape. */
export function beginJson(b: TransactionBegin): string {
  return `{"status":"BEGIN","id":${q(b.id)},"event_count":null,"data_collections":null,"ts_ms":${Math.trunc(b.tsMs)}}`;
}

export function endJson(e: TransactionEnd): string {
  return `{"status":"END","id":${q(e.id)},"event_count":${e.eventCount},"data_collections":[${e.dataCollections
    .map((d) => `{"data_collection":${q(d.dataCollection)},"event_count":${d.eventCount}}`)
    .join(',')}],"ts_ms":${Math.trunc(e.tsMs)}}`;
}
