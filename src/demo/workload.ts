import pg from 'pg';

/** The demo's shop: customers and orders, changed continuously by a few writers. */
export const SHOP_SCHEMA = `
create table customers (
  id serial primary key,
  name text not null,
  email text not null,
  balance numeric(12,2) not null default 0,
  updated_at timestamptz not null default now()
);
create table orders (
  id bigserial primary key,
  customer_id int not null,
  amount numeric(10,2) not null,
  note text,
  created_at timestamptz not null default now()
);
insert into customers (name, email, balance)
  select 'customer ' || g, 'c' || g || '@example.com', (g * 7.31)::numeric(12,2) from generate_series(1, 200) g;
insert into orders (customer_id, amount, note)
  select 1 + g % 200, (g * 1.17)::numeric(10,2), 'seed order ' || g from generate_series(1, 500) g;
`;

/** Runs random transactions of inserts, updates and deletes until the signal aborts; adds a column half-way. */
export async function runWorkload(url: string, seconds: number, signal: AbortSignal, onSchemaChange: () => void) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const started = Date.now();
  let altered = false;
  try {
    while (!signal.aborted && Date.now() - started < seconds * 1000) {
      if (!altered && Date.now() - started > (seconds * 1000) / 2) {
        await client.query(`alter table customers add column tier text not null default 'bronze'`);
        altered = true;
        onSchemaChange();
      }
      await client.query('begin');
      const r = Math.random();
      const customer = 1 + Math.floor(Math.random() * 200);
      if (r < 0.45) {
        await client.query('insert into orders (customer_id, amount, note) values ($1, $2, $3)', [
          customer,
          (Math.random() * 500).toFixed(2),
          `order at ${new Date().toISOString()}`,
        ]);
      } else if (r < 0.8) {
        await client.query(
          altered
            ? `update customers set balance = balance + 1.5, updated_at = now(), tier = case when balance > 500 then 'gold' else 'bronze' end where id = $1`
            : 'update customers set balance = balance + 1.5, updated_at = now() where id = $1',
          [customer],
        );
      } else if (r < 0.95) {
        await client.query(
          'delete from orders where id = (select id from orders where customer_id = $1 order by id limit 1)',
          [customer],
        );
      } else {
        await client.query(`insert into customers (name, email) values ($1, $2)`, [
          `new customer ${Date.now()}`,
          `n${Date.now()}@example.com`,
        ]);
      }
      await client.query('commit');
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    }
  } finally {
    await client.end();
  }
}

/** Row count and an order-independent digest of every row, computed inside the database. */
export async function tableDigest(url: string, table: string): Promise<{ rows: number; digest: string }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string; digest: string | null }>(
      `select count(*) as n, md5(string_agg(md5(t::text), '' order by md5(t::text))) as digest from ${table} t`,
    );
    return { rows: Number(rows[0]!.n), digest: rows[0]!.digest ?? '' };
  } finally {
    await client.end();
  }
}
