import { quoteIdent } from '../../connectors/mysql/identifiers.ts';
import { MYSQL_CHAR_TYPES, mysqlTypeKind } from '../../connectors/mysql/type-names.ts';
import type { Db } from './db.ts';
import { type Dialect, expandedTupleCompare, parseTableName, sqlString, type TableScope, utf8Hex } from './dialect.ts';
import type { ColumnDef, TableDef, TableName } from './types.ts';

const SYSTEM_DATABASES = ['mysql', 'information_schema', 'performance_schema', 'sys', 'tributary'];

/**
 * What verify compares a column as, from its DATA_TYPE: the value kind of the one MySQL type-name table, except that
 * ENUM and SET compare as their text, and geometries and MariaDB's address types as `other`.
 */
function kindOf(dataType: string, columnType: string): Pick<ColumnDef, 'kind' | 'maybeBool' | 'bitWidth'> {
  if (dataType === 'tinyint') return { kind: 'int', maybeBool: /^tinyint\(1\)/.test(columnType) };
  if (dataType === 'bit') {
    const width = Number(/bit\((\d+)\)/.exec(columnType)?.[1] ?? 1);
    return { kind: 'bits', bitWidth: width, maybeBool: width === 1 };
  }
  const kind = mysqlTypeKind(dataType);
  switch (kind) {
    case 'int':
    case 'decimal':
    case 'float':
    case 'bytes':
    case 'json':
    case 'uuid':
    case 'date':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return { kind };
    case 'enum':
    case 'set':
      return { kind: 'text' };
    case 'text':
      return { kind: MYSQL_CHAR_TYPES.includes(dataType) ? 'text' : 'other' };
    default:
      return { kind: 'other' };
  }
}

/** Canonical decimal text: trailing fractional zeros and a trailing point removed. */
function trimDecimal(text: string): string {
  return `IF(LOCATE('.', ${text}) > 0, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM ${text})), ${text})`;
}

