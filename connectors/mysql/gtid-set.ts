/**
 * A MySQL GTID set (`uuid:1-5:11-18,uuid2:1-27`, with MySQL 8.3+ tags as `uuid:1-5:tag:1-2`): which transactions of
 * each source server are executed. Sequence numbers go up to 2^63-1, so intervals are BigInts.
 */
type Interval = [bigint, bigint];

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const TAG = /^[a-z_][a-z0-9_]{0,31}$/i;

function normalUuid(text: string, whole: string): string {
  const t = text.trim().toLowerCase();
  if (!UUID.test(t)) throw new Error(`not a MySQL GTID set: ${whole}`);
  const hex = t.replace(/-/g, '');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class MysqlGtidSet {
  /** `uuid` or `uuid:tag` -> sorted, coalesced inclusive intervals. */
  private readonly sources = new Map<string, Interval[]>();

  static parse(text: string): MysqlGtidSet {
    const set = new MysqlGtidSet();
    for (const entry of text.replace(/\s/g, '').split(',')) {
      if (!entry) continue;
      const [uuidText, ...items] = entry.split(':');
      const uuid = normalUuid(uuidText!, text);
      let source = uuid;
      for (const item of items) {
        if (TAG.test(item)) {
          source = `${uuid}:${item.toLowerCase()}`;
          continue;
        }
        const m = /^(\d+)(?:-(\d+))?$/.exec(item);
        if (!m) throw new Error(`not a MySQL GTID set: ${text}`);
        const start = BigInt(m[1]!);
        const end = m[2] === undefined ? start : BigInt(m[2]);
        if (start < 1n || end < start) throw new Error(`not a MySQL GTID set: ${text}`);
        set.addInterval(source, start, end);
      }
    }
    return set;
  }

  /** Adds one transaction, `uuid:n` or `uuid:tag:n`. */
  add(gtid: string): void {
    const parts = gtid.trim().split(':');
    if (parts.length < 2 || parts.length > 3) throw new Error(`not a MySQL GTID: ${gtid}`);
    const uuid = normalUuid(parts[0]!, gtid);
    const source = parts.length === 3 ? `${uuid}:${parts[1]!.toLowerCase()}` : uuid;
    const n = BigInt(parts[parts.length - 1]!);
    this.addInterval(source, n, n);
  }

  private addInterval(source: string, start: bigint, end: bigint): void {
    const list = this.sources.get(source) ?? [];
    list.push([start, end]);
    list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const merged: Interval[] = [];
    for (const iv of list) {
      const last = merged[merged.length - 1];
      if (last && iv[0] <= last[1] + 1n) {
        if (iv[1] > last[1]) last[1] = iv[1];
      } else merged.push([iv[0], iv[1]]);
    }
    this.sources.set(source, merged);
  }

  isEmpty(): boolean {
    return this.sources.size === 0;
  }

  /** The transactions of this set that `other` lacks. */
  minus(other: MysqlGtidSet): MysqlGtidSet {
    const out = new MysqlGtidSet();
    for (const [source, intervals] of this.sources) {
      const theirs = other.sources.get(source) ?? [];
      for (const [s, e] of intervals) {
        let from = s;
        for (const [ts, te] of theirs) {
          if (te < from || ts > e) continue;
          if (ts > from) out.addInterval(source, from, ts - 1n);
          from = te + 1n;
          if (from > e) break;
        }
        if (from <= e) out.addInterval(source, from, e);
      }
    }
    return out;
  }

  /** Every transaction of this set is in `other`. */
  isSubsetOf(other: MysqlGtidSet): boolean {
    return this.minus(other).isEmpty();
  }

  toString(): string {
    const byUuid = new Map<string, string[]>();
    const keys = [...this.sources.keys()].sort();
    for (const key of keys) {
      const [uuid, tag] = key.split(':') as [string, string | undefined];
      const text = this.sources
        .get(key)!
        .map(([s, e]) => (s === e ? `${s}` : `${s}-${e}`))
        .join(':');
      const parts = byUuid.get(uuid) ?? [];
      // Untagged intervals come first (the key without a tag sorts first).
      parts.push(tag ? `${tag}:${text}` : text);
      byUuid.set(uuid, parts);
    }
    return [...byUuid.entries()].map(([uuid, parts]) => `${uuid}:${parts.join(':')}`).join(',');
  }
}

/**
 * A MariaDB GTID position (`0-1-100,1-2-7`: the last GTID per replication domain) as domain -> sequence number; null
 * when the text is not of that form or empty.
 */
export function mariadbGtidDomains(text: string): Map<string, bigint> | null {
  const out = new Map<string, bigint>();
  for (const part of text.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(p);
    if (!m) return null;
    const seq = BigInt(m[3]!);
    const prev = out.get(m[1]!);
    if (prev === undefined || prev < seq) out.set(m[1]!, seq);
  }
  return out.size === 0 ? null : out;
}

/** A MySQL GTID set, or null when the text is not one or holds no transaction. */
function mysqlGtidSet(text: string): MysqlGtidSet | null {
  try {
    const set = MysqlGtidSet.parse(text);
    return set.isEmpty() ? null : set;
  } catch {
    return null;
  }
}

/**
 * Whether a MySQL/MariaDB executed GTID set includes a transaction's GTID; undefined when either cannot be read or
 * they are of different flavors. MariaDB (`domain-server-seq`, one entry per domain): the set holds the last
 * sequence number per domain, and a GTID is included when its domain's entry has a sequence number at or above its
 * own, whatever server wrote it (MariaDB's own `gtid_slave_pos` semantics). MySQL (`uuid[:tag]:1-5:7,...`): the GTID's
 * number lies in one of its source id's intervals.
 */
export function gtidCovers(gtidSet: string, gtid: string): boolean | undefined {
  const maria = mariadbGtidDomains(gtid);
  if (maria) {
    const set = mariadbGtidDomains(gtidSet);
    if (!set || maria.size !== 1) return undefined;
    const [[domain, seq]] = [...maria] as [[string, bigint]];
    const have = set.get(domain);
    return have !== undefined && have >= seq;
  }
  if (!/^[^,]*:\d+$/.test(gtid.trim())) return undefined;
  const one = mysqlGtidSet(gtid);
  const set = mysqlGtidSet(gtidSet);
  if (!one || !set) return undefined;
  return one.isSubsetOf(set);
}

/** Whether executed GTID set `outer` includes all of `inner` (see `gtidCovers`); undefined when unreadable. */
export function gtidSetCovers(outer: string, inner: string): boolean | undefined {
  const innerMaria = mariadbGtidDomains(inner);
  const outerMaria = mariadbGtidDomains(outer);
  if (innerMaria && outerMaria) {
    for (const [domain, seq] of innerMaria) {
      const have = outerMaria.get(domain);
      if (have === undefined || have < seq) return false;
    }
    return true;
  }
  if (innerMaria || outerMaria) return undefined;
  const a = mysqlGtidSet(outer);
  const b = mysqlGtidSet(inner);
  if (!a || !b) return undefined;
  return b.isSubsetOf(a);
}
