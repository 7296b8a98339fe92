/**
 * The user-defined types the replicated tables need (domains, enums, composite and range types, extension types,
 * and the types those are built on), with the statement that creates each: a PostgreSQL target must have them before
 * it can hold the rows, and `validate` prints these statements as the fix.
 */
import type pg from 'pg';
import { listTables } from './catalog.ts';
import type { PostgresSourceConfig } from './config.ts';

export interface UserType {
  /** Schema-qualified, quoted as needed (`public.posint`). */
  name: string;
  /** `schema.table.column` of the replicated columns that use it (directly or inside another type). */
  usedBy: string[];
  /** SQL that creates it at the target. */
  create: string;
}

/** Every type a column needs, recursively (element, base, subtype and attribute types), deepest first. */
const NEEDED_SQL = `
with recursive needed(oid, depth, used_by) as (
  select a.atttypid, 0, quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(a.attname)
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
   where a.attrelid = any($1::oid[]) and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
  union all
  select d.oid, x.depth + 1, x.used_by
    from needed x join pg_type t on t.oid = x.oid
    cross join lateral (
      select nullif(t.typelem, 0) as oid
      union all select nullif(t.typbasetype, 0)
      union all select r.rngsubtype from pg_range r where r.rngtypid = t.oid
      union all select a.atttypid from pg_attribute a
                 where t.typtype = 'c' and a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped
    ) d
   where d.oid is not null and x.depth < 16
)
select quote_ident(n.nspname) || '.' || quote_ident(t.typname) as name, t.typtype::text as kind,
       max(x.depth) as depth, array_agg(distinct x.used_by) as used_by,
       (select e.extname from pg_depend dep join pg_extension e on e.oid = dep.refobjid
         where dep.classid = 'pg_type'::regclass and dep.objid = t.oid and dep.deptype = 'e') as extension,
       case t.typtype
         when 'e' then (select string_agg(quote_literal(e.enumlabel), ', ' order by e.enumsortorder)
                          from pg_enum e where e.enumtypid = t.oid)
         when 'd' then format_type(t.typbasetype, t.typtypmod)
                       || case when t.typnotnull then ' not null' else '' end
                       || coalesce(' default ' || t.typdefault, '')
                       || coalesce((select string_agg(' constraint ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid), '' order by k.conname)
                                      from pg_constraint k where k.contypid = t.oid and k.contype = 'c'), '')
         when 'c' then (select string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' order by a.attnum)
                          from pg_attribute a where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped)
         when 'r' then (select 'subtype = ' || format_type(r.rngsubtype, null)
                               || case when r.rngsubdiff <> 0 then ', subtype_diff = ' || r.rngsubdiff::regproc::text else '' end
                          from pg_range r where r.rngtypid = t.oid)
       end as body,
       (select c.relkind::text from pg_class c where c.oid = t.typrelid) as relkind
  from needed x join pg_type t on t.oid = x.oid join pg_namespace n on n.oid = t.typnamespace
 where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'
   and not exists (select 1 from pg_type a where a.typarray = t.oid)
 group by t.oid, n.nspname, t.typname, t.typtype
 order by max(x.depth) desc, 1`;

interface NeededRow {
  name: string;
  kind: string;
  used_by: string[];
  extension: string | null;
  body: string | null;
  relkind: string | null;
}

function createStatement(r: NeededRow): string {
  if (r.extension) return `create extension if not exists ${r.extension};`;
  switch (r.kind) {
    case 'e':
      return `create type ${r.name} as enum (${r.body ?? ''});`;
    case 'd':
      return `create domain ${r.name} as ${r.body};`;
    case 'c':
      return r.relkind === 'c'
        ? `create type ${r.name} as (${r.body ?? ''});`
        : `-- ${r.name} is the row type of a table: create that table (its definition at the source).`;
    case 'r':
      return `create type ${r.name} as range (${r.body});`;
    default:
      return `-- ${r.name}: copy its definition from the source (pg_dump --schema-only).`;
  }
}

/** The user-defined types the configured tables need, dependencies first. */
export async function userTypesOfTables(client: pg.Client, config: PostgresSourceConfig): Promise<UserType[]> {
  const { tables } = await listTables(client, config);
  if (tables.length === 0) return [];
  const rows = (await client.query<NeededRow>(NEEDED_SQL, [tables.map((t) => t.oid)])).rows;
  return rows.map((r) => ({ name: r.name, usedBy: [...r.used_by].sort(), create: createStatement(r) }));
}
