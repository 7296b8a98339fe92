/**
 * Event-by-event comparison of our records with Debezium's, per topic in order: key, before, after, op, every
 * source field, ts_ms/ts_us/ts_ns, transaction and the schema block.
 *
 * Values that legitimately differ per run are compared by shape and consistency instead of exactly: processing
 * times (ts_ms/ts_us/ts_ns at the top level), and in snapshot reads the snapshot's own time, transaction and LSN
 * (each side took its own snapshot from its own slot). Streamed changes come from the same WAL, so their LSNs,
 * transaction ids and commit times must be equal.
 */
import { type ExactJson, exactText, JsonNumber, parseExact } from './exact-json.ts';

/** One record as written to a topic (key and value JSON text; null value: tombstone). */
export interface TopicRecord {
  destination: string;
  key: string | null;
  value: string | null;
}

export interface Difference {
  topic: string;
  /** Index of the record within its topic. */
  index: number;
  /** Path inside the record: `key`, `value.after.n`, `value.source.txId`, `schema.value...`. */
  path: string;
  debezium: string;
  tributary: string;
}

/** A difference we keep on purpose (docs/event-format.md lists each with its reason). */
export interface KnownDifference {
  id: string;
  reason: string;
  matches(d: Difference): boolean;
}

const ABSENT = '(absent)';

export function compareTopics(debezium: TopicRecord[], ours: TopicRecord[]): Difference[] {
  const out: Difference[] = [];
  const byTopic = (records: TopicRecord[]) => {
    const m = new Map<string, TopicRecord[]>();
    for (const r of records) {
      const list = m.get(r.destination) ?? [];
      list.push(r);
      m.set(r.destination, list);
    }
    return m;
  };
  const d = byTopic(debezium);
  const t = byTopic(ours);
  for (const topic of new Set([...d.keys(), ...t.keys()])) {
    const a = d.get(topic) ?? [];
    const b = t.get(topic) ?? [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const x = a[i];
      const y = b[i];
      if (!x || !y) {
        out.push({
          topic,
          index: i,
          path: 'record',
          debezium: x ? `${x.key} ${x.value?.slice(0, 200)}` : ABSENT,
          tributary: y ? `${y.key} ${y.value?.slice(0, 200)}` : ABSENT,
        });
        continue;
      }
      compareRecord(topic, i, x, y, out);
    }
  }
  return out;
}

function split(text: string | null): { schema: ExactJson | undefined; payload: ExactJson } {
  if (text === null) return { schema: undefined, payload: null };
  const v = parseExact(text);
  if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof JsonNumber) && 'schema' in v && 'payload' in v)
    return { schema: v.schema, payload: v.payload! };
  return { schema: undefined, payload: v };
}

function compareRecord(topic: string, index: number, x: TopicRecord, y: TopicRecord, out: Difference[]): void {
  const add = (path: string, a: ExactJson | undefined, b: ExactJson | undefined) =>
    out.push({
      topic,
      index,
      path,
      debezium: a === undefined ? ABSENT : exactText(a),
      tributary: b === undefined ? ABSENT : exactText(b),
    });
  const dk = split(x.key);
  const tk = split(y.key);
  deepCompare('key', dk.payload, tk.payload, add);
  deepCompare('schema.key', dk.schema, tk.schema, add);
  const dv = split(x.value);
  const tv = split(y.value);
  deepCompare('schema.value', dv.schema, tv.schema, add);
  if (!isObject(dv.payload) || !isObject(tv.payload)) {
    deepCompare('value', dv.payload, tv.payload, add);
    return;
  }
  const dp = dv.payload;
  const tp = tv.payload;
  const keys = [...new Set([...Object.keys(dp), ...Object.keys(tp)])];
  if (exactText(Object.keys(dp)) !== exactText(Object.keys(tp)))
    add('value.(field order)', Object.keys(dp), Object.keys(tp));
  const snapshot = isObject(dp.source) && dp.source.snapshot !== 'false' && dp.source.snapshot !== undefined;
  for (const k of keys) {
    const path = `value.${k}`;
    if (k === 'ts_ms' || k === 'ts_us' || k === 'ts_ns') {
      checkTimes(path, dp, add, 'debezium');
      checkTimes(path, tp, add, 'tributary');
      if (k in dp !== k in tp) add(path, dp[k], tp[k]);
      continue;
    }
    if (k === 'source' && isObject(dp.source) && isObject(tp.source)) {
      compareSource(dp.source, tp.source, snapshot, add);
      continue;
    }
    deepCompare(path, dp[k], tp[k], add);
  }
}

type Add = (path: string, a: ExactJson | undefined, b: ExactJson | undefined) => void;

function isObject(v: ExactJson | undefined): v is { [key: string]: ExactJson } {
  return !!v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof JsonNumber);
}

