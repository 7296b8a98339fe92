import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testContext } from '../../../test/fixtures/change-events.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { mysqlTargetConfig } from './config.ts';
import { target } from './index.ts';
import { missingPrivileges, parseGrants } from './preflight.ts';

describe('grant parsing (no server)', () => {
  it('reads global, database and pattern grants', () => {
    const grants = parseGrants([
      'GRANT USAGE ON *.* TO `t`@`%`',
      'GRANT SELECT, INSERT, UPDATE (a, b), DELETE ON `shop`.* TO `t`@`%`',
      'GRANT ALL PRIVILEGES ON `tributary`.* TO `t`@`%`',
      'GRANT CREATE, DROP ON `sh\\_%`.* TO `t`@`%`',
      'GRANT SELECT ON `other`.`one_table` TO `t`@`%`',
    ]);
    const need = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'DROP', 'CREATE'];
    expect(missingPrivileges(grants, 'tributary', need)).toEqual([]);
    expect(missingPrivileges(grants, 'shop', need)).toEqual(['DROP', 'CREATE']);
    expect(missingPrivileges(grants, 'sh_x', need)).toEqual(['SELECT', 'INSERT', 'UPDATE', 'DELETE']);
    expect(missingPrivileges(grants, 'other', ['SELECT'])).toEqual(['SELECT']);
  });
});

let server: MysqlServer;

describe.each(mysqlFlavors())('MySQL target preflight (MariaDB) ($name)', (flavor) => {
  beforeAll(async () => {
    server = await flavor.start();
  }, 120_000);
  afterAll(async () => server?.stop());

  it('reports an unreachable server and missing privileges with the GRANT that fixes them', async () => {
    const ctx = testContext('pre');
    const down = await target.preflight!(
      mysqlTargetConfig.parse({ type: 'mysql', url: 'mysql://root@127.0.0.1:1/', connect_timeout_ms: 1000 }),
      ctx,
    );
    expect(down).toHaveLength(1);
    expect(down[0]!.message).toMatch(/cannot connect/);

    const root = mysqlTargetConfig.parse({ type: 'mysql', url: server.url() });
    expect(await target.preflight!(root, ctx)).toEqual([]);

    await server.query("DROP USER IF EXISTS 'limited'@'%'");
    await server.query("CREATE USER 'limited'@'%' IDENTIFIED BY 'pw'");
    await server.query("GRANT SELECT, INSERT, UPDATE, DELETE ON `shop`.* TO 'limited'@'%'");
    await server.query("GRANT ALL ON `tributary`.* TO 'limited'@'%'");
    const url = `mysql://limited:pw@127.0.0.1:${server.port}/`;
    const problems = await target.preflight!(mysqlTargetConfig.parse({ type: 'mysql', url, database: 'shop' }), ctx);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toMatch(/lacks DROP, CREATE, ALTER on database shop/);
    expect(problems[0]!.hint).toMatch(
      /GRANT SELECT, INSERT, UPDATE, DELETE, DROP, CREATE, ALTER ON `shop`\.\* TO 'limited'@'%'/,
    );
    await server.query("GRANT DROP, CREATE, ALTER ON `shop`.* TO 'limited'@'%'");
    expect(await target.preflight!(mysqlTargetConfig.parse({ type: 'mysql', url, database: 'shop' }), ctx)).toEqual([]);
    // The checkpoint store for `status` reads what the target keeps.
    const store = target.checkpointStore!(mysqlTargetConfig.parse({ type: 'mysql', url }), ctx);
    await store.save({ pipeline: 'pre', phase: 'stream', position: { kind: 'postgres', lsn: '0/10' } });
    await store.save({ pipeline: 'pre', phase: 'stream', position: { kind: 'postgres', lsn: '0/8' } });
    expect(await store.load('pre')).toEqual({
      pipeline: 'pre',
      phase: 'stream',
      position: { kind: 'postgres', lsn: '0/10' },
    });
    await store.clear!('pre');
    expect(await store.load('pre')).toBeNull();
    await store.close!();
  });
});
