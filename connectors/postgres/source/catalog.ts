/**
 * Connections and catalog queries of the PostgreSQL source: session settings, table discovery, table schemas,
 * preflight checks and publications. The `pg` driver is used here and in replication-stream.ts only.
 */

import pg from 'pg';
import { parseQualifiedName } from '../../../src/config/table-name.ts';
import type { ColumnInfo, TableRef, TableSchema } from '../../../src/core/change-event.ts';
import type { PreflightProblem } from '../../../src/core/connector-context.ts';
import { ConnectionError, SourceSetupError, TributaryError } from '../../../src/errors.ts';
import { postgresConnectionTarget, postgresTlsFailure } from '../connection-tls.ts';
import { quoteIdent, quoteTable } from '../identifiers.ts';
import type { TypeResolver } from '../type-names.ts';
import type { PostgresSourceConfig } from './config.ts';
import type { RawRelation } from './pgoutput-decoder.ts';

/** Session settings that make PostgreSQL's text output canonical (docs/value-forms.md). */
export const CANONICAL_SESSION_OPTIONS =
  '-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3';

/** Values exactly as the server sent them (no pg-types parsing). */
const rawTypes = { getTypeParser: () => (value: string) => value };

function sessionUrl(url: string): string {
  try {
    const u = new URL(url);
    const existing = u.searchParams.get('options');
    u.searchParams.set('options', existing ? `${existing} ${CANONICAL_SESSION_OPTIONS}` : CANONICAL_SESSION_OPTIONS);
    return u.toString();
  } catch {
    return url;
  }
}

function describeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return 'the configured server';
  }
}

/** Maps a connection failure to a TributaryError with a hint. */
export function connectFailure(url: string, err: unknown): TributaryError {
  if (err instanceof TributaryError) return err;
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  const where = describeTarget(url);
  const tls = postgresTlsFailure(err, `PostgreSQL at ${where}`);
  if (tls) return tls;
  if (code === '28P01' || code === '28000')
    return new SourceSetupError(
      `PostgreSQL at ${where} refused the login: ${message}`,
      'Check the user and password in source.url, and that pg_hba.conf allows this client (for replication connections too).',
      err,
    );
  if (code === '3D000')
    return new SourceSetupError(
      `PostgreSQL at ${where}: ${message}`,
      'Create the database or fix the database name in source.url.',
      err,
    );
  if (code === '53300')
    return new ConnectionError(
      `PostgreSQL at ${where} has no free connection slots: ${message}`,
      'Raise max_connections / max_wal_senders or stop other clients; the pipeline retries.',
      err,
    );
  return new ConnectionError(
    `cannot connect to PostgreSQL at ${where}: ${message}`,
    'Check that the server is running and reachable from here (host, port, firewall); the pipeline retries with backoff.',
    err,
  );
}

export async function connect(
  config: PostgresSourceConfig,
  options: { replication?: boolean; rawValues?: boolean } = {},
): Promise<pg.Client> {
  const client = new pg.Client({
    ...postgresConnectionTarget(sessionUrl(config.url)),
    connectionTimeoutMillis: config.connect_timeout_ms,
    application_name: 'tributary',
    ...(options.replication ? { replication: 'database' } : {}),
    ...(options.rawValues ? { types: rawTypes } : {}),
  } as pg.ClientConfig);
  // A connection error after connect() is reported through the pending query; without a listener it would crash.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw connectFailure(config.url, err);
  }
  return client;
}

export interface SourceTable {
  oid: number;
  table: TableRef;
  hasPrimaryKey: boolean;
  /** d, n, f, i */
  replicaIdentity: string;
  canSelect: boolean;
  isOwner: boolean;
  partitioned?: boolean;
}

/** A table with no usable replica identity: PostgreSQL cannot publish its updates and deletes. */
export function isKeyless(t: SourceTable): boolean {
  return t.replicaIdentity === 'n' || (t.replicaIdentity === 'd' && !t.hasPrimaryKey);
}

const TABLES_SQL = `
select c.oid::int as oid, n.nspname as schema, c.relname as name, c.relreplident::text as replident,
       exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary) as has_pk,
       has_table_privilege(c.oid, 'SELECT') as can_select, c.relkind = 'p' as partitioned,
       pg_has_role(c.relowner, 'USAGE') as is_owner
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p') and not c.relispartition
   and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'`;

interface TableRow {
  oid: number;
  schema: string;
  name: string;
  replident: string;
  has_pk: boolean;
  can_select: boolean;
  is_owner: boolean;
  partitioned: boolean;
}

