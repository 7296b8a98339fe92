/**
 * The value that rows which existed before `ALTER TABLE ... ADD COLUMN` read for the new column, from
 * INFORMATION_SCHEMA.COLUMNS (`COLUMN_DEFAULT`, `IS_NULLABLE`, `EXTRA`), in the canonical text of docs/value-forms.md.
 * The server writes nothing to the binlog for those rows (MariaDB instant ADD COLUMN, MySQL 8 INSTANT, and table
 * rebuilds alike), so this is the only way a target can give them the source's value.
 */
import type mysql from 'mysql2/promise';
import type { ValueKind } from '../../../src/core/change-event.ts';
import { quoteIdent } from '../identifiers.ts';
import type { DeclaredDefault } from './ddl.ts';
import { float32ToString, float64ToString } from './values.ts';

export interface ColumnDefaultFact {
  name: string;
  /** Normalized type text (`int`, `decimal(6,2)`, `datetime(3)`, `enum('a','b')`...). */
  type: string;
  kind: ValueKind;
  nullable: boolean;
  /** COLUMN_DEFAULT as the server reports it (null: SQL NULL). */
  columnDefault: string | null;
  /** EXTRA (`auto_increment`, `STORED GENERATED`, MySQL `DEFAULT_GENERATED`...). */
  extra: string;
}

export type ExistingRowsValue =
  /** Existing rows read this value (null: NULL). */
  | { value: string | null }
  /** Each existing row, or the statement, got its own value (an expression, generated column, auto_increment). */
  | { volatile: string }
  /**
   * A constant the source gave those rows, but not one that converts reliably here; `catalog`: the catalog's value,
   * right unless the default changed after the column was added (taken where the table cannot be copied again).
   */
  | { unknown: string; catalog?: string | null };

/** Undoes the escapes of a MariaDB COLUMN_DEFAULT string literal (`'it''s \\ x'`, `'ab\0\0'`). */
export function unquoteMysqlString(literal: string): string {
  const q = literal[0]!;
  const body = literal.slice(1, -1);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === q && body[i + 1] === q) {
      out += q;
      i++;
    } else if (c === '\\' && i + 1 < body.length) {
      const d = body[++i]!;
      out += ESCAPES[d] ?? (d === '%' || d === '_' ? `\\${d}` : d);
    } else {
      out += c;
    }
  }
  return out;
}

const ESCAPES: Record<string, string> = { '0': '\0', b: '\b', n: '\n', r: '\r', t: '\t', Z: '\x1a' };

function fractionDigits(type: string): number {
  const m = /^\w+\((\d+)\)/.exec(type);
  return m ? Number(m[1]) : 0;
}

function scaleOf(type: string): number {
  const m = /^(?:decimal|numeric)\(\d+,(\d+)\)/.exec(type);
  return m ? Number(m[1]) : 0;
}

function withFraction(text: string, digits: number): string {
  const dot = text.indexOf('.');
  const whole = dot < 0 ? text : text.slice(0, dot);
  const frac = dot < 0 ? '' : text.slice(dot + 1);
  if (digits === 0) return whole;
  return `${whole}.${frac.padEnd(digits, '0').slice(0, digits)}`;
}

function enumLabels(type: string): string[] {
  const m = /^(?:enum|set)\((.*)\)$/s.exec(type);
  if (!m) return [];
  return [...m[1]!.matchAll(/'((?:[^']|'')*)'/g)].map((x) => x[1]!.replace(/''/g, "'"));
}

function bitWidth(type: string): number {
  const m = /^bit\((\d+)\)/.exec(type);
  return m ? Number(m[1]) : 1;
}

function binaryLength(type: string): number | null {
  const m = /^binary\((\d+)\)/.exec(type);
  return m ? Number(m[1]) : type === 'binary' ? 1 : null;
}

