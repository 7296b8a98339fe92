/**
 * The one encoder of change events into message key/value JSON text, shared by the jsonl and Kafka targets.
 *
 * Formats (docs/event-format.md):
 * - `debezium`: Debezium's change-event envelope (`before`, `after`, `source`, `op`, `ts_ms`, `transaction`).
 * - `native`: the same fields plus `table`, `columns` (name, source type, kind, key flag) and `truncate` options.
 *
 * JSON is built as text: integers and decimals never pass through a JS number. Per-table encoders (column
 * converters, quoted names, schema text) are compiled once and cached in a WeakMap keyed by the TableSchema object.
 */

import pkg from '../../package.json' with { type: 'json' };
import {
  type CellValue,
  type ChangeEvent,
  type ColumnInfo,
  type Row,
  type SourceInfo,
  type TableSchema,
  UNCHANGED,
} from '../core/change-event.ts';
import { SchemaMismatchError } from '../errors.ts';
import { binaryContent, DEFAULT_MODES, type DebeziumModes, debeziumColumn } from './debezium-values.ts';
import {
  envelopeSchema,
  type FieldTypeOf,
  keyStructSchema,
  messageKeySchema,
  messageValueSchema,
  nativeFieldType,
  PG_SCHEMA_CHANGE_KEY_SCHEMA,
  PG_SCHEMA_CHANGE_VALUE_SCHEMA,
  SCHEMA_CHANGE_KEY_SCHEMA,
  SCHEMA_CHANGE_VALUE_SCHEMA,
} from './schemas.ts';
import { converterFor, type ValueToJson } from './values.ts';

export type EnvelopeFormat = 'debezium' | 'native';

type Connector = SourceInfo['connector'];

export interface EnvelopeOptions {
  format: EnvelopeFormat;
  /** Wrap key and value as `{"schema": ..., "payload": ...}` (Kafka Connect JsonConverter with schemas.enable). */
  schemas: boolean;
  /** Emit a tombstone (same key, null value) after every delete. */
  tombstones: boolean;
  /** Stands for an unchanged TOAST value that the source did not resend. */
  unavailableValue: string;
  /** Add the `transaction` block (id, total_order, data_collection_order) to streamed changes. */
  transactionMetadata: boolean;
  /** Logical server name, the `source.name` field (the topic prefix for Kafka). */
  serverName: string;
  /** Debezium's value handling modes (decimal, time precision, binary, interval, unsigned bigint); Debezium's defaults when absent. */
  modes?: DebeziumModes;
  /** Replicator clock for `ts_ms` (milliseconds); tests pass a fixed one. Without it, a microsecond clock. */
  clock?: () => number;
}

export const DEFAULT_UNAVAILABLE_VALUE = '__debezium_unavailable_value';

/** Prefix of the messages in which the MySQL source passes on DDL statements. */
export const DDL_PREFIX = 'tributary.ddl';

/** Prefix of the messages in which the PostgreSQL source describes a table's schema change (from Relation messages). */
export const PG_SCHEMA_CHANGE_PREFIX = 'tributary.schema_change';

/** The `version` field of every source block. */
export const ENVELOPE_VERSION: string = `tributary-${(pkg as { version: string }).version}`;

/** One message to write: key and value as JSON text; value null is a tombstone. */
export interface EncodedRecord {
  event: ChangeEvent;
  /** `schema_change`: a MySQL DDL statement in Debezium's schema-change shape (Kafka: the `<prefix>` topic). */
  type: 'change' | 'tombstone' | 'message' | 'schema_change';
  /** JSON text, or null when the message has no key (table without key, truncate). */
  key: string | null;
  /** JSON text, or null for a tombstone. */
  value: string | null;
  /** Primary-key change: on the delete and its tombstone, the row's new key (payload JSON). */
  newKey?: string;
  /** Primary-key change: on the create, the row's old key (payload JSON). */
  oldKey?: string;
}

/** Where an event sits in its transaction (the `transaction` block). */
export interface TransactionPosition {
  id: string;
  totalOrder: number;
  dataCollectionOrder: number;
}

