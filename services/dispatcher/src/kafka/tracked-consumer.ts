/**
 * A consumer-group member that hands records to the delivery engine without waiting for them and
 * commits, per partition, only the offsets below the first record whose deliveries have not
 * settled (PartitionTracker). Kafka's automatic commit is off: the offset that moves the fetch
 * position (kafkajs' "resolved" offset) and the committed one are kept apart on purpose.
 *
 * Bounded memory: a partition with `window` records unsettled pauses until half of them settled.
 * Delayed records: when `dueAt` says a record is not due yet, its partition pauses, seeks back
 * to it and resumes when it is due; other partitions go on meanwhile (the retry consumer).
 */
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from '@fanout/observability';
import { PartitionTracker } from './offset-tracker.js';

export interface RecordContext {
  topic: string;
  partition: number;
  message: KafkaMessage;
  /** Registers one delivery started for this record; call the returned function once when it settles. */
  track(): () => void;
}

export interface TrackedConsumerOptions {
  kafka: Kafka;
  groupId: string;
  topics: string[];
  fromBeginning: boolean;
  sessionTimeoutMs: number;
  commitIntervalMs: number;
  window: number;
  logger: Logger;
  /** Starts the record's deliveries (calling track() once per delivery); must not block. */
  handle(ctx: RecordContext): void;
  /** When the record is due (ms since the epoch); records not due yet wait in Kafka. */
  dueAt?(message: KafkaMessage): number;
  /** The consumer stopped for good (kafkajs will not restart it). */
  onCrash(err: Error): void;
  /** A partition paused: its window of unsettled records is full, or the read-ahead budget is. */
  onPause?(reason: 'window' | 'budget'): void;
  /** Read-ahead budget: while `full()`, no record is taken; reading resumes once `drained()`. */
  budget?: { full(): boolean; drained(): boolean };
}

