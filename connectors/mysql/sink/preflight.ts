import mysql from 'mysql2/promise';
import type { ConnectorContext, PreflightProblem } from '../../../src/core/connector-context.ts';
import { TributaryError } from '../../../src/errors.ts';
import { redactUrl } from '../../../src/observability/logger.ts';
import { connectionOptions, parseMysqlUrl } from '../connection.ts';
import { mysqlTlsFailure } from '../connection-tls.ts';
import { checkpointTableOf } from './checkpoint-location.ts';
import type { MysqlTargetConfig } from './config.ts';

/** Privileges the target needs on every database it writes (DROP: TRUNCATE needs it). */
export function requiredPrivileges(config: MysqlTargetConfig): string[] {
  const privs = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'DROP'];
  if (config.create_tables) privs.push('CREATE');
  if (config.alter_tables) privs.push('ALTER');
  return privs;
}

export interface Grant {
  privileges: Set<string>;
  /** `*` for every database, else a database name or LIKE pattern. */
  database: string;
  /** `*` for every table of the database. */
  table: string;
}

function unquote(s: string): string {
  const t = s.trim();
  if (t.startsWith('`') && t.endsWith('`')) return t.slice(1, -1).replace(/``/g, '`');
  return t;
}

/** Parses `SHOW GRANTS` lines (`GRANT SELECT, INSERT ON `db`.* TO ...`); role grants are ignored. */
export function parseGrants(lines: string[]): Grant[] {
  const grants: Grant[] = [];
  for (const line of lines) {
    const m =
      /^GRANT (.+?) ON (?:TABLE |FUNCTION |PROCEDURE )?((?:`(?:[^`]|``)*`|\*|[^.\s]+))\.((?:`(?:[^`]|``)*`|\*|\S+)) TO /i.exec(
        line,
      );
    if (!m) continue;
    const privileges = new Set<string>();
    for (const p of m[1]!.replace(/\([^)]*\)/g, '').split(',')) {
      const name = p.trim().toUpperCase();
      if (name === 'ALL' || name === 'ALL PRIVILEGES') {
        for (const a of ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'DROP', 'CREATE', 'ALTER']) privileges.add(a);
      } else privileges.add(name);
    }
    grants.push({ privileges, database: unquote(m[2]!), table: unquote(m[3]!) });
  }
  return grants;
}

function likeMatches(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  const re = pattern.replace(/\\([_%])|([_%])|([^_%\\]+)/g, (_all, escaped, wild, text) => {
    if (escaped) return escaped;
    if (wild) return wild === '%' ? '.*' : '.';
    return (text as string).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${re}$`).test(name);
}

/** Privileges from `required` that the grants lack on every table of `database`. */
export function missingPrivileges(grants: Grant[], database: string, required: string[]): string[] {
  const have = new Set<string>();
  for (const g of grants) {
    if (g.table !== '*') continue;
    if (g.database === '*' || likeMatches(g.database, database)) for (const p of g.privileges) have.add(p);
  }
  return required.filter((p) => !have.has(p));
}

/** Connectivity and privileges, each problem with what to run to fix it. */
export async function preflightMysqlTarget(
  config: MysqlTargetConfig,
  _ctx: ConnectorContext,
): Promise<PreflightProblem[]> {
  let conn: mysql.Connection;
  try {
    conn = await mysql.createConnection(connectionOptions(parseMysqlUrl(config.url), config.connect_timeout_ms));
  } catch (err) {
    const known = err instanceof TributaryError ? err : mysqlTlsFailure(err, 'the MySQL target');
    if (known) return [{ message: known.message, hint: known.hint ?? '' }];
    return [
      {
        message: `MySQL target: cannot connect to ${redactUrl(config.url)}: ${(err as Error).message}`,
        hint: 'Check that the server runs and that the url (host, port, user, password) is right.',
      },
    ];
  }
  try {
    const problems: PreflightProblem[] = [];
    const [rows] = await conn.query('SHOW GRANTS');
    const grants = parseGrants((rows as Record<string, string>[]).map((r) => String(Object.values(r)[0])));
    const [who] = await conn.query('SELECT CURRENT_USER() AS u');
    const user = String((who as { u: string }[])[0]?.u ?? 'user@host').replace(/^(.*)@(.*)$/, "'$1'@'$2'");
    const required = requiredPrivileges(config);
    const databases = new Map<string, string[]>();
    const checkpointDb = checkpointTableOf(config).slice(0, checkpointTableOf(config).indexOf('.'));
    databases.set(checkpointDb, ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE']);
    if (config.database) databases.set(config.database, required);
    for (const t of Object.values(config.tables ?? {})) databases.set(t.slice(0, t.indexOf('.')), required);
    for (const [db, privs] of databases) {
      const missing = missingPrivileges(grants, db, privs);
      if (missing.length > 0) {
        problems.push({
          message: `MySQL target: the user lacks ${missing.join(', ')} on database ${db}`,
          hint: `Run on the target: GRANT ${privs.join(', ')} ON \`${db}\`.* TO ${user};`,
        });
      }
    }
    if (!config.database) {
      // Tables go to databases named after the source schemas.
      // Only global privileges are known to cover them; a database-level grant with every privilege may be meant
      // for the source schemas, so only its complete absence is reported.
      const missing = missingPrivileges(grants, '\u0000any', required);
      const someDatabase = grants.some((g) => g.table === '*' && required.every((p) => g.privileges.has(p)));
      if (missing.length > 0 && !someDatabase) {
        problems.push({
          message: `MySQL target: without \`database\`, tables go to databases named after the source schemas, but the user lacks ${missing.join(', ')} on all databases`,
          hint: `Run on the target: GRANT ${required.join(', ')} ON *.* TO ${user}; or set \`database\` (or \`tables\`) and grant on those databases.`,
        });
      }
    }
    return problems;
  } catch (err) {
    return [
      {
        message: `MySQL target: checking privileges failed: ${(err as Error).message}`,
        hint: 'Check that the user may run SHOW GRANTS for itself.',
      },
    ];
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}
