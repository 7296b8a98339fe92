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

/**
 * Row count and a digest computed by a MySQL/MariaDB server itself: the sum of each row's SHA-256 prefix (so the
 * row order does not matter and a duplicated row changes it). The columns must print alike in both engines
 * (integers, plain text); `pgRowDigest` computes the same figure in PostgreSQL.
 */
export async function mysqlRowDigest(
  query: (sql: string) => Promise<{ n: string; s: string }[]>,
  table: string,
  columns: string[],
): Promise<{ rows: number; sum: string }> {
  const row = `CONCAT_WS(':', ${columns.join(', ')})`;
  const [r] = await query(
    `SELECT CAST(COUNT(*) AS CHAR) AS n, CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(SHA2(${row}, 256), 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) AS s FROM ${table}`,
  );
  return { rows: Number(r!.n), sum: r!.s };
}

/** The digest of `mysqlRowDigest`, computed by PostgreSQL. */
export async function pgRowDigest(
  url: string,
  table: string,
  columns: string[],
): Promise<{ rows: number; sum: string }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string; s: string }>(
      `SELECT count(*)::text AS n, coalesce(sum(('x' || substr(encode(sha256(convert_to(concat_ws(':', ${columns.join(', ')}), 'UTF8')), 'hex'), 1, 15))::bit(60)::bigint), 0)::text AS s FROM ${table}`,
    );
    return { rows: Number(rows[0]!.n), sum: rows[0]!.s };
  } finally {
    await client.end();
  }
}
