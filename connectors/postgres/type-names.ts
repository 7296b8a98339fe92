/**
 * PostgreSQL type names: the one table of built-in type OIDs, their names and value kinds (as type-names.ts is for
 * MySQL).
 *
 * Built-in types are known by OID. Everything else (enums, domains, arrays of them, ranges, composites, extension
 * types) is resolved from pg_type once per OID and cached by the caller's TypeResolver.
 */
import type pg from 'pg';
import type { ValueKind } from '../../src/core/change-event.ts';

export interface PgTypeInfo {
  kind: ValueKind;
  /** For arrays: the element's kind. */
  elementKind?: ValueKind;
}

/** Built-in scalar types: OID -> [name, kind]. */
export const BUILTIN_TYPES: ReadonlyMap<number, readonly [string, ValueKind]> = new Map<
  number,
  readonly [string, ValueKind]
>([
  [16, ['boolean', 'bool']],
  [17, ['bytea', 'bytes']],
  [18, ['"char"', 'text']],
  [19, ['name', 'text']],
  [20, ['bigint', 'int']],
  [21, ['smallint', 'int']],
  [23, ['integer', 'int']],
  [24, ['regproc', 'other']],
  [25, ['text', 'text']],
  [26, ['oid', 'int']],
  [27, ['tid', 'other']],
  [28, ['xid', 'int']],
  [29, ['cid', 'int']],
  [114, ['json', 'json']],
  [142, ['xml', 'text']],
  [600, ['point', 'geometry']],
  [601, ['lseg', 'geometry']],
  [602, ['path', 'geometry']],
  [603, ['box', 'geometry']],
  [604, ['polygon', 'geometry']],
  [628, ['line', 'geometry']],
  [650, ['cidr', 'other']],
  [700, ['real', 'float']],
  [701, ['double precision', 'float']],
  [718, ['circle', 'geometry']],
  [774, ['macaddr8', 'other']],
  [790, ['money', 'other']],
  [829, ['macaddr', 'other']],
  [869, ['inet', 'other']],
  [1042, ['character', 'text']],
  [1043, ['character varying', 'text']],
  [1082, ['date', 'date']],
  [1083, ['time without time zone', 'time']],
  [1114, ['timestamp without time zone', 'timestamp']],
  [1184, ['timestamp with time zone', 'timestamptz']],
  [1186, ['interval', 'interval']],
  [1266, ['time with time zone', 'timetz']],
  [1560, ['bit', 'bits']],
  [1562, ['bit varying', 'bits']],
  [1700, ['numeric', 'decimal']],
  [1790, ['refcursor', 'text']],
  [2205, ['regclass', 'other']],
  [2950, ['uuid', 'uuid']],
  [3220, ['pg_lsn', 'other']],
  [3614, ['tsvector', 'other']],
  [3615, ['tsquery', 'other']],
  [3802, ['jsonb', 'json']],
  [4072, ['jsonpath', 'other']],
  [5069, ['xid8', 'int']],
  // ranges and multiranges: their text form, marked by the column's type
  [3904, ['int4range', 'other']],
  [3906, ['numrange', 'other']],
  [3908, ['tsrange', 'other']],
  [3910, ['tstzrange', 'other']],
  [3912, ['daterange', 'other']],
  [3926, ['int8range', 'other']],
  [4451, ['int4multirange', 'other']],
  [4532, ['nummultirange', 'other']],
  [4533, ['tsmultirange', 'other']],
  [4534, ['tstzmultirange', 'other']],
  [4535, ['datemultirange', 'other']],
  [4536, ['int8multirange', 'other']],
]);

/** Built-in array types: array OID -> element OID. */
export const BUILTIN_ARRAYS: ReadonlyMap<number, number> = new Map<number, number>([
  [1000, 16],
  [1001, 17],
  [1002, 18],
  [1003, 19],
  [1016, 20],
  [1005, 21],
  [1007, 23],
  [1009, 25],
  [1028, 26],
  [199, 114],
  [143, 142],
  [1017, 600],
  [1018, 601],
  [1019, 602],
  [1020, 603],
  [1027, 604],
  [629, 628],
  [651, 650],
  [1021, 700],
  [1022, 701],
  [719, 718],
  [775, 774],
  [791, 790],
  [1040, 829],
  [1041, 869],
  [1014, 1042],
  [1015, 1043],
  [1182, 1082],
  [1183, 1083],
  [1115, 1114],
  [1185, 1184],
  [1187, 1186],
  [1270, 1266],
  [1561, 1560],
  [1563, 1562],
  [1231, 1700],
  [2951, 2950],
  [3221, 3220],
  [3643, 3614],
  [3645, 3615],
  [3807, 3802],
  [4073, 4072],
  [3905, 3904],
  [3907, 3906],
  [3909, 3908],
  [3911, 3910],
  [3913, 3912],
  [3927, 3926],
]);

/** The kind of a built-in type, or undefined when the OID needs a catalog lookup. */
export function builtinTypeInfo(oid: number): PgTypeInfo | undefined {
  const scalar = BUILTIN_TYPES.get(oid);
  if (scalar) return { kind: scalar[1] };
  const element = BUILTIN_ARRAYS.get(oid);
  if (element !== undefined) return { kind: 'array', elementKind: BUILTIN_TYPES.get(element)?.[1] ?? 'other' };
  return undefined;
}

interface PgTypeRow {
  oid: number;
  typtype: string;
  typcategory: string;
  typelem: number;
  typbasetype: number;
}

/**
 * Resolves type OIDs to kinds: built-ins from the tables above, others from pg_type (cached). Enums are `enum`,
 * domains take their base type's kind, arrays are `array` with the element's kind, string-category extension types
 * (citext...) are `text`, everything else (ranges, composites, extension types) is `other`.
 */
export class TypeResolver {
  private readonly cache = new Map<number, PgTypeInfo>();

  async resolve(client: pg.Client, oids: Iterable<number>): Promise<Map<number, PgTypeInfo>> {
    const result = new Map<number, PgTypeInfo>();
    for (const oid of oids) result.set(oid, await this.resolveOne(client, oid, 0));
    return result;
  }

  private async resolveOne(client: pg.Client, oid: number, depth: number): Promise<PgTypeInfo> {
    const cached = this.cache.get(oid) ?? builtinTypeInfo(oid);
    if (cached) return cached;
    let info: PgTypeInfo = { kind: 'other' };
    const rows = (
      await client.query<PgTypeRow>(
        'select oid::int as oid, typtype::text as typtype, typcategory::text as typcategory, typelem::int as typelem, typbasetype::int as typbasetype from pg_type where oid = $1',
        [oid],
      )
    ).rows;
    const raw = rows[0];
    // Numbers arrive as text on connections that do not parse values.
    const row = raw && {
      ...raw,
      typelem: Number(raw.typelem),
      typbasetype: Number(raw.typbasetype),
    };
    if (row && depth < 8) {
      if (row.typtype === 'e') info = { kind: 'enum' };
      else if (row.typtype === 'd') info = await this.resolveOne(client, row.typbasetype, depth + 1);
      else if (row.typcategory === 'A' && row.typelem !== 0) {
        const element = await this.resolveOne(client, row.typelem, depth + 1);
        info = { kind: 'array', elementKind: element.kind === 'array' ? element.elementKind : element.kind };
      } else if (row.typtype === 'b' && row.typcategory === 'S') info = { kind: 'text' };
    }
    this.cache.set(oid, info);
    return info;
  }
}
