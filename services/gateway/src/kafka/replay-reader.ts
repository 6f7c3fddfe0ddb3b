/**
 * Reads a bounded range of one partition straight from Kafka, for clients resuming from a position
 * older than the in-memory window: offsets (after, upTo], filtered to one channel.
 *
 * Each read is a short-lived consumer in a group of its own, positioned with seek; reads are
 * limited in number at a time (a reconnect storm queues here instead of opening hundreds of
 * consumers) and in duration.
 */
import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { fromRecord, withRetry, type IncomingEvent } from '@fanout/kafka';
import type { Logger } from '@fanout/observability';

export class ReplayUnavailableError extends Error {
  constructor(
    readonly reason: 'beyond_retention' | 'replay_failed',
    message: string,
  ) {
    super(message);
    this.name = 'ReplayUnavailableError';
  }
}

export interface ReplayedEvent {
  event: IncomingEvent;
  offset: number;
}

export interface ReplayReaderOptions {
  kafka: Kafka;
  topic: string;
  node: string;
  logger: Logger;
  /** Reads at a time. */
  maxConcurrent: number;
  /** Longest a read may take, in ms. */
  timeoutMs: number;
  /** Records of the users topic name their channel by key as `user:<key>` when they lack the header. */
  usersTopic: boolean;
}

export class ReplayReader {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  reads = 0;

  constructor(private readonly o: ReplayReaderOptions) {}

  async read(partition: number, after: number, upTo: number, channel: string): Promise<ReplayedEvent[]> {
    if (upTo <= after) return [];
    if (this.running >= this.o.maxConcurrent) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    this.reads++;
    try {
      return await this.readNow(partition, after, upTo, channel);
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  private async readNow(partition: number, after: number, upTo: number, channel: string): Promise<ReplayedEvent[]> {
    const { kafka, topic, logger } = this.o;
    const admin = kafka.admin();
    await admin.connect();
    try {
      const offsets = await withRetry(() => admin.fetchTopicOffsets(topic), 5);
      const low = Number(offsets.find((p) => p.partition === partition)?.low ?? 0);
      if (low > after + 1) throw new ReplayUnavailableError('beyond_retention', `offsets ${after + 1}..${low - 1} of partition ${partition} are no longer in Kafka`);
    } finally {
      await admin.disconnect();
    }
    const consumer = kafka.consumer({ groupId: `fanout-replay-${this.o.node}-${randomBytes(4).toString('hex')}`, sessionTimeout: 10_000, heartbeatInterval: 1000, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
    const out: ReplayedEvent[] = [];
    let timer: NodeJS.Timeout | undefined;
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: false });
      const done = new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(new ReplayUnavailableError('replay_failed', `reading partition ${partition} from Kafka took over ${this.o.timeoutMs} ms`)), this.o.timeoutMs);
        consumer.on(consumer.events.GROUP_JOIN, (e) => {
          const others = (e.payload.memberAssignment[topic] ?? []).filter((p) => p !== partition);
          if (others.length > 0) consumer.pause([{ topic, partitions: others }]);
        });
        void consumer
          .run({
            autoCommit: false,
            eachBatchAutoResolve: true,
            eachBatch: async ({ batch }) => {
              if (batch.partition !== partition) return;
              for (const m of batch.messages) {
                const offset = Number(m.offset);
                if (offset <= after) continue;
                if (offset > upTo) break;
                const event = fromRecord(m, partition, this.o.usersTopic);
                if (event && event.channel === channel) out.push({ event, offset });
              }
              const last = Number(batch.messages.at(-1)?.offset ?? -1);
              if (last >= upTo) resolve();
            },
          })
          .then(() => consumer.seek({ topic, partition, offset: String(after + 1) }), reject);
      });
      await done;
      logger.debug({ partition, after, upTo, channel_messages: out.length }, 'replayed from kafka');
      return out;
    } catch (err) {
      if (err instanceof ReplayUnavailableError) throw err;
      throw new ReplayUnavailableError('replay_failed', `reading from Kafka failed: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
      await consumer.disconnect().catch(() => {});
    }
  }
}
