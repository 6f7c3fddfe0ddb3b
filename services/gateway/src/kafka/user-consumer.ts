/**
 * Reads the users topic as one member of the region's consumer group (`fanout-gw-<region>`), so
 * the region reads each user event once and each partition has one owner gateway. The member's
 * node name and public URL ride in its group metadata (gatewayAssigner), which is how the router
 * learns who owns what.
 *
 * On every rebalance the new assignment is compared with the old one: the gateway tells the
 * clients of partitions it lost to reconnect (once the group is stable with their new owner, see
 * waitForHandover in service.ts) (they ask the router and resume on the new owner),
 * and warms a window for each partition it gained: the partition stays paused from the moment it
 * is assigned until `onAssignment` has loaded its recent past (records before the group's
 * committed offset), then consumption resumes from the committed offset, so the window is built
 * in offset order and the clients moving here resume from memory.
 *
 * Records not on their key's partition are forwarded there, not delivered (kafka/misrouted.ts): a
 * batch's offsets are resolved (and so committed) only once its copies are acknowledged.
 */
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { fromRecord, gatewayAssigner, whileRunning, withRetry, type IncomingEvent } from '@fanout/kafka';
import type { Logger } from '@fanout/observability';
import {
  chunks,
  classifyUserRecord,
  ForwardRefusedError,
  type ForwardedCopies,
  type Forwarder,
  type MisroutedLog,
  type MisroutedReporter,
  type PendingForward,
} from './misrouted.js';

export interface UserConsumerOptions {
  kafka: Kafka;
  topic: string;
  groupId: string;
  node: string;
  url: string;
  /** This gateway's region: forwarded copies are marked with it, and only its own are delivered. */
  region: string;
  logger: Logger;
  onEvent(event: IncomingEvent, partition: number, offset: number): void;
  /** A record read but delivered to nobody (no channel, misrouted, another region's copy, a repeat). */
  onSkippedOffset?(partition: number, offset: number): void;
  /** A record without key and without `fanout-channel` (fanout_gateway_kafka_skipped_total). */
  onSkipped?(): void;
  /** Misrouted records: forwarding, repeated copies, logging and counting (kafka/misrouted.ts). */
  misrouted: { forwarder: Forwarder; copies: ForwardedCopies; log: MisroutedLog; report: MisroutedReporter };
  /** The consumer stopped for good (kafkajs will not restart it). */
  onCrash?(error: Error): void;
  /**
   * After each rebalance: the partitions gained (with the offset consumption resumes at: the
   * group's committed offset, or the end for a new group) and lost. Gained partitions stay paused
   * until the returned promise settles (their warm-up).
   */
  onAssignment(gained: Map<number, GainedPartition>, lost: number[]): Promise<void> | void;
  /**
   * Called at once (in the same turn as Kafka's assignment) with the partitions gained: they are
   * served from now on, so the caller marks them as warming (resumes and polls wait until
   * onAssignment's warm-up has loaded them, or until onGainAbandoned).
   */
  onGaining(gained: number[]): void;
  /** Working out where the gained partitions start failed: serve them without a warm window. */
  onGainAbandoned(gained: number[]): void;
  /** How far back to warm a gained partition: records no older than maxAgeMs, at most maxRecords. */
  warm: { maxAgeMs: number; maxRecords: number };
}

/** A partition this gateway gained: [start, resumeAt) is its recent past, to warm the window with. */
export interface GainedPartition {
  start: number;
  /** Where consumption resumes: the group's committed offset, or the end for a new group. */
  resumeAt: number;
}

