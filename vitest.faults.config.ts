import { defineConfig } from 'vitest/config';

/**
 * `npm run test:faults`: the fault suite (test/faults). Each file starts its own Kafka and
 * services as processes, and kills some of them; files run one at a time.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 240_000,
    hookTimeout: 180_000,
    fileParallelism: false,
    maxWorkers: 1,
    env: { FANOUT_LOG_LEVEL: process.env.FANOUT_LOG_LEVEL ?? 'warn', KAFKAJS_NO_PARTITIONER_WARNING: '1' },
  },
});
