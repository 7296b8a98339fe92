import { describe, expect, it } from 'vitest';
import type { ChangeEvent, Row, TableRef } from '../../src/core/change-event.ts';
import type { Checkpoint } from '../../src/core/checkpoint.ts';
import type { ConnectorContext } from '../../src/core/connector-context.ts';
import { type ErrorKind, TributaryError } from '../../src/errors.ts';
import { col, EventSource, tableSchema, testContext } from '../../test/fixtures/change-events.ts';
import type { RowRun, TruncateRun } from './apply-planner.ts';
import { keyText } from './row-runs.ts';
import { type SqlTargetTable, TransactionalSqlTarget } from './transactional-sql-target.ts';

interface Table extends SqlTargetTable {
  columns: Map<string, true>;
}

/** What the fake server holds: committed rows per key, the checkpoint row, and what it was asked to do. */
class Server {
  rows = new Map<string, Row>();
  checkpoint: Checkpoint | null = null;
  syncs: string[] = [];
  /** Tables the target has (made by a sync). */
  tables = new Set<string>();
  truncated: string[] = [];
  connections = 0;
  /** Rows of each run the target flushed. */
  runs: number[] = [];
}

/** An engine whose "SQL" is a map: the shell's flow is all that runs. */
class MapTarget extends TransactionalSqlTarget<Table, { id: number }> {
  readonly classifyError = () => undefined;
  readonly checkpointStore = {
    load: async () => this.server.checkpoint,
    save: async () => undefined,
    close: async () => undefined,
  };
  protected readonly serverNoun = 'map server';
  protected readonly rejectedRowsHint = 'Make the table accept the rows.';
  private pending = new Map<string, Row | null>();
  /** The next flush fails with this. */
  failNext: unknown = null;

  constructor(
    private readonly server: Server,
    ctx: ConnectorContext,
    private readonly ddlRollsBack: boolean,
  ) {
    super(ctx, { groupCommitMaxBatches: 8, maxRunRows: 1000 });
  }

  /** What a connection error event does: the next write reconnects. */
  loseConnection(): void {
    this.connectionLost(this.connection!, new Error('server closed the connection'));
  }

  protected async openSession() {
    this.server.connections++;
    return { connection: { id: this.server.connections }, stored: this.server.checkpoint };
  }
  protected async loadStored() {
    return this.server.checkpoint;
  }
  protected async rollbackTransaction() {}
  protected async commit(cp: Checkpoint) {
    for (const [k, row] of this.pending) row ? this.server.rows.set(k, row) : this.server.rows.delete(k);
    this.pending.clear();
    this.server.checkpoint = cp;
    this.txOpen = false;
  }
  protected override transactionDropped(): void {
    this.pending.clear();
    if (this.ddlRollsBack) this.forgetTables();
  }
  protected dropConnection() {}
  protected async endConnection() {}
  protected connectedFields() {
    return {};
  }
  protected connectionFailure(err: unknown, context: string) {
    return (err as { code?: string }).code === 'LOST' ? new TributaryError('retryable', context) : undefined;
  }
  protected sqlState(err: unknown) {
    return (err as { sqlState?: string }).sqlState;
  }
  protected errorKind(): ErrorKind {
    return 'fatal';
  }
  protected async syncTargetTable(ev: ChangeEvent): Promise<Table> {
    this.server.syncs.push(ev.schema.columns.map((c) => `${c.name} ${c.type}`).join(', '));
    this.server.tables.add(`${ev.table.schema}.${ev.table.name}`);
    return {
      sourceId: `${ev.table.schema}.${ev.table.name}`,
      keyColumns: ev.schema.keyColumns,
      identity: ev.schema.keyColumns.length > 0 ? 'key' : 'full',
      hasForeignKeys: false,
      columns: new Map(ev.schema.columns.map((c) => [c.name, true])),
    };
  }
  protected async targetTableExists(table: TableRef) {
    return this.server.tables.has(`${table.schema}.${table.name}`);
  }
  protected async followRename(_from: TableRef, _to: TableRef) {}
  protected async truncate(run: TruncateRun<Table>) {
    this.server.truncated.push(...run.tables.map((t) => t.sourceId));
  }
  protected async flushRun(run: RowRun<Table>) {
    this.txOpen = true;
    const failure = this.failNext;
    this.failNext = null;
    if (failure) throw failure;
    if (run.kind !== 'keyed') return;
    this.server.runs.push(run.run.size);
    const { deletes, upserts } = this.rowChanges(run.run, false);
    for (const key of deletes) this.pending.set(keyText(run.table.keyColumns, key), null);
    for (const row of upserts) this.pending.set(keyText(run.table.keyColumns, row), row);
  }
  protected async moveKeyPartial() {}
  protected keylessMatch(_table: Table, _before: Row, columns: string[]) {
    return columns.length > 0 ? columns : null;
  }
  protected async deleteOneRow() {
    return 0;
  }
  protected async updateOneRow() {
    return 0;
  }
}

