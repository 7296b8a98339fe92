/**
 * Schema history of a PostgreSQL source: each published table's columns by identity (attribute number) at the
 * current position of the stream, saved with every checkpoint so a restart resumes with the shapes of that position.
 *
 * pgoutput's Relation messages carry names and types but no attribute numbers, and the catalog can only be read as it
 * is now, which may be far ahead of the stream. A Relation message is matched to attribute numbers with what cannot
 * change after the fact: columns are listed in attribute-number order, attribute numbers are never reused, a dropped
 * column stays dropped, and a catalog row whose xmin is older than the transaction carrying the message was already
 * as it is now when the message was written. If more than one reading fits (later DDL erased the evidence), the
 * stream stops instead of guessing.
 */
import type pg from 'pg';
import type { ColumnChange, TableRef } from '../../../src/core/change-event.ts';
import { SourceSetupError } from '../../../src/errors.ts';
import type { RawRelation } from './pgoutput-decoder.ts';

export interface KnownColumn {
  attnum: number;
  name: string;
  typeOid: number;
  typmod: number;
}

/** One table as of a stream position. */
export interface KnownTable {
  relid: number;
  schema: string;
  name: string;
  /** Highest attribute number known to exist at this position (dropped ones included). */
  natts: number;
  /** pg_class.relfilenode at this position: a different one later means the table's rows were rewritten. */
  filenode: string;
  /** Live columns in attribute-number order (generated columns are not streamed and not kept). */
  columns: KnownColumn[];
  /** Key columns and old-row image as last sent (to describe the table once it is dropped); absent in older states. */
  keyColumns?: string[];
  beforeImage?: 'key' | 'full' | 'none';
}

/** What a Relation message changed, by column identity. */
export interface ResolvedRelation {
  table: KnownTable;
  /** The previous name when the table was renamed. */
  renamedFrom?: TableRef;
  changes: ColumnChange[];
  /** Attribute number of each Relation message column, in message order. */
  attnums: number[];
  /** The table's rows were rewritten (ALTER COLUMN TYPE, a volatile default, VACUUM FULL, TRUNCATE) since known. */
  rewritten: boolean;
}

export interface CatalogAttribute {
  attnum: number;
  name: string;
  typeOid: number;
  typmod: number;
  dropped: boolean;
  /** Last changed by a transaction older than the one carrying the Relation message: as it was then. */
  settled: boolean;
}

export class SchemaHistory {
  private readonly tables = new Map<number, KnownTable>();
  private saved: KnownTable[] | null = null;

  static fromState(state: Record<string, unknown> | undefined): SchemaHistory {
    const history = new SchemaHistory();
    const tables = state?.schemaHistory;
    if (Array.isArray(tables)) for (const t of tables as KnownTable[]) history.tables.set(t.relid, t);
    return history;
  }

  get(relid: number): KnownTable | undefined {
    return this.tables.get(relid);
  }

  set(table: KnownTable): void {
    this.tables.set(table.relid, table);
    this.saved = null;
  }

  /** Forgets a table (dropped at the source, at the current stream position). */
  delete(relid: number): boolean {
    const had = this.tables.delete(relid);
    if (had) this.saved = null;
    return had;
  }

  get size(): number {
    return this.tables.size;
  }

  /** The value saved in a checkpoint's state; shared by checkpoints until the history changes. */
  toState(): KnownTable[] {
    this.saved ??= [...this.tables.values()];
    return this.saved;
  }
}

function tableText(raw: { schema: string; name: string }): string {
  return `${raw.schema}.${raw.name}`;
}

/**
 * SQL for the storage a table's rows live in (`c`: its pg_class row), as text: its file node; for a partitioned
 * table, which has none of its own, `relid:filenode` of each leaf partition ('0' without any; see
 * isPartitionedFileNode). A rewrite (ALTER COLUMN TYPE, a volatile default) changes it, so a partitioned table's
 * rewrite is seen like any other's; so do a partition's TRUNCATE, ATTACH and DETACH, which the WAL does not carry as
 * changes of the partitioned table.
 */
export function fileNodeSql(c: string): string {
  return `case when ${c}.relkind = 'p' then coalesce((select string_agg(l.oid::text || ':' || l.relfilenode::text, '.' order by l.oid)
    from pg_partition_tree(${c}.oid) t join pg_class l on l.oid = t.relid where t.isleaf and l.relkind = 'r'), '0')
    else ${c}.relfilenode::text end`;
}

/** Whether a history's file node is a partitioned table's (its leaf partitions', see fileNodeSql). */
export function isPartitionedFileNode(filenode: string): boolean {
  return filenode.includes(':');
}

