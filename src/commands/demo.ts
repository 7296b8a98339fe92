import path from 'node:path';
import pg from 'pg';
import { parseConfig } from '../config/load.ts';
import { Daemon } from '../daemon.ts';
import { startEmbeddedPostgres } from '../demo/embedded-server.ts';
import { runWorkload, SHOP_SCHEMA, tableDigest } from '../demo/workload.ts';
import { TributaryError } from '../errors.ts';
import { ExitCode } from '../exit-codes.ts';
import { createLogger } from '../observability/logger.ts';
import { stopWhenNpmParentExits } from './parent-watch.ts';

const TABLES = ['public.customers', 'public.orders'];

/**
 * `tributary demo`: an embedded PostgreSQL with a `shop` database and a `replica` database, a live workload on the
 * shop, the replicator between them, and a comparison at the end. Everything lives in a temporary directory and is
 * removed afterwards.
 */
export async function demoCommand(options: { seconds: number }): Promise<number> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say('Starting an embedded PostgreSQL (logical decoding on) in a temporary directory ...');
  const server = await startEmbeddedPostgres().catch((err: Error) => {
    throw new TributaryError('operator', err.message, {
      hint: 'The demo needs nothing but this package: run npm install again, or report the output above.',
    });
  });
  const stopping = new AbortController();
  const onSignal = () => stopping.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const unwatch = stopWhenNpmParentExits(onSignal);
  try {
    const admin = new pg.Client({ connectionString: server.url('postgres') });
    await admin.connect();
    await admin.query('create database shop');
    await admin.query('create database replica');
    await admin.end();
    const shop = new pg.Client({ connectionString: server.url('shop') });
    await shop.connect();
    await shop.query(SHOP_SCHEMA);
    await shop.end();
    say('Created database "shop" (200 customers, 500 orders) and an empty database "replica".');

    const loaded = parseConfig(
      `
pipelines:
  - name: demo
    source: { type: postgres, url: "${server.url('shop')}", tables: [${TABLES.join(', ')}], snapshot: initial }
    target: { type: postgres, url: "${server.url('replica')}" }
`,
      path.join(server.dir, 'demo.yaml'),
    );
    const logger = createLogger({ level: process.env.TRIBUTARY_LOG_LEVEL ?? 'warn' });
    const daemon = new Daemon(loaded, logger);
    const running = daemon.run();
    running.catch(() => undefined);
    say(`Replicating shop -> replica; the workload runs for ${options.seconds} s (Ctrl-C to stop early).\n`);

    let last = new Map<string, number>();
    const ticker = setInterval(async () => {
      const counts = await eventCounts(daemon);
      const previous = last;
      const delta = (op: string) => (counts.get(op) ?? 0) - (previous.get(op) ?? 0);
      last = counts;
      const state = daemon.pipelines[0]?.state;
      const lag =
        state?.lagSeconds === null || state?.lagSeconds === undefined
          ? 'n/a'
          : `${Math.round(state.lagSeconds * 1000)} ms`;
      const position = state?.checkpoint?.position.kind === 'postgres' ? state.checkpoint.position.lsn : '-';
      say(
        `  ${state?.status ?? '?'}: +${delta('read')} snapshot rows, +${delta('insert')} inserts, +${delta('update')} updates, +${delta('delete')} deletes | lag ${lag} | checkpoint ${position}`,
      );
    }, 1000);

    await Promise.race([
      runWorkload(server.url('shop'), options.seconds, stopping.signal, () =>
        say("  schema change at the source: alter table customers add column tier text not null default 'bronze'"),
      ),
      running,
    ]);
    say('\nWorkload stopped; waiting for the replica to catch up ...');
    const equal = await waitForMatch(server.url('shop'), server.url('replica'), 30_000, stopping.signal);
    clearInterval(ticker);
    daemon.stop();
    await running.catch((err) => {
      throw err;
    });

    say('\n  table              source rows   replica rows   digest match');
    for (const r of equal.results) {
      say(
        `  ${r.table.padEnd(18)} ${String(r.source.rows).padStart(11)}   ${String(r.replica.rows).padStart(12)}   ${r.source.digest === r.replica.digest ? 'yes' : 'NO'}`,
      );
    }
    say(equal.ok ? '\nSource and replica match.' : '\nSource and replica DIFFER.');
    return equal.ok ? ExitCode.ok : ExitCode.invalid;
  } finally {
    unwatch();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await server.stop();
    say('Stopped the embedded PostgreSQL and removed its data.');
  }
}

async function eventCounts(daemon: Daemon): Promise<Map<string, number>> {
  const metric = await daemon.metrics.events.get();
  const counts = new Map<string, number>();
  for (const v of metric.values) counts.set(String(v.labels.op), (counts.get(String(v.labels.op)) ?? 0) + v.value);
  return counts;
}

async function waitForMatch(sourceUrl: string, replicaUrl: string, timeoutMs: number, signal: AbortSignal) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const results = await Promise.all(
      TABLES.map(async (table) => ({
        table,
        source: await tableDigest(sourceUrl, table),
        replica: await tableDigest(replicaUrl, table).catch(() => ({ rows: 0, digest: '' })),
      })),
    );
    const ok = results.every((r) => r.source.digest === r.replica.digest && r.source.rows === r.replica.rows);
    if (ok || Date.now() > deadline || signal.aborted) return { ok, results };
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
