import { describe, expect, it } from 'vitest';
import { UNCHANGED } from '../../../src/core/change-event.ts';
import { copyChunks, copyValue } from './copy-writer.ts';

describe('COPY text format', () => {
  it('escapes backslash, tab, newline and carriage return; NULL is \\N, the empty string stays empty', () => {
    expect(copyValue('plain')).toBe('plain');
    expect(copyValue('a\tb\nc\rd\\e')).toBe('a\\tb\\nc\\rd\\\\e');
    expect(copyValue('\\x00ff')).toBe('\\\\x00ff');
    expect(copyValue('\\.')).toBe('\\\\.');
    expect(copyValue(null)).toBe('\\N');
    expect(copyValue(undefined)).toBe('\\N');
    expect(copyValue(UNCHANGED)).toBe('\\N');
    expect(copyValue('')).toBe('');
    expect(copyValue('\\N')).toBe('\\\\N');
    expect(copyValue('żółw 🐢')).toBe('żółw 🐢');
  });

  it('writes one line per row, columns in the given order, without splitting rows across chunks', () => {
    const rows = Array.from({ length: 50_000 }, (_, i) => ({ b: `v${i}`, a: String(i), c: null }));
    const chunks = [...copyChunks(['a', 'b', 'c'], rows)];
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) expect(c.endsWith('\n')).toBe(true);
    const lines = chunks.join('').split('\n');
    expect(lines.length).toBe(50_001);
    expect(lines[0]).toBe('0\tv0\t\\N');
    expect(lines[49_999]).toBe('49999\tv49999\t\\N');
  });
});