/** Reads a table's columns (with attribute numbers) and file node inside the snapshot transaction. */
export async function knownTableFromCatalog(client: pg.Client, relid: number, table: TableRef): Promise<KnownTable> {
  const cls = await client.query<{ filenode: string; natts: string | null }>(
    `select ${fileNodeSql('c')} as filenode, (select max(attnum) from pg_attribute where attrelid = c.oid)::text as natts
       from pg_class c where c.oid = $1`,
    [relid],
  );
  const cols = await client.query<{ attnum: string; name: string; type_oid: string; typmod: string }>(
    `select attnum::text, attname as name, atttypid::int::text as type_oid, atttypmod::text as typmod
       from pg_attribute where attrelid = $1 and attnum > 0 and not attisdropped and attgenerated = '' order by attnum`,
    [relid],
  );
  return {
    relid,
    schema: table.schema,
    name: table.name,
    natts: Number(cls.rows[0]?.natts ?? 0),
    filenode: cls.rows[0]?.filenode ?? '',
    columns: cols.rows.map((c) => ({
      attnum: Number(c.attnum),
      name: c.name,
      typeOid: Number(c.type_oid),
      typmod: Number(c.typmod),
    })),
  };
}

/**
 * Matches a Relation message (sent in transaction `xid`) to attribute numbers, given the table as known before it,
 * and says what changed. Throws SourceSetupError when the catalog no longer tells which columns the message meant.
 */
export async function resolveRelation(
  client: pg.Client,
  known: KnownTable | undefined,
  raw: RawRelation,
  xid: string,
): Promise<ResolvedRelation> {
  const [attrs, cls] = await Promise.all([
    client.query<{
      attnum: number;
      name: string;
      type_oid: number;
      typmod: number;
      dropped: boolean;
      settled: boolean;
    }>(
      `select attnum::int, attname as name, atttypid::int as type_oid, atttypmod::int as typmod, attisdropped as dropped,
              age(xmin) > age($2::text::xid) as settled
         from pg_attribute where attrelid = $1 and attnum > 0 and (attisdropped or attgenerated = '') order by attnum`,
      [raw.relid, xid],
    ),
    client.query<{ filenode: string; settled: boolean }>(
      // Settled: neither the table's catalog row nor (partitioned) a leaf's changed after the transaction.
      `select ${fileNodeSql('c')} as filenode, age(c.xmin) > age($2::text::xid)
              and coalesce((select bool_and(age(l.xmin) > age($2::text::xid)) from pg_partition_tree(c.oid) t
                             join pg_class l on l.oid = t.relid where t.isleaf), true) as settled
         from pg_class c where c.oid = $1`,
      [raw.relid, xid],
    ),
  ]);
  const catalog = new Map<number, CatalogAttribute>(
    attrs.rows.map((r) => [
      r.attnum,
      { attnum: r.attnum, name: r.name, typeOid: r.type_oid, typmod: r.typmod, dropped: r.dropped, settled: r.settled },
    ]),
  );
  const base: KnownTable = known ?? {
    relid: raw.relid,
    schema: raw.schema,
    name: raw.name,
    natts: 0,
    filenode: '',
    columns: [],
  };
  const where = tableText(raw);
  // The table is gone from the catalog (dropped since): nothing can be read there. A message that repeats the known
  // shape column for column is taken as that shape; any other shape cannot be told and stops below.
  if (known && cls.rows.length === 0 && sameShape(known, raw)) {
    return { table: known, changes: [], attnums: known.columns.map((c) => c.attnum), rewritten: false };
  }
  const solutions = matchColumns(base, raw, catalog);
  if (solutions.length !== 1) {
    const why =
      solutions.length === 0
        ? 'no reading of the catalog fits it'
        : 'later changes to the table left more than one reading (for example a column dropped or renamed again since)';
    const streamed = raw.columns.map((c) => c.name).join(', ');
    const now = [...catalog.values()]
      .filter((a) => !a.dropped)
      .map((a) => a.name)
      .join(', ');
    throw new SourceSetupError(
      `table ${where}: cannot tell which columns the schema change in transaction ${xid} meant (the stream has the columns ${streamed}, the catalog now ${now}): the stream is behind the catalog and ${why}`,
      `The columns of ${where} cannot be matched by identity, so its rows are not applied by guess. Copy the table again: run tributary teardown for this pipeline and start it over (a fresh snapshot). Keeping the replicator running while tables change (or a schema change at a time) avoids this.`,
    );
  }
  const attnums = solutions[0]!;
  const byAttnum = new Map(base.columns.map((c) => [c.attnum, c]));
  const assigned = new Set(attnums);
  const changes: ColumnChange[] = [];
  for (const c of base.columns) if (!assigned.has(c.attnum)) changes.push({ kind: 'drop', column: c.name });
  let retyped = false;
  raw.columns.forEach((col, i) => {
    const before = byAttnum.get(attnums[i]!);
    if (!before) {
      if (known) changes.push({ kind: 'add', column: col.name });
      return;
    }
    if (before.name !== col.name) changes.push({ kind: 'rename', from: before.name, to: col.name });
    if (before.typeOid !== col.typeOid || before.typmod !== col.typmod) retyped = true;
  });
  const current = cls.rows[0];
  // A partitioned table without partitions has no storage (file node 0): every type change of it counts as one.
  const rewritten =
    known !== undefined && current !== undefined && (current.filenode !== known.filenode || current.filenode === '0');
  let natts = Math.max(base.natts, ...attnums);
  for (const a of catalog.values()) if (a.settled) natts = Math.max(natts, a.attnum);
  const table: KnownTable = {
    relid: raw.relid,
    schema: raw.schema,
    name: raw.name,
    natts,
    // Taken over only when it was already so at this point of the stream (a later rewrite must stay visible).
    filenode: current?.settled || !known ? (current?.filenode ?? '') : known.filenode,
    columns: raw.columns.map((c, i) => ({ attnum: attnums[i]!, name: c.name, typeOid: c.typeOid, typmod: c.typmod })),
  };
  const renamed = known && (known.schema !== raw.schema || known.name !== raw.name);
  return {
    table,
    ...(renamed ? { renamedFrom: { schema: known.schema, name: known.name } } : {}),
    changes,
    attnums,
    rewritten: rewritten && (retyped || changes.some((c) => c.kind === 'add')),
  };
}

