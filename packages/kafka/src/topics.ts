import type { Kafka } from 'kafkajs';
import type { Logger } from '@fanout/observability';
import { withRetry } from './client.js';

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  configEntries?: { name: string; value: string }[];
}

/**
 * Creates the topics that do not exist yet, with their configured partition counts; existing topics
 * are left as they are (a partition count that differs from the configuration is logged: changing
 * it would move keys between partitions). Returns the actual partition count of each topic.
 */
export async function ensureTopics(kafka: Kafka, specs: TopicSpec[], logger: Logger): Promise<Map<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length > 0) {
      // Retried: a broker that has just started may not host the new partitions' leaders yet
      // ("does not host this topic-partition") while createTopics waits for them.
      await withRetry(async () => {
        try {
          await admin.createTopics({
            waitForLeaders: true,
            topics: missing.map((s) => ({ topic: s.topic, numPartitions: s.numPartitions, replicationFactor: -1, configEntries: s.configEntries ?? [] })),
          });
          logger.info({ topics: missing.map((s) => `${s.topic}/${s.numPartitions}`) }, 'created topics');
        } catch (err) {
          // Another service (or an earlier attempt) created them: that is fine.
          const errors = (err as { errors?: { type?: string }[] }).errors ?? [];
          if (errors.length === 0 || !errors.every((e) => e.type === 'TOPIC_ALREADY_EXISTS')) throw err;
        }
      }, 10);
    }
    const meta = await withRetry(() => admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) }));
    const counts = new Map<string, number>();
    for (const t of meta.topics) {
      counts.set(t.name, t.partitions.length);
      const want = specs.find((s) => s.topic === t.name)?.numPartitions;
      if (want !== undefined && want !== t.partitions.length) {
        logger.warn({ topic: t.name, configured: want, actual: t.partitions.length }, 'topic partition count differs from configuration; using the actual count');
      }
    }
    return counts;
  } finally {
    await admin.disconnect();
  }
}