interface CompiledColumn {
  name: string;
  /** `"name":` */
  prefix: string;
  convert: ValueToJson;
}

interface CompiledTable {
  columns: CompiledColumn[];
  byName: Map<string, CompiledColumn>;
  keyColumns: CompiledColumn[];
  keyNames: string[];
  /** `"schema":"...","table":"..."` pieces for the source block. */
  schemaJson: string;
  tableJson: string;
  /** `{"schema":...,"payload":` prefix for keys and values, when schemas are on. */
  keyWrap: string;
  valueWrap: string;
  /** Native format: `,"table":{...},"columns":[...]`. */
  nativeExtra: string;
}

const q = JSON.stringify as (s: string) => string;

const OP_CODES = { insert: 'c', update: 'u', delete: 'd', read: 'r', truncate: 't', message: 'm' } as const;

export class EnvelopeEncoder {
  readonly options: Readonly<EnvelopeOptions>;
  private readonly tables = new WeakMap<TableSchema, CompiledTable>();
  private readonly clockUs: () => number;
  private readonly modes: DebeziumModes;
  private readonly unavailable: string;
  private readonly serverNameJson: string;
  private readonly versionJson: string;
  private readonly native: boolean;

  constructor(options: EnvelopeOptions) {
    this.options = options;
    const clock = options.clock;
    this.clockUs = clock ? () => Math.trunc(clock() * 1000) : nowMicros;
    this.modes = options.modes ?? DEFAULT_MODES;
    this.unavailable = q(options.unavailableValue);
    this.serverNameJson = q(options.serverName);
    this.versionJson = q(ENVELOPE_VERSION);
    this.native = options.format === 'native';
  }

  /**
   * Appends the records of one event to `out`: normally one; a delete with tombstones two; a primary-key change
   * delete + tombstone + create. `tx` places the event in its transaction (with transaction metadata on).
   */
  encode(event: ChangeEvent, out: EncodedRecord[], tx?: TransactionPosition | null): void {
    const times = this.processedTimeJson();
    if (event.op === 'message') {
      if (!this.native && event.message?.prefix === DDL_PREFIX && event.source.connector === 'mysql') {
        out.push(this.encodeSchemaChange(event, times));
        return;
      }
      if (
        !this.native &&
        event.message?.prefix === PG_SCHEMA_CHANGE_PREFIX &&
        event.source.connector === 'postgresql'
      ) {
        out.push(this.encodePgSchemaChange(event, times));
        return;
      }
      out.push(this.encodeMessage(event, times, tx ?? null));
      return;
    }
    const t = this.compiled(event.schema, event.source.connector);
    const source = this.sourceJson(event.source, t);
    const txJson = tx && this.options.transactionMetadata ? transactionJson(tx) : 'null';
    switch (event.op) {
      case 'truncate': {
        // A snapshot's truncate only tells database targets to clear a table before its rows are copied again;
        // Debezium writes no such event, so its format leaves it out.
        if (!this.native && event.source.snapshot !== false) return;
        const payload = this.envelope(t, 'null', 'null', source, 't', times, txJson, event);
        out.push({ event, type: 'change', key: null, value: this.wrapValue(t, payload) });
        return;
      }
      case 'delete': {
        const keyPayload = this.keyPayload(t, event, event.before);
        const key = this.wrapKey(t, keyPayload);
        const payload = this.envelope(t, this.row(t, event.before), 'null', source, 'd', times, txJson, event);
        out.push({ event, type: 'change', key, value: this.wrapValue(t, payload) });
        if (this.options.tombstones && key !== null) out.push({ event, type: 'tombstone', key, value: null });
        return;
      }
      case 'update': {
        const before = event.before;
        const after = event.after;
        if (before && after && t.keyColumns.length > 0 && keyChanged(t.keyNames, before, after)) {
          const oldKey = this.keyFromRow(t, before);
          const newKey = this.keyFromRow(t, after);
          const oldKeyWrapped = this.wrapKey(t, oldKey);
          const del = this.envelope(t, this.row(t, before), 'null', source, 'd', times, txJson, event);
          out.push({ event, type: 'change', key: oldKeyWrapped, value: this.wrapValue(t, del), newKey });
          if (this.options.tombstones) {
            out.push({ event, type: 'tombstone', key: oldKeyWrapped, value: null, newKey });
          }
          // The create is the transaction's next event after the delete.
          const createTx =
            tx && this.options.transactionMetadata
              ? transactionJson({
                  ...tx,
                  totalOrder: tx.totalOrder + 1,
                  dataCollectionOrder: tx.dataCollectionOrder + 1,
                })
              : 'null';
          // The create must carry the whole row, since the old key's row is deleted (and tombstoned): an unchanged
          // TOAST value comes from the before image when the source sent it (REPLICA IDENTITY FULL).
          const create = this.envelope(
            t,
            'null',
            this.row(t, filledFrom(after, before)),
            source,
            'c',
            times,
            createTx,
            event,
          );
          out.push({ event, type: 'change', key: this.wrapKey(t, newKey), value: this.wrapValue(t, create), oldKey });
          return;
        }
        const key = this.wrapKey(t, this.keyPayload(t, event, after ?? before));
        const payload = this.envelope(
          t,
          before ? this.row(t, before) : 'null',
          after ? this.row(t, after) : 'null',
          source,
          'u',
          times,
          txJson,
          event,
        );
        out.push({ event, type: 'change', key, value: this.wrapValue(t, payload) });
        return;
      }
      default: {
        // insert, read
        const key = this.wrapKey(t, this.keyPayload(t, event, event.after));
        const payload = this.envelope(
          t,
          'null',
          event.after ? this.row(t, event.after) : 'null',
          source,
          OP_CODES[event.op],
          times,
          event.op === 'read' ? 'null' : txJson,
          event,
        );
        out.push({ event, type: 'change', key, value: this.wrapValue(t, payload) });
      }
    }
  }

