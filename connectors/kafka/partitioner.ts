/**
 * Which partition a message goes to, chosen by the target itself (so it knows every record batch it sends):
 * keyed messages as Kafka's own Java producer places them (murmur2 of the key bytes, made positive, modulo the
 * partition count), so consumers and stream processors that co-partition by key agree with us. Messages without a
 * key (keyless tables, truncate) go to one partition per table, so one row's insert, update and delete stay in order.
 */
export function partitionFor(key: string | null, keylessGroup: string, partitions: number): number {
  const bytes = Buffer.from(key ?? keylessGroup, 'utf8');
  return (murmur2(bytes) & 0x7fffffff) % partitions;
}

/** Kafka's murmur2 (seed 0x9747b28c), as org.apache.kafka.common.utils.Utils.murmur2 computes it. */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const r = 24;
  const length = data.length;
  let h = 0x9747b28c ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  // The 1 to 3 tail bytes, folded in together.
  const tail = length & 3;
  if (tail === 3) h ^= data[whole + 2]! << 16;
  if (tail >= 2) h ^= data[whole + 1]! << 8;
  if (tail >= 1) {
    h ^= data[whole]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}
