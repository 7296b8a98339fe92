import type { TableSchema } from '../../../src/core/change-event.ts';
import { SchemaMismatchError } from '../../../src/errors.ts';
import type { Logger } from '../../../src/observability/logger.ts';
import {
  type ColumnStep,
  checkTargetKey,
  type IdentityChanges,
  keysDiffer,
  planColumns,
  planIdentityChanges,
  tableRecreatedLog,
} from '../../sql/column-plan.ts';
import { quoteIdent } from '../identifiers.ts';
import { quoteLiteral } from '../literals.ts';
import type { Queryable } from './checkpoint-store.ts';
import { castTypeFor, holdsExactly, isSafeTypeName } from './column-types.ts';
import type { TargetColumn, TargetTable } from './statements.ts';

export interface SyncOptions {
  createTables: boolean;
  alterTables: boolean;
}

interface CatalogColumn {
  name: string;
  type: string;
  base: string;
  keyPos: number | null;
}

async function readCatalog(db: Queryable, qname: string): Promise<CatalogColumn[] | null> {
  const exists = await db.query('select to_regclass($1)::oid as oid', [qname]);
  if (exists.rows[0]?.oid == null) return null;
  const result = await db.query(
    `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, format_type(a.atttypid, null) as base,
            array_position(i.indkey::int2[], a.attnum) - array_lower(i.indkey::int2[], 1) as key_pos
     from pg_attribute a
     left join pg_index i on i.indrelid = a.attrelid and i.indisprimary
       -- INCLUDE columns of the primary key index are not part of the key
       and array_position(i.indkey::int2[], a.attnum) - array_lower(i.indkey::int2[], 1) < i.indnkeyatts
     where a.attrelid = to_regclass($1) and a.attnum > 0 and not a.attisdropped
     order by a.attnum`,
    [qname],
  );
  return result.rows.map((r) => ({ name: r.name, type: r.type, base: r.base, keyPos: r.key_pos }));
}

/**
 * The target's own spelling of each source type (format_type with and without modifiers), found by casting NULL
 * to it. Types that do not exist on the target (user enums, extension types) stop with a clear error.
 */
async function canonicalTypes(
  db: Queryable,
  schema: TableSchema,
  where: string,
): Promise<Map<string, { type: string; base: string }>> {
  const types = [...new Set(schema.columns.map((c) => c.type.trim()))];
  for (const t of types) {
    if (!isSafeTypeName(t)) {
      throw new SchemaMismatchError(
        `${where}: the source type name ${JSON.stringify(t)} is not one the target can use`,
        'Create the table on the target by hand and set create_tables: false.',
      );
    }
  }
  const found = await db.query('select t, to_regtype(t)::oid as oid from unnest($1::text[]) as t', [types]);
  const missing = found.rows.filter((r) => r.oid == null).map((r) => r.t as string);
  if (missing.length > 0) {
    const cols = schema.columns.filter((c) => missing.includes(c.type.trim()));
    const enumHint = cols.some((c) => c.kind === 'enum')
      ? ' For an enum, copy its definition from the source (CREATE TYPE name AS ENUM (...), with the labels of `\\dT+ name` at the source).'
      : '';
    throw new SchemaMismatchError(
      `${where}: type${missing.length === 1 ? '' : 's'} ${missing.join(', ')} (column${cols.length === 1 ? '' : 's'} ${cols.map((c) => c.name).join(', ')}) do not exist on the target database`,
      `Create the type${missing.length === 1 ? '' : 's'} on the target (same schema and name) before starting the pipeline.${enumHint}`,
    );
  }
  // A domain is named as it is (it takes no modifiers); the server would describe it by its base type. Other types
  // are described by a query that is planned but never run: casting NULL to a NOT NULL domain (or one whose check
  // calls a function) would fail.
  const kinds = await db.query(
    "select t, format_type(o, null) as name, typtype = 'd' as domain from unnest($1::text[]) with ordinality as u(t, n), to_regtype(t) as o join pg_type y on y.oid = o order by n",
    [types],
  );
  const map = new Map<string, { type: string; base: string }>();
  const probed: string[] = [];
  for (const r of kinds.rows as { t: string; name: string; domain: boolean }[]) {
    if (r.domain) map.set(r.t, { type: r.name, base: r.name });
    else probed.push(r.t);
  }
  if (probed.length === 0) return map;
  const probe = await db.query(`select ${probed.map((t, i) => `null::${t} as c${i}`).join(', ')} where false`);
  const named = await db.query(
    'select format_type(o, m) as type, format_type(o, null) as base from unnest($1::oid[], $2::int[]) with ordinality as u(o, m, n) order by n',
    [probe.fields.map((f) => f.dataTypeID), probe.fields.map((f) => f.dataTypeModifier)],
  );
  probed.forEach((t, i) => {
    map.set(t, named.rows[i] as { type: string; base: string });
  });
  return map;
}

