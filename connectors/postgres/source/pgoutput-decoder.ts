/**
 * Decoder of the pgoutput logical replication protocol (proto_version 1, text values), with the transaction state:
 * `feed` turns the messages of the stream into changes and commits for the batcher, drops transactions already
 * delivered, and refuses a stream whose framing does not hold (a change outside a transaction, a Begin inside one).
 *
 * Values stay PostgreSQL's text output: a column is a string, null, or UNCHANGED (an unchanged TOAST value the server
 * did not resend). Nothing is parsed into JS values, so int8, numeric and microsecond timestamps keep their meaning.
 * This is a hot path: one object per row image plus the strings themselves, no intermediate message objects.
 */
import {
  type ChangeEvent,
  type Row,
  type SourceInfo,
  type TableSchema,
  UNCHANGED,
} from '../../../src/core/change-event.ts';
import { formatLsn } from '../../../src/core/checkpoint.ts';
import { TributaryError } from '../../../src/errors.ts';

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01). */
const PG_EPOCH_MS = 946_684_800_000;

export interface RawRelationColumn {
  name: string;
  typeOid: number;
  typmod: number;
  /** Part of the replica identity according to the relation message. */
  isKey: boolean;
}

/** A Relation message as sent: the table's shape at this point of the WAL. */
export interface RawRelation {
  relid: number;
  schema: string;
  name: string;
  /** d (default: primary key), n (nothing), f (full), i (index). */
  replicaIdentity: string;
  columns: RawRelationColumn[];
}

export type ControlMessage =
  | { type: 'begin'; finalLsn: bigint; commitTimeMs: number; xid: number }
  | { type: 'commit'; commitLsn: bigint; endLsn: bigint; commitTimeMs: number }
  | { type: 'relation'; relation: RawRelation }
  | { type: 'message'; lsn: bigint; transactional: boolean; prefix: string; content: Buffer }
  | { type: 'ignored' };

export type Decoded = ChangeEvent | ControlMessage | ChangeEvent[];

interface RelationState {
  schema: TableSchema;
  names: string[];
  /** Indexes of the key columns in `names`, in key order (TableSchema.keyColumns). */
  keyIndexes: number[];
}

const IGNORED: ControlMessage = { type: 'ignored' };

/** Prefix of Tributary's own heartbeat messages (any pipeline's); they are consumed, never emitted. */
export const HEARTBEAT_PREFIX = 'tributary.heartbeat';

/** Approximate fixed cost of one event object graph, in bytes. */
export const EVENT_OVERHEAD = 200;

const MESSAGE_SCHEMA: TableSchema = {
  table: { schema: '', name: '' },
  columns: [],
  keyColumns: [],
  beforeImage: 'none',
};

/** Where `feed` delivers what it decoded, in stream order. */
export interface DecodedStream {
  change(event: ChangeEvent, bytes: number): void;
  /** A transaction (or a non-transactional message) ended; `endLsn` resumes after it. */
  commit(endLsn: bigint, commitTimeMs: number): void;
  /** A Relation message: the caller resolves it (setRelation) before feeding further messages. */
  relation(raw: RawRelation): void;
}

export function isControl(d: Decoded): d is ControlMessage {
  return (d as ControlMessage).type !== undefined;
}

function protocolError(what: string): TributaryError {
  return new TributaryError('fatal', `pgoutput: ${what}: the replication stream cannot be followed`, {
    hint: 'Nothing of the open transaction was checkpointed; the pipeline stops. Restart it; if this repeats, report it with the server version.',
  });
}

function unknownKeyValue(rel: RelationState, column: string, lsnHi: number, lsnLo: number): TributaryError {
  const t = rel.schema.table;
  return new TributaryError(
    'fatal',
    `pgoutput: the change at ${lsnText(lsnHi, lsnLo)} to ${t.schema}.${t.name} does not carry its key column ${column} (an unchanged TOAST value without the old key)`,
    {
      hint: `Set REPLICA IDENTITY FULL on ${t.schema}.${t.name} (ALTER TABLE ... REPLICA IDENTITY FULL) so the old row carries the key, then restart the pipeline.`,
    },
  );
}

function readCString(buf: Buffer, pos: number): [string, number] {
  const end = buf.indexOf(0, pos);
  if (end < 0) throw new TributaryError('fatal', 'pgoutput: unterminated string in a protocol message');
  return [buf.toString('utf8', pos, end), end + 1];
}

function readInt64(buf: Buffer, pos: number): bigint {
  return buf.readBigUInt64BE(pos);
}

/** Microseconds since 2000-01-01 (int64) -> ms since the Unix epoch, without BigInt. */
function readPgTimeMs(buf: Buffer, pos: number): number {
  const hi = buf.readInt32BE(pos);
  const lo = buf.readUInt32BE(pos + 4);
  return Math.floor((hi * 4294967296 + lo) / 1000) + PG_EPOCH_MS;
}

