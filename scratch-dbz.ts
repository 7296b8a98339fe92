import fs from 'node:fs';
import { startPostgres } from './test/harness/postgres.ts';
import { runPostgresWorkload } from './test/debezium/postgres-workload.ts';
const server = await startPostgres({ throwaway: true });
try {
  const t0 = Date.now();
  const run = await runPostgresWorkload(server);
  console.log('took', Date.now() - t0);
  fs.writeFileSync('/tmp/run.json', JSON.stringify(run, (k, v) => typeof v === 'symbol' ? { $unchanged: true } : v));
} finally {
  await server.stop();
}
