import { describe, expect, it } from 'vitest';
import { castTypeFor, holdsExactly, isSafeTypeName } from './column-types.ts';

describe('column types', () => {
  it('accepts PostgreSQL type names and refuses anything else', () => {
    for (const t of [
      'integer',
      'numeric(10,2)',
      'character varying(20)',
      'timestamp(3) with time zone',
      'integer[]',
      'public.mood',
      '"My Type"',
      'double precision',
      'bit varying(8)[]',
      '"char"',
    ]) {
      expect(isSafeTypeName(t), t).toBe(true);
    }
    for (const t of ['integer; drop table x', 'text)--', "text default 'x'", '']) {
      expect(isSafeTypeName(t), t).toBe(false);
    }
  });

  it('knows which target types hold every source value exactly', () => {
    expect(holdsExactly('integer', 'bigint')).toBe(true);
    expect(holdsExactly('bigint', 'integer')).toBe(false);
    expect(holdsExactly('bigint', 'numeric')).toBe(true);
    expect(holdsExactly('numeric(10,2)', 'numeric(12,2)')).toBe(true);
    expect(holdsExactly('numeric(10,2)', 'numeric(12,3)')).toBe(false);
    expect(holdsExactly('character varying(20)', 'character varying(40)')).toBe(true);
    expect(holdsExactly('character varying(40)', 'character varying(20)')).toBe(false);
    expect(holdsExactly('character varying(40)', 'text')).toBe(true);
    expect(holdsExactly('timestamp(3) with time zone', 'timestamp with time zone')).toBe(true);
    expect(holdsExactly('timestamp with time zone', 'timestamp(3) with time zone')).toBe(false);
    expect(holdsExactly('timestamp with time zone', 'timestamp without time zone')).toBe(false);
    expect(holdsExactly('integer[]', 'bigint[]')).toBe(true);
    expect(holdsExactly('boolean', 'integer')).toBe(false);
    expect(castTypeFor('bit')).toBe('bit varying');
    expect(castTypeFor('character')).toBe('bpchar');
  });
});