/**
 * Follows a source table rename: the target table of the old name becomes the one of the new name (when the new one
 * does not exist yet; a replay finds it done).
 */
export async function followTableRename(
  db: Queryable,
  from: { schema: string; name: string },
  to: { schema: string; name: string },
  logger: Logger,
  sourceId: string,
): Promise<void> {
  const fromName = `${quoteIdent(from.schema)}.${quoteIdent(from.name)}`;
  const toName = `${quoteIdent(to.schema)}.${quoteIdent(to.name)}`;
  const found = await db.query('select to_regclass($1)::oid as old, to_regclass($2)::oid as new', [fromName, toName]);
  if (found.rows[0]?.old == null) return;
  if (found.rows[0]?.new != null) {
    // Left by a table of the new name dropped at the source (emptied, kept): it gives way. One with rows stops.
    const rows = await db.query(`select 1 from ${toName} limit 1`);
    if (rows.rows.length > 0)
      throw new SchemaMismatchError(
        `table ${sourceId}: the source renamed ${from.schema}.${from.name} to ${to.schema}.${to.name}, but the target has both tables and ${to.schema}.${to.name} holds rows`,
        `Drop the target table ${to.schema}.${to.name} (or rename it out of the way), then restart the pipeline.`,
      );
    await db.query(`drop table ${toName}`);
  }
  if (from.schema !== to.schema) {
    await db.query(`create schema if not exists ${quoteIdent(to.schema)}`);
    await db.query(`alter table ${fromName} set schema ${quoteIdent(to.schema)}`);
  }
  if (from.name !== to.name)
    await db.query(`alter table ${quoteIdent(to.schema)}.${quoteIdent(from.name)} rename to ${quoteIdent(to.name)}`);
  logger.info({ event: 'target_table_renamed', table: sourceId, from: `${from.schema}.${from.name}` });
}

/**
 * Makes the column renames and drops the source made (known by column identity): a renamed column keeps its values,
 * a dropped one goes (a column added again under its name is then added as new).
 */
async function renameAndDropColumns(db: Queryable, qname: string, plan: IdentityChanges) {
  const { drops, renames } = plan;
  const ddl: string[] = drops.map((c) => `alter table ${qname} drop column ${quoteIdent(c)}`);
  // Through temporary names, so renames that swap names do not collide.
  renames.forEach((r, i) => {
    ddl.push(`alter table ${qname} rename column ${quoteIdent(r.from)} to ${quoteIdent(`tributary_rename_${i}`)}`);
  });
  renames.forEach((r, i) => {
    ddl.push(`alter table ${qname} rename column ${quoteIdent(`tributary_rename_${i}`)} to ${quoteIdent(r.to)}`);
  });
  for (const statement of ddl) await db.query(statement);
}

/** The clause of ALTER TABLE that makes one planned column change. */
function alterClause(step: ColumnStep): string {
  const name = quoteIdent(step.column.name);
  const type = step.column.type.trim();
  switch (step.kind) {
    case 'drop':
      return `drop column ${name}`;
    case 'add':
      return step.existingRowsValue === null
        ? `add column ${name} ${type}`
        : `add column ${name} ${type} default ${quoteLiteral(step.existingRowsValue)}::${type}`;
    case 'widen':
      return `alter column ${name} type ${type} using ${name}::${type}`;
    case 'retype':
      // A key column keeps its values by a cast (the key must stay unique and not null until the copy empties the
      // table); any other column's old values are not converted.
      return `alter column ${name} type ${type} using ${step.keepValues ? name : 'null'}::${type}`;
  }
}

/** The target table's primary-key columns, in key order. */
function primaryKeyOf(catalog: CatalogColumn[]): string[] {
  return catalog
    .filter((c) => c.keyPos !== null)
    .sort((a, b) => a.keyPos! - b.keyPos!)
    .map((c) => c.name);
}

/**
 * Makes the target table able to hold rows of this source table definition: creates a missing schema and table,
 * adds new columns, widens columns the source widened. A change that would need data to be rewritten or guessed
 * (a column retyped incompatibly, a different primary key) throws SchemaMismatchError and changes nothing.
 */
