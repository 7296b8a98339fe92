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

  it('a re-snapshot after teardown leaves the target equal to the source, keyless tables included', async () => {
    const sourceUrl = await server.createDatabase('rs_src');
    const targetUrl = await server.createDatabase('rs_dst');
    await server.query(
      'rs_src',
      `create table keyed (id integer primary key, v text);
       create table loose (a integer, b text);
       alter table loose replica identity full;
       insert into keyed select g, 'v' || g from generate_series(1, 9) g;
       insert into loose select g % 3, 'b' || g from generate_series(1, 9) g`,
    );
    const source = `{ type: postgres, url: "${sourceUrl}", tables: [public.keyed, public.loose] }`;
    const target = `{ type: postgres, url: "${targetUrl}" }`;
    const file = path.join(dir, 'rs.yaml');
    fs.writeFileSync(file, `pipelines:\n  - name: rs\n    source: ${source}\n    target: ${target}\n`);
    const tables = ['public.keyed', 'public.loose'];
    for (let round = 0; round < 3; round++) {
      const run = start('rs', source, target);
      try {
        await expectEqual(run, sourceUrl, targetUrl, tables);
      } finally {
        expect(await stop(run)).toBeNull();
      }
      const down = await tributary(['teardown', '-c', file, '--yes']);
      expect(down.code, down.stdout + down.stderr).toBe(0);
      // Changed while no pipeline runs: only a snapshot that empties the target first can follow this.
      await server.query(
        'rs_src',
        `delete from keyed where id = ${round + 1}; delete from loose where b = 'b${round + 1}'`,
      );
    }
    const final = start('rs', source, target);
    try {
      await expectEqual(final, sourceUrl, targetUrl, tables);
    } finally {
      expect(await stop(final)).toBeNull();
    }
    expect(await pgTableDigest(targetUrl, 'public.loose')).toMatchObject({ rows: 6 });
  });

  it('TRUNCATE of tables linked by a foreign key is one statement, and their snapshot empties them first', async () => {
    const sourceUrl = await server.createDatabase('fk_src');
    const targetUrl = await server.createDatabase('fk_dst');
    const ddl = `create table parent (id integer primary key, v text);
       create table child (id integer primary key, parent_id integer references parent (id), v text);`;
    await server.query('fk_src', ddl);
    // The target has the same foreign key, made beforehand (and a row of an earlier run the source no longer has).
    await server.query('fk_dst', ddl);
    await server.query('fk_dst', "insert into parent values (99, 'old'); insert into child values (99, 99, 'old')");
    await server.query(
      'fk_src',
      `insert into parent select g, 'p' || g from generate_series(1, 5) g;
       insert into child select g, g, 'c' || g from generate_series(1, 5) g`,
    );
    const source = `{ type: postgres, url: "${sourceUrl}", tables: [public.parent, public.child] }`;
    const target = `{ type: postgres, url: "${targetUrl}" }`;
    const run = start('fk', source, target);
    try {
      await expectEqual(run, sourceUrl, targetUrl, ['public.parent', 'public.child']);
      await server.query(
        'fk_src',
        `truncate parent, child; insert into parent values (7, 'after'); insert into child values (7, 7, 'after')`,
      );
      await expectEqual(run, sourceUrl, targetUrl, ['public.parent', 'public.child']);
    } finally {
      expect(await stop(run)).toBeNull();
    }
  });

  it('target triggers enabled for replication fire on replicated rows', async () => {
    const sourceUrl = await server.createDatabase('tg_src');
    const targetUrl = await server.createDatabase('tg_dst');
    await server.query('tg_src', 'create table events (id integer primary key, v text)');
    await server.query(
      'tg_dst',
      `create table events (id integer primary key, v text);
       create table audit (id integer, op text);
       create function audit_row() returns trigger language plpgsql as
         $$ begin insert into audit values (coalesce(new.id, old.id), tg_op); return null; end $$;
       create trigger events_audit after insert or update or delete on events for each row execute function audit_row();
       alter table events enable replica trigger events_audit`,
    );
    const run = start(
      'tg',
      `{ type: postgres, url: "${sourceUrl}", tables: [public.events] }`,
      `{ type: postgres, url: "${targetUrl}" }`,
    );
    try {
      // Net effects per batch reach the target (an insert and a delete of one row in one batch cancel out): wait between.
      await server.query('tg_src', "insert into events select g, 'e' || g from generate_series(1, 4) g");
      await expectEqual(run, sourceUrl, targetUrl, ['public.events']);
      await server.query('tg_src', 'delete from events where id = 4');
      await expectEqual(run, sourceUrl, targetUrl, ['public.events']);
    } finally {
      expect(await stop(run)).toBeNull();
    }
    const audit = await server.query<{ op: string; n: string }>(
      'tg_dst',
      'select op, count(*) as n from audit group by op order by op',
    );
    expect(audit).toEqual([
      { op: 'DELETE', n: '1' },
      { op: 'INSERT', n: '4' },
    ]);
  });

  it('a table with no columns replicates its rows', async () => {
    const sourceUrl = await server.createDatabase('nc_src');
    const targetUrl = await server.createDatabase('nc_dst');
    await server.query(
      'nc_src',
      `create table nocols (); alter table nocols replica identity full;
       insert into nocols default values; insert into nocols default values`,
    );
    const run = start(
      'nc',
      `{ type: postgres, url: "${sourceUrl}", tables: [public.nocols] }`,
      `{ type: postgres, url: "${targetUrl}" }`,
    );
    try {
      await expectEqual(run, sourceUrl, targetUrl, ['public.nocols']);
      await server.query('nc_src', 'insert into nocols default values; insert into nocols default values');
      await expectEqual(run, sourceUrl, targetUrl, ['public.nocols']);
      await server.query('nc_src', 'delete from nocols');
      await expectEqual(run, sourceUrl, targetUrl, ['public.nocols']);
    } finally {
      expect(await stop(run)).toBeNull();
    }
  });

  it('a REPLICA IDENTITY FULL table dropped before its changes are read stops nothing', async () => {
    const sourceUrl = await server.createDatabase('dr_src');
    const targetUrl = await server.createDatabase('dr_dst');
    await server.query(
      'dr_src',
      `create table gone (a integer primary key, b text); alter table gone replica identity full;
       create table stays (id integer primary key, v text);
       insert into gone values (1, 'x'), (2, 'y'); insert into stays values (1, 'a')`,
    );
    // Every table the user owns: a dropped table is simply no longer one of them.
    const source = `{ type: postgres, url: "${sourceUrl}" }`;
    const target = `{ type: postgres, url: "${targetUrl}" }`;
    const first = start('dr', source, target);
    try {
      await expectEqual(first, sourceUrl, targetUrl, ['public.gone', 'public.stays']);
    } finally {
      expect(await stop(first)).toBeNull();
    }
    // While stopped: changes to the table, then the table is dropped; the stream reads them after the drop.
    await server.query(
      'dr_src',
      `update gone set b = 'z' where a = 1; delete from gone where a = 2; insert into stays values (2, 'b');
       drop table gone; insert into stays values (3, 'c')`,
    );
    const second = start('dr', source, target);
    try {
      await expectEqual(second, sourceUrl, targetUrl, ['public.stays']);
      await server.query('dr_src', "update stays set v = 'later' where id = 1");
      await expectEqual(second, sourceUrl, targetUrl, ['public.stays']);
    } finally {
      expect(await stop(second)).toBeNull();
    }
    // Its changes applied, then the drop, which empties the target table (docs/schema-changes.md).
    const gone = await server.query<{ a: number; b: string }>('dr_dst', 'select a, b from gone order by a');
    expect(gone).toEqual([]);
  });

  it('a FOR ALL TABLES publication with a partitioned table: followed under the partitioned table, or refused with the fix', async () => {
    const sourceUrl = await server.createDatabase('pa_src');
    const targetUrl = await server.createDatabase('pa_dst');
    await server.query(
      'pa_src',
      `create table meas (id integer, at date, v integer, primary key (id, at)) partition by range (at);
       create table meas_2024 partition of meas for values from ('2024-01-01') to ('2025-01-01');
       create table meas_2025 partition of meas for values from ('2025-01-01') to ('2026-01-01');
       insert into meas values (1, '2024-05-01', 1), (2, '2025-05-01', 2);
       create publication tributary_pa for all tables`,
    );
    const source = `{ type: postgres, url: "${sourceUrl}", tables: [public.meas] }`;
    const target = `{ type: postgres, url: "${targetUrl}" }`;
    const checked = await validate('pa', source, target);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toContain('publish_via_partition_root');
    const refused = start('pa', source, target);
    const failure = await refused.ended;
    expect(String((failure as Error).message)).toContain('publish_via_partition_root');
    // The fix as printed, then the pipeline follows the partitioned table.
    await server.query('pa_src', 'alter publication tributary_pa set (publish_via_partition_root = true)');
    const run = start('pa', source, target);
    try {
      await expectEqual(run, sourceUrl, targetUrl, ['public.meas']);
      await server.query('pa_src', "insert into meas values (3, '2024-07-01', 3); update meas set v = 20 where id = 2");
      await expectEqual(run, sourceUrl, targetUrl, ['public.meas']);
    } finally {
      expect(await stop(run)).toBeNull();
    }
  });

  it('a target user that may not enter replica mode stops once on a replica trigger, and runs once granted', async () => {
    const sourceUrl = await server.createDatabase('rr_src');
    const targetUrl = await server.createDatabase('rr_dst');
    await server.query(
      'rr_src',
      "create table events (id integer primary key, v text); insert into events values (1, 'a')",
    );
    await server.query(
      'rr_dst',
      `do $$ begin if not exists (select from pg_roles where rolname = 'applier') then create role applier login; end if; end $$;
       grant create on database rr_dst to applier;
       create table events (id integer primary key, v text);
       create table audit (id integer);
       grant all on events, audit to applier;
       create function audit_row() returns trigger language plpgsql as $$ begin insert into audit values (new.id); return null; end $$;
       create trigger events_audit after insert on events for each row execute function audit_row();
       alter table events enable replica trigger events_audit`,
    );
    const target = new URL(targetUrl);
    target.username = 'applier';
    target.password = '';
    const source = `{ type: postgres, url: "${sourceUrl}", tables: [public.events] }`;
    const targetYaml = `{ type: postgres, url: "${target.toString()}" }`;
    const refused = start('rr', source, targetYaml);
    const failure = (await refused.ended) as Error & { hint?: string };
    expect(failure?.message).toContain('enabled for replication only');
    expect(failure?.hint).toContain('GRANT SET ON PARAMETER session_replication_role');
    // What the hint says, then the same pipeline runs and the trigger fires.
    await server.query('rr_dst', 'grant set on parameter session_replication_role to applier');
    const run = start('rr', source, targetYaml);
    try {
      await expectEqual(run, sourceUrl, targetUrl, ['public.events']);
    } finally {
      expect(await stop(run)).toBeNull();
    }
    expect(await server.query('rr_dst', 'select id from audit')).toEqual([{ id: 1 }]);
  });
});
