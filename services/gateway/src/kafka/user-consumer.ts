/**
 * Reads the users topic as one member of the region's consumer group (`fanout-gw-<region>`), so
 * the region reads each user event once and each partition has one owner gateway. The member's
 * node name and public URL ride in its group metadata (gatewayAssigner), which is how the router
 * learns who owns what.
 *
 * On every rebalance the new assignment is compared with the old one: the gateway tells the
 * clients of partitions it lost to reconnect (they ask the router and resume on the new owner),
 * and starts a fresh window for partitions it gained, from the group's committed offset.
 */
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { fromRecord, gatewayAssigner, withRetry, type IncomingEvent } from '@fanout/kafka';
import type { Logger } from '@fanout/observability';

export interface UserConsumerOptions {
  kafka: Kafka;
  topic: string;
  groupId: string;
  node: string;
  url: string;
  logger: Logger;
  onEvent(event: IncomingEvent, partition: number, offset: number): void;
  onSkippedOffset?(partition: number, offset: number): void;
  /** The consumer stopped for good (kafkajs will not restart it). */
  onCrash?(error: Error): void;
  /** After each rebalance: the partitions gained (with the offset consumption starts at) and lost. */
  onAssignment(gained: Map<number, number>, lost: number[]): void;
}

export class UserConsumer {
  private consumer: Consumer | null = null;
  /** Partitions Kafka assigned to this member (their records are consumed). */
  private assigned = new Set<number>();
  /** Assigned partitions whose start offset is known: only these are served to clients. */
  private owned = new Set<number>();
  private joinedResolve!: () => void;
  readonly joined = new Promise<void>((r) => (this.joinedResolve = r));
  partitionCount = 0;
  rebalances = 0;

  constructor(private readonly o: UserConsumerOptions) {}

  owns(partition: number): boolean {
    return this.owned.has(partition);
  }

  get ownedPartitions(): number[] {
    return [...this.owned].sort((a, b) => a - b);
  }

  async start(): Promise<void> {
    const { kafka, topic, groupId, logger } = this.o;
    const admin = kafka.admin();
    await admin.connect();
    const meta = await withRetry(() => admin.fetchTopicMetadata({ topics: [topic] }));
    this.partitionCount = meta.topics[0]?.partitions.length ?? 0;
    await admin.disconnect();

    const consumer = kafka.consumer({
      groupId,
      partitionAssigners: [gatewayAssigner({ node: this.o.node, url: this.o.url }, () => [...this.assigned])],
      sessionTimeout: 10_000,
      rebalanceTimeout: 10_000,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      void this.reassigned(new Set(e.payload.memberAssignment[topic] ?? [])).catch((err: unknown) => logger.error({ err }, 'handling the new assignment failed'));
    });
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) this.o.onCrash?.(e.payload.error);
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    await consumer.run({
      autoCommit: true,
      autoCommitInterval: 1000,
      partitionsConsumedConcurrently: 1,
      eachBatchAutoResolve: true,
      eachBatch: async (p) => this.handleBatch(p),
    });
  }

  private async reassigned(now: Set<number>): Promise<void> {
    const lost = [...this.assigned].filter((p) => !now.has(p));
    const gainedList = [...now].filter((p) => !this.assigned.has(p));
    this.assigned = now;
    // Lost partitions stop being served at once; gained ones only once their start is known, so
    // that a resume on them can tell what must come from Kafka.
    for (const p of lost) this.owned.delete(p);
    this.rebalances++;
    // Where consumption of each gained partition starts: the group's committed offset, or the end
    // of the partition when nothing was committed yet (new groups start at the end).
    const gained = new Map<number, number>();
    if (gainedList.length > 0) {
      const admin = this.o.kafka.admin();
      await admin.connect();
      try {
        const [committed] = await withRetry(() => admin.fetchOffsets({ groupId: this.o.groupId, topics: [this.o.topic] }));
        const ends = await withRetry(() => admin.fetchTopicOffsets(this.o.topic));
        for (const p of gainedList) {
          const c = Number(committed?.partitions.find((x) => x.partition === p)?.offset ?? -1);
          gained.set(p, c >= 0 ? c : Number(ends.find((x) => x.partition === p)?.high ?? 0));
        }
      } finally {
        await admin.disconnect();
      }
    }
    this.o.logger.info({ group: this.o.groupId, owned: [...now].sort((a, b) => a - b), gained: gainedList, lost }, 'user partitions assigned');
    this.o.onAssignment(gained, lost);
    for (const p of gained.keys()) if (this.assigned.has(p)) this.owned.add(p);
    this.joinedResolve();
  }

  private async handleBatch({ batch }: EachBatchPayload): Promise<void> {
    if (!this.assigned.has(batch.partition)) return;
    for (const m of batch.messages) {
      const event = fromRecord(m, batch.partition, true);
      if (event === null) {
        this.o.onSkippedOffset?.(batch.partition, Number(m.offset));
        continue;
      }
      this.o.onEvent(event, batch.partition, Number(m.offset));
    }
  }

  pause(): void {
    this.consumer?.pause([{ topic: this.o.topic }]);
  }

  resume(): void {
    this.consumer?.resume([{ topic: this.o.topic }]);
  }

  pausedPartitions(): number {
    return this.consumer?.paused().reduce((n, t) => n + t.partitions.length, 0) ?? 0;
  }

  async stop(): Promise<void> {
    // Leaving the group gives up every partition: stop serving them and reporting them.
    this.owned.clear();
    this.assigned.clear();
    await this.consumer?.disconnect();
  }
}