  /** Key payload JSON of an event (no schema wrapping), or null when it has none. For routing and headers. */
  keyOf(event: ChangeEvent): string | null {
    if (event.op === 'message') return `{"prefix":${q(event.message?.prefix ?? '')}}`;
    if (event.op === 'truncate') return null;
    const t = this.compiled(event.schema, event.source.connector);
    return this.keyPayload(t, event, event.after ?? event.before);
  }

  /** Row object JSON (every column of the table schema, in order). Exposed for tests and the native format. */
  rowJson(schema: TableSchema, row: Row, connector: Connector = 'postgresql'): string {
    return this.row(this.compiled(schema, connector), row);
  }

  /** The Connect schema of a column (Debezium's for the connector, or the native format's). */
  private fieldTypeFor(connector: Connector): FieldTypeOf {
    if (this.native) return nativeFieldType;
    const modes = this.modes;
    return (c) => debeziumColumn(c, modes, connector).schema;
  }

  private compiled(schema: TableSchema, connector: Connector): CompiledTable {
    let t = this.tables.get(schema);
    if (!t) {
      t = this.compile(schema, connector);
      this.tables.set(schema, t);
    }
    return t;
  }

  private compile(schema: TableSchema, connector: Connector): CompiledTable {
    const valueOpts = { zeroDates: this.native ? ('keep' as const) : ('null' as const) };
    const modes = this.modes;
    const columns: CompiledColumn[] = schema.columns.map((c) => ({
      name: c.name,
      prefix: `${q(c.name)}:`,
      convert: guarded(
        schema,
        c,
        this.native ? converterFor(c.kind, c.elementKind, valueOpts) : debeziumColumn(c, modes, connector).convert,
      ),
    }));
    const byName = new Map(columns.map((c) => [c.name, c]));
    const keyInfos: ColumnInfo[] = [];
    const keyColumns: CompiledColumn[] = [];
    for (const name of schema.keyColumns) {
      const info = schema.columns.find((c) => c.name === name);
      const compiled = byName.get(name);
      if (info && compiled) {
        keyInfos.push(info);
        keyColumns.push(compiled);
      } else {
        throw new SchemaMismatchError(
          `table ${schema.table.schema}.${schema.table.name}: key column ${name} is not among the table's columns`,
          'This is a bug in the source connector; report it with the table definition.',
        );
      }
    }
    return {
      columns,
      byName,
      keyColumns,
      keyNames: schema.keyColumns,
      schemaJson: q(schema.table.schema),
      tableJson: q(schema.table.name),
      keyWrap: this.options.schemas
        ? `{"schema":${keyStructSchema(schema, keyInfos, this.options.serverName, this.fieldTypeFor(connector))},"payload":`
        : '',
      // The value schema depends on the connector (source block); filled lazily per connector.
      valueWrap: '',
      nativeExtra: this.native
        ? `,"table":{"schema":${q(schema.table.schema)},"name":${q(schema.table.name)}},"columns":[${schema.columns
            .map(
              (c) =>
                `{"name":${q(c.name)},"type":${q(c.type)},"kind":${q(c.kind)}${
                  c.elementKind ? `,"element_kind":${q(c.elementKind)}` : ''
                },"key":${c.isKey}}`,
            )
            .join(',')}]`
        : '',
    };
  }

