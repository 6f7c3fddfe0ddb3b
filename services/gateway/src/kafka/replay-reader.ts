/**
 * Reads ranges of partitions back from Kafka for clients whose position is older than the
 * in-memory window, so that the cost of a reconnect storm grows with partitions, not clients.
 *
 * One long-lived consumer per gateway reads every partition of the topics it serves, in a group
 * of its own (joined once at start: with Kafka's default group.initial.rebalance.delay.ms that
 * join waits 3 s, which is paid before the gateway is ready, never per read). Every partition is
 * paused while idle. A read of partition P is a *pass*: seek P to the oldest offset any waiting
 * request needs, resume P, hand each record to every request whose range contains it and whose
 * channel it is, pause P once the newest requested offset went by. Requests for P that arrive
 * while a pass runs join it when nothing they need has gone by yet; the others wait for the next
 * pass, which starts as soon as this one ends.
 *
 * Bounds, each an explicit ReplayUnavailableError (turned into a `reset` naming the reason, never
 * a silent gap): offsets per request (the caller checks replayMaxOffsets), passes running at once
 * (`maxConcurrent` partitions; more wait their turn), requests waiting or running (`maxWaiting`;
 * beyond it `replay_busy`), time per pass (`timeoutMs`; beyond it `replay_failed`), and what
 * Kafka still holds (`beyond_retention`, checked once per pass against the partition's start).
 */
import { randomBytes } from 'node:crypto';
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { fromRecord, whileRunning, withRetry, type IncomingEvent } from '@fanout/kafka';
import type { Logger } from '@fanout/observability';

export type ReplayFailure = 'beyond_retention' | 'replay_failed' | 'replay_busy';

export class ReplayUnavailableError extends Error {
  constructor(
    readonly reason: ReplayFailure,
    message: string,
  ) {
    super(message);
    this.name = 'ReplayUnavailableError';
  }
}

export interface ReplayedEvent {
  event: IncomingEvent;
  offset: number;
  /** For a forwarded copy of a misrouted users-topic record: where the original is (kafka/misrouted.ts). */
  origin?: { partition: number; offset: number };
}

/** Turns a record into what a replay returns, or null to leave it out (the live path's rules). */
export type ReplayDecode = (
  m: KafkaMessage,
  partition: number,
) => { event: IncomingEvent; origin?: { partition: number; offset: number } } | null;

/** Reads (after, upTo] of one partition of one topic, filtered to one channel (null: every channel, for warming). */
export interface Replay {
  read(partition: number, after: number, upTo: number, channel: string | null): Promise<ReplayedEvent[]>;
}

export interface ReplayReaderOptions {
  kafka: Kafka;
  /**
   * The topics to read, whether records of each name their channel by key (`user:<key>`), and how
   * to read a record when not with `fromRecord` (the users topic: misrouted records and other
   * regions' copies are left out, as on the live path).
   */
  topics: { topic: string; usersTopic: boolean; decode?: ReplayDecode }[];
  node: string;
  logger: Logger;
  /** Partitions read at a time (passes running at once). */
  maxConcurrent: number;
  /** Requests waiting or being served at once; beyond it a request fails with `replay_busy`. */
  maxWaiting: number;
  /** Longest a pass may take, in ms. */
  timeoutMs: number;
  /** Called when a pass starts (one Kafka read, however many requests it serves). */
  onPass?(topic: string): void;
}

interface Request {
  after: number;
  upTo: number;
  channel: string | null;
  out: ReplayedEvent[];
  resolve(events: ReplayedEvent[]): void;
  reject(err: Error): void;
}

interface Pass {
  topic: string;
  partition: number;
  /** The next offset this pass expects; records before it were read already (or are not needed). */
  next: number;
  members: Request[];
  timer: NodeJS.Timeout;
}

const keyOf = (topic: string, partition: number) => `${partition}\u0000${topic}`;

