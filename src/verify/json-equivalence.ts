/**
 * Whether two JSON texts hold the same value, the way a JSON column keeps it: object keys in any order (the last of
 * duplicate keys wins, as PostgreSQL jsonb and MySQL do), any whitespace between tokens, any escaping of the same
 * string, and numbers equal by value however written (`1500`, `1.5e3`, `1500.0`). Whitespace inside strings counts.
 *
 * Across engines the databases print JSON differently (MySQL normalizes, MariaDB and PostgreSQL `json` keep the text),
 * so verify hashes the texts as they are (never equal when they differ) and asks this for rows whose hashes differ.
 */
export function jsonEquivalent(a: string, b: string): boolean {
  const x = canonicalJson(a);
  const y = canonicalJson(b);
  return x !== undefined && x === y;
}

/** One canonical text of a JSON value, or undefined when the text is not JSON. */
export function canonicalJson(text: string): string | undefined {
  const parser = new Parser(text);
  try {
    const value = parser.value();
    parser.skipSpace();
    return parser.atEnd() ? value : undefined;
  } catch {
    return undefined;
  }
}

class Parser {
  private i = 0;
  constructor(private readonly text: string) {}

  atEnd(): boolean {
    return this.i >= this.text.length;
  }

  skipSpace(): void {
    while (this.i < this.text.length && ' \t\n\r'.includes(this.text[this.i]!)) this.i++;
  }

  value(): string {
    this.skipSpace();
    const c = this.text[this.i];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return JSON.stringify(this.string());
    for (const word of ['true', 'false', 'null']) {
      if (this.text.startsWith(word, this.i)) {
        this.i += word.length;
        return word;
      }
    }
    return this.number();
  }

  private object(): string {
    this.i++;
    const members = new Map<string, string>();
    this.skipSpace();
    if (this.text[this.i] === '}') {
      this.i++;
      return '{}';
    }
    for (;;) {
      this.skipSpace();
      if (this.text[this.i] !== '"') throw new Error('expected a key');
      const key = this.string();
      this.skipSpace();
      if (this.text[this.i++] !== ':') throw new Error('expected :');
      members.delete(key);
      members.set(key, this.value());
      this.skipSpace();
      const c = this.text[this.i++];
      if (c === '}') break;
      if (c !== ',') throw new Error('expected , or }');
    }
    const keys = [...members.keys()].sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${members.get(k)}`).join(',')}}`;
  }

  private array(): string {
    this.i++;
    const items: string[] = [];
    this.skipSpace();
    if (this.text[this.i] === ']') {
      this.i++;
      return '[]';
    }
    for (;;) {
      items.push(this.value());
      this.skipSpace();
      const c = this.text[this.i++];
      if (c === ']') break;
      if (c !== ',') throw new Error('expected , or ]');
    }
    return `[${items.join(',')}]`;
  }

  private string(): string {
    const start = this.i;
    this.i++;
    while (this.i < this.text.length && this.text[this.i] !== '"') this.i += this.text[this.i] === '\\' ? 2 : 1;
    this.i++;
    return JSON.parse(this.text.slice(start, this.i)) as string;
  }

  /** A number as sign, significant digits and exponent: the same text for the same value, exactly. */
  private number(): string {
    const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?/.exec(this.text.slice(this.i));
    if (!m) throw new Error('expected a value');
    this.i += m[0].length;
    const fraction = m[3] ?? '';
    let digits = `${m[2]}${fraction}`.replace(/^0+/, '');
    let exponent = BigInt(m[4] ?? 0) - BigInt(fraction.length);
    if (digits === '') return '0';
    const trailing = digits.length - digits.replace(/0+$/, '').length;
    digits = digits.slice(0, digits.length - trailing);
    exponent += BigInt(trailing);
    return `${m[1]}${digits}e${exponent}`;
  }
}
