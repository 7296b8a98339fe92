import { TributaryError } from '../errors.ts';
import { sqlString } from './dialect.ts';
import { canonicalJson, jsonEquivalent } from './json-equivalence.ts';
import type { SidePlan, TablePlan } from './plan.ts';
import type { Difference, KeyValue } from './types.ts';

/** Tuning of the range comparison; the defaults suit tables from a few rows to hundreds of millions. */
export interface CompareOptions {
  /** Most differences listed per table. */
  maxDiffs: number;
  /** Rows per top-level key range (one query per range and side). */
  rangeRows?: number;
  /** A differing range with at most this many rows on each side is compared key by key. */
  leafRows?: number;
  /** Sub-ranges a differing range is split into. */
  fanout?: number;
  onProgress?(done: number, total: number): void;
}

export interface CompareResult {
  sourceRows: number;
  targetRows: number;
  ranges: number;
  differingRanges: number;
  differences: Difference[];
  truncated: boolean;
}

/** lo < key <= hi; an absent bound is open. */
interface Range {
  lo?: KeyValue;
  hi?: KeyValue;
}

interface Digest {
  n: number;
  s: bigint;
}

const same = (a: Digest, b: Digest) => a.n === b.n && a.s === b.s;

function where(side: SidePlan, range: Range): string {
  const conds: string[] = [];
  const lits = (k: KeyValue) => k.map((v, i) => side.keyLiteral(i, v));
  if (range.lo) conds.push(side.dialect.tupleCompare(side.keyOrder, lits(range.lo), '>'));
  if (range.hi) conds.push(side.dialect.tupleCompare(side.keyOrder, lits(range.hi), '<='));
  return conds.length ? conds.join(' AND ') : '1 = 1';
}

async function digest(side: SidePlan, range: Range): Promise<Digest> {
  const rows = await side.db.query(
    `SELECT ${side.dialect.countAndSum('h')} FROM (SELECT ${side.hash} AS h FROM ${side.from} WHERE ${where(side, range)}) x`,
  );
  return { n: Number(rows[0]!.n), s: BigInt(rows[0]!.s ?? '0') };
}

const keyAliases = (side: SidePlan) => side.keyCanon.map((_, i) => `k${i}`);
const keyOf = (row: Record<string, string | null>, n: number): KeyValue =>
  Array.from({ length: n }, (_, i) => row[`k${i}`] ?? '');

/** Every `every`-th key of the range in key order: split points computed by the database (row_number). */
async function splitPoints(side: SidePlan, range: Range, every: number): Promise<KeyValue[]> {
  const keys = side.keyCanon.map((e, i) => `${e} AS k${i}`).join(', ');
  const rows = await side.db.query(
    `SELECT ${keyAliases(side).join(', ')} FROM (SELECT ${keys}, ROW_NUMBER() OVER (ORDER BY ${side.keyOrder.join(', ')}) AS rn
       FROM ${side.from} WHERE ${where(side, range)}) x WHERE rn % ${every} = 0 ORDER BY rn`,
  );
  return rows.map((r) => keyOf(r, side.keyCanon.length));
}

function splitRange(range: Range, points: KeyValue[]): Range[] {
  const out: Range[] = [];
  let lo = range.lo;
  for (const p of points) {
    out.push({ lo, hi: p });
    lo = p;
  }
  out.push({ lo, hi: range.hi });
  return out;
}

async function leafRows(side: SidePlan, range: Range): Promise<{ key: KeyValue; h: string }[]> {
  const keys = side.keyCanon.map((e, i) => `${e} AS k${i}`).join(', ');
  const rows = await side.db.query(
    `SELECT ${keys}, ${side.hash} AS h FROM ${side.from} WHERE ${where(side, range)} ORDER BY ${side.keyOrder.join(', ')}`,
  );
  return rows.map((r) => ({ key: keyOf(r, side.keyCanon.length), h: r.h! }));
}

async function valuesByKey(side: SidePlan, keys: KeyValue[]): Promise<Map<string, (string | null)[]>> {
  const out = new Map<string, (string | null)[]>();
  if (keys.length === 0 || side.values.length === 0) return out;
  const conds = keys.map(
    (k) => `(${side.keyOrder.map((e, i) => `${e} = ${side.keyLiteral(i, k[i]!)}`).join(' AND ')})`,
  );
  const rows = await side.db.query(
    `SELECT ${side.keyCanon.map((e, i) => `${e} AS k${i}`).join(', ')}, ${side.values.map((v, i) => `${v} AS v${i}`).join(', ')}
       FROM ${side.from} WHERE ${conds.join(' OR ')}`,
  );
  for (const r of rows)
    out.set(
      JSON.stringify(keyOf(r, side.keyCanon.length)),
      side.values.map((_, i) => r[`v${i}`] ?? null),
    );
  return out;
}

