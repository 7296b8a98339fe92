/**
 * The table DDL statements the binlog carries as QUERY events (CREATE / ALTER / DROP / RENAME TABLE): which tables they
 * name; for CREATE TABLE, the columns it defines (or the table it copies); for ALTER TABLE, which columns they add and
 * drop, which renames they make, where FIRST / AFTER place columns and which type MODIFY / CHANGE give a column. A small tokenizer, not a SQL parser: anything it
 * does not recognize gives `null` (the statement is then not reported as DDL of a replicated table).
 */

export interface DdlTable {
  db: string;
  name: string;
}

export interface TableDdl {
  kind: 'create' | 'alter' | 'drop' | 'rename';
  /** Every table the statement names (RENAME: old and new names), in statement order. */
  tables: DdlTable[];
  /** RENAME TABLE pairs, and ALTER TABLE ... RENAME TO. */
  renames: { from: DdlTable; to: DdlTable }[];
  /** ALTER TABLE: names of the columns its ADD [COLUMN] clauses add, as written. */
  addedColumns: string[];
  /** ALTER TABLE: the default each added column's definition declares (by the name as written). */
  addedDefaults?: Map<string, DeclaredDefault>;
  /** ALTER TABLE: names of the columns its DROP [COLUMN] clauses drop, as written. */
  droppedColumns: string[];
  /** ALTER TABLE: RENAME COLUMN a TO b and CHANGE [COLUMN] a b (when the name changes), in statement order. */
  renamedColumns: { from: string; to: string }[];
  /**
   * ALTER TABLE: the columns an ADD, CHANGE or MODIFY places with FIRST (`after: null`) or AFTER a column, by their
   * names after the statement, in statement order.
   */
  placedColumns?: { column: string; after: string | null }[];
  /**
   * ALTER TABLE: the columns a MODIFY or CHANGE clause defines anew, by their names after the statement, with the type
   * the definition gives (its text as written, lower-cased: `decimal(10,1) unsigned`, `enum('a','b')`); `type` null
   * when the definition's type was not read.
   */
  redefinedColumns?: { column: string; type: string | null }[];
  /** CREATE TABLE: the column names its definition lists, in order; absent when the text does not tell them all. */
  createdColumns?: string[];
  /** CREATE TABLE ... LIKE: the table whose definition is copied. */
  likeTable?: DdlTable;
  /** CREATE TABLE IF NOT EXISTS: does nothing when the table exists. */
  ifNotExists?: boolean;
}

/**
 * The DEFAULT a column definition declares, as far as a tokenizer can tell: none, NULL, a constant (its text, and
 * whether it was a quoted string), or something else (an expression, a generated or auto-increment column).
 */
export type DeclaredDefault =
  | { kind: 'none'; notNull: boolean }
  | { kind: 'null' }
  | { kind: 'constant'; text: string; quoted: boolean }
  | { kind: 'other' };

type Token = { t: 'word'; v: string } | { t: 'ident'; v: string } | { t: 'str'; v: string } | { t: 'punct'; v: string };

function tokenize(sql: string): Token[] | null {
  const out: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) return null;
      i = end + 2;
    } else if (c === '#' || (c === '-' && sql[i + 1] === '-' && /\s/.test(sql[i + 2] ?? ' '))) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (c === '`') {
      let v = '';
      let j = i + 1;
      for (;;) {
        if (j >= n) return null;
        if (sql[j] === '`') {
          if (sql[j + 1] === '`') {
            v += '`';
            j += 2;
            continue;
          }
          break;
        }
        v += sql[j++];
      }
      out.push({ t: 'ident', v });
      i = j + 1;
    } else if (c === "'" || c === '"') {
      let v = '';
      let j = i + 1;
      for (;;) {
        if (j >= n) return null;
        const d = sql[j]!;
        if (d === '\\') {
          v += sql.slice(j, j + 2);
          j += 2;
          continue;
        }
        if (d === c) {
          if (sql[j + 1] === c) {
            v += c;
            j += 2;
            continue;
          }
          break;
        }
        v += d;
        j++;
      }
      out.push({ t: 'str', v });
      i = j + 1;
    } else if (/[\w$]/.test(c)) {
      let j = i;
      while (j < n && /[\w$]/.test(sql[j]!)) j++;
      out.push({ t: 'word', v: sql.slice(i, j) });
      i = j;
    } else {
      out.push({ t: 'punct', v: c });
      i++;
    }
  }
  return out;
}

