import { describe, expect, it } from 'vitest';
import { Partitioners } from 'kafkajs';
import { partitionFor } from '@fanout/kafka';

describe('partitionFor', () => {
  it("agrees with kafkajs' default (Java-compatible murmur2) partitioner for any key", () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    const keys = ['', 'a', 'ab', 'abc', 'abcd', 'prices:AAPL', 'user-42', '42', 'ünïcødé', 'x'.repeat(1000)];
    for (let i = 0; i < 2000; i++) keys.push(`user:${i * 7919}`);
    for (const n of [1, 3, 6, 12, 64]) {
      const partitionMetadata = Array.from({ length: n }, (_, i) => ({
        partitionId: i,
        leader: 0,
        partitionErrorCode: 0,
        replicas: [0],
        isr: [0],
      }));
      for (const key of keys) {
        const expected = kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } });
        expect(partitionFor(key, n), `${key} / ${n}`).toBe(expected);
      }
    }
  });
});