/** What a NOT NULL column added without a default holds in existing rows (the type's implicit default). */
function implicitDefault(f: ColumnDefaultFact): ExistingRowsValue {
  const frac = fractionDigits(f.type);
  switch (f.kind) {
    case 'int':
      return { value: f.type.startsWith('year') ? '0000' : '0' };
    case 'decimal':
      return { value: withFraction('0', scaleOf(f.type)) };
    case 'float':
      return { value: '0' };
    case 'bits':
      return { value: '0'.repeat(bitWidth(f.type)) };
    case 'text':
    case 'set':
      return { value: '' };
    case 'bytes': {
      const n = binaryLength(f.type);
      return { value: `\\x${'00'.repeat(n ?? 0)}` };
    }
    case 'enum': {
      const first = enumLabels(f.type)[0];
      return first === undefined ? { unknown: 'enum without labels' } : { value: first };
    }
    case 'date':
      return { value: '0000-00-00' };
    case 'timestamp':
      return { value: withFraction('0000-00-00 00:00:00', frac) };
    case 'timestamptz':
      return { value: `${withFraction('0000-00-00 00:00:00', frac)}+00` };
    case 'time':
      return { value: withFraction('00:00:00', frac) };
    case 'uuid':
      return { value: '00000000-0000-0000-0000-000000000000' };
    default:
      return { unknown: `no implicit value known for a ${f.type} column` };
  }
}

/** A constant default's text (already unquoted) in the canonical form of the column's kind. */
function constantValue(f: ColumnDefaultFact, text: string, quoted: boolean): ExistingRowsValue {
  const frac = fractionDigits(f.type);
  const bad = (): ExistingRowsValue => ({ unknown: `default ${text} of a ${f.type} column not understood` });
  switch (f.kind) {
    case 'int':
      if (!/^-?\d+$/.test(text)) return bad();
      if (f.type.startsWith('year') && /^0+$/.test(text)) return { value: '0000' };
      return { value: text.replace(/^(-?)0+(?=\d)/, '$1') };
    case 'decimal': {
      if (!/^-?\d+(\.\d+)?$/.test(text)) return bad();
      return { value: withFraction(text, scaleOf(f.type)) };
    }
    case 'float': {
      const n = Number(text);
      if (text.trim() === '' || Number.isNaN(n)) return bad();
      return { value: f.type.startsWith('float') ? float32ToString(Math.fround(n)) : float64ToString(n) };
    }
    case 'bits': {
      const m = /^b'([01]*)'$/i.exec(text);
      let bits: string;
      if (m) bits = m[1]!;
      else if (/^\d+$/.test(text)) bits = BigInt(text).toString(2);
      else return bad();
      const width = bitWidth(f.type);
      bits = bits.replace(/^0+(?=[01])/, '');
      if (bits.length > width) return bad();
      return { value: bits.padStart(width, '0') };
    }
    case 'bytes': {
      let buf: Buffer;
      if (!quoted && /^0x[0-9a-f]*$/i.test(text)) buf = Buffer.from(text.slice(2), 'hex');
      else buf = Buffer.from(text, 'utf8');
      const n = binaryLength(f.type);
      if (n !== null && buf.length < n) buf = Buffer.concat([buf, Buffer.alloc(n - buf.length)]);
      return { value: `\\x${buf.toString('hex')}` };
    }
    case 'text':
    case 'enum':
    case 'set':
    case 'json':
      return { value: text };
    case 'uuid':
      return /^[0-9a-f-]{32,36}$/i.test(text) ? { value: text.toLowerCase() } : bad();
    case 'date':
      return /^\d{4}-\d{2}-\d{2}$/.test(text) ? { value: text } : bad();
    case 'timestamp':
      return /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$/.test(text) ? { value: withFraction(text, frac) } : bad();
    case 'timestamptz':
      // INFORMATION_SCHEMA shows a TIMESTAMP default in the reading session's time zone; ours is UTC.
      return /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$/.test(text)
        ? { value: `${withFraction(text, frac)}+00` }
        : bad();
    case 'time':
      return /^-?\d{2,3}:\d{2}:\d{2}(\.\d+)?$/.test(text) ? { value: withFraction(text, frac) } : bad();
    default:
      return bad();
  }
}

/**
 * The value existing rows read for a column added with this definition. MariaDB (10.2.7+) quotes string defaults
 * (`'abc'`), spells an explicit or implicit NULL default as the text `NULL`, and shows expressions unquoted
 * (`current_timestamp()`, `uuid()`, `(1 + 1)`); SQL NULL means no default. MySQL 8 shows constants unquoted, marks
 * expression defaults with `DEFAULT_GENERATED` in EXTRA, and reports SQL NULL for both DEFAULT NULL and no default.
 */