class Cursor {
  i = 0;
  constructor(readonly tokens: Token[]) {}
  peek(k = 0): Token | undefined {
    return this.tokens[this.i + k];
  }
  /** Consumes the keyword sequence when it is next (case-insensitive, unquoted words only). */
  keyword(...words: string[]): boolean {
    for (let k = 0; k < words.length; k++) {
      const tok = this.peek(k);
      if (tok?.t !== 'word' || tok.v.toUpperCase() !== words[k]) return false;
    }
    this.i += words.length;
    return true;
  }
  punct(p: string): boolean {
    const tok = this.peek();
    if (tok?.t === 'punct' && tok.v === p) {
      this.i++;
      return true;
    }
    return false;
  }
  ident(): string | null {
    const tok = this.peek();
    if (tok?.t === 'ident' || tok?.t === 'word') {
      this.i++;
      return tok.v;
    }
    return null;
  }
  table(defaultDb: string): DdlTable | null {
    const first = this.ident();
    if (first === null) return null;
    if (this.punct('.')) {
      const name = this.ident();
      return name === null ? null : { db: first, name };
    }
    return { db: defaultDb, name: first };
  }
  done(): boolean {
    return this.i >= this.tokens.length;
  }
}

const NOT_A_COLUMN = new Set([
  'INDEX',
  'KEY',
  'CONSTRAINT',
  'PRIMARY',
  'UNIQUE',
  'FULLTEXT',
  'SPATIAL',
  'FOREIGN',
  'CHECK',
  'PARTITION',
  'PERIOD',
  'SYSTEM',
  'VECTOR',
]);

/** Splits tokens at commas outside parentheses. */
function topLevelClauses(tokens: Token[]): Token[][] {
  const clauses: Token[][] = [[]];
  let depth = 0;
  for (const tok of tokens) {
    if (tok.t === 'punct') {
      if (tok.v === '(') depth++;
      else if (tok.v === ')') depth--;
      else if (tok.v === ',' && depth === 0) {
        clauses.push([]);
        continue;
      }
    }
    clauses[clauses.length - 1]!.push(tok);
  }
  return clauses.filter((c) => c.length > 0);
}

const NUMBER = /^(\d+|\d+e\d+|0x[0-9a-f]+)$/i;

/** Indexes of the words of a column definition outside parentheses (a type's arguments, a CHECK, an expression). */
function* topLevelWords(def: Token[]): Generator<number> {
  let depth = 0;
  for (let i = 0; i < def.length; i++) {
    const tok = def[i]!;
    if (tok.t === 'punct' && tok.v === '(') depth++;
    else if (tok.t === 'punct' && tok.v === ')') depth--;
    if (depth === 0 && tok.t === 'word') yield i;
  }
}

/** The default a column definition (the tokens after its name) declares. */
function declaredDefault(def: Token[]): DeclaredDefault {
  let notNull = false;
  for (const i of topLevelWords(def)) {
    const word = def[i]!.v.toUpperCase();
    if (word === 'AUTO_INCREMENT' || word === 'AS' || word === 'GENERATED' || word === 'PRIMARY')
      return { kind: 'other' };
    if (word === 'NOT' && def[i + 1]?.t === 'word' && def[i + 1]!.v.toUpperCase() === 'NULL') notNull = true;
    if (word !== 'DEFAULT') continue;
    return constantAt(def, i + 1);
  }
  return { kind: 'none', notNull };
}

