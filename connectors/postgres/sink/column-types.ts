/**
 * What the target needs to know about PostgreSQL type names: which source type strings are safe to put into DDL,
 * which type a value is cast to, and whether a target column holds every value of a source column exactly.
 * Type names here are PostgreSQL's `format_type` spellings (`character varying(20)`, `timestamp(3) with time zone`).
 */

/** Type names as PostgreSQL prints them: words, quoted identifiers, dots, typmods and array brackets. */
const TYPE_NAME =
  /^(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")(?:\.(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+"))?(?: [a-z]+)*(?:\(\d+(?:, ?-?\d+)?\))?(?: with(?:out)? time zone)?(?:\[\d*\])*$/;

export function isSafeTypeName(type: string): boolean {
  return TYPE_NAME.test(type.trim());
}

/**
 * The type a text value is cast to before it reaches a column, given the column's type without modifiers
 * (`format_type(oid, NULL)`): explicit casts with a length would truncate silently, so the length check is left
 * to the assignment. `bit` without a length means bit(1) in a cast, so bit strings go through `bit varying`.
 */
export function castTypeFor(baseType: string): string {
  if (baseType === 'bit') return 'bit varying';
  if (baseType === 'bit[]') return 'bit varying[]';
  if (baseType === 'character') return 'bpchar';
  if (baseType === 'character[]') return 'bpchar[]';
  return baseType;
}

interface ParsedType {
  base: string;
  mods: number[] | null;
  array: boolean;
}

function parse(type: string): ParsedType {
  let t = type.trim();
  const array = t.endsWith('[]');
  if (array) t = t.replace(/(\[\d*\])+$/, '');
  const m = /^([^(]*?)(?:\((\d+(?:,\s*-?\d+)?)\))?( with(?:out)? time zone)?$/.exec(t);
  if (!m) return { base: t, mods: null, array };
  const base = `${m[1]!.trim()}${m[3] ?? ''}`;
  const mods = m[2] ? m[2].split(',').map((s) => Number(s.trim())) : null;
  return { base, mods, array };
}

const INT_RANK: Record<string, number> = { smallint: 1, integer: 2, bigint: 3, numeric: 4 };
const TIME_TYPES = new Set([
  'timestamp without time zone',
  'timestamp with time zone',
  'time without time zone',
  'time with time zone',
  'interval',
]);

/**
 * True when every value of `source` keeps its exact text in a `target` column (equal types, or a wider target:
 * smallint -> integer -> bigint -> numeric, varchar(n) -> varchar(m >= n) -> text, timestamp(3) -> timestamp, ...).
 */
export function holdsExactly(source: string, target: string): boolean {
  if (source === target) return true;
  const s = parse(source);
  const t = parse(target);
  if (!t.array && t.base === 'text') return true;
  if (s.array || t.array) {
    return s.array && t.array && holdsExactly(source.replace(/(\[\d*\])+$/, ''), target.replace(/(\[\d*\])+$/, ''));
  }
  if (s.base === 'numeric' && t.base === 'numeric') {
    if (t.mods === null) return true;
    if (s.mods === null) return false;
    const [sp = 0, ss = 0] = s.mods;
    const [tp = 0, ts = 0] = t.mods;
    return ts === ss && tp >= sp;
  }
  // integers and unconstrained numeric
  const sr = INT_RANK[s.base];
  const tr = INT_RANK[t.base];
  if (sr !== undefined && tr !== undefined) {
    if (t.base === 'numeric') return t.mods === null;
    if (s.base === 'numeric') return false;
    return tr >= sr;
  }
  if ((s.base === 'character varying' || s.base === 'text') && t.base === 'character varying') {
    if (t.mods === null) return true;
    if (s.base === 'text' || s.mods === null) return false;
    return t.mods[0]! >= s.mods[0]!;
  }
  if (s.base === 'bit varying' && t.base === 'bit varying') {
    return t.mods === null || (s.mods !== null && t.mods[0]! >= s.mods[0]!);
  }
  if (TIME_TYPES.has(s.base) && s.base === t.base) {
    const sp = s.mods?.[0] ?? 6;
    const tp = t.mods?.[0] ?? 6;
    return tp >= sp;
  }
  if (s.base === 'real' && t.base === 'double precision') return true;
  return false;
}
