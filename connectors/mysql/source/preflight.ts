import type mysql from 'mysql2/promise';
import type { ConnectorContext, PreflightProblem } from '../../../src/core/connector-context.ts';
import { describeError } from '../../../src/errors.ts';
import { connect, parseMysqlUrl } from '../connection.ts';
import { detectFlavor, SYSTEM_DATABASES } from '../flavor.ts';
import type { MysqlSourceConfig } from './config.ts';
import { replicaServerId } from './server-id.ts';

/**
 * Checks that the server is set up for row-based change capture and that the user may read it. Every problem
 * comes with what to change: the my.cnf line or the GRANT statement.
 */
export async function preflightMysqlSource(
  config: MysqlSourceConfig,
  ctx: ConnectorContext,
): Promise<PreflightProblem[]> {
  const endpoint = parseMysqlUrl(config.url);
  let conn: Awaited<ReturnType<typeof connect>>;
  try {
    conn = await connect(endpoint, config.connect_timeout_ms);
  } catch (err) {
    return [
      {
        message: `cannot connect to the source: ${describeError(err).split('\n')[0]}`,
        hint:
          (err as { hint?: string }).hint ??
          'check the url (host, port, user, password) and that the server accepts TCP connections',
      },
    ];
  }
  const problems: PreflightProblem[] = [];
  try {
    const { flavor } = await detectFlavor(conn);
    const [varRows] = await conn.query(
      "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin','binlog_format','binlog_row_image'," +
        "'binlog_row_metadata','server_id','binlog_transaction_compression','binlog_row_value_options')",
    );
    const vars = Object.fromEntries(
      (varRows as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name.toLowerCase(), r.Value]),
    );
    const section = flavor === 'mariadb' ? '[mariadbd]' : '[mysqld]';
    if (vars.log_bin !== 'ON') {
      problems.push({
        message: 'the binary log is off (log_bin=OFF): changes cannot be captured',
        hint: `add to ${section} in my.cnf: log_bin = binlog, binlog_format = ROW, binlog_row_image = FULL, binlog_row_metadata = FULL, and a server_id; then restart the server`,
      });
    }
    if ((vars.binlog_format ?? '').toUpperCase() !== 'ROW') {
      problems.push({
        message: `binlog_format is ${vars.binlog_format ?? 'unknown'}, but row-based logging is needed`,
        hint: `set binlog_format = ROW in ${section} (or SET GLOBAL binlog_format = 'ROW' and reconnect the writers)`,
      });
    }
    if ((vars.binlog_row_image ?? '').toUpperCase() !== 'FULL') {
      problems.push({
        message: `binlog_row_image is ${vars.binlog_row_image ?? 'unknown'}: updates and deletes would miss columns`,
        hint: `set binlog_row_image = FULL in ${section} (or SET GLOBAL binlog_row_image = 'FULL')`,
      });
    }
    if (vars.binlog_row_metadata === undefined) {
      problems.push({
        message: 'the server has no binlog_row_metadata setting (MySQL before 8.0.1 or MariaDB before 10.5)',
        hint: 'upgrade to MySQL 8 or MariaDB 10.5+; without full metadata, rows written before an ALTER TABLE decode under the wrong column names',
      });
    } else if (vars.binlog_row_metadata.toUpperCase() !== 'FULL') {
      problems.push({
        message: `binlog_row_metadata is ${vars.binlog_row_metadata}: the binlog lacks column names, so rows could be decoded under the wrong names after ALTER TABLE`,
        hint: `set binlog_row_metadata = FULL in ${section} (or SET GLOBAL binlog_row_metadata = 'FULL')`,
      });
    }
    // MySQL settings whose events the binlog reader cannot decode: a transaction would be skipped, or a JSON column
    // would arrive as a diff instead of its value.
    if ((vars.binlog_transaction_compression ?? '').toUpperCase() === 'ON') {
      problems.push({
        message:
          'binlog_transaction_compression is ON: compressed transactions (TRANSACTION_PAYLOAD events) cannot be decoded',
        hint: `set binlog_transaction_compression = OFF in ${section} (or SET GLOBAL binlog_transaction_compression = OFF; sessions that set it themselves must stop doing so)`,
      });
    }
    if (/PARTIAL_JSON/i.test(vars.binlog_row_value_options ?? '')) {
      problems.push({
        message:
          'binlog_row_value_options is PARTIAL_JSON: updates of JSON columns are logged as diffs, which cannot be applied to the full value',
        hint: `remove binlog_row_value_options from ${section} (or SET GLOBAL binlog_row_value_options = ''; sessions that set it themselves must stop doing so)`,
      });
    }
    const ownId = Number(vars.server_id);
    const ourId = replicaServerId(config, ctx.pipeline);
    if (ownId === ourId) {
      problems.push({
        message: `server_id ${ourId} of the replicator equals the server's own server_id`,
        hint: 'set source.server_id to a number no other server or replica uses',
      });
    }

    const [grantRows] = await conn.query('SHOW GRANTS');
    const grants = (grantRows as Record<string, string>[]).map((r) => String(Object.values(r)[0]).toUpperCase());
    const global = grants.filter((g) => / ON \*\.\* TO /.test(g)).join(' ');
    const all = /ALL PRIVILEGES/.test(global);
    const missing: string[] = [];
    if (!all && !/REPLICATION (SLAVE|REPLICA)/.test(global)) missing.push('REPLICATION SLAVE');
    if (!all && !/REPLICATION CLIENT|BINLOG MONITOR|SUPER/.test(global)) missing.push('REPLICATION CLIENT');
    if (missing.length > 0) {
      problems.push({
        message: `the user ${endpoint.user} lacks ${missing.join(' and ')}`,
        hint: `GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '${endpoint.user}'@'%';`,
      });
    }
    if (flavor === 'mariadb') problems.push(...(await cascadingForeignKeys(conn, config)));
    for (const t of config.tables ?? []) {
      const [db, name] = t.split('.') as [string, string];
      try {
        await conn.query(`SELECT 1 FROM \`${db}\`.\`${name}\` LIMIT 0`);
      } catch (err) {
        problems.push({
          message: `cannot read ${t}: ${(err as Error).message}`,
          hint: `check the table exists, and GRANT SELECT ON \`${db}\`.* TO '${endpoint.user}'@'%';`,
        });
      }
    }
    for (const db of config.databases ?? []) {
      try {
        await conn.query(`SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? LIMIT 1`, [db]);
        const [r] = await conn.query('SHOW DATABASES LIKE ?', [db]);
        if ((r as unknown[]).length === 0) throw new Error('no such database (or no privilege on it)');
      } catch (err) {
        problems.push({
          message: `cannot read database ${db}: ${(err as Error).message}`,
          hint: `check the name, and GRANT SELECT ON \`${db}\`.* TO '${endpoint.user}'@'%';`,
        });
      }
    }
  } finally {
    await conn.end().catch(() => undefined);
  }
  return problems;
}

