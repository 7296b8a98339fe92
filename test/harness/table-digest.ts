import pg from 'pg';

/** Row count and digest of a PostgreSQL table: sorted per-row md5s, so tables with no key compare too. */
export async function pgTableDigest(url: string, table: string): Promise<{ rows: number; digest: string }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string; digest: string | null }>(
      `select count(*) as n, md5(string_agg(h, '' order by h)) as digest from (select md5(t::text) as h from ${table} t) s`,
    );
    return { rows: Number(rows[0]!.n), digest: rows[0]!.digest ?? '' };
  } finally {
    await client.end();
  }
}

/** Polls until every table has the same digest on both sides, or the time is up; returns the last comparison. */
export async function waitForEqualTables(
  sourceUrl: string,
  targetUrl: string,
  tables: string[],
  timeoutMs: number,
): Promise<{ equal: boolean; tables: { table: string; source: unknown; target: unknown }[] }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await Promise.all(
      tables.map(async (table) => ({
        table,
        source: await pgTableDigest(sourceUrl, table),
        target: await pgTableDigest(targetUrl, table).catch((err: Error) => ({ rows: -1, digest: err.message })),
      })),
    );
    const equal = result.every((r) => r.source.digest === r.target.digest && r.source.rows === r.target.rows);
    if (equal || Date.now() > deadline) return { equal, tables: result };
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