/** The constant at `def[i]` (NULL, a string, a number with its sign, b'..', TRUE/FALSE), and nothing after it but keywords. */
function constantAt(def: Token[], i: number): DeclaredDefault {
  const tok = def[i];
  if (!tok) return { kind: 'other' };
  if (tok.t === 'str')
    return tok.v.includes('\\') ? { kind: 'other' } : { kind: 'constant', text: tok.v, quoted: true };
  if (tok.t === 'word') {
    const word = tok.v.toUpperCase();
    if (word === 'NULL') return { kind: 'null' };
    if (word === 'TRUE' || word === 'FALSE')
      return { kind: 'constant', text: word === 'TRUE' ? '1' : '0', quoted: false };
    if (word === 'B' && def[i + 1]?.t === 'str')
      return { kind: 'constant', text: `b'${def[i + 1]!.v}'`, quoted: false };
  }
  let text = '';
  let k = i;
  if (def[k]?.t === 'punct' && (def[k]!.v === '-' || def[k]!.v === '+')) text = def[k++]!.v === '-' ? '-' : '';
  const whole = def[k];
  if (whole?.t !== 'word' || !NUMBER.test(whole.v)) return { kind: 'other' };
  text += whole.v;
  k++;
  if (def[k]?.t === 'punct' && def[k]!.v === '.' && def[k + 1]?.t === 'word' && /^\d+$/.test(def[k + 1]!.v)) {
    text += `.${def[k + 1]!.v}`;
    k += 2;
  }
  // An operator after the number makes it an expression (`DEFAULT 1 + 1` is not valid MySQL, but be sure).
  if (def[k]?.t === 'punct' && def[k]!.v !== ',') return { kind: 'other' };
  return { kind: 'constant', text, quoted: false };
}

/** FIRST or AFTER col at the end of a column definition (the tokens after its name), outside parentheses. */
function placement(def: Token[]): { after: string | null } | null {
  for (const i of topLevelWords(def)) {
    const word = def[i]!.v.toUpperCase();
    if (word === 'FIRST') return { after: null };
    const next = def[i + 1];
    if (word === 'AFTER' && (next?.t === 'ident' || next?.t === 'word')) return { after: next.v };
  }
  return null;
}

/** Type names written as two words, and the one word they stand for. */
const TWO_WORD_TYPES = new Map([
  ['DOUBLE PRECISION', 'double'],
  ['CHARACTER VARYING', 'varchar'],
  ['CHAR VARYING', 'varchar'],
  ['NATIONAL CHAR', 'char'],
  ['NATIONAL CHARACTER', 'char'],
  ['NATIONAL VARCHAR', 'varchar'],
  ['NCHAR VARCHAR', 'varchar'],
  ['NCHAR VARYING', 'varchar'],
  ['LONG VARCHAR', 'mediumtext'],
  ['LONG VARBINARY', 'mediumblob'],
]);

/**
 * The data type a column definition (the tokens after its name) starts with: its name, its arguments and UNSIGNED
 * (ZEROFILL implies it), as lower-case text; null when the definition does not start with one.
 */
function definedType(def: Token[]): string | null {
  const first = def[0];
  if (first?.t !== 'word') return null;
  let i = 1;
  let name = first.v.toLowerCase();
  const second = def[1];
  const two = second?.t === 'word' ? TWO_WORD_TYPES.get(`${first.v} ${second.v}`.toUpperCase()) : undefined;
  if (two) {
    name = two;
    i = 2;
    // NATIONAL CHARACTER VARYING, NATIONAL CHAR VARYING
    const third = def[2];
    if (name === 'char' && third?.t === 'word' && third.v.toUpperCase() === 'VARYING') {
      name = 'varchar';
      i = 3;
    }
  }
  let args = '';
  if (def[i]?.t === 'punct' && def[i]!.v === '(') {
    const parts: string[] = [];
    for (i++; ; i++) {
      const tok = def[i];
      if (!tok) return null;
      if (tok.t === 'punct' && tok.v === ')') break;
      if (tok.t === 'str') parts.push(`'${tok.v.replace(/'/g, "''")}'`);
      else if (tok.t === 'word' || tok.t === 'punct') parts.push(tok.v.toLowerCase());
      else return null;
    }
    args = `(${parts.join('')})`;
    i++;
  }
  let unsigned = false;
  for (; def[i]?.t === 'word'; i++) {
    const word = def[i]!.v.toUpperCase();
    if (word === 'UNSIGNED' || word === 'ZEROFILL') unsigned = true;
    else if (word !== 'SIGNED') break;
  }
  return `${name}${args}${unsigned ? ' unsigned' : ''}`;
}