/** The same timestamp in microseconds since the Unix epoch (exact: below 2^53 until the year 2255). */
function readPgTimeUs(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos) * 4294967296 + buf.readUInt32BE(pos + 4) + PG_EPOCH_MS * 1000;
}

export function lsnText(hi: number, lo: number): string {
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

export class PgoutputDecoder {
  private readonly relations = new Map<number, RelationState>();
  private pos = 0;
  // Current transaction (set by Begin).
  private xid = '';
  private commitTimeMs = 0;
  private commitTimeUs = 0;
  /** The open transaction's commit record LSN, from its Begin: known for every change, the same on every replay. */
  private commitRecordLsn: string | undefined;
  private lastCommitLsn: string | undefined;
  private inTx = false;
  /** The open transaction was delivered before (its commit is covered by the resume point): dropped. */
  private skipTx = false;
  /** Transactions whose commit is before this LSN, and messages at or before it, were delivered already. */
  private skipUpTo = 0n;

  constructor(private readonly db: string) {}

  /** Resume point: what ends at or before it was delivered already and is dropped. */
  resumeAfter(lsn: bigint): void {
    this.skipUpTo = lsn;
  }

  /** The xid of the open (or last) transaction. */
  get transactionId(): string {
    return this.xid;
  }

  /** The open transaction was delivered before and is being dropped. */
  get skippingTransaction(): boolean {
    return this.inTx && this.skipTx;
  }

  /** Between a Begin and its Commit. */
  get inTransaction(): boolean {
    return this.inTx;
  }

  /**
   * Decodes one pgoutput message at buf[start..end) (`lsnHi/lsnLo`: its XLogData WAL start) with the transaction
   * state, and hands the result to `out`. Throws on anything it cannot follow; the caller must then stop the stream
   * (nothing of the open transaction may be checkpointed).
   */
  feed(buf: Buffer, start: number, end: number, lsnHi: number, lsnLo: number, out: DecodedStream): void {
    const decoded = this.decode(buf, start, end, lsnHi, lsnLo);
    if (!isControl(decoded)) {
      if (!this.inTx)
        throw protocolError(`a ${Array.isArray(decoded) ? 'truncate' : decoded.op} outside a transaction`);
      if (this.skipTx) return;
      if (Array.isArray(decoded)) {
        for (const ev of decoded) out.change(ev, EVENT_OVERHEAD);
      } else {
        out.change(decoded, end - start + EVENT_OVERHEAD);
      }
      return;
    }
    switch (decoded.type) {
      case 'begin':
        if (this.inTx) throw protocolError(`a Begin (xid ${decoded.xid}) inside transaction ${this.xid}`);
        this.inTx = true;
        this.skipTx = decoded.finalLsn < this.skipUpTo;
        return;
      case 'commit': {
        if (!this.inTx) throw protocolError('a Commit outside a transaction');
        this.inTx = false;
        if (this.skipTx) {
          this.skipTx = false;
          return;
        }
        // Set first: the commit's checkpoint carries it (Debezium's sequence[0] of the next change).
        this.lastCommitLsn = formatLsn(decoded.endLsn);
        out.commit(decoded.endLsn, decoded.commitTimeMs);
        return;
      }
      case 'relation':
        out.relation(decoded.relation);
        return;
      case 'message': {
        if (decoded.prefix.startsWith(HEARTBEAT_PREFIX)) return;
        const size = decoded.content.length + EVENT_OVERHEAD;
        if (decoded.transactional) {
          if (!this.inTx) throw protocolError('a transactional message outside a transaction');
          if (this.skipTx) return;
          const lsn = lsnText(lsnHi, lsnLo);
          out.change(
            this.messageEvent(decoded.prefix, decoded.content, true, lsn, this.commitTimeMs, MESSAGE_SCHEMA),
            size,
          );
          return;
        }
        if (decoded.lsn <= this.skipUpTo) return;
        const now = Date.now();
        const lsn = formatLsn(decoded.lsn);
        out.change(this.messageEvent(decoded.prefix, decoded.content, false, lsn, now, MESSAGE_SCHEMA), size);
        // Not a transaction commit: the last commit LSN (Debezium's sequence[0]) stays.
        out.commit(decoded.lsn, now);
        return;
      }
      case 'ignored':
        return;
    }
  }

  /** Installs the schema for a relation id (after a Relation message was resolved). */
  setRelation(relid: number, schema: TableSchema): void {
    const names = schema.columns.map((c) => c.name);
    const keyIndexes = schema.keyColumns.map((k) => names.indexOf(k)).filter((i) => i >= 0);
    this.relations.set(relid, { schema, names, keyIndexes });
  }

  relation(relid: number): TableSchema | undefined {
    return this.relations.get(relid)?.schema;
  }

  /** The end LSN of the previous commit, shown as `lastCommitLsn` on events. */
  setLastCommitLsn(lsn: string | undefined): void {
    this.lastCommitLsn = lsn;
  }

  /** The end LSN of the last transaction commit streamed (or resumed from); null before the first one. */
  get previousCommitLsn(): string | null {
    return this.lastCommitLsn ?? null;
  }

  /**
   * Decodes one pgoutput message at buf[start..end). `lsnHi/lsnLo` is the XLogData start LSN (the change's LSN).
   * Returns a change event, an array of events (truncate of several tables) or a control message.
   */
  decode(buf: Buffer, start: number, end: number, lsnHi: number, lsnLo: number): Decoded {
    const tag = buf[start];
    const p = start + 1;
    switch (tag) {
      case 0x42: {
        // B: Begin
        const finalLsn = readInt64(buf, p);
        const commitTimeMs = readPgTimeMs(buf, p + 8);
        const xid = buf.readUInt32BE(p + 16);
        this.xid = String(xid);
        this.commitRecordLsn = formatLsn(finalLsn);
        this.commitTimeMs = commitTimeMs;
        this.commitTimeUs = readPgTimeUs(buf, p + 8);
        return { type: 'begin', finalLsn, commitTimeMs, xid };
      }
      case 0x43: {
        // C: Commit (flags, commit LSN, end LSN, time)
        const commitLsn = readInt64(buf, p + 1);
        const endLsn = readInt64(buf, p + 9);
        const commitTimeMs = readPgTimeMs(buf, p + 17);
        return { type: 'commit', commitLsn, endLsn, commitTimeMs };
      }
      case 0x52:
        return { type: 'relation', relation: this.decodeRelation(buf, p) };
      case 0x49: {
        // I: Insert (relid, 'N', tuple)
        const rel = this.rel(buf.readUInt32BE(p));
        const after = this.readTuple(buf, p + 5, rel.names, end);
        return this.event('insert', rel, null, after, lsnHi, lsnLo);
      }
      case 0x55: {
        // U: Update (relid, ['K'|'O' tuple], 'N' tuple)
        const rel = this.rel(buf.readUInt32BE(p));
        let q = p + 4;
        let before: Row | null = null;
        const kind = buf[q];
        if (kind === 0x4b || kind === 0x4f) {
          before = this.readTuple(buf, q + 1, rel.names, end);
          if (kind === 0x4b) before = this.keyOnly(rel, before);
          q = this.pos;
        }
        const after = this.readTuple(buf, q + 1, rel.names, end);
        return this.event('update', rel, before, after, lsnHi, lsnLo);
      }
      case 0x44: {
        // D: Delete (relid, 'K'|'O', tuple)
        const rel = this.rel(buf.readUInt32BE(p));
        const kind = buf[p + 4];
        let before = this.readTuple(buf, p + 5, rel.names, end);
        if (kind === 0x4b) before = this.keyOnly(rel, before);
        return this.event('delete', rel, before, null, lsnHi, lsnLo);
      }
      case 0x54: {
        // T: Truncate (nrels, options, relids)
        const n = buf.readUInt32BE(p);
        const options = buf[p + 4]!;
        const events: ChangeEvent[] = [];
        for (let i = 0; i < n; i++) {
          const rel = this.rel(buf.readUInt32BE(p + 5 + i * 4));
          const ev = this.event('truncate', rel, null, null, lsnHi, lsnLo);
          ev.key = null;
          ev.truncate = { cascade: (options & 1) !== 0, restartIdentity: (options & 2) !== 0 };
          events.push(ev);
        }
        return events;
      }
      case 0x4d: {
        // M: Message (flags, lsn, prefix, length, content)
        const transactional = (buf[p]! & 1) !== 0;
        const lsn = readInt64(buf, p + 1);
        const [prefix, q] = readCString(buf, p + 9);
        const len = buf.readUInt32BE(q);
        return { type: 'message', lsn, transactional, prefix, content: buf.subarray(q + 4, q + 4 + len) };
      }
      case 0x59: // Y: Type (resolved from the catalog instead)
      case 0x4f: // O: Origin
        return IGNORED;
      default:
        throw new TributaryError('fatal', `pgoutput: unexpected message type 0x${(tag ?? 0).toString(16)}`, {
          hint: 'The slot must use the pgoutput plugin with proto_version 1.',
        });
    }
  }

  /** A message event (logical decoding message) in the current transaction or on its own. */
  messageEvent(
    prefix: string,
    content: Buffer,
    transactional: boolean,
    lsn: string,
    commitTimeMs: number,
    schema: TableSchema,
  ): ChangeEvent {
    return {
      op: 'message',
      table: schema.table,
      schema,
      key: null,
      before: null,
      after: null,
      source: {
        connector: 'postgresql',
        db: this.db,
        position: {
          kind: 'postgres',
          lsn,
          lastCommitLsn: this.lastCommitLsn,
          commitRecordLsn: transactional ? this.commitRecordLsn : undefined,
        },
        txId: transactional ? this.xid : undefined,
        commitTimeMs,
        commitTimeUs: transactional ? this.commitTimeUs : undefined,
        snapshot: false,
      },
      message: { prefix, contentBase64: content.toString('base64'), transactional },
    };
  }

  private rel(relid: number): RelationState {
    const rel = this.relations.get(relid);
    if (!rel)
      throw new TributaryError('fatal', `pgoutput: change for relation ${relid} before its Relation message`, {
        hint: 'This is a bug or a protocol mismatch; restart the pipeline.',
      });
    return rel;
  }

  private event(
    op: ChangeEvent['op'],
    rel: RelationState,
    before: Row | null,
    after: Row | null,
    lsnHi: number,
    lsnLo: number,
  ): ChangeEvent {
    const source: SourceInfo = {
      connector: 'postgresql',
      db: this.db,
      position: {
        kind: 'postgres',
        lsn: lsnText(lsnHi, lsnLo),
        lastCommitLsn: this.lastCommitLsn,
        commitRecordLsn: this.commitRecordLsn,
      },
      txId: this.xid,
      commitTimeMs: this.commitTimeMs,
      commitTimeUs: this.commitTimeUs,
      snapshot: false,
    };
    const image = after ?? before;
    let key: Row | null = null;
    if (image && rel.keyIndexes.length > 0) {
      key = {};
      for (const i of rel.keyIndexes) {
        const name = rel.names[i]!;
        let value = image[name] ?? null;
        // A key value stored out of line and not changed is not resent in the new image; the old key has it.
        if (value === UNCHANGED) value = before?.[name] ?? UNCHANGED;
        if (value === UNCHANGED) throw unknownKeyValue(rel, name, lsnHi, lsnLo);
        key[name] = value;
      }
    }
    return { op, table: rel.schema.table, schema: rel.schema, key, before, after, source };
  }

  private keyOnly(rel: RelationState, row: Row): Row {
    const out: Row = {};
    for (const i of rel.keyIndexes) {
      const name = rel.names[i]!;
      out[name] = row[name] ?? null;
    }
    return out;
  }

  /** Reads TupleData at `pos` into a new row; leaves this.pos after it. */
  private readTuple(buf: Buffer, pos: number, names: string[], end: number): Row {
    const n = buf.readUInt16BE(pos);
    let q = pos + 2;
    const row: Row = {};
    for (let i = 0; i < n; i++) {
      const kind = buf[q++];
      const name = names[i];
      if (kind === 0x74) {
        const len = buf.readUInt32BE(q);
        q += 4;
        if (name !== undefined) row[name] = buf.utf8Slice(q, q + len);
        q += len;
      } else if (kind === 0x6e) {
        if (name !== undefined) row[name] = null;
      } else if (kind === 0x75) {
        if (name !== undefined) row[name] = UNCHANGED;
      } else {
        throw new TributaryError('fatal', `pgoutput: unsupported tuple value kind 0x${(kind ?? 0).toString(16)}`, {
          hint: 'Binary mode is not used by Tributary; check the START_REPLICATION options.',
        });
      }
    }
    if (q > end) throw new TributaryError('fatal', 'pgoutput: tuple data runs past the end of its message');
    this.pos = q;
    return row;
  }

  private decodeRelation(buf: Buffer, p: number): RawRelation {
    const relid = buf.readUInt32BE(p);
    const [schema, q0] = readCString(buf, p + 4);
    const [name, q1] = readCString(buf, q0);
    let q = q1;
    const replicaIdentity = String.fromCharCode(buf[q]!);
    const n = buf.readUInt16BE(q + 1);
    q += 3;
    const columns: RawRelationColumn[] = [];
    for (let i = 0; i < n; i++) {
      const flags = buf[q]!;
      let colName: string;
      [colName, q] = readCString(buf, q + 1);
      const typeOid = buf.readUInt32BE(q);
      const typmod = buf.readInt32BE(q + 4);
      q += 8;
      columns.push({ name: colName, typeOid, typmod, isKey: (flags & 1) !== 0 });
    }
    return { relid, schema, name, replicaIdentity, columns };
  }
}

declare global {
  interface Buffer {
    /** Node's fast UTF-8 slice (what toString('utf8', a, b) calls after its argument checks). */
    utf8Slice(start: number, end: number): string;
  }
}
