import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // The fault suite starts and kills its own Kafka: `npm run test:faults` (vitest.faults.config.ts).
    exclude: ['test/faults/**', '**/node_modules/**'],
    // One real Kafka for the whole run, started (or found) before any test file.
    globalSetup: ['./test/kafka-global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: test files that each start gateways and clients run two at a time.
    maxWorkers: 2,
    fileParallelism: true,
    // The test brokers are single brokers: topics get one replica (production defaults are 3 and 2).
    env: {
      FANOUT_LOG_LEVEL: process.env.FANOUT_LOG_LEVEL ?? 'warn',
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
      FANOUT_TOPIC_REPLICATION_FACTOR: process.env.FANOUT_TOPIC_REPLICATION_FACTOR ?? '1',
      FANOUT_TOPIC_MIN_INSYNC_REPLICAS: process.env.FANOUT_TOPIC_MIN_INSYNC_REPLICAS ?? '1',
    },
  },
});
