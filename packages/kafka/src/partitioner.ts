/**
 * Kafka's default partitioner for keyed records: `toPositive(murmur2(keyBytes)) % numPartitions`,
 * the same as the Java client and kafkajs' DefaultPartitioner (tested against it), so the router,
 * the publisher and any producer that keys by channel or user id agree on the partition.
 */
const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const R = 24;

export function murmur2(key: Buffer): number {
  const length = key.length;
  let h = SEED ^ length;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k = (key[i4]! & 0xff) | ((key[i4 + 1]! & 0xff) << 8) | ((key[i4 + 2]! & 0xff) << 16) | ((key[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  const rest = length & 3;
  const base = length & ~3;
  if (rest === 3) h ^= (key[base + 2]! & 0xff) << 16;
  if (rest >= 2) h ^= (key[base + 1]! & 0xff) << 8;
  if (rest >= 1) {
    h ^= key[base]! & 0xff;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

export function partitionFor(key: string, numPartitions: number): number {
  return (murmur2(Buffer.from(key, 'utf8')) & 0x7fffffff) % numPartitions;
}