const items = tableSchema('public.items', [col('id', 'integer', 'int', true), col('name', 'text')]);

function setup(ddlRollsBack = false) {
  const server = new Server();
  const ctx = testContext('p');
  return { server, ctx, target: new MapTarget(server, ctx, ddlRollsBack), src: new EventSource('p') };
}

describe('TransactionalSqlTarget', () => {
  it('commits a batch with its checkpoint, and a reconnect after a lost connection skips what that checkpoint covers', async () => {
    const { server, ctx, target, src } = setup();
    await target.open();
    const first = src.tx((t) => t.insert(items, { id: '1', name: 'a' }));
    expect(await target.write(src.batch(first))).toBe('durable');
    expect(server.checkpoint).toEqual(first.checkpoint);

    target.loseConnection();
    const replay = { ...src.batch(first), seq: 9 };
    expect(await target.write(replay)).toBe('durable');
    expect(server.connections).toBe(2);
    expect(ctx.logs.filter((l) => l.event === 'target_replay_skipped')).toHaveLength(1);
    expect([...server.rows.values()]).toEqual([{ id: '1', name: 'a' }]);
    await target.close();
  });

  it('a connection lost with a transaction open fails retryably; open() starts over from the stored checkpoint', async () => {
    const { server, target, src } = setup();
    await target.open();
    const tx = src.tx((t) => t.insert(items, { id: '1', name: 'a' }).insert(items, { id: '2', name: 'b' }));
    expect(await target.write(src.partial([tx.events[0]!]))).toBe('applied');
    target.loseConnection();
    const err = await target.write(src.last(tx, [tx.events[1]!])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TributaryError);
    expect((err as TributaryError).kind).toBe('retryable');
    expect((err as Error).message).toContain('the connection to the map server was lost with a transaction open');

    await target.open();
    expect(await target.write(src.batch(tx))).toBe('durable');
    expect(server.rows.size).toBe(2);
    await target.close();
  });

  it('syncs a table once per definition: again when a column type changes, or after a rollback that undoes DDL', async () => {
    for (const ddlRollsBack of [false, true]) {
      const { server, target, src } = setup(ddlRollsBack);
      await target.open();
      // A new schema object of the same shape (a source re-reading its catalog) is the same table.
      const same = tableSchema('public.items', [col('id', 'integer', 'int', true), col('name', 'text')]);
      await target.write(src.batch(src.tx((t) => t.insert(items, { id: '1', name: 'a' }).insert(same, { id: '2' }))));
      expect(server.syncs).toEqual(['id integer, name text']);

      target.failNext = Object.assign(new Error('value too long'), { sqlState: '22001' });
      await target.write(src.batch(src.tx((t) => t.insert(items, { id: '3', name: 'c' })))).catch(() => undefined);
      await target.reset();
      const wider = tableSchema('public.items', [col('id', 'bigint', 'int', true), col('name', 'text')]);
      await target.write(src.batch(src.tx((t) => t.insert(items, { id: '3', name: 'c' }).insert(wider, { id: '4' }))));
      expect(server.syncs).toEqual(
        ddlRollsBack
          ? ['id integer, name text', 'id integer, name text', 'id bigint, name text']
          : ['id integer, name text', 'id bigint, name text'],
      );
      await target.close();
    }
  });

  it('a source TRUNCATE (or DROP TABLE) of a table the target does not have changes nothing; one it has empties it', async () => {
    const { server, target, src } = setup();
    await target.open();
    // A dropped table replayed after the operator dropped its target table: it is not created again in its old shape.
    expect(await target.write(src.batch(src.tx((t) => t.truncate(items))))).toBe('durable');
    expect([server.syncs, server.truncated]).toEqual([[], []]);
    await target.write(src.batch(src.tx((t) => t.insert(items, { id: '1', name: 'a' }).truncate(items))));
    expect([server.syncs, server.truncated]).toEqual([['id integer, name text'], ['public.items']]);
    await target.close();
  });

  it('names the verdict on a failed write: lost connection retryable, rows rejected operator, else the engine kind', async () => {
    const cases: [unknown, ErrorKind, string | undefined][] = [
      [Object.assign(new Error('reset'), { code: 'LOST' }), 'retryable', undefined],
      [Object.assign(new Error('duplicate key'), { sqlState: '23505' }), 'operator', 'Make the table accept the rows.'],
      [Object.assign(new Error('disk full'), { sqlState: '53100' }), 'fatal', undefined],
    ];
    for (const [raw, kind, hint] of cases) {
      const { target, src } = setup();
      await target.open();
      target.failNext = raw;
      const err = (await target
        .write(src.batch(src.tx((t) => t.insert(items, { id: '1' }))))
        .catch((e: unknown) => e)) as TributaryError;
      expect([err.kind, err.hint]).toEqual([kind, hint]);
      expect(err.message).toContain('writing batch 0 to the target failed (table public.items)');
      // Every later write fails the same way until reset.
      await expect(target.write(src.batch(src.tx((t) => t.insert(items, { id: '2' }))))).rejects.toBe(err);
      await target.reset();
      expect(await target.write(src.batch(src.tx((t) => t.insert(items, { id: '2' }))))).toBe('durable');
      await target.close();
    }
  });

  it('batches queued behind one that ends no transaction are applied with it, up to the one that does', async () => {
    const { server, target, src } = setup();
    await target.open();
    const tx = src.tx((t) => {
      for (let i = 1; i <= 40; i++) t.insert(items, { id: String(i), name: `n${i}` });
    });
    const parts = [0, 10, 20, 30].map((from) => tx.events.slice(from, from + 10));
    // Written at once, as the pipeline's in-flight window does while the target is the slower side.
    const results = await Promise.all([
      target.write(src.partial(parts[0]!)),
      target.write(src.partial(parts[1]!)),
      target.write(src.partial(parts[2]!)),
      target.write(src.last(tx, parts[3]!)),
    ]);
    expect(results).toEqual(['applied', 'applied', 'applied', 'durable']);
    // All four as one run: they were queued before the target took the first.
    expect(server.runs).toEqual([40]);
    expect(server.rows.size).toBe(40);
    // The same transaction replayed whole after a lost acknowledgement: every batch resolves, nothing is applied.
    server.runs = [];
    const replay = await Promise.all([
      target.write(src.partial(parts[0]!)),
      target.write(src.partial(parts[1]!)),
      target.write(src.last(tx, parts[2]!.concat(parts[3]!))),
    ]);
    expect(replay).toEqual(['applied', 'applied', 'durable']);
    expect(server.runs).toEqual([]);
    expect(server.rows.size).toBe(40);
    await target.close();
  });

  it('a keyless change that finds no row logs target_row_missing; one without its old row is skipped once', async () => {
    const { ctx, target, src } = setup();
    await target.open();
    const log = tableSchema('public.log', [col('at', 'text'), col('what', 'text')], { beforeImage: 'full' });
    await target.write(
      src.batch(
        src.tx((t) =>
          t
            .delete(log, { at: '1', what: 'x' })
            .update(log, { at: '2', what: 'y' }, { at: '2', what: 'z' })
            .update(log, { at: '3', what: 'y' })
            .update(log, { at: '4', what: 'y' }),
        ),
      ),
    );
    expect(ctx.logs.filter((l) => l.event === 'target_row_missing').map((l) => l.rows)).toEqual([1, 1]);
    expect(ctx.logs.filter((l) => l.event === 'target_keyless_change_skipped')).toHaveLength(1);
    await target.close();
  });
});
