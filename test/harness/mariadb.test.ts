import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MysqlServer } from './mariadb.ts';
import { mysqlFlavors } from './mysql-server.ts';

describe.each(mysqlFlavors())('$name harness', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start();
  });
  afterAll(async () => server?.stop());

  it('starts a server with a row-based binlog and full metadata', async () => {
    const rows = await server.query<{ Variable_name: string; Value: string }>(
      "show global variables where Variable_name in ('log_bin','binlog_format','binlog_row_image','binlog_row_metadata','server_id')",
    );
    const vars = Object.fromEntries(rows.map((r) => [r.Variable_name.toLowerCase(), r.Value]));
    expect(vars.log_bin).toBe('ON');
    expect(vars.binlog_format).toBe('ROW');
    expect(vars.binlog_row_image).toBe('FULL');
    if (server.flavor === 'mariadb' || vars.binlog_row_metadata) expect(vars.binlog_row_metadata).toBe('FULL');
    expect(['mariadb', 'mysql']).toContain(server.flavor);
    if (flavor.name !== 'external') expect(server.flavor).toBe(flavor.name);
    if (server.flavor === 'mysql') {
      const [gtid] = await server.query<{ m: string }>('select @@gtid_mode as m');
      expect(gtid!.m).toBe('ON');
    }
  });

  it('creates databases and runs queries with parameters', async () => {
    const url = await server.createDatabase('harness_check');
    expect(url).toContain('/harness_check');
    await server.query('create table t (id int primary key, v varchar(10))', [], 'harness_check');
    await server.query('insert into t values (?, ?)', [1, 'a'], 'harness_check');
    const rows = await server.query<{ v: string }>('select v from t where id = ?', [1], 'harness_check');
    expect(rows[0]!.v).toBe('a');
  });

  it.runIf(isThrowaway())('restarts and keeps data', async () => {
    await server.restart!();
    const rows = await server.query<{ v: string }>('select v from harness_check.t');
    expect(rows).toHaveLength(1);
  });
});

function isThrowaway(): boolean {
  return !process.env.TRIBUTARY_TEST_MYSQL_URL;
}
