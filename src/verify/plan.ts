import { TributaryError } from '../errors.ts';
import type { Db } from './db.ts';
import type { Dialect } from './dialect.ts';
import { type ColumnDef, type KeyValue, type Kind, type TableDef, tableLabel } from './types.ts';

/** One side of a table comparison: where the rows are and the SQL expressions over them. */
export interface SidePlan {
  db: Db;
  dialect: Dialect;
  def: TableDef;
  /** Quoted table name. */
  from: string;
  /** SHA-256 (hex) of the row's canonical text. */
  hash: string;
  /** Canonical text of each key column (listed, and cast back into literals on either side). */
  keyCanon: string[];
  /** What the key range predicates and the ordering compare. */
  keyOrder: string[];
  keyLiteral(index: number, value: string): string;
  /** Canonical text (null stays null) of every compared column, in `columns` order. */
  values: string[];
}

export interface TablePlan {
  source: SidePlan;
  target: SidePlan;
  /** Compared columns (source order). */
  columns: string[];
  /** Primary-key columns of the source; empty: compared as a multiset of rows. */
  key: string[];
  loose: string[];
  /**
   * Per compared column: whether both sides render it as JSON text across engines, so differing texts may still be
   * the same value (compared as JSON before a row counts as different).
   */
  jsonColumns: boolean[];
  /** Source columns missing at the target: a difference by itself. */
  missingColumns: string[];
  notes: string[];
  /** The key order of the range predicates, when Node can reproduce it (integers, byte order); for listing. */
  keyCompare?: (a: KeyValue, b: KeyValue) => number;
}

const BYTE_ORDERED_TEXT: ReadonlySet<Kind> = new Set(['date', 'timestamp', 'timestamptz', 'bytes', 'bool']);

/** Compares canonical key values the way the range predicates order them, or undefined when Node cannot. */
function keyComparer(kinds: [Kind, Kind][], binary: boolean[]): ((a: KeyValue, b: KeyValue) => number) | undefined {
  const parts = kinds.map(([a, b], i) => {
    if (a === 'int' && b === 'int')
      return (x: string, y: string) => {
        const d = BigInt(x) - BigInt(y);
        return d < 0n ? -1 : d > 0n ? 1 : 0;
      };
    if (binary[i] || (a === b && BYTE_ORDERED_TEXT.has(a)))
      return (x: string, y: string) => Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8'));
    return undefined;
  });
  if (parts.some((p) => !p)) return undefined;
  return (a, b) => {
    for (let i = 0; i < parts.length; i++) {
      const c = parts[i]!(a[i]!, b[i]!);
      if (c !== 0) return c;
    }
    return 0;
  };
}

const ORDER_SAFE: ReadonlySet<Kind> = new Set(['int', 'decimal', 'date', 'timestamp', 'timestamptz', 'bool', 'bytes']);

/**
 * The kind each side renders a column pair as. Across engines some pairs meet in the middle: tinyint(1) and boolean
 * as t/f, json and text as json without whitespace, float and decimal rounded to 6 decimal places.
 */
export function pairKinds(a: ColumnDef, b: ColumnDef, cross: boolean): [Kind, Kind] {
  if (!cross || a.kind === b.kind) return [a.kind, b.kind];
  const has = (k: Kind) => a.kind === k || b.kind === k;
  if (has('bool') && ((a.kind === 'bool' && b.maybeBool) || (b.kind === 'bool' && a.maybeBool)))
    return ['bool', 'bool'];
  if (has('json') && (has('text') || has('array'))) return ['json', 'json'];
  if (has('time') && has('interval')) return ['time', 'time'];
  if (has('float') && (has('decimal') || has('int'))) return ['float', 'float'];
  return [a.kind, b.kind];
}

function looseKinds(a: Kind, b: Kind, cross: boolean): boolean {
  if (!cross) return false;
  return a === 'float' || a === 'json' || a === 'other' || b === 'other';
}

