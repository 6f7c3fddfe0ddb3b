/**
 * The retry backlog: records in the retry topics that the retry consumer group has not committed
 * yet (scheduled retries and deferrals, due or not), summed over every step and partition. Read
 * from Kafka every few seconds, so it counts what every dispatcher instance has scheduled.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from '@fanout/observability';

export class RetryBacklog {
  value = 0;
  private timer: NodeJS.Timeout | null = null;
  private admin: ReturnType<Kafka['admin']> | null = null;

  constructor(private readonly o: { kafka: Kafka; groupId: string; topics: string[]; everyMs: number; logger: Logger }) {}

  async start(): Promise<void> {
    this.admin = this.o.kafka.admin();
    await this.admin.connect();
    const loop = () => {
      this.timer = setTimeout(() => void this.refresh().finally(() => this.timer && loop()), this.o.everyMs);
    };
    await this.refresh();
    loop();
  }

  async refresh(): Promise<void> {
    if (!this.admin) return;
    try {
      const committed = await this.admin.fetchOffsets({ groupId: this.o.groupId, topics: this.o.topics });
      let total = 0;
      for (const topic of this.o.topics) {
        const ends = await this.admin.fetchTopicOffsets(topic);
        const mine = committed.find((c) => c.topic === topic)?.partitions ?? [];
        for (const e of ends) {
          const c = Number(mine.find((p) => p.partition === e.partition)?.offset ?? -1);
          total += Math.max(0, Number(e.high) - Math.max(c, Number(e.low)));
        }
      }
      this.value = total;
    } catch (err) {
      this.o.logger.debug({ err }, 'reading the retry backlog failed');
    }
  }

  async stop(): Promise<void> {
    const t = this.timer;
    this.timer = null;
    if (t) clearTimeout(t);
    await this.admin?.disconnect();
    this.admin = null;
  }
}