export class UserConsumer {
  private consumer: Consumer | null = null;
  /** Partitions Kafka assigned to this member (their records are consumed). */
  private assigned = new Set<number>();
  /** Assigned partitions whose start offset is known: only these are served to clients. */
  private owned = new Set<number>();
  /** Gained partitions kept paused while their windows warm. */
  private readonly warming = new Set<number>();
  /** Paused by the memory budget (pause()). */
  private budgetPaused = false;
  /**
   * Per partition: the last offset handed to onEvent/onSkippedOffset. A batch whose forwards did
   * not complete is fetched again; its records up to here are not delivered twice.
   */
  private readonly handled = new Map<number, number>();
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
      // Gained partitions are paused before the first fetch; reassigned() resumes them once warm.
      const gained = (e.payload.memberAssignment[topic] ?? []).filter((p) => !this.assigned.has(p));
      for (const p of gained) this.warming.add(p);
      if (gained.length > 0) consumer.pause([{ topic, partitions: gained }]);
      // A consumer kafkajs restarted after a crash starts unpaused: the memory budget's pause again.
      if (this.budgetPaused) consumer.pause([{ topic }]);
      void this.reassigned(new Set(e.payload.memberAssignment[topic] ?? [])).catch((err: unknown) => {
        logger.error({ err }, 'handling the new assignment failed; serving the gained partitions without a warm window');
        this.o.onGainAbandoned(gained);
        this.resumeGained(gained);
        this.joinedResolve();
      });
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
      // Resolved by handleBatch, once the batch's misrouted records are forwarded.
      eachBatchAutoResolve: false,
      eachBatch: async (p) => this.handleBatch(p),
    });
  }

  private async reassigned(now: Set<number>): Promise<void> {
    const lost = [...this.assigned].filter((p) => !now.has(p));
    const gainedList = [...now].filter((p) => !this.assigned.has(p));
    this.assigned = now;
    // Lost partitions stop being served at once. Gained ones are served at once too, so that a
    // client the router sends here is not told wrong_gateway while their start is being looked up:
    // what needs their start (resumes, polls) waits for the warm-up that follows.
    for (const p of lost) {
      this.owned.delete(p);
      this.handled.delete(p);
    }
    for (const p of gainedList) this.owned.add(p);
    if (gainedList.length > 0) this.o.onGaining(gainedList);
    this.rebalances++;
    // Where consumption of each gained partition starts: the group's committed offset, or the end
    // of the partition when nothing was committed yet (new groups start at the end).
    const gained = new Map<number, GainedPartition>();
    if (gainedList.length > 0) {
      const admin = this.o.kafka.admin();
      await admin.connect();
      try {
        const [committed] = await withRetry(() => admin.fetchOffsets({ groupId: this.o.groupId, topics: [this.o.topic] }));
        const ends = await withRetry(() => admin.fetchTopicOffsets(this.o.topic));
        const { maxAgeMs, maxRecords } = this.o.warm;
        const recent = maxRecords > 0 ? await withRetry(() => admin.fetchTopicOffsetsByTimestamp(this.o.topic, Date.now() - maxAgeMs)) : [];
        for (const p of gainedList) {
          const c = Number(committed?.partitions.find((x) => x.partition === p)?.offset ?? -1);
          const end = ends.find((x) => x.partition === p);
          const resumeAt = c >= 0 ? c : Number(end?.high ?? 0);
          const since = Number(recent.find((x) => x.partition === p)?.offset ?? resumeAt);
          const start = Math.min(resumeAt, Math.max(Number(end?.low ?? 0), since >= 0 ? since : resumeAt, resumeAt - maxRecords));
          gained.set(p, { start, resumeAt });
        }
      } finally {
        await admin.disconnect();
      }
    }
    this.o.logger.info(
      { group: this.o.groupId, owned: [...now].sort((a, b) => a - b), gained: gainedList, lost },
      'user partitions assigned',
    );
    const warmed = this.o.onAssignment(gained, lost);
    this.joinedResolve();
    try {
      await warmed;
    } finally {
      this.resumeGained(gainedList);
    }
  }

  /** Gained partitions start being consumed (from the group's committed offset) once warm. */
  private resumeGained(gained: number[]): void {
    for (const p of gained) this.warming.delete(p);
    const again = gained.filter((p) => this.assigned.has(p));
    if (again.length > 0 && !this.budgetPaused)
      whileRunning(() => this.consumer?.resume([{ topic: this.o.topic, partitions: again }]), undefined);
  }

  private async handleBatch({ batch, resolveOffset, heartbeat, isRunning }: EachBatchPayload): Promise<void> {
    const p = batch.partition;
    if (!this.assigned.has(p) || batch.messages.length === 0) return;
    const { copies, log, report } = this.o.misrouted;
    const before = this.handled.get(p) ?? -1;
    const forwards: PendingForward[] = [];
    for (const m of batch.messages) {
      const offset = Number(m.offset);
      const r = classifyUserRecord(m, p, this.partitionCount, this.o.region);
      if (r.kind === 'misrouted') {
        // Forwarded again if this batch is read again: its copy may not have been acknowledged.
        forwards.push({ m, partition: p, target: r.target });
        if (offset > before) {
          log.misrouted(m, p, r.target, this.partitionCount, r.key);
          this.o.onSkippedOffset?.(p, offset);
        }
        continue;
      }
      if (offset <= before) continue;
      switch (r.kind) {
        case 'event':
          if (r.origin !== null && !copies.admit(p, offset, r.origin)) {
            report.onCopy('duplicate');
            this.o.onSkippedOffset?.(p, offset);
            break;
          }
          if (r.origin !== null) report.onCopy('delivered');
          this.o.onEvent(r.event, p, offset);
          break;
        case 'other_region':
          report.onCopy('other_region');
          this.o.onSkippedOffset?.(p, offset);
          break;
        case 'dropped':
          if (r.reason === 'no_key' && fromRecord(m, p, true) === null) this.o.onSkipped?.();
          log.dropped(m, p, r.reason, r.key);
          this.o.onSkippedOffset?.(p, offset);
          break;
      }
    }
    const last = batch.messages[batch.messages.length - 1]!.offset;
    this.handled.set(p, Math.max(before, Number(last)));
    if (forwards.length > 0 && !(await this.forward(forwards, heartbeat, isRunning))) return;
    // Only now may the batch be committed: every copy is in Kafka.
    resolveOffset(last);
  }

  /**
   * Sends the copies, a chunk at a time in order, retrying what Kafka could not take yet while
   * this gateway still owns the partition. False when it gave up (the partition moved, or the
   * consumer stops): the batch stays unresolved, and whoever reads it next forwards it again.
   */
  private async forward(items: PendingForward[], heartbeat: () => Promise<void>, isRunning: () => boolean): Promise<boolean> {
    const { forwarder, log, report } = this.o.misrouted;
    const p = items[0]!.partition;
    for (const chunk of chunks(items)) {
      for (let attempt = 0; ; attempt++) {
        try {
          await forwarder.send(chunk);
          report.onMisrouted('forwarded', 'wrong_partition', chunk.length);
          break;
        } catch (err) {
          if (err instanceof ForwardRefusedError) {
            // Retrying cannot help, and holding the partition would stop its own users' records.
            for (const f of chunk) log.dropped(f.m, p, 'forward_refused', f.m.key?.toString() ?? null, err.cause);
            break;
          }
          if (attempt % 10 === 0)
            this.o.logger.warn(
              { err, users_partition: p, records: chunk.length, attempt },
              'forwarding misrouted user records failed; retrying (the partition waits)',
            );
          await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.min(attempt, 5))));
          if (!isRunning() || !this.assigned.has(p)) return false;
          try {
            await heartbeat();
          } catch {
            // A rebalance (or the coordinator moved): let kafkajs rejoin. If this gateway keeps the
            // partition, the batch is fetched again and its copies sent again (the records it
            // delivered are not delivered twice, see `handled`); if not, the new owner forwards.
            return false;
          }
          if (!isRunning() || !this.assigned.has(p)) return false;
        }
      }
    }
    return true;
  }

  pause(): void {
    this.budgetPaused = true;
    whileRunning(() => this.consumer?.pause([{ topic: this.o.topic }]), undefined);
  }

  /** Resumes what pause() stopped; partitions still warming stay paused until they are warm. */
  resume(): void {
    this.budgetPaused = false;
    const partitions = [...this.assigned].filter((p) => !this.warming.has(p));
    if (partitions.length > 0) whileRunning(() => this.consumer?.resume([{ topic: this.o.topic, partitions }]), undefined);
  }

  pausedPartitions(): number {
    return whileRunning(() => this.consumer?.paused().reduce((n, t) => n + t.partitions.length, 0) ?? 0, 0);
  }

  async stop(): Promise<void> {
    // Leaving the group gives up every partition: stop serving them and reporting them.
    this.owned.clear();
    this.assigned.clear();
    await this.consumer?.disconnect();
  }
}