/** Whether column `i` holds the same value on both sides: the same canonical text, or the same JSON value. */
function sameValue(plan: TablePlan, i: number, a: string | null, b: string | null): boolean {
  if (a === b) return true;
  return a !== null && b !== null && plan.jsonColumns[i] === true && jsonEquivalent(a, b);
}

/** Drops rows listed as different whose only differences are JSON texts of the same value. */
async function withoutSameJson(
  plan: TablePlan,
  diffs: { kind: Difference['kind']; key: KeyValue }[],
): Promise<{ kind: Difference['kind']; key: KeyValue }[]> {
  if (!plan.jsonColumns.includes(true)) return diffs;
  const keys = diffs.filter((d) => d.kind === 'different').map((d) => d.key);
  const [sv, tv] = await Promise.all([valuesByKey(plan.source, keys), valuesByKey(plan.target, keys)]);
  return diffs.filter((d) => {
    if (d.kind !== 'different') return true;
    const a = sv.get(JSON.stringify(d.key));
    const b = tv.get(JSON.stringify(d.key));
    if (!a || !b) return true;
    return !plan.columns.every((_, i) => sameValue(plan, i, a[i] ?? null, b[i] ?? null));
  });
}

/**
 * Differences of two ordered leaf listings, in key order: rows missing at the target and rows whose hashes differ
 * at their source position, rows only at the target after the source row that precedes them at the target.
 */
export function diffLeaf(
  src: { key: KeyValue; h: string }[],
  tgt: { key: KeyValue; h: string }[],
  compare?: (a: KeyValue, b: KeyValue) => number,
): { kind: Difference['kind']; key: KeyValue }[] {
  const tmap = new Map(tgt.map((r) => [JSON.stringify(r.key), r.h]));
  const spos = new Map(src.map((r, i) => [JSON.stringify(r.key), i]));
  const out: { pos: number; sub: number; kind: Difference['kind']; key: KeyValue }[] = [];
  src.forEach((r, i) => {
    const h = tmap.get(JSON.stringify(r.key));
    if (h === undefined) out.push({ pos: i, sub: 0, kind: 'missing_at_target', key: r.key });
    else if (h !== r.h) out.push({ pos: i, sub: 0, kind: 'different', key: r.key });
  });
  let last = -1;
  let sub = 0;
  for (const r of tgt) {
    const i = spos.get(JSON.stringify(r.key));
    if (i !== undefined) {
      last = i;
      sub = 0;
    } else out.push({ pos: last, sub: ++sub, kind: 'extra_at_target', key: r.key });
  }
  out.sort(compare ? (a, b) => compare(a.key, b.key) : (a, b) => a.pos - b.pos || a.sub - b.sub);
  return out.map(({ kind, key }) => ({ kind, key }));
}

