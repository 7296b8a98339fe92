/**
 * Table rewrites the stream has not announced. pgoutput describes a table's shape only in the Relation message before
 * its next change, so an `ALTER COLUMN ... TYPE` (or a volatile `ADD COLUMN`) that rewrites every row, with no later
 * change of the table, would leave the target with the old values until some later write. The source therefore
 * compares the catalog with the schema history (file node first) at each start and every table_check_interval_ms;
 * when they differ it writes a message (`tributary.table.rewritten`) with the table as the catalog has it, under a
 * lock that keeps any other DDL of the table from committing between the read and the message. Where the stream
 * reaches the message the history knows the table's exact shape at that position: a column retyped or added with the
 * rewrite makes the table copied again by the incremental snapshot, as a Relation message would.
 */
import type pg from 'pg';
import { postgresErrorKind } from '../errors.ts';
import { quoteTable } from '../identifiers.ts';
import { fileNodeSql, type KnownTable, knownTableFromCatalog } from './schema-history.ts';

/** Prefix of the message that places a rewrite the stream has not announced; consumed by its source, never emitted. */
export const TABLE_REWRITTEN_PREFIX = 'tributary.table.rewritten';

/** What the message carries: the slot that wrote it and the table as the catalog had it at the message. */
export interface RewriteNote {
  slot: string;
  table: KnownTable;
  /**
   * The table's columns before (the history's, by its type OIDs) and at the message, with type names: what a
   * schema-change event of a table renamed since says (its next Relation message would have said it).
   */
  before?: { name: string; type: string }[];
  after?: { name: string; type: string; type_oid: number; nullable: boolean }[];
}

/**
 * Tables of the history whose file node differs now (a rewrite, TRUNCATE, VACUUM FULL or CLUSTER since the stream
 * position; for a partitioned table, of a leaf partition, or partitions attached or detached). One without any
 * partition ('0') is left out.
 */
export async function tablesWithNewFileNode(
  meta: pg.Client,
  known: readonly KnownTable[],
): Promise<{ table: KnownTable; filenode: string }[]> {
  if (known.length === 0) return [];
  const now = await meta.query<{ relid: number; filenode: string }>(
    `select c.oid::int as relid, ${fileNodeSql('c')} as filenode from pg_class c where c.oid = any($1::oid[])`,
    [known.map((t) => t.relid)],
  );
  const current = new Map(now.rows.map((r) => [r.relid, r.filenode]));
  return known.flatMap((t) => {
    const filenode = current.get(t.relid);
    const rewritten = filenode !== undefined && filenode !== '0' && t.filenode !== '' && filenode !== t.filenode;
    return rewritten ? [{ table: t, filenode }] : [];
  });
}

/**
 * Writes the rewrite message for one table on `client` (a connection of its own: the lock is held in a transaction),
 * under the table's name now (renamed since the history knew it: the message carries the new name). Returns the
 * file node announced, or null when the table is gone or locked by a DDL still running (the next check tries again).
 */
export async function announceRewrite(client: pg.Client, slot: string, t: KnownTable): Promise<string | null> {
  await client.query('begin');
  try {
    await client.query(`set local lock_timeout = '2s'`);
    const named = await client.query<{ schema: string; name: string }>(
      'select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = $1',
      [t.relid],
    );
    const ref = named.rows[0];
    if (!ref) {
      await client.query('rollback');
      return null;
    }
    // ACCESS SHARE conflicts with every ALTER TABLE, TRUNCATE and VACUUM FULL: none commits between read and message.
    await client.query(`lock table ${quoteTable(ref)} in access share mode`);
    const same = await client.query<{ ok: boolean }>('select to_regclass($1)::oid::int = $2 as ok', [
      quoteTable(ref),
      t.relid,
    ]);
    if (!same.rows[0]?.ok) {
      await client.query('rollback');
      return null;
    }
    const now = await knownTableFromCatalog(client, t.relid, { schema: ref.schema, name: ref.name });
    const note: RewriteNote = { slot, table: now };
    if (ref.schema !== t.schema || ref.name !== t.name) {
      const before = await client.query<{ type: string }>(
        'select format_type(o, m) as type from unnest($1::oid[], $2::int4[]) with ordinality u(o, m, i) order by i',
        [t.columns.map((c) => c.typeOid), t.columns.map((c) => c.typmod)],
      );
      note.before = t.columns.map((c, i) => ({ name: c.name, type: before.rows[i]?.type ?? String(c.typeOid) }));
      const after = await client.query<{ name: string; type: string; type_oid: number; nullable: boolean }>(
        `select attname as name, format_type(atttypid, atttypmod) as type, atttypid::int as type_oid,
                not attnotnull as nullable
           from pg_attribute where attrelid = $1 and attnum > 0 and not attisdropped and attgenerated = '' order by attnum`,
        [t.relid],
      );
      note.after = after.rows;
    }
    await client.query('select pg_logical_emit_message(true, $1, $2)', [TABLE_REWRITTEN_PREFIX, JSON.stringify(note)]);
    await client.query('commit');
    return now.filenode;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    // Renamed, dropped, or a DDL holding the table: looked at again at the next check.
    if (postgresErrorKind(err) === 'retryable' || isGoneOrLocked(err)) return null;
    throw err;
  }
}

function isGoneOrLocked(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === '42P01' || code === '55P03';
}

/** What a rewrite note means for the history's table, or null when the stream must decide it (see below). */
export interface RewriteOutcome {
  /** The history's table as of the message (under the name it has there). */
  table: KnownTable;
  /** The table's name in the history, when the table was renamed since. */
  renamedFrom?: { schema: string; name: string };
  /** Columns whose type changed, and columns added, since the history knew the table. */
  retyped: string[];
  added: string[];
}

/**
 * Compares the history's table with the note. Only a table whose known columns are all still there under their
 * names (same attribute numbers) is decided here, renamed since or not; a column renamed or dropped is left to the
 * table's next Relation message, which tells the targets how to follow it (a copy is still requested there).
 */
export function rewriteOutcome(known: KnownTable, note: KnownTable): RewriteOutcome | null {
  const renamed = known.schema !== note.schema || known.name !== note.name;
  const byAttnum = new Map(note.columns.map((c) => [c.attnum, c]));
  const retyped: string[] = [];
  for (const c of known.columns) {
    const now = byAttnum.get(c.attnum);
    if (!now || now.name !== c.name) return null;
    if (now.typeOid !== c.typeOid || now.typmod !== c.typmod) retyped.push(c.name);
  }
  const knownNames = new Set(known.columns.map((c) => c.name));
  const added = note.columns.filter((c) => c.attnum > known.natts).map((c) => c.name);
  if (added.some((name) => knownNames.has(name))) return null;
  // Columns between the known ones that the history never had (added and dropped again) do not matter.
  return {
    table: {
      ...known,
      schema: note.schema,
      name: note.name,
      filenode: note.filenode,
      natts: Math.max(known.natts, note.natts),
      columns: note.columns,
    },
    ...(renamed ? { renamedFrom: { schema: known.schema, name: known.name } } : {}),
    retyped,
    added,
  };
}
