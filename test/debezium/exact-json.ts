/**
 * A JSON reader that keeps every number as its text, so 64-bit integers (int8, LSNs, ts_ns) compare exactly.
 * JSON.parse would round them through a double.
 */

/** A JSON number, kept as written. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

export type ExactJson = null | boolean | string | JsonNumber | ExactJson[] | { [key: string]: ExactJson };

export function parseExact(text: string): ExactJson {
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`bad JSON at ${i} (${what}): ${text.slice(Math.max(0, i - 40), i + 40)}`);
  };
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const value = (): ExactJson => {
    space();
    const c = text[i];
    if (c === '{') {
      i++;
      const out: { [key: string]: ExactJson } = {};
      space();
      if (text[i] === '}') {
        i++;
        return out;
      }
      for (;;) {
        space();
        const k = value();
        if (typeof k !== 'string') fail('object key');
        space();
        if (text[i++] !== ':') fail('colon');
        out[k as string] = value();
        space();
        const sep = text[i++];
        if (sep === '}') return out;
        if (sep !== ',') fail('comma in object');
      }
    }
    if (c === '[') {
      i++;
      const out: ExactJson[] = [];
      space();
      if (text[i] === ']') {
        i++;
        return out;
      }
      for (;;) {
        out.push(value());
        space();
        const sep = text[i++];
        if (sep === ']') return out;
        if (sep !== ',') fail('comma in array');
      }
    }
    if (c === '"') {
      const start = i;
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      return JSON.parse(text.slice(start, i)) as string;
    }
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) return fail('value');
    i += m[0].length;
    if (m[0] === 'true') return true;
    if (m[0] === 'false') return false;
    if (m[0] === 'null') return null;
    return new JsonNumber(m[0]);
  };
  const v = value();
  space();
  if (i !== text.length) fail('trailing text');
  return v;
}

/** Canonical text of a parsed value (object keys in their order, numbers as written). */
export function exactText(v: ExactJson): string {
  if (v instanceof JsonNumber) return v.text;
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(exactText).join(',')}]`;
  return `{${Object.entries(v)
    .map(([k, x]) => `${JSON.stringify(k)}:${exactText(x)}`)
    .join(',')}}`;
}