export function planTable(
  src: { db: Db; dialect: Dialect; def: TableDef },
  tgt: { db: Db; dialect: Dialect; def: TableDef },
): TablePlan {
  const cross = src.dialect.engine !== tgt.dialect.engine;
  const tgtByName = new Map(tgt.def.columns.map((c) => [c.name, c]));
  const srcNames = new Set(src.def.columns.map((c) => c.name));
  const pairs: { s: ColumnDef; t: ColumnDef; kinds: [Kind, Kind] }[] = [];
  const missingColumns: string[] = [];
  const loose: string[] = [];
  for (const s of src.def.columns) {
    const t = tgtByName.get(s.name);
    if (!t) {
      missingColumns.push(s.name);
      continue;
    }
    const kinds = pairKinds(s, t, cross);
    if (looseKinds(kinds[0], kinds[1], cross)) loose.push(s.name);
    pairs.push({ s, t, kinds });
  }
  const notes = missingColumns.map((c) => `column ${c} is missing at the target`);
  const extra = tgt.def.columns.filter((c) => !srcNames.has(c.name)).map((c) => c.name);
  if (extra.length) notes.push(`columns only at the target (not compared): ${extra.join(', ')}`);

  const key = src.def.primaryKey;
  for (const k of key) {
    if (!tgtByName.has(k))
      throw new TributaryError(
        'operator',
        `${tableLabel(tgt.def.table)}: key column ${k} of ${tableLabel(src.def.table)} is missing at the target`,
        { hint: 'the target table must have every primary-key column of the source table' },
      );
  }
  const keyPairs = key.map((k) => pairs.find((p) => p.s.name === k)!);
  const binary = keyPairs.map((p) => {
    if (ORDER_SAFE.has(p.kinds[0]) && ORDER_SAFE.has(p.kinds[1])) return false;
    if (!cross && p.s.kind === p.t.kind && p.s.kind === 'uuid') return false;
    if (src.dialect.isByteOrdered(p.s) && tgt.dialect.isByteOrdered(p.t)) return false;
    return cross || (p.s.collation ?? '') !== (p.t.collation ?? '') || p.s.kind !== p.t.kind;
  });

  const side = (which: 0 | 1, at: { db: Db; dialect: Dialect; def: TableDef }): SidePlan => {
    const d = at.dialect;
    const col = (p: (typeof pairs)[number]) => (which === 0 ? p.s : p.t);
    const canon = (p: (typeof pairs)[number]) => d.canonical(d.quoteIdent(col(p).name), col(p), p.kinds[which], cross);
    const keyCanon = keyPairs.map(canon);
    return {
      db: at.db,
      dialect: d,
      def: at.def,
      from: d.quoteTable(at.def.table),
      hash: d.rowHash(pairs.map((p) => d.nullSafePiece(d.quoteIdent(col(p).name), canon(p)))),
      keyCanon,
      keyOrder: keyPairs.map((p, i) => d.keyOrderExpr(d.quoteIdent(col(p).name), col(p), keyCanon[i]!, binary[i]!)),
      keyLiteral: (i, value) => d.keyLiteral(value, col(keyPairs[i]!), keyPairs[i]!.kinds[which], binary[i]!),
      values: pairs.map((p) => {
        const ref = d.quoteIdent(col(p).name);
        return `CASE WHEN ${ref} IS NULL THEN NULL ELSE ${canon(p)} END`;
      }),
    };
  };
  return {
    source: side(0, src),
    target: side(1, tgt),
    columns: pairs.map((p) => p.s.name),
    key,
    loose,
    jsonColumns: pairs.map((p) => cross && p.kinds[0] === 'json' && p.kinds[1] === 'json'),
    missingColumns,
    notes,
    keyCompare: keyComparer(
      keyPairs.map((p) => p.kinds),
      binary,
    ),
  };
}