function toSourceTable(r: TableRow): SourceTable {
  return {
    oid: r.oid,
    table: { schema: r.schema, name: r.name },
    hasPrimaryKey: r.has_pk,
    replicaIdentity: r.replident,
    canSelect: r.can_select,
    isOwner: r.is_owner,
    partitioned: r.partitioned,
  };
}

/**
 * The configured tables (missing ones listed separately), or every table the user can publish (owns, or all when
 * superuser) when `tables` is omitted.
 */
export async function listTables(
  client: pg.Client,
  config: PostgresSourceConfig,
): Promise<{ tables: SourceTable[]; missing: string[] }> {
  const rows = (await client.query<TableRow>(`${TABLES_SQL} order by 2, 3`)).rows;
  if (!config.tables) {
    // Tributary's own schema (checkpoint tables) is never replicated implicitly: that would feed back on itself.
    const mine = rows.filter((r) => r.is_owner && r.can_select && r.schema !== 'tributary');
    return { tables: mine.map(toSourceTable), missing: [] };
  }
  const byName = new Map(rows.map((r) => [JSON.stringify([r.schema, r.name]), r]));
  const tables: SourceTable[] = [];
  const missing: string[] = [];
  for (const name of config.tables) {
    const parsed = parseQualifiedName(name);
    const row = parsed && byName.get(JSON.stringify([parsed.schema, parsed.name]));
    if (row) tables.push(toSourceTable(row));
    else missing.push(name);
  }
  return { tables, missing };
}

export interface ReplicationNames {
  slot: string;
  publication: string;
  insertOnlyPublication: string;
}

interface ServerFacts {
  wal_level: string;
  max_slots: number;
  used_slots: number;
  max_senders: number;
  used_senders: number;
  is_super: boolean;
  can_replicate: boolean;
  user: string;
  slot_exists: boolean;
  slot_plugin: string | null;
  pubs: string[];
  /** Existing publications of ours that publish a partitioned table's changes under its partitions' names. */
  leaf_pubs: string[];
  can_create: boolean;
  db: string;
}

