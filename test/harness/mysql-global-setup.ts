import { ensureRoot, mysqlUnavailableReason } from './mysql-server.ts';

/**
 * Before any test file starts: builds the MySQL tree once (about a minute on a fresh machine), so that no test's
 * setup waits for it. When it cannot be built, the MySQL flavour is skipped with the reason, not the whole run.
 */
export default async function setup(): Promise<void> {
  if (process.env.TRIBUTARY_TEST_MYSQL_URL) return;
  // CI sets TRIBUTARY_REQUIRE_MYSQL: there the MySQL flavour must run, and a reason to skip it is an error.
  const required = process.env.TRIBUTARY_REQUIRE_MYSQL === '1';
  const unavailable = mysqlUnavailableReason();
  if (unavailable) {
    if (required) throw new Error(`TRIBUTARY_REQUIRE_MYSQL is set but MySQL cannot run here: ${unavailable}`);
    return;
  }
  try {
    await ensureRoot();
  } catch (err) {
    const reason = `building the MySQL tree failed: ${(err as Error).message.split('\n').slice(-3).join(' ')}`;
    if (required) throw new Error(`TRIBUTARY_REQUIRE_MYSQL is set but ${reason}`);
    console.warn(reason);
    process.env.TRIBUTARY_TEST_MYSQL_UNAVAILABLE = reason;
  }
}
