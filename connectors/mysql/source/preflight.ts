import type { ConnectorContext, PreflightProblem } from '../../../src/core/connector-context.ts';
import { describeError } from '../../../src/errors.ts';
import { detectFlavor } from '../flavor.ts';
import type { MysqlSourceConfig } from './config.ts';
import { connect, parseMysqlUrl } from './connection.ts';
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
        "'binlog_row_metadata','server_id')",
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