export function existingRowsValue(f: ColumnDefaultFact, flavor: 'mariadb' | 'mysql'): ExistingRowsValue {
  const extra = f.extra.toLowerCase();
  if (extra.includes('auto_increment')) return { volatile: 'auto_increment' };
  if (extra.includes('generated') && !extra.includes('default_generated'))
    return { volatile: 'generated column (computed for every existing row)' };
  const d = f.columnDefault;
  if (flavor === 'mysql') {
    if (extra.includes('default_generated')) return { volatile: `default expression ${d ?? ''}`.trim() };
    if (d === null) return f.nullable ? { value: null } : implicitDefault(f);
    return constantValue(f, d, false);
  }
  if (d === null) return f.nullable ? { value: null } : implicitDefault(f);
  if (d === 'NULL') return { value: null };
  if (/^'.*'$/s.test(d)) return constantValue(f, unquoteMysqlString(d), true);
  if (/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(d) || /^b'[01]*'$/i.test(d)) return constantValue(f, d, false);
  return { volatile: `default expression ${d}` };
}

/**
 * Kinds whose constant default reads the same from the statement as from the catalog. Others may not (a TIMESTAMP
 * literal is in the writing session's time zone, a float or a date may be spelled otherwise): for them the catalog's
 * default is taken.
 */
const STATEMENT_READABLE = new Set<ValueKind>(['int', 'decimal', 'text', 'enum']);

/**
 * The value existing rows read for a column just added, given the default its ADD COLUMN declared. The catalog is read
 * when the pipeline reads the statement, which may be after a later `ALTER COLUMN ... SET DEFAULT` (or a MODIFY with
 * another default): then the catalog's default is not the one existing rows got. When the statement declares NULL,
 * or a constant (or no default) of an integer, decimal, string or enum column, that value is what existing rows read,
 * whatever the catalog says now. For other kinds the statement's constant is trusted only where the catalog agrees;
 * where not, the value is unknown (the table is then copied again).
 */
export function existingRowsValueAtAdd(
  f: ColumnDefaultFact,
  declared: DeclaredDefault | undefined,
  flavor: 'mariadb' | 'mysql',
): ExistingRowsValue {
  const now = existingRowsValue(f, flavor);
  if (!declared || declared.kind === 'other' || !('value' in now)) return now;
  if (declared.kind === 'null') return { value: null };
  if (!STATEMENT_READABLE.has(f.kind)) {
    if (declared.kind === 'none') return declared.notNull ? now : { value: null };
    // The statement's text is not the server's form of every value of these kinds (time zones, rounding): trusted
    // only where it agrees with the catalog. Otherwise a later SET DEFAULT may have changed the catalog since.
    const atAdd = constantValue(f, declared.text, declared.quoted);
    return 'value' in atAdd && atAdd.value === now.value
      ? now
      : {
          unknown: `the default of the ADD COLUMN (${declared.text}) and the catalog's (${now.value}) differ`,
          catalog: now.value,
        };
  }
  if (declared.kind === 'none') return declared.notNull ? implicitDefault(f) : { value: null };
  // The server rounds a decimal literal with more digits than the scale: the catalog's text is the one to trust.
  if (f.kind === 'decimal' && (/\.(\d+)$/.exec(declared.text)?.[1]?.length ?? 0) > scaleOf(f.type)) return now;
  // An ENUM default written as a number is a label's index.
  if (f.kind === 'enum' && !declared.quoted) return now;
  const atAdd = constantValue(f, declared.text, declared.quoted);
  return 'value' in atAdd ? atAdd : now;
}

/**
 * MySQL's INFORMATION_SCHEMA shows a TIMESTAMP column's constant default as it was written, in the time zone of the
 * session that wrote it (unknown here); SHOW CREATE TABLE shows the stored instant in the reading session's zone
 * (UTC). Replaces the former by the latter for every such column of `facts`.
 */
export async function useMysqlTimestampDefaults(
  conn: mysql.Connection,
  db: string,
  table: string,
  facts: Map<string, ColumnDefaultFact>,
): Promise<void> {
  const affected = [...facts.values()].filter(
    (f) => /^timestamp\b/i.test(f.type) && f.columnDefault !== null && !/default_generated/i.test(f.extra),
  );
  if (affected.length === 0) return;
  const [rows] = await conn.query(`SHOW CREATE TABLE ${quoteIdent(db)}.${quoteIdent(table)}`);
  const text = String(Object.values((rows as Record<string, unknown>[])[0] ?? {})[1] ?? '');
  for (const line of text.split('\n')) {
    const m = /^\s*`((?:[^`]|``)+)` timestamp(?:\(\d\))?(?: NULL)? DEFAULT '([^']*)'/i.exec(line);
    if (!m) continue;
    const fact = facts.get(m[1]!.replace(/``/g, '`').toLowerCase());
    if (fact && affected.includes(fact)) fact.columnDefault = m[2]!;
  }
}