export async function syncTable(
  db: Queryable,
  source: TableSchema,
  target: { schema: string; name: string },
  options: SyncOptions,
  logger: Logger,
  /** The target table of the source table's previous name, when the source renamed it. */
  renamedFrom?: { schema: string; name: string },
): Promise<TargetTable> {
  const sourceId = `${source.table.schema}.${source.table.name}`;
  const qname = `${quoteIdent(target.schema)}.${quoteIdent(target.name)}`;
  const where = `table ${sourceId} -> ${target.schema}.${target.name}`;
  const canon = await canonicalTypes(db, source, where);
  let keyColumns = [...source.keyColumns];
  let identity: TargetTable['identity'] =
    keyColumns.length > 0 ? 'key' : source.beforeImage === 'full' ? 'full' : 'none';
  if (renamedFrom) await followTableRename(db, renamedFrom, target, logger, sourceId);
  let catalog = await readCatalog(db, qname);
  // Renames and drops by identity first (a replay finds them done), so the columns below are compared by name.
  const identityChanges =
    catalog &&
    source.changes &&
    planIdentityChanges(
      where,
      source.changes,
      catalog.map((c) => c.name),
      { alterTables: options.alterTables, namesIgnoreCase: false },
    );
  if (identityChanges) {
    await renameAndDropColumns(db, qname, identityChanges);
    logger.info({
      event: 'target_columns_changed',
      table: where,
      dropped: identityChanges.drops,
      renamed: identityChanges.renames,
    });
    catalog = await readCatalog(db, qname);
  }

  if (catalog && options.alterTables) {
    const targetKeys = primaryKeyOf(catalog);
    const names = new Set(source.columns.map((c) => c.name));
    const keepsTargetKey = identity === 'full' && targetKeys.length > 0 && targetKeys.every((k) => names.has(k));
    if (!keepsTargetKey && keysDiffer(keyColumns, targetKeys)) {
      const empty = await db.query(`select not exists (select from ${qname}) as empty`);
      if (empty.rows[0]?.empty === true) {
        await db.query(`drop table ${qname}`);
        logger.warn(tableRecreatedLog(where, keyColumns, targetKeys));
        catalog = null;
      }
    }
  }
  if (!catalog) {
    if (!options.createTables) {
      throw new SchemaMismatchError(
        `${where}: the target table does not exist`,
        'Create it on the target, or set create_tables: true to let the pipeline create it.',
      );
    }
    const cols = source.columns.map((c) => `${quoteIdent(c.name)} ${c.type.trim()}`);
    if (source.keyColumns.length > 0) cols.push(`primary key (${source.keyColumns.map(quoteIdent).join(', ')})`);
    await db.query(`create schema if not exists ${quoteIdent(target.schema)}`);
    await db.query(`create table if not exists ${qname} (${cols.join(', ')})`);
    logger.info({ event: 'target_table_created', table: sourceId, target: `${target.schema}.${target.name}` });
    catalog = (await readCatalog(db, qname))!;
  } else {
    const targetKeys = primaryKeyOf(catalog);
    const names = new Set(source.columns.map((c) => c.name));
    if (identity === 'full' && targetKeys.length > 0 && targetKeys.every((k) => names.has(k))) {
      // Full old rows carry every column, so the target's key finds them: a REPLICA IDENTITY FULL table whose key
      // the source can no longer name (dropped before its changes were read) keeps the key it was created with.
      keyColumns = targetKeys;
      identity = 'key';
    }
    checkTargetKey(where, keyColumns, targetKeys);
    const steps = planColumns({
      where,
      columns: source.columns,
      wantedType: (i) => canon.get(source.columns[i]!.type.trim())!.type,
      existing: new Map(catalog.map((c) => [c.name, c])),
      fit: (col, _, have) => {
        const want = canon.get(col.type.trim())!;
        if (holdsExactly(want.type, have.type)) return { kind: 'holds' };
        const mismatch = `column ${col.name} is ${want.type} at the source but ${have.type} on the target`;
        return { kind: holdsExactly(have.type, want.type) ? 'widens' : 'differs', mismatch };
      },
      alterTables: options.alterTables,
    });
    const ddl = steps.map(alterClause);
    /** Added columns whose existing rows read a value at the source: given as a default, dropped right after. */
    const filled = steps.flatMap((s) => (s.kind === 'add' && s.existingRowsValue !== null ? [s.column.name] : []));
    if (ddl.length > 0) {
      await db.query(`alter table ${qname} ${ddl.join(', ')}`);
      // Replicated rows carry every column: the default only gave the existing rows their value and must not stay.
      if (filled.length > 0)
        await db.query(
          `alter table ${qname} ${filled.map((c) => `alter column ${quoteIdent(c)} drop default`).join(', ')}`,
        );
      logger.info({ event: 'target_table_altered', table: sourceId, changes: ddl });
      catalog = (await readCatalog(db, qname))!;
    }
  }

  const fk = await db.query(
    `select exists (select 1 from pg_constraint where contype = 'f'
       and (conrelid = to_regclass($1) or confrelid = to_regclass($1))) as fk`,
    [qname],
  );
  const columns = new Map<string, TargetColumn>();
  for (const c of catalog) columns.set(c.name, { name: c.name, type: c.type, cast: castTypeFor(c.base) });
  return {
    sourceId,
    schema: target.schema,
    name: target.name,
    qname,
    keyColumns,
    identity,
    columns,
    hasForeignKeys: fk.rows[0]?.fk === true,
  };
}
