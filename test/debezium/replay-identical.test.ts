import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresSource } from '../../connectors/postgres/source/source.ts';
import type { ChangeEvent } from '../../src/core/change-event.ts';
import type { Checkpoint } from '../../src/core/checkpoint.ts';
import { type EncodedRecord, EnvelopeEncoder, keyValueLine } from '../../src/envelope/encoder.ts';
import { TransactionTracker } from '../../src/envelope/transaction.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';

/**
 * A change sent again after a restart (everything after the last saved checkpoint is) is written byte for byte as
 * the first time, `source.sequence` included, so consumers can drop duplicates by comparing records. Only the
 * processing times (top-level ts_ms/ts_us/ts_ns) are the replicator's clock; the encoder's clock is fixed here.
 */
describe('replayed changes are written identically', () => {
  let server: PgServer;
  beforeAll(async () => {
    // Keepalives every second, so an idle source advances its checkpoint quickly.
    server = await startPostgres({ throwaway: true, settings: { wal_sender_timeout: "'2s'" } });
  });
  afterAll(async () => server?.stop());

  const ctx = { pipeline: 'replay_identity', logger: createLogger({ level: 'warn', pretty: false }) };
  const encode = (events: ChangeEvent[]): string[] => {
    const encoder = new EnvelopeEncoder({
      format: 'debezium',
      schemas: false,
      tombstones: true,
      unavailableValue: '__debezium_unavailable_value',
      transactionMetadata: true,
      serverName: 'replay',
      clock: () => 1_700_000_000_000,
    });
    const tracker = new TransactionTracker();
    const out: EncodedRecord[] = [];
    for (const e of events) encoder.encode(e, out, tracker.step(e).position);
    return out.map(keyValueLine);
  };

  /**
   * Opens a source at `from`, reads until `count` streamed events arrived and a checkpoint followed them, then
   * closes it; the last checkpoint is saved (acknowledged) only when `save` is set, else it is a crash. On a first
   * start the snapshot's checkpoint is saved and `afterSnapshot` runs.
   */
  async function read(
    url: string,
    from: Checkpoint | null,
    options: {
      count: number;
      save: boolean;
      afterSnapshot?: () => Promise<unknown>;
      /** After `count` events: save their checkpoint, wait for an idle advance, run this, read `count` more. */
      afterIdle?: () => Promise<unknown>;
    },
  ) {
    const source = new PostgresSource({ type: 'postgres', url, tables: ['public.t'] }, ctx);
    const events: ChangeEvent[] = [];
    let snapshotEnd: Checkpoint | null = null;
    let last: Checkpoint | null = null;
    let saved: Checkpoint | null = null;
    let want = options.count;
    let idle: 'no' | 'waiting' | 'done' = options.afterIdle ? 'no' : 'done';
    try {
      await source.open(from);
      for await (const batch of source.batches()) {
        for (const e of batch.events) if (e.op !== 'read') events.push(e);
        if (batch.checkpoint) last = batch.checkpoint;
        if (batch.checkpoint && from === null && !snapshotEnd) {
          snapshotEnd = batch.checkpoint;
          await source.commit(snapshotEnd);
          await options.afterSnapshot?.();
        }
        if (idle === 'waiting' && batch.events.length === 0 && batch.checkpoint) {
          // An idle advance moved the checkpoint past the last commit without a transaction.
          idle = 'done';
          await options.afterIdle?.();
          continue;
        }
        if (events.length >= want && batch.checkpoint) {
          if (idle !== 'no') break;
          saved = batch.checkpoint;
          await source.commit(saved);
          idle = 'waiting';
          want += options.count;
        }
      }
      if (options.save && last) await source.commit(last);
      return { lines: encode(events), snapshotEnd, last, saved };
    } finally {
      await source.close();
    }
  }

  it('after the snapshot and after a streamed commit', async () => {
    const url = await server.createDatabase('replay_identity');
    await server.query('replay_identity', "create table t (id int primary key, v text); insert into t values (1, 'x')");
    const db = (sql: string) => server.query('replay_identity', sql);
    // 1: snapshot (its checkpoint saved), then transaction A streamed; A's checkpoint is not saved (a crash).
    const a1 = await read(url, null, {
      count: 2,
      save: false,
      afterSnapshot: () => db("insert into t values (2, 'a'); update t set v = 'a2' where id = 1"),
    });
    // 2: restart from the snapshot's checkpoint: A again, identical. A's checkpoint is saved.
    const a2 = await read(url, a1.snapshotEnd, { count: 2, save: true });
    expect(a2.lines).toEqual(a1.lines);
    expect(JSON.parse(a2.lines[0]!).value.source.sequence).toMatch(/^\[null,"\d+"\]$/);
    // 3: transaction C, its checkpoint saved; an idle advance (not saved); then B, not saved (a crash). Restart
    // from C's checkpoint: B again, identical, although the first copy was read after the idle advance.
    await db("insert into t values (4, 'c'); insert into t values (5, 'c')");
    const b1 = await read(url, a2.last, {
      count: 2,
      save: false,
      afterIdle: () => db("delete from t where id = 2; insert into t values (3, 'b')"),
    });
    const b2 = await read(url, b1.saved, { count: 2, save: false });
    expect(b2.lines).toEqual(b1.lines.slice(2));
    expect(JSON.parse(b2.lines[0]!).value.source.sequence).toMatch(/^\["\d+","\d+"\]$/);
  });
});