/** The column names of a CREATE TABLE definition list (the tokens inside its parentheses); index and key clauses skipped. */
function definedColumns(tokens: Token[]): string[] {
  const names: string[] = [];
  for (const clause of topLevelClauses(tokens)) {
    const first = clause[0]!;
    if (first.t === 'word' && NOT_A_COLUMN.has(first.v.toUpperCase())) continue;
    if (first.t === 'ident' || first.t === 'word') names.push(first.v);
  }
  return names;
}

function alterClauses(c: Cursor, defaultDb: string, result: TableDdl): void {
  const table = result.tables[0]!;
  const place = (column: string, def: Token[]) => {
    const at = placement(def);
    if (!at) return;
    result.placedColumns ??= [];
    result.placedColumns.push({ column, ...at });
  };
  const redefine = (column: string, def: Token[]) => {
    result.redefinedColumns ??= [];
    result.redefinedColumns.push({ column, type: definedType(def) });
  };
  for (const clause of topLevelClauses(c.tokens.slice(c.i))) {
    const k = new Cursor(clause);
    if (k.keyword('ADD')) {
      const explicit = k.keyword('COLUMN');
      k.keyword('IF', 'NOT', 'EXISTS');
      if (k.punct('(')) {
        // ADD [COLUMN] (a INT, b INT)
        for (const def of topLevelClauses(clause.slice(k.i, clause.length - 1))) {
          const d = new Cursor(def);
          const name = d.ident();
          if (name === null) continue;
          result.addedColumns.push(name);
          result.addedDefaults?.set(name, declaredDefault(def.slice(d.i)));
        }
        continue;
      }
      const tok = k.peek();
      if (!tok) continue;
      if (!explicit && tok.t === 'word' && NOT_A_COLUMN.has(tok.v.toUpperCase())) continue;
      const name = k.ident();
      if (name === null) continue;
      result.addedColumns.push(name);
      result.addedDefaults?.set(name, declaredDefault(clause.slice(k.i)));
      place(name, clause.slice(k.i));
    } else if (k.keyword('DROP')) {
      const explicit = k.keyword('COLUMN');
      k.keyword('IF', 'EXISTS');
      const tok = k.peek();
      if (!tok) continue;
      if (!explicit && tok.t === 'word' && NOT_A_COLUMN.has(tok.v.toUpperCase())) continue;
      const name = k.ident();
      if (name !== null) result.droppedColumns.push(name);
    } else if (k.keyword('CHANGE')) {
      k.keyword('COLUMN');
      k.keyword('IF', 'EXISTS');
      const from = k.ident();
      const to = k.ident();
      if (from !== null && to !== null && from !== to) result.renamedColumns.push({ from, to });
      if (to !== null) place(to, clause.slice(k.i));
      if (to !== null) redefine(to, clause.slice(k.i));
    } else if (k.keyword('MODIFY')) {
      k.keyword('COLUMN');
      k.keyword('IF', 'EXISTS');
      const name = k.ident();
      if (name !== null) place(name, clause.slice(k.i));
      if (name !== null) redefine(name, clause.slice(k.i));
    } else if (k.keyword('RENAME')) {
      if (k.keyword('COLUMN')) {
        k.keyword('IF', 'EXISTS');
        const from = k.ident();
        const to = k.keyword('TO') ? k.ident() : null;
        if (from !== null && to !== null && from !== to) result.renamedColumns.push({ from, to });
        continue;
      }
      if (k.keyword('INDEX') || k.keyword('KEY')) continue;
      if (!k.keyword('TO')) k.keyword('AS');
      const to = k.table(defaultDb);
      if (to) {
        result.renames.push({ from: table, to });
        result.tables.push(to);
      }
    }
  }
}

