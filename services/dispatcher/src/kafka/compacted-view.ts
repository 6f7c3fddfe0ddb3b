/**
 * An in-memory view of a compacted topic, kept by every dispatcher instance: it reads every
 * partition from the beginning (a private consumer group that commits nothing) and hands each
 * record (key, value or null for a tombstone) to `apply`. `ready` resolves once the view has
 * caught up with the end of the topic as it was at start; `waitApplied` lets a writer wait until
 * its own write is visible here (read-your-writes for the API).
 */
import { randomBytes } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { withRetry } from '@fanout/kafka';
import type { Logger } from '@fanout/observability';
import { FanoutError } from '@fanout/protocol';

export interface CompactedViewOptions {
  kafka: Kafka;
  topic: string;
  /** Prefix of the private consumer group; a random suffix is added per start. */
  groupPrefix: string;
  logger: Logger;
  apply(key: string, value: Buffer | null, partition: number, offset: number): void;
  /** The reader stopped for good (kafkajs will not restart it): the view no longer follows the topic. */
  onCrash?(err: Error): void;
}

export class CompactedTopicView {
  private consumer: Consumer | null = null;
  private readonly applied = new Map<number, number>();
  private waiters: { partition: number; offset: number; resolve: () => void }[] = [];
  private startEnds = new Map<number, number>();
  private readyResolve!: () => void;
  readonly ready = new Promise<void>((r) => (this.readyResolve = r));
  private isReady = false;

  constructor(private readonly o: CompactedViewOptions) {}

  async start(): Promise<void> {
    const { kafka, topic } = this.o;
    const admin = kafka.admin();
    await admin.connect();
    try {
      const offsets = await withRetry(() => admin.fetchTopicOffsets(topic));
      for (const p of offsets) if (Number(p.high) > Number(p.low)) this.startEnds.set(p.partition, Number(p.high) - 1);
    } finally {
      await admin.disconnect();
    }
    this.checkReady();
    const consumer = kafka.consumer({
      groupId: `${this.o.groupPrefix}-${randomBytes(4).toString('hex')}`,
      maxWaitTimeInMs: 100,
      sessionTimeout: 30_000,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) this.o.onCrash?.(e.payload.error);
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const key = m.key?.toString('utf8');
          if (key !== undefined && key !== '') {
            try {
              this.o.apply(key, m.value, batch.partition, Number(m.offset));
            } catch (err) {
              this.o.logger.error({ err, topic, partition: batch.partition, offset: m.offset }, 'applying a record failed; skipped');
            }
          }
        }
        const last = Number(batch.lastOffset());
        if (last >= (this.applied.get(batch.partition) ?? -1)) this.applied.set(batch.partition, last);
        this.checkReady();
        this.wake();
      },
    });
  }

  private checkReady(): void {
    if (this.isReady) return;
    for (const [p, end] of this.startEnds) if ((this.applied.get(p) ?? -1) < end) return;
    this.isReady = true;
    this.readyResolve();
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((w) => {
      if ((this.applied.get(w.partition) ?? -1) < w.offset) return true;
      w.resolve();
      return false;
    });
  }

  /** Resolves once the record at (partition, offset) has been applied; kafka_unavailable after `timeoutMs`. */
  waitApplied(partition: number, offset: number, timeoutMs = 10_000): Promise<void> {
    if ((this.applied.get(partition) ?? -1) >= offset) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new FanoutError(
            'kafka_unavailable',
            `The write to ${this.o.topic} was acknowledged but not read back within ${timeoutMs} ms; it will apply shortly.`,
          ),
        );
      }, timeoutMs);
      const waiter = {
        partition,
        offset,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.waiters.push(waiter);
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    this.consumer = null;
  }
}
