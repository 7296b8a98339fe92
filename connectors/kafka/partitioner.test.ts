import { describe, expect, it } from 'vitest';
import { murmur2, partitionFor } from './partitioner.ts';

describe('partitioner', () => {
  it("murmur2 equals Kafka's (the Java client's test vectors)", () => {
    const cases: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [text, hash] of cases) expect(murmur2(Buffer.from(text)), text).toBe(hash);
  });

  it('keyed messages spread by key; keyless ones stay on one partition per table', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(partitionFor(`{"id":${i}}`, 'public.t', 6));
    expect(seen.size).toBe(6);
    expect(partitionFor(null, 'public.t', 6)).toBe(partitionFor(null, 'public.t', 6));
    expect(partitionFor('{"id":1}', 'public.t', 1)).toBe(0);
  });
});