/** How often partitions paused for the read-ahead budget check whether it drained, in ms. */
const BUDGET_POLL_MS = 20;

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export class TrackedConsumer {
  private consumer: Consumer | null = null;
  private readonly trackers = new Map<string, { topic: string; partition: number; t: PartitionTracker }>();
  private readonly dueTimers = new Map<string, NodeJS.Timeout>();
  private commitTimer: NodeJS.Timeout | null = null;
  /** Partitions paused for the read-ahead budget, and the timer that resumes them. */
  private readonly budgetPaused = new Map<string, { topic: string; partition: number }>();
  private budgetTimer: NodeJS.Timeout | null = null;
  private committing: Promise<void> | null = null;
  private stopped = false;
  private joinedResolve!: () => void;
  /** Resolves once the member got its first assignment. */
  readonly joined = new Promise<void>((r) => (this.joinedResolve = r));

  constructor(private readonly o: TrackedConsumerOptions) {}

  async start(): Promise<void> {
    const consumer = this.o.kafka.consumer({
      groupId: this.o.groupId,
      sessionTimeout: this.o.sessionTimeoutMs,
      rebalanceTimeout: Math.max(this.o.sessionTimeoutMs, 10_000),
      heartbeatInterval: Math.max(500, Math.floor(this.o.sessionTimeoutMs / 6)),
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.assigned(e.payload.memberAssignment));
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart && !this.stopped) this.o.onCrash(e.payload.error);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: this.o.topics, fromBeginning: this.o.fromBeginning });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: async (p) => this.batch(p),
    });
    this.commitTimer = setInterval(() => void this.commit(), this.o.commitIntervalMs);
  }

  private assigned(assignment: Record<string, number[]>): void {
    const now = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) for (const p of partitions) now.add(key(topic, p));
    // Lost partitions: their deliveries still run, but what they settle is not ours to commit.
    for (const [k, e] of this.trackers) {
      if (now.has(k)) continue;
      this.trackers.delete(k);
      if (e.t.pausedForWindow) this.consumer?.resume([{ topic: e.topic, partitions: [e.partition] }]);
    }
    this.o.logger.info({ group: this.o.groupId, partitions: now.size }, 'partitions assigned');
    this.joinedResolve();
  }

  private tracker(topic: string, partition: number): PartitionTracker {
    const k = key(topic, partition);
    let e = this.trackers.get(k);
    if (!e) this.trackers.set(k, (e = { topic, partition, t: new PartitionTracker() }));
    return e.t;
  }

  private async batch({ batch, resolveOffset, pause, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    const t = this.tracker(topic, partition);
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.stopped) return;
      const offset = Number(message.offset);
      // Already taken (re-fetched after a rebalance that left this partition here): skip.
      if (offset < t.next) {
        resolveOffset(message.offset);
        continue;
      }
      // After a pause this partition resumes exactly at the record it stopped at; anything later
      // arriving first (a batch fetched before the seek took effect) must not jump over it.
      if (t.resumeAt >= 0) {
        if (offset > t.resumeAt) return;
        t.resumeAt = -1;
      }
      if (t.size >= this.o.window) {
        t.pausedForWindow = true;
        t.resumeAt = offset;
        pause();
        this.o.onPause?.('window');
        this.consumer!.seek({ topic, partition, offset: message.offset });
        return;
      }
      if (this.o.budget?.full()) {
        t.resumeAt = offset;
        pause();
        this.consumer!.seek({ topic, partition, offset: message.offset });
        this.pausedForBudget(topic, partition);
        this.o.onPause?.('budget');
        return;
      }
      if (this.o.dueAt) {
        const wait = this.o.dueAt(message) - Date.now();
        if (wait > 0) {
          t.resumeAt = offset;
          this.waitUntilDue(topic, partition, message.offset, wait, pause);
          return;
        }
      }
      t.take(offset);
      try {
        this.o.handle({
          topic,
          partition,
          message,
          track: () => {
            t.add(offset);
            let settled = false;
            return () => {
              if (settled) return;
              settled = true;
              this.settled(topic, partition, t, offset);
            };
          },
        });
      } catch (err) {
        this.o.logger.error({ err, topic, partition, offset }, 'handling a record failed; skipped');
      }
      this.settled(topic, partition, t, offset);
      resolveOffset(message.offset);
    }
  }

  private pausedForBudget(topic: string, partition: number): void {
    this.budgetPaused.set(key(topic, partition), { topic, partition });
    if (this.budgetTimer) return;
    this.budgetTimer = setInterval(() => {
      if (this.stopped || !this.o.budget!.drained()) return;
      clearInterval(this.budgetTimer!);
      this.budgetTimer = null;
      const all = [...this.budgetPaused.values()];
      this.budgetPaused.clear();
      for (const { topic: tp, partition: p } of all) this.consumer?.resume([{ topic: tp, partitions: [p] }]);
    }, BUDGET_POLL_MS);
  }

  private waitUntilDue(topic: string, partition: number, offset: string, waitMs: number, pause: () => () => void): void {
    const resume = pause();
    this.consumer!.seek({ topic, partition, offset });
    const k = key(topic, partition);
    const old = this.dueTimers.get(k);
    if (old) clearTimeout(old);
    // setTimeout's limit is 2^31-1 ms; longer waits are taken in steps.
    this.dueTimers.set(
      k,
      setTimeout(
        () => {
          this.dueTimers.delete(k);
          if (!this.stopped) resume();
        },
        Math.min(waitMs, 2 ** 31 - 1),
      ),
    );
  }

  private settled(topic: string, partition: number, t: PartitionTracker, offset: number): void {
    t.settle(offset);
    if (t.pausedForWindow && t.size <= this.o.window / 2 && this.trackers.get(key(topic, partition))?.t === t) {
      t.pausedForWindow = false;
      this.consumer?.resume([{ topic, partitions: [partition] }]);
    }
  }

  /** Commits every partition's committable offset that moved; a failure (rebalance) is retried next time. */
  commit(): Promise<void> {
    if (this.committing) return this.committing;
    const offsets: { topic: string; partition: number; offset: string }[] = [];
    const moved: [PartitionTracker, number][] = [];
    for (const { topic, partition, t } of this.trackers.values()) {
      const c = t.committable;
      if (c > t.committed) {
        offsets.push({ topic, partition, offset: String(c) });
        moved.push([t, c]);
      }
    }
    if (offsets.length === 0 || !this.consumer) return Promise.resolve();
    this.committing = this.consumer
      .commitOffsets(offsets)
      .then(
        () => {
          for (const [t, c] of moved) t.committed = Math.max(t.committed, c);
        },
        (err: unknown) => this.o.logger.debug({ err, group: this.o.groupId }, 'offset commit failed; retried at the next interval'),
      )
      .finally(() => {
        this.committing = null;
      });
    return this.committing;
  }

  /** Stops fetching (deliveries in flight go on settling). */
  pauseAll(): void {
    this.consumer?.pause(this.o.topics.map((topic) => ({ topic })));
  }

  /** Records taken and not settled, over every partition. */
  get unsettled(): number {
    let n = 0;
    for (const { t } of this.trackers.values()) n += t.size;
    return n;
  }

  /** Commits what settled and leaves the group. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.commitTimer) clearInterval(this.commitTimer);
    if (this.budgetTimer) clearInterval(this.budgetTimer);
    for (const t of this.dueTimers.values()) clearTimeout(t);
    this.dueTimers.clear();
    await this.committing;
    await this.commit().catch(() => {});
    await this.consumer?.disconnect();
    this.consumer = null;
  }
}
