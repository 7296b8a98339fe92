import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { Daemon } from '../../src/daemon.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { tributary } from '../harness/cli.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';
import { pgTableDigest } from '../harness/table-digest.ts';

/**
 * Schema shapes of PostgreSQL -> PostgreSQL that once stopped a pipeline for good: each is followed, across restarts,
 * with the target judged equal to the source by sorted row hashes computed in each database.
 */

interface Run {
  daemon: Daemon;
  /** Settles with the daemon's end: null when it stopped cleanly, else its failure. */
  ended: Promise<unknown>;
}

function start(name: string, sourceYaml: string, targetYaml: string): Run {
  const loaded = parseConfig(
    `pipelines:
  - name: ${name}
    source: ${sourceYaml}
    target: ${targetYaml}
`,
    `${name}.yaml`,
  );
  const daemon = new Daemon(loaded, createLogger({ level: 'error', pretty: false }));
  const ended = daemon.run().then(
    () => null,
    (err: unknown) => err ?? new Error('failed'),
  );
  return { daemon, ended };
}

async function stop(run: Run): Promise<unknown> {
  run.daemon.stop();
  return run.ended;
}

/** Waits until every table has equal sorted row hashes on both sides, failing early when the pipeline stops. */
async function expectEqual(run: Run, sourceUrl: string, targetUrl: string, tables: string[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last: unknown[] = [];
  for (;;) {
    last = await Promise.all(
      tables.map(async (t) => ({
        t,
        source: await pgTableDigest(sourceUrl, t),
        target: await pgTableDigest(targetUrl, t).catch((err: Error) => ({ rows: -1, digest: err.message })),
      })),
    );
    const equal = (last as { source: { digest: string; rows: number }; target: { digest: string; rows: number } }[])
      .map((r) => r.source.digest === r.target.digest && r.source.rows === r.target.rows)
      .every(Boolean);
    if (equal) return;
    const state = run.daemon.pipelines[0]?.state;
    const failed = await Promise.race([run.ended, new Promise((r) => setTimeout(() => r(undefined), 300))]);
    if (failed !== undefined && failed !== null) throw failed;
    if (Date.now() > deadline)
      throw new Error(`not equal: ${JSON.stringify(last)}; last error ${JSON.stringify(state?.lastError)}`);
  }
}

const USER_TYPES = `
create domain posint as integer check (value > 0);
create domain nn_text as text not null;
create function strictly_even(i integer) returns boolean language plpgsql immutable as
  $$ begin if i is null then raise exception 'no value'; end if; return i % 2 = 0; end $$;
create domain even_int as integer check (value is null or strictly_even(value));
create type mood as enum ('sad', 'ok', 'happy');
create type pair as (a integer, b text);
create type floatrange as range (subtype = float8);
`;

describe('PostgreSQL -> PostgreSQL schema shapes', () => {
  let server: PgServer;
  let dir: string;
  beforeAll(async () => {
    server = await startPostgres();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-shapes-'));
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** `tributary validate` of a one-pipeline config file. */
  const validate = (name: string, sourceYaml: string, targetYaml: string) => {
    const file = path.join(dir, `${name}.yaml`);
    fs.writeFileSync(file, `pipelines:\n  - name: ${name}\n    source: ${sourceYaml}\n    target: ${targetYaml}\n`);
    return tributary(['validate', '-c', file]);
  };

  it('domains, enums, composites, ranges and arrays of them replicate across restarts', async () => {
    const sourceUrl = await server.createDatabase('dom_src');
    const targetUrl = await server.createDatabase('dom_dst');
    await server.query('dom_src', USER_TYPES);
    await server.query('dom_dst', USER_TYPES);
    await server.query(
      'dom_src',
      `create table dom (id posint primary key, n nn_text, e even_int, m mood, p pair, r floatrange,
                         ids posint[], moods mood[], pairs pair[], rs floatrange[]);
       insert into dom values (1, 'one', 2, 'sad', row(1, 'a'), '[1.5,2.5)', '{1,2}', '{sad,happy}',
                               array[row(1,'x')::pair, row(2,'y')::pair], array['[1,2]'::floatrange]),
                              (2, 'two', null, null, null, null, null, null, null, null)`,
    );
    const source = `{ type: postgres, url: "${sourceUrl}", tables: [public.dom] }`;
    const target = `{ type: postgres, url: "${targetUrl}" }`;
    const first = start('dom', source, target);
    try {
      await expectEqual(first, sourceUrl, targetUrl, ['public.dom']);
    } finally {
      expect(await stop(first)).toBeNull();
    }
    // A restart compares the target table made by the first run with the source: the same domain is compatible.
    await server.query('dom_src', "insert into dom values (3, 'three', 4, 'ok', row(3, 'c'), 'empty', '{3}')");
    const second = start('dom', source, target);
    try {
      await server.query('dom_src', "update dom set n = 'two!', e = 6, m = 'happy' where id = 2");
      await expectEqual(second, sourceUrl, targetUrl, ['public.dom']);
    } finally {
      expect(await stop(second)).toBeNull();
    }
    const column = await server.query<{ t: string }>(
      'dom_dst',
      "select format_type(atttypid, atttypmod) as t from pg_attribute where attrelid = 'dom'::regclass and attname = 'id'",
    );
    expect(column[0]!.t).toBe('posint');
  });

  it('validate names every type missing at the target and prints statements that create them', async () => {
    const sourceUrl = await server.createDatabase('vt_src');
    const targetUrl = await server.createDatabase('vt_dst');
    await server.query('vt_src', USER_TYPES);
    await server.query(
      'vt_src',
      'create table vt (id posint primary key, n nn_text, e even_int, moods mood[], p pair, r floatrange)',
    );
    const source = `{ type: postgres, url: "${sourceUrl}", tables: [public.vt] }`;
    const target = `{ type: postgres, url: "${targetUrl}" }`;
    const before = await validate('vt', source, target);
    expect(before.code, before.stdout + before.stderr).toBe(1);
    expect(before.stdout).toContain('public.posint (used by public.vt.id)');
    expect(before.stdout).toContain('public.mood (used by public.vt.moods)');
    // The printed fix, run as printed (after the function a domain check calls), makes the target ready.
    const statements = before.stdout
      .split('\n')
      .map((l) => l.trim().replace(/^fix: /, ''))
      .filter((l) => l.startsWith('create '));
    expect(statements).toHaveLength(6);
    await server.query(
      'vt_dst',
      USER_TYPES.slice(USER_TYPES.indexOf('create function'), USER_TYPES.indexOf('create domain even_int')),
    );
    for (const sql of statements) await server.query('vt_dst', sql);
    const after = await validate('vt', source, target);
    expect(after.code, after.stdout).toBe(0);
  });

  it('keys a table by its REPLICA IDENTITY USING INDEX in the snapshot and the stream, and validate says so', async () => {
    const sourceUrl = await server.createDatabase('ri_src');
    const targetUrl = await server.createDatabase('ri_dst');
    await server.query(
      'ri_src',
      `create table ri (id integer primary key, code text not null, v integer);
       create unique index ri_code on ri (code);
       alter table ri replica identity using index ri_code;
       insert into ri select g, 'c' || g, g from generate_series(1, 20) g`,
    );
    const source = `{ type: postgres, url: "${sourceUrl}", tables: [public.ri] }`;
    const target = `{ type: postgres, url: "${targetUrl}" }`;
    const run = start('ri', source, target);
    try {
      await expectEqual(run, sourceUrl, targetUrl, ['public.ri']);
      await server.query(
        'ri_src',
        "update ri set v = v + 100 where id <= 5; update ri set code = 'x' || code where id = 7",
      );
      await server.query('ri_src', 'delete from ri where id = 9');
      await expectEqual(run, sourceUrl, targetUrl, ['public.ri']);
    } finally {
      expect(await stop(run)).toBeNull();
    }
    // A target table made beforehand with the source's primary key cannot take changes keyed by the index.
    const otherTarget = await server.createDatabase('ri_dst2');
    await server.query('ri_dst2', 'create table ri (id integer primary key, code text not null, v integer)');
    const checked = await validate('ri', source, `{ type: postgres, url: "${otherTarget}" }`);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toContain('changes are keyed by (code) (its REPLICA IDENTITY USING INDEX');
  });

  it('a primary key with INCLUDE columns is keyed by its key columns only', async () => {
    const sourceUrl = await server.createDatabase('inc_src');
    const targetUrl = await server.createDatabase('inc_dst');
    await server.query(
      'inc_src',
      `create table inc (a integer, b integer, c text, primary key (a) include (b));
       insert into inc select g, g, 'r' || g from generate_series(1, 10) g`,
    );
    const source = `{ type: postgres, url: "${sourceUrl}", tables: [public.inc] }`;
    const target = `{ type: postgres, url: "${targetUrl}" }`;
    const run = start('inc', source, target);
    try {
      await expectEqual(run, sourceUrl, targetUrl, ['public.inc']);
      await server.query(
        'inc_src',
        "update inc set b = b + 100, c = 'changed' where a <= 3; delete from inc where a = 10",
      );
      await expectEqual(run, sourceUrl, targetUrl, ['public.inc']);
    } finally {
      expect(await stop(run)).toBeNull();
    }
  });
});