export function mysqlDialect(): Dialect {
  return {
    engine: 'mysql',
    async listTables(conn: Db, scope: TableScope): Promise<TableName[]> {
      const out: TableName[] = [];
      if (scope.databases?.length) {
        const rows = await conn.query(
          `SELECT table_schema AS \`schema\`, table_name AS name FROM information_schema.tables
            WHERE table_type = 'BASE TABLE' AND table_schema IN (?) ORDER BY 1, 2`,
          [scope.databases],
        );
        out.push(...rows.map((r) => ({ schema: r.schema!, name: r.name! })));
      }
      for (const t of scope.tables ?? []) {
        const table = parseTableName(t);
        if (!out.some((o) => o.schema === table.schema && o.name === table.name)) out.push(table);
      }
      if (scope.databases?.length || scope.tables?.length) return out;
      const rows = await conn.query(
        `SELECT table_schema AS \`schema\`, table_name AS name FROM information_schema.tables
          WHERE table_type = 'BASE TABLE' AND table_schema NOT IN (?) ORDER BY 1, 2`,
        [SYSTEM_DATABASES],
      );
      return rows.map((r) => ({ schema: r.schema!, name: r.name! }));
    },

    async describeTable(conn: Db, table: TableName): Promise<TableDef | undefined> {
      const cols = await conn.query(
        `SELECT column_name AS name, data_type AS data_type, column_type AS column_type,
                collation_name AS collation_name
           FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position`,
        [table.schema, table.name],
      );
      if (cols.length === 0) return undefined;
      const key = await conn.query(
        `SELECT column_name AS name FROM information_schema.key_column_usage
          WHERE table_schema = ? AND table_name = ? AND constraint_name = 'PRIMARY' ORDER BY ordinal_position`,
        [table.schema, table.name],
      );
      // MariaDB's JSON is longtext with a json_valid() check constraint.
      const jsonColumns = new Set<string>();
      if (/mariadb/i.test(conn.version)) {
        const checks = await conn.query(
          `SELECT check_clause AS clause FROM information_schema.check_constraints
            WHERE constraint_schema = ? AND table_name = ?`,
          [table.schema, table.name],
        );
        for (const c of checks) {
          const m = /^json_valid\(`(.+)`\)$/i.exec(c.clause ?? '');
          if (m) jsonColumns.add(m[1]!.replaceAll('``', '`'));
        }
      }
      return {
        table,
        columns: cols.map((c): ColumnDef => {
          const kind = kindOf(c.data_type!.toLowerCase(), c.column_type!.toLowerCase());
          if (jsonColumns.has(c.name!)) kind.kind = 'json';
          return { name: c.name!, type: c.column_type!, ...kind, collation: c.collation_name ?? undefined };
        }),
        primaryKey: key.map((k) => k.name!),
      };
    },

    quoteTable: (t) => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`,
    quoteIdent,

    canonical(ref, column, kind, cross) {
      if (column.kind === 'bytes') return `LOWER(HEX(${ref}))`;
      if (column.kind === 'bits' && !(cross && kind === 'bool'))
        return `LPAD(BIN(${ref}), ${column.bitWidth ?? 1}, '0')`;
      if (!cross) return `CAST(${ref} AS CHAR)`;
      switch (kind) {
        case 'bool':
          return `IF(${ref} <> 0, 't', 'f')`;
        case 'decimal':
          return trimDecimal(`CAST(${ref} AS CHAR)`);
        case 'float': {
          const x = `(${ref} + 0e0)`;
          const e = `FLOOR(LOG10(ABS(${x})))`;
          const mantissa = trimDecimal(`CAST(CAST(ROUND(${x} / POW(10, ${e}), 11) AS DECIMAL(20, 11)) AS CHAR)`);
          return `IF(${x} = 0, '0', CONCAT(${mantissa}, 'e', CAST(${e} AS SIGNED)))`;
        }
        case 'json':
          // The text as stored; rows whose texts differ are compared as JSON values in Node.
          return `CAST(${ref} AS CHAR)`;
        case 'date':
          return `DATE_FORMAT(${ref}, '%Y-%m-%d')`;
        case 'time':
          return `TIME_FORMAT(${ref}, '%H:%i:%s.%f')`;
        case 'timestamp':
        case 'timestamptz':
          return `DATE_FORMAT(${ref}, '%Y-%m-%d %H:%i:%s.%f')`;
        case 'uuid':
          return `LOWER(CAST(${ref} AS CHAR))`;
        default:
          return `CAST(${ref} AS CHAR)`;
      }
    },

    rowHash: (pieces) => `SHA2(CONCAT(${pieces.join(", '|', ")}), 256)`,
    nullSafePiece: (ref, canonical) => {
      const text = `CONVERT(${canonical} USING utf8mb4)`;
      return `IF(${ref} IS NULL, '~', CONCAT(CHAR_LENGTH(${text}), ':', ${text}))`;
    },
    countAndSum: (h) =>
      `CAST(COUNT(*) AS CHAR) AS n, CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(${h}, 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) AS s`,

    keyOrderExpr(ref, _column, canonical, binary) {
      return binary ? `CAST(CONVERT(${canonical} USING utf8mb4) AS BINARY)` : ref;
    },
    keyLiteral(value, column, kind, binary) {
      if (binary) return `X'${utf8Hex(value)}'`;
      if (column.kind === 'bytes') return /^[0-9a-f]*$/i.test(value) ? `X'${value}'` : `X'${utf8Hex(value)}'`;
      if (kind === 'bool') return value === 't' ? '1' : value === 'f' ? '0' : sqlString(value);
      if ((column.kind === 'int' || column.kind === 'decimal') && /^-?\d+(\.\d+)?$/.test(value)) return value;
      if (/^[0-9: .-]+$/.test(value)) return sqlString(value);
      return `_utf8mb4 X'${utf8Hex(value)}'`;
    },
    tupleCompare: expandedTupleCompare,
    isByteOrdered(column) {
      return column.kind === 'bytes';
    },
  };
}