export class ReplayReader {
  private consumer: Consumer | null = null;
  private admin: Admin | null = null;
  private readonly usersTopic = new Map<string, boolean>();
  private readonly decoders = new Map<string, ReplayDecode>();
  private readonly waiting = new Map<string, Request[]>();
  private readonly passes = new Map<string, Pass>();
  /** Keys with waiting requests but no pass, in arrival order (a pass slot frees the oldest). */
  private readonly queue: string[] = [];
  private requests = 0;
  private stopped = false;
  private joinedResolve!: () => void;
  /** Resolves once the consumer owns every partition and has paused them all. */
  readonly joined = new Promise<void>((r) => (this.joinedResolve = r));
  /** Kafka reads (passes) started so far. */
  passesStarted = 0;

  constructor(private readonly o: ReplayReaderOptions) {
    for (const t of o.topics) {
      this.usersTopic.set(t.topic, t.usersTopic);
      if (t.decode) this.decoders.set(t.topic, t.decode);
    }
  }

  /** The reader of one topic (what a stream holds). */
  topic(topic: string): Replay {
    if (!this.usersTopic.has(topic)) throw new Error(`the replay reader does not read ${topic}`);
    return { read: (partition, after, upTo, channel) => this.read(topic, partition, after, upTo, channel) };
  }

