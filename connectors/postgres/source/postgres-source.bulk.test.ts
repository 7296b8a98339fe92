import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgServer, startPostgres } from '../../../test/harness/postgres.ts';
import { PostgresSource } from './source.ts';

const ROWS = Number(process.env.TRIBUTARY_BULK_ROWS ?? 1_000_000);

describe.each([
  ['system', undefined],
  ['embedded', 'embedded'],
] as const)('PostgresSource bulk on %s PostgreSQL', (_name, flavor) => {
  let server: PgServer;
  beforeAll(async () => {
    server = await startPostgres(flavor ? { flavor } : { throwaway: true });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it(`streams a ${ROWS}-row transaction in bounded memory, checkpoint only after its commit`, async () => {
    const url = await server.createDatabase('bulk');
    await server.query('bulk', 'create table big (id int primary key, payload text, n bigint)');
    const source = new PostgresSource(
      { type: 'postgres', url, tables: ['public.big'], read_ahead_events: 20_000 },
      { pipeline: 'bulk', logger: pino({ level: 'silent' }) },
      { batch: { max_events: 5000, max_bytes: 8 * 1024 * 1024, max_wait_ms: 50 } },
    );
    await source.open(null);
    const it = source.batches()[Symbol.asyncIterator]();
    try {
      const first = (await it.next()).value!;
      await source.commit(first.checkpoint!);
      await server.query(
        'bulk',
        `insert into big select i, 'payload of row ' || i || repeat('x', 40), i::bigint * 1000000000 from generate_series(1, ${ROWS}) i`,
      );
      global.gc?.();
      const baseline = process.memoryUsage().rss;
      let peak = baseline;
      let count = 0;
      let checkpoints = 0;
      let started = 0;
      let lastId = '';
      while (count < ROWS) {
        const b = (await it.next()).value!;
        // A slow consumer at first (25k events/s, below what the server decodes even on a loaded machine): the
        // read-ahead fills up and the socket must pause.
        if (count < 100_000) await new Promise((r) => setTimeout(r, 200));
        if (b.events.length > 0 && started === 0) started = performance.now();
        count += b.events.length;
        if (b.events.length > 0) lastId = b.events[b.events.length - 1]!.after!.id as string;
        if (b.checkpoint) {
          checkpoints++;
          expect(count).toBe(ROWS);
          await source.commit(b.checkpoint);
        }
        const rss = process.memoryUsage().rss;
        if (rss > peak) peak = rss;
      }
      const { details } = await source.status();
      expect(details!.peakBufferedEvents as number).toBeGreaterThanOrEqual(20_000);
      expect(details!.peakBufferedEvents as number).toBeLessThan(40_000);
      const seconds = (performance.now() - started) / 1000;
      const deltaMb = (peak - baseline) / 1024 / 1024;
      console.log(
        `[bulk ${flavor ?? 'system'} PG${server.major}] ${ROWS} rows in ${seconds.toFixed(1)} s = ${Math.round(ROWS / seconds)} rows/s; peak RSS delta ${deltaMb.toFixed(0)} MB, peak buffered events ${details!.peakBufferedEvents}`,
      );
      expect(count).toBe(ROWS);
      expect(lastId).toBe(String(ROWS));
      expect(checkpoints).toBe(1);
      expect(deltaMb).toBeLessThan(200);
    } finally {
      await source.close();
    }
  });
});