  private row(t: CompiledTable, row: Row | null): string {
    if (!row) return 'null';
    let out = '{';
    let seen = 0;
    const cols = t.columns;
    for (let i = 0; i < cols.length; i++) {
      const c = cols[i]!;
      const v = row[c.name];
      if (i > 0) out += ',';
      out += c.prefix;
      if (v === undefined) out += 'null';
      else {
        seen++;
        out += this.cell(c, v);
      }
    }
    // Columns the row has but the table schema does not (should not happen): kept as text, never dropped.
    let total = 0;
    for (const _ in row) total++;
    if (total > seen) {
      for (const name in row) {
        if (t.byName.has(name)) continue;
        const v = row[name]!;
        out += `${out.length > 1 ? ',' : ''}${q(name)}:${v === null ? 'null' : v === UNCHANGED ? this.unavailable : q(v)}`;
      }
    }
    return `${out}}`;
  }

  private cell(c: CompiledColumn, v: CellValue): string {
    if (v === null) return 'null';
    if (v === UNCHANGED) return this.unavailable;
    return c.convert(v);
  }

  private keyFromRow(t: CompiledTable, row: Row): string {
    let out = '{';
    for (let i = 0; i < t.keyColumns.length; i++) {
      const c = t.keyColumns[i]!;
      const v = row[c.name];
      if (i > 0) out += ',';
      out += c.prefix + (v === undefined ? 'null' : this.cell(c, v));
    }
    return `${out}}`;
  }

  /** The key payload: the table's key columns from the event's key (or the row); configured key columns otherwise. */
  private keyPayload(t: CompiledTable, event: ChangeEvent, row: Row | null): string | null {
    if (t.keyColumns.length > 0) {
      const src = event.key ?? row;
      return src ? this.keyFromRow(t, src) : null;
    }
    if (!event.key) return null;
    // No primary key, but the source gave key columns (configured message key columns).
    let out = '{';
    for (const name in event.key) {
      const c = t.byName.get(name);
      const v = event.key[name]!;
      if (out.length > 1) out += ',';
      out += `${q(name)}:${c ? this.cell(c, v) : v === null ? 'null' : v === UNCHANGED ? this.unavailable : q(v)}`;
    }
    return `${out}}`;
  }

  private wrapKey(t: CompiledTable, payload: string | null): string | null {
    if (payload === null) return null;
    return this.options.schemas ? `${t.keyWrap}${payload}}` : payload;
  }

  private wrapValue(t: CompiledTable, payload: string): string {
    return this.options.schemas ? `${t.valueWrap}${payload}}` : payload;
  }

