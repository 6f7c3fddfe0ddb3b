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
 *
 * With nothing committed, kafkajs would start a re-joined consumer at the end of each partition,
 * silently skipping what was written meanwhile. So the next offset of every partition is kept
 * here, and every join, the first included, seeks there. A consumer that crashes (its broker or
 * group coordinator died in a failover, and kafkajs' retries ran out) is not restarted by kafkajs
 * in the same group, where the join would wait for the dead member's session to expire (10 s past
 * the coordinator's own move, measured with bench:failover): it is replaced by a new consumer in
 * a new group, which continues from the kept offsets as soon as Kafka can serve it.
 */
import { randomBytes } from 'node:crypto';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { recordEvent, whileRunning, withRetry, type IncomingEvent } from '@fanout/kafka';
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
  /** A consumer crashed and is being replaced by a new one (it continues where it stopped). */
  onReplaced?(error: Error): void;
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
  /** Next offset to read, per partition: where every (re)join seeks. */
  private readonly next = new Map<number, number>();
  /** Joins after the first (rebalances, and the consumers that replaced a crashed one). */
  rejoins = 0;
  private joins = 0;
  private paused = false;
  private stopping = false;
  /** Partitions of the topic (known once started). */
  partitionCount = 0;
  private joinedResolve!: () => void;
  /** Resolves once the consumer owns every partition and is positioned at its start offsets. */
  readonly joined = new Promise<void>((r) => (this.joinedResolve = r));

  constructor(private readonly opts: BroadcastConsumerOptions) {}

  async start(): Promise<void> {
    const { kafka, topic } = this.opts;
    // Take the start offsets before joining, then seek there explicitly: a record written after
    // this moment is delivered even if it lands before the first fetch.
    const admin = kafka.admin();
    await admin.connect();
    const ends = await withRetry(() => admin.fetchTopicOffsets(topic));
    const { maxAgeMs, maxRecords } = this.opts.warm;
    const recent = maxRecords > 0 ? await withRetry(() => admin.fetchTopicOffsetsByTimestamp(topic, Date.now() - maxAgeMs)) : [];
    await admin.disconnect();
    this.partitionCount = ends.length;
    ends.forEach((e) => {
      const high = Number(e.high);
      const since = Number(recent.find((r) => r.partition === e.partition)?.offset ?? high);
      const start = Math.max(Number(e.low), since >= 0 ? since : high, high - maxRecords);
      this.opts.onStart?.(e.partition, start, high);
      this.next.set(e.partition, start);
    });

    await this.startConsumer();
  }

  private async startConsumer(): Promise<void> {
    const { kafka, topic, node, logger } = this.opts;
    const groupId = `fanout-gw-bcast-${node}-${randomBytes(4).toString('hex')}`;
    const consumer = kafka.consumer({
      groupId,
      // One member: nothing to wait for when joining.
      rebalanceTimeout: 10_000,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
      // A crash is handled here (replace), not by kafkajs restarting the consumer in the same group.
      retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 8, restartOnFailure: async () => false },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const assigned = e.payload.memberAssignment[topic]?.length ?? 0;
      // Emitted inside the join, before the first fetch: the seeks apply to that fetch.
      for (const [partition, offset] of this.next) consumer.seek({ topic, partition, offset: String(offset) });
      if (this.joins++ > 0) {
        this.rejoins++;
        logger.warn(
          { groupId, partitions: assigned, next: Object.fromEntries(this.next) },
          'broadcast consumer joined again; continuing where it stopped',
        );
      } else logger.info({ groupId, partitions: assigned }, 'broadcast consumer joined');
      this.joinedResolve();
    });
    consumer.on(consumer.events.CRASH, (e) => {
      if (consumer === this.consumer) void this.replace(consumer, e.payload.error);
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: 1,
      eachBatchAutoResolve: true,
      eachBatch: async (payload) => this.handleBatch(payload),
    });
    if (this.paused) whileRunning(() => consumer.pause([{ topic }]), undefined);
  }

  /** Replaces a crashed consumer with a new one (new group), retrying each second until it runs. */
  private async replace(crashed: Consumer, error: Error): Promise<void> {
    this.opts.logger.warn({ err: error.message }, 'broadcast consumer crashed; starting a new one where it stopped');
    this.opts.onReplaced?.(error);
    this.consumer = null;
    await crashed.disconnect().catch(() => {});
    while (!this.stopping) {
      try {
        await this.startConsumer();
        return;
      } catch (err) {
        this.opts.logger.warn({ err: (err as Error).message }, 'broadcast consumer could not start yet; retrying');
        const failed = this.consumer as Consumer | null;
        this.consumer = null;
        await failed?.disconnect().catch(() => {});
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async handleBatch({ batch }: EachBatchPayload): Promise<void> {
    const { onEvent, onSkipped } = this.opts;
    const partition = batch.partition;
    // The next offset is recorded once per batch (also when a record throws: as before, that
    // record counts as handled), not once per record.
    let next = -1;
    try {
      for (const m of batch.messages) {
        const offset = Number(m.offset);
        next = offset + 1;
        const event = recordEvent(m, partition, offset, false);
        if (event === null) {
          onSkipped?.();
          this.opts.onSkippedOffset?.(partition, offset);
          continue;
        }
        onEvent(event, partition, offset);
      }
    } finally {
      if (next >= 0) this.next.set(partition, next);
    }
  }

  /** Stops fetching every partition (the memory budget is exhausted); records already fetched still arrive. */
  pause(): void {
    this.paused = true;
    whileRunning(() => this.consumer?.pause([{ topic: this.opts.topic }]), undefined);
  }

  resume(): void {
    this.paused = false;
    whileRunning(() => this.consumer?.resume([{ topic: this.opts.topic }]), undefined);
  }

  /** Partitions currently paused. */
  pausedPartitions(): number {
    return whileRunning(() => this.consumer?.paused().reduce((n, t) => n + t.partitions.length, 0) ?? 0, 0);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.consumer?.disconnect();
  }
}
