import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgServer, startPostgres } from '../../test/harness/postgres.ts';
import { type PipelineConfig, pipelineConfig } from '../config/schema.ts';
import { verifyPipeline } from './verify.ts';

const run = promisify(execFile);

let pg: PgServer;
let srcUrl: string;
let tgtUrl: string;
const both = async (sql: string) => {
  await pg.query('vsrc', sql);
  await pg.query('vtgt', sql);
};

function pipeline(tables: string[], target: Record<string, unknown> = {}): PipelineConfig {
  return pipelineConfig.parse({
    name: 'p',
    source: { type: 'postgres', url: srcUrl, tables },
    target: { type: 'postgres', url: tgtUrl, ...target },
  });
}

async function cli(args: string[]) {
  try {
    const { stdout, stderr } = await run('node', ['bin/tributary.js', ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function configFile(yaml: string): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-verify-')), 'config.yaml');
  fs.writeFileSync(file, yaml);
  return file;
}

beforeAll(async () => {
  pg = await startPostgres();
  srcUrl = await pg.createDatabase('vsrc');
  tgtUrl = await pg.createDatabase('vtgt');
  await both(`create table public.accounts (id int8 primary key, name text not null, balance numeric(12,2),
                created timestamptz, note text)`);
  await both(`insert into public.accounts select g, 'name ' || g, g * 1.25, '2024-01-01'::timestamptz + g * interval '1 second',
                case when g % 7 = 0 then null else md5(g::text) end from generate_series(1, 50000) g`);
});

afterAll(async () => {
  await pg?.stop();
});

describe('verify PostgreSQL -> PostgreSQL', () => {
  it('equal tables: every range matches', async () => {
    const report = await verifyPipeline(pipeline(['public.accounts']), { maxDiffs: 20, rangeRows: 4000 });
    expect(report.error).toBeUndefined();
    const t = report.tables[0]!;
    expect(t).toMatchObject({ status: 'equal', source_rows: 50000, target_rows: 50000, key: ['id'] });
    expect(t.ranges).toBeGreaterThan(10);
    expect(t.differing_ranges).toBe(0);
    expect(report.status).toBe('equal');
  });

  it('one updated, one deleted, one extra row: exactly those keys', async () => {
    await both('create schema d; create table d.t (id int8 primary key, v text, n int)');
    await both(`insert into d.t select g, 'v' || g, g from generate_series(1, 60000) g`);
    await pg.query('vtgt', `update d.t set v = 'changed' where id = 31234`);
    await pg.query('vtgt', 'delete from d.t where id = 777');
    await pg.query('vtgt', `insert into d.t values (60001, 'new', 1)`);
    const report = await verifyPipeline(pipeline(['d.t']), { maxDiffs: 20, rangeRows: 5000 });
    const t = report.tables[0]!;
    expect(t.status).toBe('different');
    expect(t.source_rows).toBe(60000);
    expect(t.target_rows).toBe(60000);
    expect(t.differences).toEqual([
      { kind: 'missing_at_target', key: { id: '777' } },
      {
        kind: 'different',
        key: { id: '31234' },
        columns: ['v'],
        source: { v: 'v31234' },
        target: { v: 'changed' },
      },
      { kind: 'extra_at_target', key: { id: '60001' } },
    ]);
    expect(t.truncated).toBeUndefined();
    // --max-diffs 1 lists the first one only and says more exist.
    const short = await verifyPipeline(pipeline(['d.t']), { maxDiffs: 1, rangeRows: 5000 });
    expect(short.tables[0]!.differences.map((d) => d.key)).toEqual([{ id: '777' }]);
    expect(short.tables[0]!.truncated).toBe(true);
  });

  it('keyless table: a duplicate row missing at the target', async () => {
    await both('create table public.events (kind text, amount numeric, at date)');
    await both(
      `insert into public.events values ('a', 1.5, '2024-01-01'), ('a', 1.5, '2024-01-01'), ('b', null, null), ('c', 2, '2024-02-02')`,
    );
    await pg.query(
      'vtgt',
      `delete from public.events where ctid = (select min(ctid) from public.events where kind = 'a')`,
    );
    const report = await verifyPipeline(pipeline(['public.events']), { maxDiffs: 20 });
    const t = report.tables[0]!;
    expect(t).toMatchObject({ status: 'different', key: null, source_rows: 4, target_rows: 3 });
    expect(t.differences).toEqual([
      {
        kind: 'missing_at_target',
        source_count: 2,
        target_count: 1,
        source: { kind: 'a', amount: '1.5', at: '2024-01-01' },
      },
    ]);
    await pg.query('vtgt', `insert into public.events values ('a', 1.5, '2024-01-01')`);
    const again = await verifyPipeline(pipeline(['public.events']), { maxDiffs: 20 });
    expect(again.tables[0]!.status).toBe('equal');
  });

  it('composite primary key with a text part', async () => {
    await both('create table public.lines (tenant int, code text, qty int, primary key (tenant, code))');
    await both(
      `insert into public.lines select t, 'c-' || g, g from generate_series(1, 5) t, generate_series(1, 3000) g`,
    );
    await pg.query('vtgt', `update public.lines set qty = -1 where tenant = 3 and code = 'c-1500'`);
    await pg.query('vtgt', `delete from public.lines where tenant = 5 and code = 'c-42'`);
    const report = await verifyPipeline(pipeline(['public.lines']), { maxDiffs: 20, rangeRows: 1000 });
    const t = report.tables[0]!;
    expect(t.status).toBe('different');
    expect(t.key).toEqual(['tenant', 'code']);
    expect(t.differences.map((d) => [d.kind, d.key])).toEqual([
      ['different', { tenant: '3', code: 'c-1500' }],
      ['missing_at_target', { tenant: '5', code: 'c-42' }],
    ]);
  });

  it('many types, equal', async () => {
    await both(`create type public.mood as enum ('sad', 'ok', 'happy');
      create table public.typed (id uuid primary key, b bool, i2 int2, i4 int4, i8 int8, n numeric, f4 float4,
        f8 float8, t text, vc varchar(10), c char(5), by bytea, j json, jb jsonb, d date, tm time, ts timestamp(6),
        tz timestamptz, iv interval, arr int[], m public.mood, ip inet, bits bit(4))`);
    await both(`insert into public.typed values
      ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true, -32768, 2147483647, -9223372036854775808, 12345678901234567890.000000000001,
       1.1, 3.141592653589793, 'emoji 🎉 and ''quotes''', 'short', 'ab', '\\xdeadbeef', '{"b": 1, "a": [1, 2]}',
       '{"b": 1, "a": [1, 2]}', '2024-02-29', '23:59:59.999999', '2024-01-01 00:00:00.123456',
       '2024-06-30 12:00:00.5+02', '1 year 2 mons 3 days 04:05:06', '{1,NULL,3}', 'happy', '10.0.0.1/8', B'1010'),
      ('b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', null, null, null, null, 'NaN', 'Infinity', '-0', '', null, null, '\\x',
       'null', '[]', 'infinity', null, '-infinity', null, null, '{}', null, null, null)`);
    const report = await verifyPipeline(pipeline(['public.typed']), { maxDiffs: 20 });
    expect(report.tables[0]).toMatchObject({ status: 'equal', source_rows: 2, key: ['id'] });
    await pg.query('vtgt', `update public.typed set f8 = 3.14159265358979 where b`);
    const changed = await verifyPipeline(pipeline(['public.typed']), { maxDiffs: 20 });
    expect(changed.tables[0]!.differences).toMatchObject([
      { kind: 'different', key: { id: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' }, columns: ['f8'] },
    ]);
  });

  it('follows the target schema option; a missing target table is an error', async () => {
    await pg.query('vsrc', 'create schema app; create table app.items (id int primary key, v text)');
    await pg.query('vtgt', 'create schema replica; create table replica.items (id int primary key, v text)');
    await pg.query('vsrc', `insert into app.items values (1, 'x'), (2, 'y')`);
    await pg.query('vtgt', `insert into replica.items values (1, 'x'), (2, 'y')`);
    const renamed = await verifyPipeline(pipeline(['app.items'], { schema: 'replica' }), { maxDiffs: 20 });
    expect(renamed.tables[0]).toMatchObject({ source: 'app.items', target: 'replica.items', status: 'equal' });
    const mapped = await verifyPipeline(pipeline(['app.items'], { tables: { 'app.items': 'replica.items' } }), {
      maxDiffs: 20,
    });
    expect(mapped.tables[0]).toMatchObject({ target: 'replica.items', status: 'equal' });
    const missing = await verifyPipeline(pipeline(['app.items']), { maxDiffs: 20 });
    expect(missing.status).toBe('error');
    expect(missing.tables[0]!.error).toContain('app.items does not exist at the target');
  });

  it('CLI: exit 0 equal, 1 different, 2 for errors and non-database targets', async () => {
    const equal = configFile(`pipelines:
  - name: accounts
    source: { type: postgres, url: "${srcUrl}", tables: [public.accounts] }
    target: { type: postgres, url: "${tgtUrl}" }
`);
    const ok = await cli(['verify', '-c', equal]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('public.accounts: equal');
    const progress = await cli(['verify', '-c', equal, '--progress']);
    expect(progress.code).toBe(0);
    expect(progress.stderr).toMatch(/public\.accounts: ranges (\d+)\/\1\n/);

    const different = configFile(`pipelines:
  - name: d
    source: { type: postgres, url: "${srcUrl}", tables: [d.t, public.accounts] }
    target: { type: postgres, url: "${tgtUrl}" }
`);
    const diff = await cli(['verify', '-c', different, '--json', '--table', 'd.t']);
    expect(diff.code).toBe(1);
    const json = JSON.parse(diff.stdout);
    expect(json.status).toBe('different');
    expect(json.pipelines[0].tables.map((t: { source: string }) => t.source)).toEqual(['d.t']);
    expect(json.pipelines[0].tables[0].differences).toHaveLength(3);
    const text = await cli(['verify', '-c', different, '--table', 't', '--max-diffs', '2']);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('missing at target: id=777');
    expect(text.stdout).toContain('different values:  id=31234 (v: "v31234" -> "changed")');
    expect(text.stdout).not.toContain('60001');

    const unreachable = configFile(`pipelines:
  - name: down
    source: { type: postgres, url: "postgres://u:hunter2@127.0.0.1:1/db" }
    target: { type: postgres, url: "${tgtUrl}" }
`);
    const down = await cli(['verify', '-c', unreachable]);
    expect(down.code).toBe(2);
    expect(down.stderr).toContain('cannot connect to the source');
    expect(down.stderr).not.toContain('hunter2');
    expect(down.stderr).not.toMatch(/\n\s+at /);

    const jsonl = configFile(`pipelines:
  - name: files
    source: { type: postgres, url: "${srcUrl}" }
    target: { type: jsonl, path: out.jsonl }
`);
    const nodb = await cli(['verify', '-c', jsonl]);
    expect(nodb.code).toBe(2);
    expect(nodb.stderr).toContain('verify needs a database target');

    const missing = await cli(['verify', '-c', different, '--pipeline', 'nope']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no pipeline named nope');
  });
});
