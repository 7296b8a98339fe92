import { describe, expect, it } from 'vitest';
import { jsonEquivalent } from './json-equivalence.ts';

describe('jsonEquivalent', () => {
  it('ignores key order, spacing, escaping and the spelling of numbers; the last duplicate key wins', () => {
    expect(jsonEquivalent('{"a": 1, "b": [1, 2]}', '{"b":[1,2],"a":1}')).toBe(true);
    expect(jsonEquivalent('{"n": 1.5e3}', '{"n": 1500.0}')).toBe(true);
    expect(jsonEquivalent('[1E-2, -0.0, 10]', '[0.01, 0, 1e1]')).toBe(true);
    expect(jsonEquivalent('{"a": 1, "a": 2}', '{"a": 2}')).toBe(true);
    expect(jsonEquivalent('"\\u00e9\\n\\u0000"', '"é\\n\\u0000"')).toBe(true);
  });

  it('counts what is inside strings, and exact digits', () => {
    expect(jsonEquivalent('{"a": "x y"}', '{"a": "xy"}')).toBe(false);
    expect(jsonEquivalent('[9007199254740993]', '[9007199254740992]')).toBe(false);
    expect(jsonEquivalent('{"a": 1, "a": 2}', '{"a": 1}')).toBe(false);
    expect(jsonEquivalent('[1, 2]', '[2, 1]')).toBe(false);
    expect(jsonEquivalent('not json', 'not json')).toBe(false);
  });
});
