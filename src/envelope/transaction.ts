/**
 * Follows transaction boundaries through the event stream: numbers events within their transaction (the envelope's
 * `transaction` block) and reports BEGIN / END with per-table counts (the Kafka transaction topic).
 *
 * A transaction is the run of consecutive streamed events with the same `source.txId`. It ends when an event of
 * another transaction arrives, or when a batch that carries a checkpoint ends (batches end on commits only).
 * Snapshot reads, events without a transaction id (non-transactional messages) and DDL statements (schema changes,
 * as in Debezium) are not part of a transaction.
 */
import type { ChangeEvent } from '../core/change-event.ts';
import type { Checkpoint } from '../core/checkpoint.ts';
import type { TransactionPosition } from './encoder.ts';
import { DDL_PREFIX, isKeyChange, lsnToDecimal } from './encoder.ts';

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
      (event.op !== 'message' || (event.message?.transactional !== false && event.message?.prefix !== DDL_PREFIX));
    if (!inTx) return { position: null, ended: null, began: null };
    let ended: TransactionEnd | null = null;
    let began: TransactionBegin | null = null;
    if (this.open && this.open.txId !== txId) {
      // The next transaction's sequence[0] is the commit LSN of the one that ended.
      const p = event.source.position;
      ended = this.finish(p.kind === 'postgres' ? p.lastCommitLsn : undefined);
    }
    if (!this.open) {
      const id = transactionId(event);
      this.open = { txId, id, count: 0, perTable: new Map(), last: event };
      began = { id, tsMs: event.source.commitTimeMs, event };
    }
    const tx = this.open;
    // A primary-key change is written as a delete and a create: two events of the transaction, as in Debezium.
    const records = isKeyChange(event) ? 2 : 1;
    const totalOrder = tx.count + 1;
    tx.count += records;
    tx.last = event;
    const collection = event.op === 'message' ? '' : `${event.table.schema}.${event.table.name}`;
    const n = (tx.perTable.get(collection) ?? 0) + 1;
    tx.perTable.set(collection, n + records - 1);
    return { position: { id: transactionId(event), totalOrder, dataCollectionOrder: n }, ended, began };
  }

  /**
   * The stream reached a commit (a batch with a checkpoint ended): closes the open transaction, if any. The
   * checkpoint gives the commit's LSN when the events did not carry it.
   */
  commit(checkpoint?: Checkpoint | null): TransactionEnd | null {
    return this.open
      ? this.finish(checkpoint?.position.kind === 'postgres' ? checkpoint.position.lsn : undefined)
      : null;
  }

  /** Forgets an open transaction (the pipeline restarts and replays from its checkpoint). */
  reset(): void {
    this.open = null;
  }

  private finish(commitLsn?: string): TransactionEnd {
    const tx = this.open!;
    this.open = null;
    const p = tx.last.source.position;
    const lsn = p.kind === 'postgres' ? (p.commitLsn ?? commitLsn) : undefined;
    return {
      // Debezium's END carries the commit's LSN where BEGIN carried the first event's.
      id: lsn ? `${tx.last.source.txId}:${lsnToDecimal(lsn)}` : tx.id,
      eventCount: tx.count,
      dataCollections: [...tx.perTable].map(([dataCollection, eventCount]) => ({ dataCollection, eventCount })),
      tsMs: tx.last.source.commitTimeMs,
      event: tx.last,
    };
  }
}

/**
 * The transaction id as Debezium writes it. PostgreSQL: `txId:LSN` with the LSN of the event itself (decimal), so
 * the id in each event's `transaction` block carries that event's LSN and BEGIN carries the first event's; MySQL:
 * the GTID, else the transaction id.
 */
export function transactionId(event: ChangeEvent): string {
  const p = event.source.position;
  if (p.kind === 'postgres') return `${event.source.txId}:${lsnToDecimal(p.lsn)}`;
  return p.gtid ?? String(event.source.txId);
}

const q = JSON.stringify as (s: string) => string;

/** Transaction-topic value: `{"status":"BEGIN"|"END","id",...}` in Debezium's shape. */
export function beginJson(b: TransactionBegin): string {
  return `{"status":"BEGIN","id":${q(b.id)},"event_count":null,"data_collections":null,"ts_ms":${Math.trunc(b.tsMs)}}`;
}

const TX_KEY_SCHEMA =
  '{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"}],"optional":false,"name":"io.debezium.connector.common.TransactionMetadataKey","version":1}';
const TX_VALUE_SCHEMA =
  '{"type":"struct","fields":[{"type":"string","optional":false,"field":"status"},{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":true,"field":"event_count"},{"type":"array","items":{"type":"struct","fields":[{"type":"string","optional":false,"field":"data_collection"},{"type":"int64","optional":false,"field":"event_count"}],"optional":true,"name":"event.collection","version":1},"optional":true,"field":"data_collections"},{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"name":"io.debezium.connector.common.TransactionMetadataValue","version":1}';

/** Key and value of a transaction-topic record, wrapped with Debezium's schemas when `schemas` is on. */
export function transactionRecord(
  t: TransactionBegin | TransactionEnd,
  schemas: boolean,
): { key: string; value: string } {
  const key = `{"id":${q(t.id)}}`;
  const value = 'eventCount' in t ? endJson(t) : beginJson(t);
  if (!schemas) return { key, value };
  return {
    key: `{"schema":${TX_KEY_SCHEMA},"payload":${key}}`,
    value: `{"schema":${TX_VALUE_SCHEMA},"payload":${value}}`,
  };
}

export function endJson(e: TransactionEnd): string {
  return `{"status":"END","id":${q(e.id)},"event_count":${e.eventCount},"data_collections":[${e.dataCollections
    .map((d) => `{"data_collection":${q(d.dataCollection)},"event_count":${d.eventCount}}`)
    .join(',')}],"ts_ms":${Math.trunc(e.tsMs)}}`;
}
