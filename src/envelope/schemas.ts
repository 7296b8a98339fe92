/**
 * Kafka Connect JSON schemas (`{"schema": ..., "payload": ...}`) in Debezium's style, built once per table as text.
 */
import type { ColumnInfo, TableSchema, ValueKind } from '../core/change-event.ts';
import { withOptional } from './debezium-values.ts';

const q = JSON.stringify as (s: string) => string;

/** A column's Connect schema as `"type":...[,"name":...]` (no braces). */
export type FieldTypeOf = (c: ColumnInfo) => string;

/** The native format's column schemas (canonical text values). */
export const nativeFieldType: FieldTypeOf = (c) => fieldType(c.kind, c.type, c.elementKind);

/** Type and optional logical name of a value of this kind, as `"type":...[,"name":...]` (no braces). */
export function fieldType(kind: ValueKind, typeName: string, elementKind?: ValueKind): string {
  const t = typeName.toLowerCase();
  switch (kind) {
    case 'bool':
      return '"type":"boolean"';
    case 'int':
      return `"type":"${intType(t)}"`;
    case 'float':
      return /^(real|float4|float)\b/.test(t) && !/double/.test(t) ? '"type":"float"' : '"type":"double"';
    case 'bytes':
      return '"type":"bytes"';
    case 'json':
      return '"type":"string","name":"io.debezium.data.Json","version":1';
    case 'uuid':
      return '"type":"string","name":"io.debezium.data.Uuid","version":1';
    case 'enum':
      return '"type":"string","name":"io.debezium.data.Enum","version":1';
    case 'set':
      return '"type":"string","name":"io.debezium.data.EnumSet","version":1';
    case 'date':
      return '"type":"string","name":"io.debezium.time.IsoDate","version":1';
    case 'time':
      return '"type":"string","name":"io.debezium.time.IsoTime","version":1';
    case 'timetz':
      return '"type":"string","name":"io.debezium.time.ZonedTime","version":1';
    case 'timestamp':
      return '"type":"string","name":"io.debezium.time.IsoTimestamp","version":1';
    case 'timestamptz':
      return '"type":"string","name":"io.debezium.time.ZonedTimestamp","version":1';
    case 'interval':
      return '"type":"string","name":"io.debezium.time.Interval","version":1';
    case 'array': {
      const element = elementKind ?? 'text';
      const elementType = t.endsWith('[]') ? t.slice(0, -2) : t.replace(/^_/, '');
      return `"type":"array","items":{${fieldType(element, elementType)},"optional":true}`;
    }
    // decimal (string decimal handling mode), text, bits, geometry, other
    default:
      return '"type":"string"';
  }
}

function intType(t: string): 'int16' | 'int32' | 'int64' {
  const unsigned = t.includes('unsigned');
  if (/^(smallint|int2|smallserial|tinyint)\b/.test(t)) return unsigned && t.startsWith('smallint') ? 'int32' : 'int16';
  if (/^(mediumint|year)\b/.test(t)) return 'int32';
  if (/^(integer|int4|int|serial)\b/.test(t)) return unsigned ? 'int64' : 'int32';
  // bigint / int8 / bigserial, bigint unsigned (values up to 2^64-1 are written exactly; see docs/event-format.md)
  return 'int64';
}

function columnField(c: ColumnInfo, fieldTypeOf: FieldTypeOf): string {
  const optional = !c.isKey && c.nullable !== false;
  return `{${withOptional(fieldTypeOf(c), optional)},"field":${q(c.name)}}`;
}

/** Struct of the row (all columns), Debezium's `<prefix>.<schema>.<table>.Value`. */
export function rowStructSchema(
  schema: TableSchema,
  serverName: string,
  field: string | undefined,
  fieldTypeOf: FieldTypeOf,
): string {
  const name = `${serverName}.${schema.table.schema}.${schema.table.name}.Value`;
  return `{"type":"struct","fields":[${schema.columns.map((c) => columnField(c, fieldTypeOf)).join(',')}],"optional":true,"name":${q(name)}${
    field ? `,"field":${q(field)}` : ''
  }}`;
}

