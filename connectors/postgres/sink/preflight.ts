/**
 * `validate` checks of a PostgreSQL target: the database answers and the user may create tables; and, when the source
 * is PostgreSQL, that every user-defined type the source tables need exists at the target (the fix: the statements
 * that create them), and that a target table created beforehand is keyed by the columns the changes are keyed by.
 */
import pg from 'pg';
import type { SourceConfig } from '../../../src/config/schema.ts';
import type { PreflightProblem } from '../../../src/core/connector-context.ts';
import { postgresConnectionTarget, postgresTlsFailure } from '../connection-tls.ts';
import { quoteIdent } from '../identifiers.ts';
import { catalogKey, connect, listTables } from '../source/catalog.ts';
import type { PostgresSourceConfig } from '../source/config.ts';
import { userTypesOfTables } from '../source/user-types.ts';
import { type PostgresTargetConfig, targetTableName } from './config.ts';

export async function preflightPostgresTarget(
  config: PostgresTargetConfig,
  _ctx: unknown,
  source?: SourceConfig,
): Promise<PreflightProblem[]> {
  let client: pg.Client;
  try {
    client = new pg.Client({
      ...postgresConnectionTarget(config.url),
      connectionTimeoutMillis: config.connect_timeout_ms,
    });
    await client.connect();
  } catch (err) {
    const tls = postgresTlsFailure(err, 'the target PostgreSQL server');
    if (tls) return [{ message: tls.message, hint: tls.hint ?? '' }];
    return [
      {
        message: `cannot connect to the target database: ${(err as Error).message}`,
        hint: 'Check target.url (host, port, database, user, password) and that the server accepts connections.',
      },
    ];
  }
  try {
    const problems: PreflightProblem[] = [];
    const { rows } = await client.query<{ can_create: boolean }>(
      `select has_database_privilege(current_database(), 'CREATE') as can_create`,
    );
    if (!rows[0]?.can_create && config.create_tables) {
      problems.push({
        message: 'the target user may not create schemas in the target database',
        hint: 'GRANT CREATE ON DATABASE <db> TO <user>; or create the schemas and tables yourself and set create_tables: false.',
      });
    }
    if (source?.type === 'postgres') problems.push(...(await checkAgainstSource(client, config, source)));
    return problems;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Problems only the source's tables reveal. A source that cannot be read is the source check's to report. */
async function checkAgainstSource(
  target: pg.Client,
  config: PostgresTargetConfig,
  sourceConfig: PostgresSourceConfig,
): Promise<PreflightProblem[]> {
  let source: pg.Client;
  try {
    source = await connect(sourceConfig);
  } catch {
    return [];
  }
  try {
    return [
      ...(await missingTypes(source, target, sourceConfig)),
      ...(await keyMismatches(source, target, config, sourceConfig)),
    ];
  } finally {
    await source.end().catch(() => undefined);
  }
}

async function missingTypes(
  source: pg.Client,
  target: pg.Client,
  sourceConfig: PostgresSourceConfig,
): Promise<PreflightProblem[]> {
  const types = await userTypesOfTables(source, sourceConfig);
  if (types.length === 0) return [];
  const found = await target.query<{ name: string; exists: boolean }>(
    'select n as name, to_regtype(n) is not null as exists from unnest($1::text[]) as n',
    [types.map((t) => t.name)],
  );
  const exists = new Set(found.rows.filter((r) => r.exists).map((r) => r.name));
  const missing = types.filter((t) => !exists.has(t.name));
  if (missing.length === 0) return [];
  const shown = (cols: string[]) =>
    cols.length > 3 ? `${cols.slice(0, 3).join(', ')} and ${cols.length - 3} more` : cols.join(', ');
  return [
    {
      message: `type${missing.length === 1 ? '' : 's'} ${missing.map((t) => `${t.name} (used by ${shown(t.usedBy)})`).join(', ')} do${missing.length === 1 ? 'es' : ''} not exist in the target database`,
      hint: `Create ${missing.length === 1 ? 'it' : 'them'} in the target database (as at the source; functions a domain check calls must exist there too):\n${missing.map((t) => t.create).join('\n')}`,
    },
  ];
}

async function keyMismatches(
  source: pg.Client,
  target: pg.Client,
  config: PostgresTargetConfig,
  sourceConfig: PostgresSourceConfig,
): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  const { tables } = await listTables(source, sourceConfig);
  for (const t of tables) {
    const name = targetTableName(config, t.table);
    const qname = `${quoteIdent(name.schema)}.${quoteIdent(name.name)}`;
    const have = await target.query<{ name: string }>(
      `select a.attname as name
         from pg_index i cross join lateral unnest(i.indkey) with ordinality k(attnum, ord)
         join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
        where i.indrelid = to_regclass($1) and i.indisprimary and k.ord <= i.indnkeyatts order by k.ord`,
      [qname],
    );
    const exists = (await target.query('select to_regclass($1) is not null as e', [qname])).rows[0]?.e === true;
    if (!exists) continue;
    const want = t.replicaIdentity === 'n' ? [] : await catalogKey(source, t.oid, t.replicaIdentity);
    const targetKey = have.rows.map((r) => r.name);
    const same = want.length === targetKey.length && want.every((k) => targetKey.includes(k));
    if (same || want.length === 0) continue;
    const byIndex = t.replicaIdentity === 'i' ? ' (its REPLICA IDENTITY USING INDEX, which the changes carry)' : '';
    problems.push({
      message: `table ${t.table.schema}.${t.table.name}: changes are keyed by (${want.join(', ')})${byIndex}, but the target table ${name.schema}.${name.name} has ${targetKey.length > 0 ? `primary key (${targetKey.join(', ')})` : 'no primary key'}`,
      hint: `Give the target table primary key (${want.map(quoteIdent).join(', ')}), or drop it so the pipeline creates it${t.replicaIdentity === 'i' ? ', or make the source replica identity the primary key (ALTER TABLE ... REPLICA IDENTITY DEFAULT)' : ''}.`,
    });
  }
  return problems;
}