/** Compares a table with a primary key: counts, per-range hashes, bisection of differing ranges down to keys. */
export async function compareKeyed(plan: TablePlan, options: CompareOptions): Promise<CompareResult> {
  const rangeRows = options.rangeRows ?? 25_000;
  const leafLimit = options.leafRows ?? 2_000;
  const fanout = options.fanout ?? 16;
  const { source, target } = plan;

  const count = async (s: SidePlan) => Number((await s.db.query(`SELECT COUNT(*) AS n FROM ${s.from}`))[0]!.n);
  const [sourceRows, targetRows] = await Promise.all([count(source), count(target)]);
  const top =
    sourceRows > rangeRows
      ? splitRange({}, await splitPoints(source, {}, Math.ceil(sourceRows / Math.ceil(sourceRows / rangeRows))))
      : [{}];

  const differing: { range: Range; s: Digest; t: Digest }[] = [];
  let done = 0;
  for (const range of top) {
    const [s, t] = await Promise.all([digest(source, range), digest(target, range)]);
    if (!same(s, t)) differing.push({ range, s, t });
    options.onProgress?.(++done, top.length);
  }

  const found: { kind: Difference['kind']; key: KeyValue }[] = [];
  let truncated = false;
  const full = () => found.length >= options.maxDiffs;

  const bisect = async (range: Range, s: Digest, t: Digest): Promise<void> => {
    if (full()) {
      truncated = true;
      return;
    }
    const larger = s.n >= t.n ? source : target;
    const most = Math.max(s.n, t.n);
    if (most > leafLimit) {
      const points = await splitPoints(larger, range, Math.ceil(most / fanout));
      if (points.length > 0) {
        for (const sub of splitRange(range, points)) {
          const [ss, tt] = await Promise.all([digest(source, sub), digest(target, sub)]);
          if (!same(ss, tt)) await bisect(sub, ss, tt);
          if (full()) {
            truncated = true;
            return;
          }
        }
        return;
      }
    }
    const [sl, tl] = await Promise.all([leafRows(source, range), leafRows(target, range)]);
    const listed = diffLeaf(sl, tl, plan.keyCompare);
    const diffs = await withoutSameJson(plan, listed);
    sameJsonRows += listed.length - diffs.length;
    const room = options.maxDiffs - found.length;
    if (diffs.length > room) truncated = true;
    found.push(...diffs.slice(0, room));
  };
  // A differing range whose only differences were JSON texts of the same values is no difference.
  let sameJsonRows = 0;
  let explainedRanges = 0;
  for (const d of differing) {
    if (full()) {
      truncated = true;
      break;
    }
    const [foundBefore, sameBefore] = [found.length, sameJsonRows];
    await bisect(d.range, d.s, d.t);
    if (!full() && found.length === foundBefore && sameJsonRows > sameBefore) explainedRanges += 1;
  }
  const realDiffering = differing.length - explainedRanges;
  if (found.length === 0 && options.maxDiffs > 0 && realDiffering > 0) truncated = true;

  const differentKeys = found.filter((f) => f.kind === 'different').map((f) => f.key);
  const [sv, tv] = await Promise.all([valuesByKey(source, differentKeys), valuesByKey(target, differentKeys)]);
  const differences = found.map((f): Difference => {
    const key = Object.fromEntries(plan.key.map((k, i) => [k, f.key[i]!]));
    if (f.kind !== 'different') return { kind: f.kind, key };
    const a = sv.get(JSON.stringify(f.key));
    const b = tv.get(JSON.stringify(f.key));
    const columns = plan.columns.filter((_, i) => !sameValue(plan, i, a?.[i] ?? null, b?.[i] ?? null));
    return {
      kind: f.kind,
      key,
      columns,
      source: Object.fromEntries(columns.map((c) => [c, a?.[plan.columns.indexOf(c)] ?? null])),
      target: Object.fromEntries(columns.map((c) => [c, b?.[plan.columns.indexOf(c)] ?? null])),
    };
  });
  return { sourceRows, targetRows, ranges: top.length, differingRanges: realDiffering, differences, truncated };
}

/**
 * Compares a table without a key as a multiset of rows: total count and hash sum; when they differ, 256 buckets by
 * the first byte of the row hash, and within differing buckets the count of each row hash.
 */