/** Every problem that stops replication, each with the fix. */
export async function checkServer(
  client: pg.Client,
  config: PostgresSourceConfig,
  names: ReplicationNames,
): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  const facts = (
    await client.query<ServerFacts>(
      `select current_setting('wal_level') as wal_level,
              current_setting('max_replication_slots')::int as max_slots,
              (select count(*)::int from pg_replication_slots) as used_slots,
              current_setting('max_wal_senders')::int as max_senders,
              (select count(*)::int from pg_stat_replication) as used_senders,
              r.rolsuper as is_super, r.rolreplication as can_replicate, r.rolname as "user",
              exists (select 1 from pg_replication_slots where slot_name = $1) as slot_exists,
              (select plugin::text from pg_replication_slots where slot_name = $1) as slot_plugin,
              array(select pubname::text from pg_publication where pubname in ($2, $3)) as pubs,
              array(select pubname::text from pg_publication where pubname in ($2, $3) and not pubviaroot) as leaf_pubs,
              has_database_privilege(current_database(), 'CREATE') as can_create, current_database() as db
         from pg_roles r where r.rolname = current_user`,
      [names.slot, names.publication, names.insertOnlyPublication],
    )
  ).rows[0]!;
  if (facts.wal_level !== 'logical')
    problems.push({
      message: `wal_level is '${facts.wal_level}'; logical decoding needs 'logical'`,
      hint: "Run ALTER SYSTEM SET wal_level = 'logical'; then restart PostgreSQL (a reload is not enough).",
    });
  if (!facts.is_super && !facts.can_replicate)
    problems.push({
      message: `user ${facts.user} has neither the REPLICATION attribute nor superuser`,
      hint: `Run ALTER ROLE ${quoteIdent(facts.user)} WITH REPLICATION; (as a superuser).`,
    });
  if (!facts.slot_exists && facts.used_slots >= facts.max_slots)
    problems.push({
      message: `no free replication slot (${facts.used_slots} of max_replication_slots = ${facts.max_slots} in use)`,
      hint: 'Drop unused slots (SELECT pg_drop_replication_slot(name)) or raise max_replication_slots and restart.',
    });
  if (facts.used_senders >= facts.max_senders)
    problems.push({
      message: `no free WAL sender (${facts.used_senders} of max_wal_senders = ${facts.max_senders} in use)`,
      hint: 'Raise max_wal_senders and restart PostgreSQL, or stop other replication clients.',
    });
  if (facts.slot_exists && facts.slot_plugin !== 'pgoutput')
    problems.push({
      message: `replication slot ${names.slot} exists with plugin ${facts.slot_plugin}, not pgoutput`,
      hint: 'Choose another slot_name, or drop that slot if nothing else uses it.',
    });

  const { tables, missing } = await listTables(client, config);
  for (const name of missing)
    problems.push({
      message: `table ${name} does not exist (or is not a table)`,
      hint: 'Create it or remove it from source.tables (names are schema.table, case-sensitive).',
    });
  if (!config.tables && tables.length === 0)
    problems.push({
      message: `user ${facts.user} owns no tables to publish`,
      hint: 'List the tables in source.tables, or connect as their owner.',
    });
  const pubExists = facts.pubs.includes(names.publication);
  if (!pubExists && !facts.can_create)
    problems.push({
      message: `user ${facts.user} may not create publication ${names.publication} (no CREATE privilege on database ${facts.db})`,
      hint: `Run GRANT CREATE ON DATABASE ${quoteIdent(facts.db)} TO ${quoteIdent(facts.user)}; or create the publication beforehand as the table owner (CREATE PUBLICATION ${names.publication} FOR TABLE ...).`,
    });
  for (const t of tables) {
    const name = `${t.table.schema}.${t.table.name}`;
    for (const pub of t.partitioned ? facts.leaf_pubs : [])
      problems.push({
        message: `publication ${pub} exists without publish_via_partition_root, so changes of the partitioned table ${name} would arrive under the names of its partitions`,
        hint: `Run ALTER PUBLICATION ${quoteIdent(pub)} SET (publish_via_partition_root = true); (or drop the publication to let the pipeline create it).`,
      });
    if (!t.canSelect)
      problems.push({
        message: `user ${facts.user} cannot SELECT from ${name}`,
        hint: `Run GRANT SELECT ON ${quoteTable(t.table)} TO ${quoteIdent(facts.user)};`,
      });
    if (!pubExists && !t.isOwner && !facts.is_super)
      problems.push({
        message: `user ${facts.user} does not own ${name}, so it cannot add it to publication ${names.publication}`,
        hint: `Create the publication as the owner or a superuser (CREATE PUBLICATION ${names.publication} FOR TABLE ...), or make ${facts.user} the owner.`,
      });
    if (isKeyless(t) && config.keyless_tables === 'refuse')
      problems.push({
        message: `table ${name} has no primary key and replica identity ${t.replicaIdentity === 'n' ? 'NOTHING' : 'DEFAULT'}: publishing its updates and deletes would make PostgreSQL reject the application's UPDATE and DELETE statements on it`,
        hint: `Add a primary key, or run ALTER TABLE ${quoteTable(t.table)} REPLICA IDENTITY FULL; or set keyless_tables: insert_only to replicate only its inserts and truncates.`,
      });
  }
  return problems;
}

/** Throws the problems as one SourceSetupError. */
export function throwProblems(problems: PreflightProblem[]): void {
  if (problems.length === 0) return;
  const message =
    problems.length === 1
      ? `PostgreSQL source is not ready: ${problems[0]!.message}`
      : `PostgreSQL source is not ready (${problems.length} problems): ${problems.map((p) => p.message).join('; ')}`;
  throw new SourceSetupError(message, problems.map((p) => p.hint).join('\n'));
}

/** Listings tried when a table listed is dropped before the publication takes it. */
const PUBLICATION_ATTEMPTS = 3;

/**
 * Creates the publications when missing; adds configured tables missing from an existing one. A table dropped between
 * the listing and `CREATE/ALTER PUBLICATION` fails that statement (undefined_table): the tables are listed again, and
 * the drop is followed where the stream reaches it (or refused at a start, as for any table dropped).
 */
export async function ensurePublications(
  client: pg.Client,
  config: PostgresSourceConfig,
  names: ReplicationNames,
  log: (event: string, fields: Record<string, unknown>) => void,
): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await ensurePublicationsOnce(client, config, names, log);
    } catch (err) {
      if ((err as { code?: unknown }).code !== '42P01' || attempt >= PUBLICATION_ATTEMPTS) throw err;
    }
  }
}