/** Struct of the key columns, `<prefix>.<schema>.<table>.Key`. */
export function keyStructSchema(
  schema: TableSchema,
  keyColumns: ColumnInfo[],
  serverName: string,
  fieldTypeOf: FieldTypeOf,
): string {
  const name = `${serverName}.${schema.table.schema}.${schema.table.name}.Key`;
  return `{"type":"struct","fields":[${keyColumns
    .map((c) => `{${withOptional(fieldTypeOf(c), false)},"field":${q(c.name)}}`)
    .join(',')}],"optional":false,"name":${q(name)}}`;
}

const SNAPSHOT_FIELD =
  '{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"}';

/** Fields every Debezium source block starts with. */
const COMMON_SOURCE_FIELDS = `{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},${SNAPSHOT_FIELD},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"}`;

export const POSTGRES_SOURCE_SCHEMA = `{"type":"struct","fields":[${COMMON_SOURCE_FIELDS},{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"},{"type":"int64","optional":true,"field":"txId"},{"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"xmin"},{"type":"string","optional":true,"field":"origin"},{"type":"int64","optional":true,"field":"origin_lsn"}],"optional":false,"name":"io.debezium.connector.postgresql.Source","version":1,"field":"source"}`;

export const MYSQL_SOURCE_SCHEMA = `{"type":"struct","fields":[${COMMON_SOURCE_FIELDS},{"type":"string","optional":true,"field":"table"},{"type":"int64","optional":false,"field":"server_id"},{"type":"string","optional":true,"field":"gtid"},{"type":"string","optional":false,"field":"file"},{"type":"int64","optional":false,"field":"pos"},{"type":"int32","optional":false,"field":"row"},{"type":"int64","optional":true,"field":"thread"},{"type":"string","optional":true,"field":"query"}],"optional":false,"name":"io.debezium.connector.mysql.Source","version":1,"field":"source"}`;

export const TRANSACTION_SCHEMA =
  '{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"}';

/** Native format extras: table reference, column descriptions, truncate options. */
const NATIVE_FIELDS =
  ',{"type":"struct","fields":[{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"name"}],"optional":false,"field":"table"},{"type":"array","items":{"type":"struct","fields":[{"type":"string","optional":false,"field":"name"},{"type":"string","optional":false,"field":"type"},{"type":"string","optional":false,"field":"kind"},{"type":"string","optional":true,"field":"element_kind"},{"type":"boolean","optional":false,"field":"key"}],"optional":false},"optional":false,"field":"columns"},{"type":"struct","fields":[{"type":"boolean","optional":false,"field":"cascade"},{"type":"boolean","optional":false,"field":"restart_identity"}],"optional":true,"field":"truncate"}';

/** The whole value schema of a table's change events. */
export function envelopeSchema(
  schema: TableSchema,
  connector: 'postgresql' | 'mysql',
  serverName: string,
  native: boolean,
  fieldTypeOf: FieldTypeOf,
): string {
  const name = `${serverName}.${schema.table.schema}.${schema.table.name}.Envelope`;
  const source = connector === 'postgresql' ? POSTGRES_SOURCE_SCHEMA : MYSQL_SOURCE_SCHEMA;
  return `{"type":"struct","fields":[${rowStructSchema(schema, serverName, 'before', fieldTypeOf)},${rowStructSchema(
    schema,
    serverName,
    'after',
    fieldTypeOf,
  )},${source},${TRANSACTION_SCHEMA},{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"}${
    native ? NATIVE_FIELDS : ''
  }],"optional":false,"name":${q(name)},"version":2}`;
}

export function messageKeySchema(connector: 'postgresql' | 'mysql'): string {
  return `{"type":"struct","fields":[{"type":"string","optional":true,"field":"prefix"}],"optional":false,"name":"io.debezium.connector.${connector}.MessageKey","version":1}`;
}