export async function compareKeyless(plan: TablePlan, options: CompareOptions): Promise<CompareResult> {
  const { source, target } = plan;
  const inner = (s: SidePlan) => `(SELECT ${s.hash} AS h FROM ${s.from}) x`;
  const buckets = async (s: SidePlan) => {
    const rows = await s.db.query(
      `SELECT SUBSTR(h, 1, 2) AS b, ${s.dialect.countAndSum('h')} FROM ${inner(s)} GROUP BY SUBSTR(h, 1, 2)`,
    );
    return new Map(rows.map((r) => [r.b!, { n: Number(r.n), s: BigInt(r.s ?? '0') }]));
  };
  const [sb, tb] = await Promise.all([buckets(source), buckets(target)]);
  options.onProgress?.(1, 1);
  const total = (m: Map<string, Digest>) => [...m.values()].reduce((a, d) => a + d.n, 0);
  const names = [...new Set([...sb.keys(), ...tb.keys()])].sort();
  const empty: Digest = { n: 0, s: 0n };
  const differing = names.filter((b) => !same(sb.get(b) ?? empty, tb.get(b) ?? empty));

  // Each differing bucket holds at least one differing row: the first maxDiffs buckets are enough, in one scan per side.
  const wanted = differing.slice(0, Math.max(options.maxDiffs, 0));
  let truncated = wanted.length < differing.length;
  const counts = async (s: SidePlan) => {
    if (wanted.length === 0) return new Map<string, number>();
    const rows = await s.db.query(
      `SELECT h, COUNT(*) AS n FROM ${inner(s)} WHERE SUBSTR(h, 1, 2) IN (${wanted.map(sqlString).join(', ')}) GROUP BY h`,
    );
    return new Map(rows.map((r) => [r.h!, Number(r.n)]));
  };
  const [sc, tc] = await Promise.all([counts(source), counts(target)]);
  const found: { h: string; a: number; c: number }[] = [];
  for (const h of [...new Set([...sc.keys(), ...tc.keys()])].sort()) {
    const a = sc.get(h) ?? 0;
    const c = tc.get(h) ?? 0;
    if (a === c) continue;
    if (found.length >= options.maxDiffs) {
      truncated = true;
      break;
    }
    found.push({ h, a, c });
  }
  // The rows themselves, one scan per side for all listed hashes.
  const rowsOf = async (s: SidePlan, hashes: string[]) => {
    const out = new Map<string, Record<string, string | null>>();
    if (hashes.length === 0) return out;
    const rows = await s.db.query(
      `SELECT h, ${s.values.map((_, i) => `v${i}`).join(', ')} FROM (SELECT ${s.hash} AS h, ${s.values.map((v, i) => `${v} AS v${i}`).join(', ')}
         FROM ${s.from}) x WHERE h IN (${hashes.map(sqlString).join(', ')})`,
    );
    for (const r of rows) out.set(r.h!, Object.fromEntries(plan.columns.map((col, i) => [col, r[`v${i}`] ?? null])));
    return out;
  };
  const [sr, tr] = await Promise.all([
    rowsOf(
      source,
      found.filter((f) => f.a > 0).map((f) => f.h),
    ),
    rowsOf(
      target,
      found.filter((f) => f.a === 0).map((f) => f.h),
    ),
  ]);
  const rowOf = (f: { h: string; a: number }) => (f.a > 0 ? sr.get(f.h) : tr.get(f.h)) ?? {};
  const { merged, groups } = sameJsonRows(plan, found, rowOf);
  if (merged.size > 0 && truncated) {
    throw new TributaryError(
      'operator',
      `more than ${options.maxDiffs} rows of this keyless table differ, some only in how their JSON is written: verify cannot tell whether the rest do too`,
      { hint: 'Raise --max-diffs above the number of rows, or give the table a primary key.' },
    );
  }
  const differences: Difference[] = [...found.filter((f) => !merged.has(f.h)), ...groups]
    .sort((x, y) => (x.h < y.h ? -1 : 1))
    .map((f) => ({
      kind: f.a > f.c ? 'missing_at_target' : 'extra_at_target',
      source_count: f.a,
      target_count: f.c,
      ...(f.a > 0 ? { source: rowOf(f) } : { target: rowOf(f) }),
    }));
  return {
    sourceRows: total(sb),
    targetRows: total(tb),
    ranges: names.length,
    differingRanges: differences.length === 0 && !truncated ? 0 : differing.length,
    differences,
    truncated,
  };
}

/**
 * Keyless rows whose hashes differ only because their JSON is written differently: rows with the same values (JSON
 * compared as values) are one group, counted together. Returns the hashes merged into groups, and each group that
 * still differs in count as one entry.
 */
function sameJsonRows(
  plan: TablePlan,
  found: { h: string; a: number; c: number }[],
  rowOf: (f: { h: string; a: number }) => Record<string, string | null>,
): { merged: Set<string>; groups: { h: string; a: number; c: number }[] } {
  const merged = new Set<string>();
  const groups: { h: string; a: number; c: number }[] = [];
  if (!plan.jsonColumns.includes(true)) return { merged, groups };
  const signature = (row: Record<string, string | null>) =>
    JSON.stringify(
      plan.columns.map((column, i) => {
        const value = row[column] ?? null;
        return value !== null && plan.jsonColumns[i] ? (canonicalJson(value) ?? value) : value;
      }),
    );
  const bySignature = new Map<string, { h: string; a: number; c: number }[]>();
  for (const f of found) {
    const key = signature(rowOf(f));
    bySignature.set(key, [...(bySignature.get(key) ?? []), f]);
  }
  for (const members of bySignature.values()) {
    if (members.length < 2) continue;
    for (const m of members) merged.add(m.h);
    const a = members.reduce((sum, m) => sum + m.a, 0);
    const c = members.reduce((sum, m) => sum + m.c, 0);
    if (a !== c) groups.push({ h: (members.find((m) => m.a > 0) ?? members[0]!).h, a, c });
  }
  return { merged, groups };
}