async function ensurePublicationsOnce(
  client: pg.Client,
  config: PostgresSourceConfig,
  names: ReplicationNames,
  log: (event: string, fields: Record<string, unknown>) => void,
): Promise<string[]> {
  const { tables } = await listTables(client, config);
  const keyed = tables.filter((t) => !isKeyless(t));
  const insertOnly = config.keyless_tables === 'insert_only' ? tables.filter(isKeyless) : [];
  const result: string[] = [];
  const plan: [string, SourceTable[], string][] = [
    [names.publication, keyed, 'insert, update, delete, truncate'],
    [names.insertOnlyPublication, insertOnly, 'insert, truncate'],
  ];
  for (const [pub, list, publish] of plan) {
    const existing = (
      await client.query<{ schema: string; name: string }>(
        'select schemaname as schema, tablename as name from pg_publication_tables where pubname = $1',
        [pub],
      )
    ).rows;
    const found = (
      await client.query<{ all: boolean }>('select puballtables as all from pg_publication where pubname = $1', [pub])
    ).rows[0];
    const exists = found !== undefined;
    if (found?.all) {
      // FOR ALL TABLES publishes every table already (tables cannot be added to it).
      result.push(pub);
      continue;
    }
    if (!exists) {
      if (list.length === 0) continue;
      // Changes of partitions appear under their partitioned table (PostgreSQL 13+).
      const partitionRoot = list.some((t) => t.partitioned) ? ', publish_via_partition_root = true' : '';
      await client.query(
        `create publication ${quoteIdent(pub)} for table ${list.map((t) => quoteTable(t.table)).join(', ')} with (publish = '${publish}'${partitionRoot})`,
      );
      log('publication_created', { publication: pub, tables: list.length, publish });
    } else {
      const have = new Set(existing.map((r) => `${r.schema}.${r.name}`));
      const add = list.filter((t) => !have.has(`${t.table.schema}.${t.table.name}`));
      if (add.length > 0) {
        await client.query(
          `alter publication ${quoteIdent(pub)} add table ${add.map((t) => quoteTable(t.table)).join(', ')}`,
        );
        log('publication_tables_added', {
          publication: pub,
          tables: add.map((t) => `${t.table.schema}.${t.table.name}`),
          note: 'their existing rows are copied while streaming (incremental snapshot) unless snapshot is never',
        });
      }
    }
    result.push(pub);
  }
  return result;
}

interface ColumnRow {
  name: string;
  type_oid: number;
  typmod: number;
  type: string;
  not_null: boolean;
  missing: string | null;
  volatile_default: boolean;
}

/**
 * Per column: the value rows that existed before the column was added read for it (PostgreSQL 11+ keeps a constant
 * `ADD COLUMN ... DEFAULT` in attmissingval, one element of the column's type, and writes nothing to the WAL for
 * those rows), and whether its default is volatile (or an identity) while no such value is kept: an `ADD COLUMN`
 * with such a default rewrote the table and gave existing rows values that never reach the WAL.
 * `default_without_missing`: any default but no kept value (volatile, or the value was dropped by a later table
 * rewrite, or the default was set after the column was added).
 * `array_to_string` prints the element with its type's output function (the canonical text, with the session
 * settings), without re-parsing an array literal (whose delimiter is `;` for box).
 */
const COLUMN_FACTS_SQL = `
  case when a.atthasmissing then array_to_string(a.attmissingval, '') end as missing,
  not a.atthasmissing and (a.attidentity <> '' or exists (
    select 1 from pg_attrdef d
     cross join lateral regexp_matches(d.adbin::text, ':(?:funcid|opfuncid) (\\d+)', 'g') f
      join pg_proc p on p.oid = f[1]::oid
     where d.adrelid = a.attrelid and d.adnum = a.attnum and p.provolatile = 'v')) as volatile_default,
  not a.atthasmissing and a.atthasdef and a.attgenerated = '' as default_without_missing`;

const isTrue = (v: unknown): boolean => v === true || v === 't';

/**
 * Key columns from the catalog, the same ones the stream flags: the replica identity index under REPLICA IDENTITY
 * USING INDEX (even when the table also has a primary key), else the primary key. INCLUDE columns of the index are
 * not part of the key.
 */
export async function catalogKey(client: pg.Client, relid: number, replicaIdentity: string): Promise<string[]> {
  const rows = (
    await client.query<{ name: string; primary: boolean }>(
      `select a.attname as name, i.indisprimary as primary
         from pg_index i
         cross join lateral unnest(i.indkey) with ordinality k(attnum, ord)
         join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
        where i.indrelid = $1 and k.ord <= i.indnkeyatts
          and (case when $2 = 'i' then i.indisreplident else i.indisprimary end)
        order by k.ord`,
      [relid, replicaIdentity],
    )
  ).rows;
  return rows.map((r) => r.name);
}

function beforeImageOf(replicaIdentity: string, keyCount: number): TableSchema['beforeImage'] {
  if (replicaIdentity === 'f') return 'full';
  if (replicaIdentity === 'n') return 'none';
  return keyCount > 0 ? 'key' : 'none';
}