/**
 * What CREATE TABLE's text says of the new table's columns: those of its definition list, or the table it copies
 * (LIKE). A SELECT can add columns the text does not name: then the columns are left unknown.
 */
function createDefinition(c: Cursor, defaultDb: string, result: TableDdl): void {
  const like = (): void => {
    const t = c.table(defaultDb);
    if (t) result.likeTable = t;
  };
  if (c.keyword('LIKE')) {
    like();
    return;
  }
  if (!c.punct('(')) return;
  if (c.keyword('LIKE')) {
    like();
    return;
  }
  const start = c.i;
  let depth = 1;
  while (!c.done() && depth > 0) {
    const tok = c.peek()!;
    if (tok.t === 'punct' && tok.v === '(') depth++;
    else if (tok.t === 'punct' && tok.v === ')') depth--;
    c.i++;
  }
  if (depth > 0) return;
  const rest = c.tokens.slice(c.i);
  if (rest.some((tok) => tok.t === 'word' && tok.v.toUpperCase() === 'SELECT')) return;
  result.createdColumns = definedColumns(c.tokens.slice(start, c.i - 1));
}

/**
 * Recognizes CREATE / ALTER / DROP / RENAME TABLE (MariaDB and MySQL spellings, including the forms the server writes
 * to the binlog, such as `DROP TABLE IF EXISTS ... /* generated by server *\/`). `null` for anything else, including
 * TEMPORARY tables.
 */
export function parseTableDdl(query: string, defaultDb: string): TableDdl | null {
  const tokens = tokenize(query);
  if (!tokens) return null;
  const c = new Cursor(tokens);
  const result = (kind: TableDdl['kind']): TableDdl => ({
    kind,
    tables: [],
    renames: [],
    addedColumns: [],
    droppedColumns: [],
    renamedColumns: [],
  });
  if (c.keyword('CREATE')) {
    c.keyword('OR', 'REPLACE');
    if (c.keyword('TEMPORARY')) return null;
    if (!c.keyword('TABLE')) return null;
    const ifNotExists = c.keyword('IF', 'NOT', 'EXISTS');
    const t = c.table(defaultDb);
    if (!t) return null;
    const r = result('create');
    r.tables.push(t);
    if (ifNotExists) r.ifNotExists = true;
    createDefinition(c, defaultDb, r);
    return r;
  }
  if (c.keyword('ALTER')) {
    c.keyword('ONLINE');
    c.keyword('IGNORE');
    if (!c.keyword('TABLE')) return null;
    c.keyword('IF', 'EXISTS');
    const t = c.table(defaultDb);
    if (!t) return null;
    const r = result('alter');
    r.addedDefaults = new Map();
    r.tables.push(t);
    alterClauses(c, defaultDb, r);
    return r;
  }
  if (c.keyword('DROP')) {
    if (c.keyword('TEMPORARY')) return null;
    if (!c.keyword('TABLE')) return null;
    c.keyword('IF', 'EXISTS');
    const r = result('drop');
    for (;;) {
      const t = c.table(defaultDb);
      if (!t) return null;
      r.tables.push(t);
      if (!c.punct(',')) break;
    }
    return r;
  }
  if (c.keyword('RENAME')) {
    if (!c.keyword('TABLE') && !c.keyword('TABLES')) return null;
    c.keyword('IF', 'EXISTS');
    const r = result('rename');
    for (;;) {
      const from = c.table(defaultDb);
      if (!from) return null;
      if (c.keyword('WAIT')) c.ident();
      else c.keyword('NOWAIT');
      if (!c.keyword('TO')) return null;
      const to = c.table(defaultDb);
      if (!to) return null;
      r.tables.push(from, to);
      r.renames.push({ from, to });
      if (!c.punct(',')) break;
    }
    return r;
  }
  return null;
}