function sameShape(known: KnownTable, raw: RawRelation): boolean {
  return (
    known.schema === raw.schema &&
    known.name === raw.name &&
    known.columns.length === raw.columns.length &&
    known.columns.every(
      (c, i) =>
        c.name === raw.columns[i]!.name && c.typeOid === raw.columns[i]!.typeOid && c.typmod === raw.columns[i]!.typmod,
    )
  );
}

/**
 * Every assignment of attribute numbers to the message's columns that the catalog allows (at most two are looked
 * for: one is the answer, two mean ambiguity).
 */
export function matchColumns(known: KnownTable, raw: RawRelation, catalog: Map<number, CatalogAttribute>): number[][] {
  const knownLive = new Map(known.columns.map((c) => [c.attnum, c]));
  const attnums = [...catalog.keys()].sort((a, b) => a - b);
  const solutions: number[][] = [];
  const chosen: number[] = [];

  const canTake = (a: number, i: number): boolean => {
    const at = catalog.get(a)!;
    const col = raw.columns[i]!;
    const wasLive = knownLive.has(a) || a > known.natts;
    if (!wasLive) return false;
    if (at.settled) {
      // Unchanged since before the message: it must read the same then as now.
      if (at.dropped) return false;
      if (at.name !== col.name || at.typeOid !== col.typeOid || at.typmod !== col.typmod) return false;
    }
    return true;
  };

  const complete = (): boolean => {
    const taken = new Set(chosen);
    const maxTaken = chosen.length > 0 ? chosen[chosen.length - 1]! : 0;
    for (const a of attnums) {
      if (taken.has(a)) continue;
      const at = catalog.get(a)!;
      // A column known live and missing from the message was dropped by then, so it is dropped now.
      if (knownLive.has(a) && !at.dropped) return false;
      // A dropped column's catalog row is never changed again: its xmin is the DROP. Dropped after the message, so
      // it was in it.
      if (knownLive.has(a) && at.dropped && !at.settled) return false;
      // A column live now that was already so before the message must be in it.
      if (at.settled && !at.dropped && (knownLive.has(a) || a > known.natts)) return false;
      // A column added after the message has a higher number than every column the message lists.
      if (a > known.natts && !at.dropped && a < maxTaken) return false;
    }
    return true;
  };

  // Bounded: a search this long means the evidence is too thin to choose; two "solutions" say so.
  let budget = 200_000;
  const search = (i: number, from: number): void => {
    if (solutions.length > 1) return;
    if (--budget < 0) {
      solutions.push([], []);
      return;
    }
    if (i === raw.columns.length) {
      if (complete()) solutions.push([...chosen]);
      return;
    }
    for (let k = from; k < attnums.length; k++) {
      if (attnums.length - k < raw.columns.length - i) return;
      const a = attnums[k]!;
      if (!canTake(a, i)) continue;
      chosen.push(a);
      search(i + 1, k + 1);
      chosen.pop();
      if (solutions.length > 1) return;
    }
  };
  search(0, 0);
  return solutions;
}