/** Table schema from the catalog (snapshot), columns as pgoutput sends them (no generated columns). */
export async function tableSchemaFromCatalog(
  client: pg.Client,
  resolver: TypeResolver,
  t: SourceTable,
): Promise<TableSchema> {
  const cols = (
    await client.query<ColumnRow>(
      `select a.attname as name, a.atttypid::int as type_oid, a.atttypmod as typmod,
              format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null, ${COLUMN_FACTS_SQL}
         from pg_attribute a where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
        order by a.attnum`,
      [t.oid],
    )
  ).rows.map((c) => ({
    // The snapshot connection returns raw text: normalize.
    ...c,
    type_oid: Number(c.type_oid),
    typmod: Number(c.typmod),
    not_null: isTrue(c.not_null),
    volatile_default: isTrue(c.volatile_default),
  }));
  const keyColumns = t.replicaIdentity === 'n' ? [] : await catalogKey(client, t.oid, t.replicaIdentity);
  const types = await resolver.resolve(
    client,
    cols.map((c) => c.type_oid),
  );
  const columns: ColumnInfo[] = cols.map((c) => {
    const info = types.get(c.type_oid)!;
    return {
      name: c.name,
      type: c.type,
      kind: info.kind,
      typeOid: c.type_oid,
      ...(info.elementKind ? { elementKind: info.elementKind } : {}),
      nullable: !c.not_null,
      isKey: keyColumns.includes(c.name),
      ...(c.missing !== null ? { missingValue: c.missing } : {}),
    };
  });
  return { table: t.table, columns, keyColumns, beforeImage: beforeImageOf(t.replicaIdentity, keyColumns.length) };
}

/**
 * Table schema for a Relation message: types as the message says (format_type with its typmod), key columns from its
 * flags, except REPLICA IDENTITY FULL where every column is flagged and the catalog's primary key is the key.
 * Also the columns whose default is volatile without a kept missing value (see COLUMN_FACTS_SQL).
 * Note: the catalog is read as it is now, not as of the message's WAL position.
 */
export async function tableSchemaFromRelation(
  client: pg.Client,
  resolver: TypeResolver,
  raw: RawRelation,
  /** Attribute number of each message column (schema history): facts are looked up by identity, not by name. */
  attnums: number[],
): Promise<{ schema: TableSchema; volatileDefaults: string[]; lostDefaults: string[] }> {
  const oids = raw.columns.map((c) => c.typeOid);
  const typmods = raw.columns.map((c) => c.typmod);
  const [typeNames, facts, types] = await Promise.all([
    client.query<{ type: string }>(
      'select format_type(o, m) as type from unnest($1::oid[], $2::int4[]) with ordinality u(o, m, i) order by i',
      [oids, typmods],
    ),
    client.query<{
      attnum: number;
      not_null: boolean;
      missing: string | null;
      volatile_default: boolean;
      default_without_missing: boolean;
    }>(
      `select a.attnum::int as attnum, a.attnotnull as not_null, ${COLUMN_FACTS_SQL}
         from pg_attribute a where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped`,
      [raw.relid],
    ),
    resolver.resolve(client, oids),
  ]);
  const factsByAttnum = new Map(facts.rows.map((r) => [Number(r.attnum), r]));
  const factOf = (i: number) => factsByAttnum.get(attnums[i]!);
  const names = new Set(raw.columns.map((c) => c.name));
  let keyColumns: string[];
  if (raw.replicaIdentity === 'f')
    keyColumns = (await catalogKey(client, raw.relid, raw.replicaIdentity)).filter((k) => names.has(k));
  else keyColumns = raw.columns.filter((c) => c.isKey).map((c) => c.name);
  const columns: ColumnInfo[] = raw.columns.map((c, i) => {
    const info = types.get(c.typeOid)!;
    const fact = factOf(i);
    return {
      name: c.name,
      type: typeNames.rows[i]?.type ?? String(c.typeOid),
      kind: info.kind,
      typeOid: c.typeOid,
      ...(info.elementKind ? { elementKind: info.elementKind } : {}),
      nullable: !isTrue(fact?.not_null),
      isKey: keyColumns.includes(c.name),
      ...(fact?.missing != null ? { missingValue: fact.missing } : {}),
    };
  });
  return {
    schema: {
      table: { schema: raw.schema, name: raw.name },
      columns,
      keyColumns,
      beforeImage: beforeImageOf(raw.replicaIdentity, keyColumns.length),
    },
    volatileDefaults: raw.columns.filter((_, i) => isTrue(factOf(i)?.volatile_default)).map((c) => c.name),
    lostDefaults: raw.columns
      .filter((_, i) => {
        const f = factOf(i);
        return isTrue(f?.default_without_missing) && !isTrue(f?.volatile_default);
      })
      .map((c) => c.name),
  };
}