  private envelope(
    t: CompiledTable,
    before: string,
    after: string,
    source: string,
    op: string,
    tsJson: string,
    txJson: string,
    event: ChangeEvent,
  ): string {
    if (this.options.schemas && t.valueWrap === '') {
      t.valueWrap = `{"schema":${envelopeSchema(event.schema, event.source.connector, this.options.serverName, this.native, this.fieldTypeFor(event.source.connector))},"payload":`;
    }
    let out = `{"before":${before},"after":${after},"source":${source},"transaction":${txJson},"op":"${op}",${tsJson}`;
    if (this.native) {
      out += t.nativeExtra;
      if (event.op === 'truncate' && event.truncate) {
        out += `,"truncate":{"cascade":${event.truncate.cascade},"restart_identity":${event.truncate.restartIdentity}}`;
      }
    }
    return `${out}}`;
  }

  /** `"ts_ms":..,"ts_us":..,"ts_ns":..` of the moment the event is encoded (the replicator's processing time). */
  private processedTimeJson(): string {
    const us = this.clockUs();
    return `"ts_ms":${Math.floor(us / 1000)},"ts_us":${us},"ts_ns":${nanosText(us)}`;
  }

  private sourceJson(s: SourceInfo, t: CompiledTable | null, messageSchema?: string, messageTable?: string): string {
    const snapshot = s.snapshot === false ? '"false"' : q(s.snapshot);
    const commitUs = s.commitTimeUs ?? Math.trunc(s.commitTimeMs) * 1000;
    const head = `{"version":${this.versionJson},"connector":"${s.connector}","name":${this.serverNameJson},"ts_ms":${Math.floor(commitUs / 1000)},"snapshot":${snapshot},"db":${q(s.db)}`;
    const times = `"ts_us":${commitUs},"ts_ns":${nanosText(commitUs)}`;
    const p = s.position;
    const schemaJson = t ? t.schemaJson : messageSchema === undefined ? '""' : q(messageSchema);
    const tableJson = t ? t.tableJson : messageTable === undefined ? '""' : q(messageTable);
    if (p.kind === 'postgres') {
      const lsn = lsnToDecimal(p.lsn);
      const last = p.lastCommitLsn ? `\\"${lsnToDecimal(p.lastCommitLsn)}\\"` : 'null';
      const txId = s.txId === undefined ? 'null' : /^\d+$/.test(s.txId) ? s.txId : q(s.txId);
      return `${head},"sequence":"[${last},\\"${lsn}\\"]",${times},"schema":${schemaJson},"table":${tableJson},"txId":${txId},"lsn":${lsn},"xmin":null,"origin":null,"origin_lsn":null}`;
    }
    const mysqlTable = t ? t.tableJson : messageTable ? q(messageTable) : 'null';
    return `${head},"sequence":null,${times},"table":${mysqlTable},"server_id":${Math.trunc(p.serverId)},"gtid":${
      p.gtid === undefined ? 'null' : q(p.gtid)
    },"file":${q(p.file)},"pos":${Math.trunc(p.pos)},"row":${Math.trunc(p.row)},"thread":null,"query":null}`;
  }

  /**
   * A MySQL DDL statement (the source's `tributary.ddl` message) as Debezium's schema-change record. `tableChanges`
   * stays empty: the table's new definition is not part of the event (docs/event-format.md).
   */
  private encodeSchemaChange(event: ChangeEvent, tsJson: string): EncodedRecord {
    const db = q(event.source.db);
    const ddl = q(Buffer.from(event.message?.contentBase64 ?? '', 'base64').toString('utf8'));
    const source = this.sourceJson(event.source, null, undefined, event.table.name);
    const key = `{"databaseName":${db}}`;
    const value = `{"source":${source},${tsJson.slice(0, tsJson.indexOf(','))},"databaseName":${db},"schemaName":null,"ddl":${ddl},"tableChanges":[]}`;
    if (!this.options.schemas) return { event, type: 'schema_change', key, value };
    return {
      event,
      type: 'schema_change',
      key: `{"schema":${SCHEMA_CHANGE_KEY_SCHEMA},"payload":${key}}`,
      value: `{"schema":${SCHEMA_CHANGE_VALUE_SCHEMA},"payload":${value}}`,
    };
  }

