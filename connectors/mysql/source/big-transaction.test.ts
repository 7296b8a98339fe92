import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MysqlServer } from '../../../test/harness/mariadb.ts';
import { mysqlFlavors } from '../../../test/harness/mysql-server.ts';
import { makeSource, session } from './source.test-support.ts';

const ROWS = 200_000;

describe.each(mysqlFlavors())('mysql source: one big transaction ($name)', (flavor) => {
  let server: MysqlServer;
  beforeAll(async () => {
    server = await flavor.start();
  });
  afterAll(async () => server?.stop());

  it(`splits a ${ROWS}-row transaction into bounded batches with bounded memory`, async () => {
    await server.createDatabase('big');
    const conn = await session(server, 'big');
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY, pad VARCHAR(200))');
    const source = makeSource(
      server,
      'big',
      { databases: ['big'], snapshot: 'never', read_ahead_events: 5000 },
      { max_events: 2000, max_bytes: 1024 * 1024, max_wait_ms: 100 },
    );
    await source.open(null);
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    let paused = false;
    await conn.query(`INSERT INTO t SELECT seq, REPEAT('x', 150) FROM ${server.series(1, ROWS)}`);
    const started = Date.now();
    let count = 0;
    let batches = 0;
    let checkpoints = 0;
    let maxEvents = 0;
    try {
      for await (const b of source.batches()) {
        batches++;
        count += b.events.length;
        maxEvents = Math.max(maxEvents, b.events.length);
        if (b.checkpoint) {
          checkpoints++;
          expect(count).toBe(ROWS);
        }
        if (batches === 1) {
          // A stalled target: the reader must stop reading instead of buffering the transaction.
          for (let waited = 0; waited < 10_000 && !paused; waited += 10) {
            await new Promise((r) => setTimeout(r, 10));
            paused = (await source.status()).details?.readingPaused === true;
          }
        }
        if (count >= ROWS && b.checkpoint) break;
      }
    } finally {
      clearInterval(sampler);
      await source.close();
      await conn.end();
    }
    const seconds = (Date.now() - started) / 1000;
    const mb = (n: number) => Math.round(n / 1024 / 1024);
    console.log(
      `big transaction: ${count} rows in ${batches} batches, ${seconds.toFixed(1)} s ` +
        `(${Math.round(count / seconds)} rows/s), RSS baseline ${mb(baseline)} MB, peak ${mb(peak)} MB ` +
        `(+${mb(peak - baseline)} MB), reader paused: ${paused}`,
    );
    expect(count).toBe(ROWS);
    expect(checkpoints).toBe(1);
    expect(maxEvents).toBeLessThanOrEqual(2000);
    expect(paused).toBe(true);
    expect(peak - baseline).toBeLessThan(250 * 1024 * 1024);
  });
});