function num(v: ExactJson | undefined): bigint | null {
  return v instanceof JsonNumber && /^-?\d+$/.test(v.text) ? BigInt(v.text) : null;
}

/** ts_ms, ts_us and ts_ns of one object name the same instant (each finer one truncates to the coarser). */
function checkTimes(path: string, o: { [key: string]: ExactJson }, add: Add, side: 'debezium' | 'tributary'): void {
  const field = path.slice(path.lastIndexOf('.') + 1);
  const ms = num(o.ts_ms);
  const us = num(o.ts_us);
  const ns = num(o.ts_ns);
  const ok =
    field === 'ts_ms'
      ? ms !== null
      : field === 'ts_us'
        ? us !== null && ms !== null && us / 1000n === ms
        : ns !== null && us !== null && ns / 1000n === us;
  if (!ok)
    add(
      `${path} (${side}: inconsistent times)`,
      side === 'debezium' ? o[field] : undefined,
      side === 'tributary' ? o[field] : undefined,
    );
}

const SNAPSHOT_RUN_FIELDS = new Set(['ts_ms', 'ts_us', 'ts_ns', 'txId', 'lsn', 'sequence']);

function compareSource(
  d: { [key: string]: ExactJson },
  t: { [key: string]: ExactJson },
  snapshot: boolean,
  add: Add,
): void {
  if (exactText(Object.keys(d)) !== exactText(Object.keys(t)))
    add('value.source.(field order)', Object.keys(d), Object.keys(t));
  for (const k of new Set([...Object.keys(d), ...Object.keys(t)])) {
    const path = `value.source.${k}`;
    if (k === 'ts_us' || k === 'ts_ns') {
      checkTimes(path, d, add, 'debezium');
      checkTimes(path, t, add, 'tributary');
    }
    if (snapshot && SNAPSHOT_RUN_FIELDS.has(k)) {
      // Each side's own snapshot: same kind of value, not the same value.
      const kind = (v: ExactJson | undefined) =>
        v === undefined ? 'absent' : v instanceof JsonNumber ? 'number' : v === null ? 'null' : typeof v;
      if (kind(d[k]) !== kind(t[k])) add(`${path} (snapshot, kind)`, d[k], t[k]);
      continue;
    }
    deepCompare(path, d[k], t[k], add);
  }
}

function deepCompare(path: string, a: ExactJson | undefined, b: ExactJson | undefined, add: Add): void {
  if (a === undefined && b === undefined) return;
  if (a instanceof JsonNumber && b instanceof JsonNumber) {
    if (a.text === b.text) return;
    const x = Number(a.text);
    const y = Number(b.text);
    const integers = /^-?\d+$/.test(a.text) && /^-?\d+$/.test(b.text);
    // Floating-point numbers are equal when they are the same double, or the same float (float4 columns, printed
    // with Java's Float.toString on one side and PostgreSQL's shortest text on the other).
    if (integers ? BigInt(a.text) === BigInt(b.text) : x === y || Math.fround(x) === Math.fround(y)) return;
    add(path, a, b);
    return;
  }
  if (isObject(a) && isObject(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) deepCompare(`${path}.${k}`, a[k], b[k], add);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b) && isFieldList(a) && isFieldList(b)) {
    // Schema field lists: compared by field name, then their order.
    const byName = (list: ExactJson[]) => new Map(list.map((f) => [String((f as { field: string }).field), f]));
    const x = byName(a);
    const y = byName(b);
    for (const name of new Set([...x.keys(), ...y.keys()]))
      deepCompare(`${path}[${name}]`, x.get(name), y.get(name), add);
    const common = (list: string[], other: Map<string, ExactJson>) => list.filter((n) => other.has(n));
    const xo = common([...x.keys()], y);
    const yo = common([...y.keys()], x);
    if (exactText(xo) !== exactText(yo)) add(`${path}(order)`, xo, yo);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    for (let i = 0; i < a.length; i++) deepCompare(`${path}[${i}]`, a[i], b[i], add);
    return;
  }
  if (a === undefined || b === undefined || exactText(a) !== exactText(b)) add(path, a, b);
}

function isFieldList(list: ExactJson[]): boolean {
  return list.length > 0 && list.every((f) => isObject(f) && typeof f.field === 'string');
}

/** The differences no known difference explains. */
export function unexplained(differences: Difference[], known: KnownDifference[]): Difference[] {
  return differences.filter((d) => !known.some((k) => k.matches(d)));
}

export function formatDifferences(differences: Difference[]): string {
  return differences
    .map(
      (d) =>
        `${d.topic}#${d.index} ${d.path}: debezium ${d.debezium.slice(0, 300)} | tributary ${d.tributary.slice(0, 300)}`,
    )
    .join('\n');
}