  /**
   * A PostgreSQL schema change (the source's `tributary.schema_change` message, derived from a Relation message) in
   * the shape of Debezium's schema-change record: `ddl` is null (logical decoding carries no DDL text) and
   * `tableChanges` holds one `ALTER` with the table's columns after the change, described as Debezium describes
   * columns (docs/event-format.md). The columns before and what changed are in the native format's message.
   */
  private encodePgSchemaChange(event: ChangeEvent, tsJson: string): EncodedRecord {
    const info = JSON.parse(Buffer.from(event.message?.contentBase64 ?? '', 'base64').toString('utf8')) as {
      after: { schema: string; name: string; key: string[]; columns: SchemaChangeColumn[] };
    };
    const { schema, name } = info.after;
    const db = q(event.source.db);
    const source = this.sourceJson(event.source, null, schema, name);
    const columns = info.after.columns.map((c, i) => debeziumSchemaColumn(c, i + 1)).join(',');
    const id = q(`"${schema}"."${name}"`);
    const table = `{"defaultCharsetName":null,"primaryKeyColumnNames":${JSON.stringify(info.after.key)},"columns":[${columns}],"comment":null}`;
    const key = `{"databaseName":${db}}`;
    const value = `{"source":${source},${tsJson.slice(0, tsJson.indexOf(','))},"databaseName":${db},"schemaName":${q(schema)},"ddl":null,"tableChanges":[{"type":"ALTER","id":${id},"table":${table}}]}`;
    if (!this.options.schemas) return { event, type: 'schema_change', key, value };
    return {
      event,
      type: 'schema_change',
      key: `{"schema":${PG_SCHEMA_CHANGE_KEY_SCHEMA},"payload":${key}}`,
      value: `{"schema":${PG_SCHEMA_CHANGE_VALUE_SCHEMA},"payload":${value}}`,
    };
  }

  private encodeMessage(event: ChangeEvent, tsJson: string, tx: TransactionPosition | null): EncodedRecord {
    const m = event.message;
    const prefix = m?.prefix ?? '';
    const keyPayload = `{"prefix":${q(prefix)}}`;
    const source = this.sourceJson(event.source, null, '', '');
    const txJson = tx && this.options.transactionMetadata && m?.transactional ? transactionJson(tx) : 'null';
    const content = this.native
      ? { json: q(m?.contentBase64 ?? ''), type: 'bytes' }
      : binaryContent(m?.contentBase64 ?? '', this.modes);
    const transactional = this.native ? `,"transactional":${m?.transactional ?? false}` : '';
    // Debezium's message value has only ts_ms of the processing times, and this field order.
    const tsMs = tsJson.slice(0, tsJson.indexOf(','));
    const payload = `{"op":"m",${tsMs},"source":${source},"transaction":${txJson},"message":{"prefix":${q(prefix)},"content":${content.json}${transactional}}}`;
    if (!this.options.schemas) return { event, type: 'message', key: keyPayload, value: payload };
    const connector = event.source.connector;
    return {
      event,
      type: 'message',
      key: `{"schema":${messageKeySchema(connector)},"payload":${keyPayload}}`,
      value: `{"schema":${messageValueSchema(connector, this.native, content.type)},"payload":${payload}}`,
    };
  }
}

interface SchemaChangeColumn {
  name: string;
  /** format_type with modifiers, e.g. `numeric(12,1)`, `character varying(20)`, `integer[]`. */
  type: string;
  type_oid: number | null;
  nullable: boolean;
}

/** java.sql.Types of PostgreSQL base types, as the PostgreSQL JDBC driver reports them (others: OTHER). */
const JDBC_TYPES: Record<string, number> = {
  smallint: 5,
  integer: 4,
  bigint: -5,
  real: 7,
  'double precision': 8,
  numeric: 2,
  money: 8,
  boolean: -7,
  bit: -7,
  'character varying': 12,
  character: 1,
  text: 12,
  bytea: -2,
  date: 91,
  'time without time zone': 92,
  'time with time zone': 92,
  'timestamp without time zone': 93,
  'timestamp with time zone': 93,
};