/** Whether a table is replicated under the source's `databases` / `tables` (every non-system database when neither). */
function replicated(config: MysqlSourceConfig, db: string, table: string): boolean {
  const { databases, tables } = config;
  if (!databases && !tables) return !SYSTEM_DATABASES.includes(db.toLowerCase());
  return (databases ?? []).includes(db) || (tables ?? []).includes(`${db}.${table}`);
}

/**
 * MariaDB does not write the rows that a foreign key's ON DELETE / ON UPDATE action (CASCADE, SET NULL, SET DEFAULT)
 * changes to the binlog: the replica would keep child rows the source deleted, or old key values. Such keys on
 * replicated tables are refused.
 */
async function cascadingForeignKeys(conn: mysql.Connection, config: MysqlSourceConfig): Promise<PreflightProblem[]> {
  const [rows] = await conn.query(
    'SELECT CONSTRAINT_SCHEMA AS db, TABLE_NAME AS child, REFERENCED_TABLE_NAME AS parent, CONSTRAINT_NAME AS name, ' +
      'DELETE_RULE AS onDelete, UPDATE_RULE AS onUpdate FROM information_schema.REFERENTIAL_CONSTRAINTS ' +
      "WHERE DELETE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT') OR UPDATE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT') " +
      'ORDER BY CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME',
  );
  const found = (
    rows as { db: string; child: string; parent: string; name: string; onDelete: string; onUpdate: string }[]
  ).filter((r) => replicated(config, r.db, r.child));
  if (found.length === 0) return [];
  const actions = (r: (typeof found)[number]) =>
    [
      /CASCADE|SET/.test(r.onDelete) ? `ON DELETE ${r.onDelete}` : '',
      /CASCADE|SET/.test(r.onUpdate) ? `ON UPDATE ${r.onUpdate}` : '',
    ]
      .filter(Boolean)
      .join(' ');
  const list = found.map((r) => `${r.db}.${r.child} (${r.name} ${actions(r)} from ${r.parent})`).join(', ');
  return [
    {
      message: `foreign keys with ON DELETE/ON UPDATE actions on replicated tables: ${list}. MariaDB does not write the rows such an action changes to the binlog, so the target would keep them unchanged`,
      hint:
        'make the application change the child rows itself and redefine the key without the action (e.g. ALTER TABLE ' +
        `${found[0]!.db}.${found[0]!.child} DROP FOREIGN KEY ${found[0]!.name}, ADD FOREIGN KEY ... ON DELETE RESTRICT ON UPDATE RESTRICT), ` +
        'or leave the child tables out of the source (list the others in tables:)',
    },
  ];
}
