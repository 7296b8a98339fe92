import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testContext } from '../../../test/fixtures/change-events.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { checkpointTableOf, LEGACY_CHECKPOINT_TABLE } from './checkpoint-location.ts';
import { MysqlCheckpointStore } from './checkpoint-store.ts';
import { mysqlTargetConfig } from './config.ts';
import { MysqlTarget } from './target.ts';

describe('where the MySQL target keeps its checkpoints (no server)', () => {
  const parse = (extra: Record<string, unknown>, url = 'mysql://u@db:3306/') =>
    mysqlTargetConfig.parse({ type: 'mysql', url, ...extra });
  it('in the target database by default: the database setting, else the url, else the former default', () => {
    expect(checkpointTableOf(parse({ database: 'shop' }))).toBe('shop.tributary_checkpoints');
    expect(checkpointTableOf(parse({}, 'mysql://u@db:3306/warehouse'))).toBe('warehouse.tributary_checkpoints');
    expect(checkpointTableOf(parse({}))).toBe(LEGACY_CHECKPOINT_TABLE);
    expect(checkpointTableOf(parse({ database: 'shop', checkpoint_table: 'ops.cp' }))).toBe('ops.cp');
  });
});

describe.each(mysqlFlavors())('MySQL target checkpoints across an upgrade ($name)', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start();
  }, 120_000);
  afterAll(async () => server?.stop());

  it('a checkpoint in the former default table is moved into the target database and resumed from', async () => {
    await server.query('DROP DATABASE IF EXISTS up_db');
    await server.query('DROP DATABASE IF EXISTS tributary');
    // What an earlier version left: its checkpoint in tributary.tributary_checkpoints, plus another pipeline's.
    const legacy = new MysqlCheckpointStore(server.url(), LEGACY_CHECKPOINT_TABLE);
    const position = { kind: 'mysql' as const, file: 'binlog.000007', pos: 1234, gtidSet: '0-1-99' };
    await legacy.save({ pipeline: 'up', phase: 'stream', position, sourceTimeMs: 1_700_000_000_000 });
    await legacy.save({ pipeline: 'other', phase: 'stream', position });
    await legacy.close();

    const config = mysqlTargetConfig.parse({ type: 'mysql', url: server.url(), database: 'up_db' });
    const target = new MysqlTarget(config, testContext('up'));
    try {
      await target.open();
      expect(await target.checkpointStore.load('up')).toEqual({
        pipeline: 'up',
        phase: 'stream',
        position,
        sourceTimeMs: 1_700_000_000_000,
      });
    } finally {
      await target.close();
    }
    // Judged by the server: moved (not copied) for this pipeline only.
    const moved = await server.query<{ pipeline: string; position: string }>(
      'SELECT pipeline, position FROM up_db.tributary_checkpoints',
    );
    expect(moved.map((r) => [r.pipeline, JSON.parse(r.position)])).toEqual([['up', position]]);
    const left = await server.query<{ pipeline: string }>('SELECT pipeline FROM tributary.tributary_checkpoints');
    expect(left.map((r) => r.pipeline)).toEqual(['other']);

    // The status command's store finds it in the new place as well, and a second start moves nothing twice.
    const store = new MysqlCheckpointStore(server.url(), checkpointTableOf(config));
    try {
      expect((await store.load('up'))?.position).toEqual(position);
    } finally {
      await store.close();
    }
  });

  it('a new pipeline creates no tributary database when the target database is known', async () => {
    await server.query('DROP DATABASE IF EXISTS fresh_db');
    await server.query('DROP DATABASE IF EXISTS tributary');
    const config = mysqlTargetConfig.parse({ type: 'mysql', url: server.url(), database: 'fresh_db' });
    const target = new MysqlTarget(config, testContext('fresh'));
    try {
      await target.open();
    } finally {
      await target.close();
    }
    const dbs = await server.query<{ n: string }>(
      "SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('tributary', 'fresh_db')",
    );
    expect(dbs.map((r) => r.n)).toEqual(['fresh_db']);
  });
});