/** A column in Debezium's `io.debezium.connector.schema.Column` shape (length and scale from the type modifiers). */
function debeziumSchemaColumn(c: SchemaChangeColumn, position: number): string {
  const array = /\[\]$/.test(c.type);
  const mods = /\((\d+)(?:,\s*(\d+))?\)/.exec(c.type);
  const typeName = c.type.replace(/\([^)]*\)/, '');
  const base = typeName.replace(/\[\]$/, '');
  const jdbc = array ? 2003 : (JDBC_TYPES[base] ?? 1111);
  const length = mods ? Number(mods[1]) : null;
  const scale = mods?.[2] !== undefined ? Number(mods[2]) : null;
  return `{"name":${q(c.name)},"jdbcType":${jdbc},"nativeType":${c.type_oid ?? 'null'},"typeName":${q(typeName)},"typeExpression":${q(typeName)},"charsetName":null,"length":${length},"scale":${scale},"position":${position},"optional":${c.nullable},"autoIncremented":false,"generated":false,"comment":null,"defaultValueExpression":null,"enumValues":null}`;
}

function transactionJson(tx: TransactionPosition): string {
  return `{"id":${q(tx.id)},"total_order":${tx.totalOrder},"data_collection_order":${tx.dataCollectionOrder}}`;
}

/** Nanoseconds as JSON digits from whole microseconds (exact: a JS number would round above 2^53). */
function nanosText(us: number): string {
  return us === 0 ? '0' : `${us}000`;
}

/** Microseconds since the epoch, from the high-resolution clock. */
function nowMicros(): number {
  return Math.trunc((performance.timeOrigin + performance.now()) * 1000);
}

/** `after` with each unchanged (not resent) value taken from `before` where `before` has it. */
function filledFrom(after: Row, before: Row): Row {
  let out: Row | null = null;
  for (const name in after) {
    if (after[name] !== UNCHANGED) continue;
    const old = before[name];
    if (old === undefined || old === UNCHANGED) continue;
    out ??= { ...after };
    out[name] = old;
  }
  return out ?? after;
}

/** An update that changes the row's primary key (written as a delete and a create). */
export function isKeyChange(event: ChangeEvent): boolean {
  return (
    event.op === 'update' &&
    event.before !== null &&
    event.after !== null &&
    event.schema.keyColumns.length > 0 &&
    keyChanged(event.schema.keyColumns, event.before, event.after)
  );
}

function keyChanged(keyNames: string[], before: Row, after: Row): boolean {
  for (const k of keyNames) {
    const b = before[k];
    const a = after[k];
    if (b === undefined || b === UNCHANGED || a === undefined || a === UNCHANGED) continue;
    if (a !== b) return true;
  }
  return false;
}

/** Wraps a converter so a malformed value names its table and column instead of emitting broken JSON. */
function guarded(schema: TableSchema, c: ColumnInfo, convert: ValueToJson): ValueToJson {
  if (c.kind !== 'array') return convert;
  return (text) => {
    try {
      return convert(text);
    } catch (err) {
      throw new SchemaMismatchError(
        `table ${schema.table.schema}.${schema.table.name}, column ${c.name} (${c.type}): ${(err as Error).message}`,
        'The value is not a PostgreSQL array literal; check the column type reported by the source.',
      );
    }
  };
}

const TWO_32 = 4294967296;

/** `X/Y` LSN -> decimal string (Debezium's numeric LSN), exact for every LSN. */
export function lsnToDecimal(lsn: string): string {
  const slash = lsn.indexOf('/');
  if (slash < 0) return /^\d+$/.test(lsn) ? lsn : '0';
  const hi = Number.parseInt(lsn.slice(0, slash), 16);
  const lo = Number.parseInt(lsn.slice(slash + 1), 16);
  if (hi < 0x200000) return String(hi * TWO_32 + lo);
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

/** The jsonl line of a record: `{"key":<key JSON or null>,"value":<value JSON or null>}` (no newline). */
export function keyValueLine(record: EncodedRecord): string {
  return `{"key":${record.key ?? 'null'},"value":${record.value ?? 'null'}}`;
}
