import type { ConnectorContext } from '../../../src/core/connector-context.ts';
import type { MysqlSourceConfig } from './config.ts';

/**
 * What `tributary teardown` drops at a MySQL/MariaDB source: nothing. A binlog reader creates nothing at the server
 * (no slot holds the binlog for it; `binlog_expire_logs_seconds` decides how long it stays).
 */
export async function teardownMysqlSource(_config: MysqlSourceConfig, _ctx: ConnectorContext): Promise<string[]> {
  return [];
}