  async start(): Promise<void> {
    const { kafka, logger } = this.o;
    const topics = [...this.usersTopic.keys()];
    this.admin = kafka.admin();
    await this.admin.connect();
    const groupId = `fanout-replay-${this.o.node}-${randomBytes(4).toString('hex')}`;
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: 30_000,
      rebalanceTimeout: 10_000,
      heartbeatInterval: 3000,
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      // Nothing is read until a request seeks a partition.
      for (const topic of topics) {
        const partitions = (e.payload.memberAssignment[topic] ?? []).filter((p) => !this.passes.has(keyOf(topic, p)));
        if (partitions.length > 0) consumer.pause([{ topic, partitions }]);
      }
      logger.debug({ groupId }, 'replay reader joined');
      this.joinedResolve();
    });
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: false });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      partitionsConsumedConcurrently: 1,
      eachBatch: async (p) => this.onBatch(p),
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const gone = new ReplayUnavailableError('replay_failed', 'the gateway is shutting down');
    for (const pass of [...this.passes.values()]) this.endPass(pass, gone);
    for (const list of this.waiting.values()) for (const r of list) r.reject(gone);
    this.waiting.clear();
    this.queue.length = 0;
    await Promise.all([this.consumer?.disconnect().catch(() => {}), this.admin?.disconnect().catch(() => {})]);
  }

  /** Requests waiting or being served now. */
  get pending(): number {
    return this.requests;
  }

  read(topic: string, partition: number, after: number, upTo: number, channel: string | null): Promise<ReplayedEvent[]> {
    if (upTo <= after) return Promise.resolve([]);
    if (this.stopped) return Promise.reject(new ReplayUnavailableError('replay_failed', 'the gateway is shutting down'));
    if (this.requests >= this.o.maxWaiting) {
      return Promise.reject(
        new ReplayUnavailableError(
          'replay_busy',
          `${this.requests} reads from Kafka are waiting already (the limit is ${this.o.maxWaiting})`,
        ),
      );
    }
    return new Promise<ReplayedEvent[]>((resolve, reject) => {
      this.requests++;
      const settle = () => this.requests--;
      const req: Request = {
        after,
        upTo,
        channel,
        out: [],
        resolve: (events) => {
          settle();
          resolve(events);
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      };
      const key = keyOf(topic, partition);
      const pass = this.passes.get(key);
      // Join the running pass when nothing this request needs has gone by yet.
      if (pass && pass.next <= after + 1) {
        pass.members.push(req);
        return;
      }
      const list = this.waiting.get(key);
      if (list) list.push(req);
      else {
        this.waiting.set(key, [req]);
        if (!pass) this.queue.push(key);
      }
      this.startPasses();
    });
  }

  private startPasses(): void {
    while (this.queue.length > 0 && this.passes.size < this.o.maxConcurrent) {
      const key = this.queue.shift()!;
      const members = this.waiting.get(key);
      this.waiting.delete(key);
      if (!members || members.length === 0) continue;
      const sep = key.indexOf('\u0000');
      void this.startPass(key.slice(sep + 1), Number(key.slice(0, sep)), members);
    }
  }

  private async startPass(topic: string, partition: number, members: Request[]): Promise<void> {
    const key = keyOf(topic, partition);
    const from = Math.min(...members.map((m) => m.after)) + 1;
    const pass: Pass = {
      topic,
      partition,
      next: from,
      members,
      timer: setTimeout(
        () =>
          this.endPass(
            pass,
            new ReplayUnavailableError(
              'replay_failed',
              `reading partition ${partition} of ${topic} from Kafka took over ${this.o.timeoutMs} ms`,
            ),
          ),
        this.o.timeoutMs,
      ),
    };
    this.passes.set(key, pass);
    this.passesStarted++;
    this.o.onPass?.(topic);
    try {
      await this.joined;
      // Older offsets may be gone (retention): those requests get beyond_retention, not a gap.
      const offsets = await withRetry(() => this.admin!.fetchTopicOffsets(topic), 3);
      if (this.passes.get(key) !== pass) return;
      const low = Number(offsets.find((p) => p.partition === partition)?.low ?? 0);
      if (low > from) {
        pass.members = pass.members.filter((m) => {
          if (m.after + 1 >= low) return true;
          m.reject(
            new ReplayUnavailableError(
              'beyond_retention',
              `offsets ${m.after + 1}..${low - 1} of partition ${partition} are no longer in Kafka`,
            ),
          );
          return false;
        });
        if (pass.members.length === 0) return this.endPass(pass);
        pass.next = Math.min(...pass.members.map((m) => m.after)) + 1;
      }
      this.consumer!.seek({ topic, partition, offset: String(pass.next) });
      this.consumer!.resume([{ topic, partitions: [partition] }]);
    } catch (err) {
      if (this.passes.get(key) === pass)
        this.endPass(pass, new ReplayUnavailableError('replay_failed', `reading from Kafka failed: ${(err as Error).message}`));
    }
  }

  private async onBatch({ batch }: EachBatchPayload): Promise<void> {
    const pass = this.passes.get(keyOf(batch.topic, batch.partition));
    // A batch fetched for an earlier pass or before the seek: not this pass's records.
    if (!pass || Number((batch as unknown as { fetchedOffset: string }).fetchedOffset) !== pass.next) return;
    const users = this.usersTopic.get(batch.topic) ?? false;
    const decode = this.decoders.get(batch.topic);
    for (const m of batch.messages) {
      const offset = Number(m.offset);
      if (offset < pass.next) continue;
      pass.next = offset + 1;
      let read: ReplayedEvent | null | undefined;
      for (const r of pass.members) {
        if (offset <= r.after || offset > r.upTo) continue;
        if (read === undefined) {
          if (decode) {
            const d = decode(m, batch.partition);
            read = d && { event: d.event, offset, ...(d.origin ? { origin: d.origin } : {}) };
          } else {
            const event = fromRecord(m, batch.partition, users);
            read = event && { event, offset };
          }
        }
        if (read && (r.channel === null || read.event.channel === r.channel)) r.out.push(read);
      }
      this.completeReached(pass);
      if (pass.members.length === 0) break;
    }
    // Offsets without a record (transaction markers) still move the pass on.
    const last = Number(batch.lastOffset());
    if (batch.messages.length > 0 && last + 1 > pass.next) pass.next = last + 1;
    this.completeReached(pass);
    if (pass.members.length === 0) this.endPass(pass);
  }

  /** Resolves the members whose whole range has been read. */
  private completeReached(pass: Pass): void {
    if (!pass.members.some((r) => r.upTo < pass.next)) return;
    pass.members = pass.members.filter((r) => {
      if (r.upTo >= pass.next) return true;
      r.resolve(r.out);
      return false;
    });
  }

  private endPass(pass: Pass, err?: Error): void {
    const key = keyOf(pass.topic, pass.partition);
    if (this.passes.get(key) !== pass) return;
    clearTimeout(pass.timer);
    this.passes.delete(key);
    if (err) for (const r of pass.members) r.reject(err);
    pass.members = [];
    if (!this.stopped) whileRunning(() => this.consumer?.pause([{ topic: pass.topic, partitions: [pass.partition] }]), undefined);
    if (this.waiting.has(key)) this.queue.push(key);
    this.startPasses();
  }
}