export function messageValueSchema(connector: 'postgresql' | 'mysql', native: boolean, contentType = 'bytes'): string {
  const source = connector === 'postgresql' ? POSTGRES_SOURCE_SCHEMA : MYSQL_SOURCE_SCHEMA;
  return `{"type":"struct","fields":[{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},${source},${TRANSACTION_SCHEMA},{"type":"struct","fields":[{"type":"string","optional":true,"field":"prefix"},{"type":"${contentType}","optional":true,"field":"content"}${
    native ? ',{"type":"boolean","optional":true,"field":"transactional"}' : ''
  }],"optional":false,"name":"io.debezium.connector.${connector}.Message","version":1,"field":"message"}],"optional":false,"name":"io.debezium.connector.${connector}.MessageValue","version":1}`;
}

/** Key of a MySQL schema-change record: `{"databaseName": ...}`. */
export const SCHEMA_CHANGE_KEY_SCHEMA =
  '{"type":"struct","fields":[{"type":"string","optional":false,"field":"databaseName"}],"optional":false,"name":"io.debezium.connector.mysql.SchemaChangeKey","version":1}';

/** Value of a MySQL schema-change record (source, ts_ms, databaseName, schemaName, ddl, tableChanges). */
export const SCHEMA_CHANGE_VALUE_SCHEMA = `{"type":"struct","fields":[${MYSQL_SOURCE_SCHEMA},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"field":"databaseName"},{"type":"string","optional":true,"field":"schemaName"},{"type":"string","optional":true,"field":"ddl"},{"type":"array","items":{"type":"struct","fields":[{"type":"string","optional":false,"field":"type"},{"type":"string","optional":false,"field":"id"},{"type":"struct","fields":[{"type":"string","optional":true,"field":"defaultCharsetName"},{"type":"array","items":{"type":"string","optional":false},"optional":true,"field":"primaryKeyColumnNames"},{"type":"array","items":{"type":"struct","fields":[{"type":"string","optional":false,"field":"name"},{"type":"int32","optional":false,"field":"jdbcType"},{"type":"int32","optional":true,"field":"nativeType"},{"type":"string","optional":false,"field":"typeName"},{"type":"string","optional":true,"field":"typeExpression"},{"type":"string","optional":true,"field":"charsetName"},{"type":"int32","optional":true,"field":"length"},{"type":"int32","optional":true,"field":"scale"},{"type":"int32","optional":false,"field":"position"},{"type":"boolean","optional":true,"field":"optional"},{"type":"boolean","optional":true,"field":"autoIncremented"},{"type":"boolean","optional":true,"field":"generated"},{"type":"string","optional":true,"field":"comment"},{"type":"string","optional":true,"field":"defaultValueExpression"},{"type":"array","items":{"type":"string","optional":false},"optional":true,"field":"enumValues"}],"optional":false,"name":"io.debezium.connector.schema.Column","version":1},"optional":false,"field":"columns"},{"type":"string","optional":true,"field":"comment"}],"optional":true,"name":"io.debezium.connector.schema.Table","version":1,"field":"table"}],"optional":false,"name":"io.debezium.connector.schema.Change","version":1},"optional":false,"field":"tableChanges"}],"optional":false,"name":"io.debezium.connector.mysql.SchemaChangeValue","version":1}`;

/** Key of a PostgreSQL schema-change record (derived from a Relation message): `{"databaseName": ...}`. */
export const PG_SCHEMA_CHANGE_KEY_SCHEMA = SCHEMA_CHANGE_KEY_SCHEMA.replace(
  'io.debezium.connector.mysql.SchemaChangeKey',
  'io.debezium.connector.postgresql.SchemaChangeKey',
);

/** Value of a PostgreSQL schema-change record: the MySQL record's fields with PostgreSQL's source block. */
export const PG_SCHEMA_CHANGE_VALUE_SCHEMA = SCHEMA_CHANGE_VALUE_SCHEMA.replace(
  MYSQL_SOURCE_SCHEMA,
  POSTGRES_SOURCE_SCHEMA,
).replace('io.debezium.connector.mysql.SchemaChangeValue', 'io.debezium.connector.postgresql.SchemaChangeValue');
