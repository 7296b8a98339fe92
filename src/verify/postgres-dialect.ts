import { quoteIdent } from '../../connectors/postgres/identifiers.ts';
import type { Db } from './db.ts';
import { type Dialect, parseTableName, sqlString, type TableScope } from './dialect.ts';
import type { ColumnDef, Kind, TableDef, TableName } from './types.ts';

const SYSTEM_SCHEMAS = ['pg_catalog', 'information_schema', 'tributary'];

function kindOf(baseType: string, typtype: string, category: string): Kind {
  if (typtype === 'e') return 'text';
  if (category === 'A') return 'array';
  switch (baseType) {
    case 'bool':
      return 'bool';
    case 'int2':
    case 'int4':
    case 'int8':
    case 'oid':
      return 'int';
    case 'numeric':
      return 'decimal';
    case 'float4':
    case 'float8':
      return 'float';
    case 'text':
    case 'varchar':
    case 'bpchar':
    case 'name':
    case 'citext':
    case 'char':
      return 'text';
    case 'bytea':
      return 'bytes';
    case 'json':
    case 'jsonb':
      return 'json';
    case 'uuid':
      return 'uuid';
    case 'date':
      return 'date';
    case 'time':
    case 'timetz':
      return 'time';
    case 'interval':
      return 'interval';
    case 'timestamp':
      return 'timestamp';
    case 'timestamptz':
      return 'timestamptz';
    case 'bit':
    case 'varbit':
      return 'bits';
    default:
      return category === 'S' ? 'text' : 'other';
  }
}

/** PostgreSQL 13 has trim_scale; older servers strip trailing zeros with a regular expression. */
function trimScale(db: Db | undefined, expr: string): string {
  if (!db || Number(db.version) >= 130000) return `trim_scale(${expr})::text`;
  return `regexp_replace(regexp_replace((${expr})::text, '(\\.\\d*?)0+$', '\\1'), '\\.$', '')`;
}

