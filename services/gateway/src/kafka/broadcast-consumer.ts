/**
 * Reads every partition of the broadcast topic and hands each record to the delivery path.
 *
 * Every gateway must see every broadcast message, so gateways do not share a consumer group here.
 * kafkajs has no group-less assignment, so each gateway process joins a group of its own
 * (`fanout-gw-bcast-<node>-<random>`), which assigns it all partitions, and never commits: it
 * starts at the end of each partition as it was when the gateway started (positions and replay
 * from older offsets are the resume path's job). Those single-member groups hold no committed
 * offsets and disappear with the process.
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
  /** Called before consuming, with the first offset this gateway will read on each partition. */
  onStart?(partition: number, offset: number): void;
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
    // Take the end offsets before joining, then seek there explicitly: a record written after
    // this moment is delivered even if it lands before the first fetch.
    const admin = kafka.admin();
    await admin.connect();
    const ends = await withRetry(() => admin.fetchTopicOffsets(topic));
    await admin.disconnect();
    this.partitionCount = ends.length;
    for (const e of ends) this.opts.onStart?.(e.partition, Number(e.high));

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
    for (const e of ends) consumer.seek({ topic, partition: e.partition, offset: e.high });
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
