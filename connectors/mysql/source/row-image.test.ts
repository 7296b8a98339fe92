import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TributaryError } from '../../../src/errors.ts';
import { testContext } from '../../../test/fixtures/change-events.ts';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { mysqlSourcePipeline, session } from './source.test-support.ts';

/**
 * A session that sets binlog_row_image MINIMAL or NOBLOB writes row images without some columns (the global setting
 * is checked at start, a session's is not). Read as NULL they would be wrong data at the target: the pipeline stops
 * with the fix instead, and the target keeps the row as it was. Judged by the rows the target server returns.
 */
describe.each(mysqlFlavors())('MySQL source: partial row images from one session ($name)', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start();
  });
  afterAll(async () => {
    await server?.stop();
  });

  for (const image of ['MINIMAL', 'NOBLOB']) {
    it(`binlog_row_image=${image}: the pipeline stops naming table, columns and fix; no NULL reaches the target`, {
      timeout: 60_000,
    }, async () => {
      const db = `image_${image.toLowerCase()}_e2e`;
      await server.createDatabase(db);
      await server.createDatabase(`${db}_dst`);
      await server.query('CREATE TABLE t (id INT PRIMARY KEY, v INT, doc TEXT)', [], db);
      await server.query("INSERT INTO t VALUES (1, 1, 'a'), (2, 2, 'b')", [], db);
      const ctx = testContext(db);
      const pipeline = mysqlSourcePipeline(server, db, ctx);
      const ended = pipeline.run().then(
        () => null,
        (err: unknown) => err,
      );
      const targetRows = () => server.query('SELECT id, v, doc FROM t ORDER BY id', [], `${db}_dst`).catch(() => []);
      try {
        const deadline = Date.now() + 30_000;
        while ((await targetRows()).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        expect(await targetRows()).toEqual([
          { id: 1, v: 1, doc: 'a' },
          { id: 2, v: 2, doc: 'b' },
        ]);
        const partial = await session(server, db);
        try {
          await partial.query(`SET SESSION binlog_row_image = '${image}'`);
          // An update that keeps the key and leaves the text column alone: the image lacks doc.
          await partial.query('UPDATE t SET v = 10 WHERE id = 1');
        } finally {
          await partial.end();
        }
        await server.query("INSERT INTO t VALUES (3, 3, 'c')", [], db);
        const err = await Promise.race([
          ended,
          new Promise((resolve) => setTimeout(() => resolve('still running'), 30_000)),
        ]);
        expect(err).toBeInstanceOf(TributaryError);
        expect((err as TributaryError).kind).toBe('operator');
        expect((err as Error).message).toContain(`${db}.t`);
        expect((err as Error).message).toContain('doc');
        expect((err as TributaryError).hint).toContain('binlog_row_image=FULL');
        // Nothing of the update or after it: the target row keeps its text, and row 3 is not there.
        expect(await targetRows()).toEqual([
          { id: 1, v: 1, doc: 'a' },
          { id: 2, v: 2, doc: 'b' },
        ]);
        expect(pipeline.state.status).toBe('failed');
      } finally {
        pipeline.stop();
        await ended;
      }
    });
  }
});