export function postgresDialect(db?: Db): Dialect {
  return {
    engine: 'postgres',
    async listTables(conn: Db, scope: TableScope): Promise<TableName[]> {
      if (scope.tables?.length) {
        return scope.tables.map(parseTableName);
      }
      const rows = await conn.query(
        `select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relkind in ('r', 'p') and not c.relispartition and n.nspname <> all($1::text[])
            and n.nspname not like 'pg\\_%' order by 1, 2`,
        [SYSTEM_SCHEMAS],
      );
      return rows.map((r) => ({ schema: r.schema!, name: r.name! }));
    },

    async describeTable(conn: Db, table: TableName): Promise<TableDef | undefined> {
      const rel = await conn.query(
        `select c.oid::text as oid, d.datcollate as dbcollation from pg_class c
           join pg_namespace n on n.oid = c.relnamespace, pg_database d
          where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p', 'v', 'm', 'f')
            and d.datname = current_database()`,
        [table.schema, table.name],
      );
      if (!rel[0]) return undefined;
      const oid = rel[0].oid!;
      const cols = await conn.query(
        `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, bt.typname as base,
                t.typtype as typtype, bt.typcategory as category, co.collname as collation
           from pg_attribute a join pg_type t on t.oid = a.atttypid
           join pg_type bt on bt.oid = case when t.typtype = 'd' then t.typbasetype else t.oid end
           left join pg_collation co on co.oid = a.attcollation
          where a.attrelid = $1::oid and a.attnum > 0 and not a.attisdropped order by a.attnum`,
        [oid],
      );
      const key = await conn.query(
        `select a.attname as name from pg_index i
           join lateral unnest(i.indkey::int2[]) with ordinality as k(attnum, pos) on true
           join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
          where i.indrelid = $1::oid and i.indisprimary order by k.pos`,
        [oid],
      );
      return {
        table,
        columns: cols.map(
          (c): ColumnDef => ({
            name: c.name!,
            type: c.type!,
            kind: kindOf(c.base!, c.typtype!, c.category!),
            collation: c.collation ? (c.collation === 'default' ? rel[0]!.dbcollation! : c.collation) : undefined,
          }),
        ),
        primaryKey: key.map((k) => k.name!),
      };
    },

    quoteTable: (t) => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`,
    quoteIdent,

    canonical(ref, column, kind, cross) {
      if (!cross) return `${ref}::text`;
      switch (kind) {
        case 'bool':
          return `case when ${ref} then 't' else 'f' end`;
        case 'decimal':
          return column.kind === 'decimal' ? trimScale(db, ref) : `${ref}::text`;
        case 'float': {
          // 11 significant digits: mantissa in [1, 10) rounded, and the decimal exponent.
          const x = `${ref}::float8`;
          const e = `floor(log(abs(${x})))`;
          return `case when ${ref}::text in ('NaN', 'Infinity', '-Infinity') then ${ref}::text when ${x} = 0 then '0' else ${trimScale(db, `round((${x} / power(10::float8, ${e}))::numeric, 11)`)} || 'e' || ${e}::int::text end`;
        }
        case 'bytes':
          return `encode(${ref}, 'hex')`;
        case 'json':
          // The text as stored (never through jsonb, which refuses \u0000): equal texts hash equal, and rows whose
          // texts differ are compared as JSON values in Node (json-equivalence.ts).
          return column.kind === 'array' ? `to_json(${ref})::text` : `${ref}::text`;
        case 'time': {
          // As MySQL's TIME_FORMAT(t, '%H:%i:%s.%f') prints a TIME, which may be negative or above 24 hours: PostgreSQL
          // time and interval columns (MySQL TIME replicates into interval) compare on the same text. A timetz
          // replicates as its UTC time.
          const time = /with time zone/.test(column.type) ? `(${ref} at time zone 'UTC')::time` : ref;
          const seconds = `abs(extract(epoch from ${time}::interval))`;
          const hours = `floor(${seconds} / 3600)::bigint::text`;
          return `(case when ${time}::interval < interval '0' then '-' else '' end) || lpad(${hours}, greatest(2, length(${hours})), '0') || ':' || lpad(floor(mod(${seconds}, 3600) / 60)::text, 2, '0') || ':' || to_char(mod(${seconds}, 60), 'FM00.000000')`;
        }
        case 'timestamp':
          return `case when isfinite(${ref}) then to_char(${ref}, 'YYYY-MM-DD HH24:MI:SS.US') else ${ref}::text end`;
        case 'timestamptz':
          return `case when isfinite(${ref}) then to_char(${ref} at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') else ${ref}::text end`;
        default:
          return `${ref}::text`;
      }
    },

    rowHash: (pieces) => `encode(sha256(convert_to(${pieces.join(` || '|' || `)}, 'UTF8')), 'hex')`,
    nullSafePiece: (ref, canonical) =>
      `case when ${ref} is null then '~' else char_length(${canonical})::text || ':' || ${canonical} end`,
    countAndSum: (h) =>
      `count(*)::text as n, coalesce(sum(('x' || substr(${h}, 1, 15))::bit(60)::bigint), 0)::text as s`,

    keyOrderExpr(ref, _column, canonical, binary) {
      return binary ? `(${canonical}) collate "C"` : ref;
    },
    keyLiteral(value, column, kind, binary) {
      if (binary) return `${sqlString(value)}::text collate "C"`;
      if (kind === 'bytes' && column.kind === 'bytes' && !value.startsWith('\\x'))
        return `decode(${sqlString(value)}, 'hex')`;
      return `${sqlString(value)}::${column.type}`;
    },
    tupleCompare(exprs, literals, op) {
      if (exprs.length === 1) return `${exprs[0]} ${op} ${literals[0]}`;
      return `(${exprs.join(', ')}) ${op} (${literals.join(', ')})`;
    },
    isByteOrdered(column) {
      if (column.kind === 'bytes' || column.kind === 'uuid') return true;
      const c = column.collation ?? '';
      return c === 'C' || c === 'POSIX' || c === 'ucs_basic' || c === 'C.UTF-8' || c === 'C.utf8';
    },
  };
}
