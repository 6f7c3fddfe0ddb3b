/**
 * Reads every partition of the broadcast topic and hands each record to the delivery path.
 *
 * Every gateway must see every broadcast message, so gateways do not share a consumer group here.
 * kafkajs has no group-less assignment, so each gateway process joins a group of its own
 * (`fanout-gw-bcast-<node>-<random>`), which assigns it all partitions, and never commits.
 *
 * It starts a little in the past: at the oldest offset of each partition that is within the
 * window's age and the warm-up's record bound (`warm`), so that the records up to the end of the
 * partition as it was at start (`end`) load the windows before the gateway reports ready, and the
 * clients of a gateway that died resume here from memory. Those single-member groups hold no
 * committed offsets and disappear with the process.
 */
import { randomBytes } from 'node:crypto';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { fromRecord, withRetry, type IncomingEvent } from '@fanout/kafka';
import type { Logger } from '@fanout/observability';

export interface BroadcastConsumerOptions {
  kafka: Kafka;
  topic: string;
  node: string;
  logger: Logger;
  /** Called for every record, in partition order; `partition` and `offset` give its position. */
  onEvent(event: IncomingEvent, partition: number, offset: number): void;
  onSkipped?(): void;
  onSkippedOffset?(partition: number, offset: number): void;
  /** The consumer stopped for good (kafkajs will not restart it). */
  onCrash?(error: Error): void;
  /**
   * Called before consuming, for each partition: the first offset this gateway will read, and the
   * partition's end when it started (records in [start, end) are the recent past, for warming).
   */
  onStart?(partition: number, start: number, end: number): void;
  /** How far back to start: records no older than maxAgeMs, at most maxRecords per partition. */
  warm: { maxAgeMs: number; maxRecords: number };
}

export class BroadcastConsumer {
  private consumer: Consumer | null = null;
  /** Partitions of the topic (known once started). */
  partitionCount = 0;
  private joinedResolve!: () => void;
  /** Resolves once the consumer owns every partition and is positioned at its start offsets. */
  readonly joined = new Promise<void>((r) => (this.joinedResolve = r));

  constructor(private readonly opts: BroadcastConsumerOptions) {}

  async start(): Promise<void> {
    const { kafka, topic, node, logger } = this.opts;
    // Take the start offsets before joining, then seek there explicitly: a record written after
    // this moment is delivered even if it lands before the first fetch.
    const admin = kafka.admin();
    await admin.connect();
    const ends = await withRetry(() => admin.fetchTopicOffsets(topic));
    const { maxAgeMs, maxRecords } = this.opts.warm;
    const recent = maxRecords > 0 ? await withRetry(() => admin.fetchTopicOffsetsByTimestamp(topic, Date.now() - maxAgeMs)) : [];
    await admin.disconnect();
    this.partitionCount = ends.length;
    const starts = ends.map((e) => {
      const high = Number(e.high);
      const since = Number(recent.find((r) => r.partition === e.partition)?.offset ?? high);
      const start = Math.max(Number(e.low), since >= 0 ? since : high, high - maxRecords);
      this.opts.onStart?.(e.partition, start, high);
      return { partition: e.partition, offset: String(start) };
    });

    const groupId = `fanout-gw-bcast-${node}-${randomBytes(4).toString('hex')}`;
    const consumer = kafka.consumer({
      groupId,
      // One member: nothing to wait for when joining.
      rebalanceTimeout: 10_000,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const assigned = e.payload.memberAssignment[topic]?.length ?? 0;
      logger.info({ groupId, partitions: assigned }, 'broadcast consumer joined');
      this.joinedResolve();
    });
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) this.opts.onCrash?.(e.payload.error);
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: 1,
      eachBatchAutoResolve: true,
      eachBatch: async (payload) => this.handleBatch(payload),
    });
    for (const e of starts) consumer.seek({ topic, partition: e.partition, offset: e.offset });
  }

  private async handleBatch({ batch }: EachBatchPayload): Promise<void> {
    const { onEvent, onSkipped } = this.opts;
    for (const m of batch.messages) {
      const event = fromRecord(m, batch.partition, false);
      if (event === null) {
        onSkipped?.();
        this.opts.onSkippedOffset?.(batch.partition, Number(m.offset));
        continue;
      }
      onEvent(event, batch.partition, Number(m.offset));
    }
  }

  /** Stops fetching every partition (the memory budget is exhausted); records already fetched still arrive. */
  pause(): void {
    this.consumer?.pause([{ topic: this.opts.topic }]);
  }

  resume(): void {
    this.consumer?.resume([{ topic: this.opts.topic }]);
  }

  /** Partitions currently paused. */
  pausedPartitions(): number {
    return this.consumer?.paused().reduce((n, t) => n + t.partitions.length, 0) ?? 0;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}
