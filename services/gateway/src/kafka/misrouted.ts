/**
 * Users-topic records that are not on the partition their key hashes to (docs/kafka.md,
 * "Misrouted user records").
 *
 * The region's gateways own users-topic partitions, and the router sends user U's clients to the
 * owner of p(U) = murmur2(U) % partitions. A producer whose partitioner is not murmur2 (librdkafka's
 * default `consistent_random` is CRC32: kcat, confluent-kafka, node-rdkafka), or that names a
 * partition itself, puts U's records on another partition q, whose owner has none of U's clients.
 *
 * - The gateway that reads such a record (the region's owner of q) **forwards** it: a copy goes to
 *   partition p(U) of the users topic, with the same key, value, timestamp and headers, the event
 *   id made explicit (`fanout-id`, `<q>-<offset>` when the original had none), and two more
 *   headers: `fanout-forwarded-from` (`<q>:<offset>`, the original's place) and
 *   `fanout-forwarded-region` (its own region). The original is delivered to nobody; the copy is,
 *   by the owner of p(U), at a position on p(U), so resume works as for any record. The offset of
 *   the original is committed only once the copy is acknowledged (acks=all, idempotent producer),
 *   so a crash can repeat a forward but never lose one.
 * - A region delivers only the copies its own gateways wrote: every region forwards the record for
 *   its own users, so a region that lags (or starts its group later) never depends on another
 *   region's forwarding, and never delivers another region's copy.
 * - A forward can be repeated (the owner of q changed before it committed, or a produce timed out
 *   after the broker wrote it). Copies of one source partition land on p(U) in the order of their
 *   originals (each forwarder sends in offset order, one send at a time; a new forwarder starts at
 *   the committed offset, below which every copy had landed), so a copy whose origin offset is not
 *   above the highest origin already seen from that source partition is a repeat: it is dropped
 *   (`ForwardedCopies`). Every reader of p(U) in the region (live, warm-up, replay) makes the same
 *   decision, so the user sees the event once, at the first copy's position.
 * - A record that cannot be routed at all (no key, a key that is not a user id, a `fanout-channel`
 *   header that names another channel than `user:<key>`) is dropped, counted and logged with the
 *   reason.
 */
import type { IHeaders, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
import {
  fromRecord,
  header,
  murmur2,
  HEADER_CHANNEL,
  HEADER_FORWARDED_FROM,
  HEADER_FORWARDED_REGION,
  HEADER_ID,
  HEADER_TS,
  type IncomingEvent,
} from '@fanout/kafka';
import { parseChannel, USER_NAMESPACE } from '@fanout/protocol';
import type { Logger } from '@fanout/observability';
import type { Replay, ReplayedEvent } from './replay-reader.js';

/** Why a users-topic record was dropped instead of delivered or forwarded. */
export type DropReason =
  /** No key: nothing says which user it is for. */
  | 'no_key'
  /** The key is not a user id (1 to 200 of `[A-Za-z0-9._=@-]`). */
  | 'invalid_key'
  /** The `fanout-channel` header is not `user:<key>`. */
  | 'channel_mismatch'
  /** A forwarded copy that is itself not on its key's partition, or names no origin: never forwarded twice. */
  | 'invalid_copy'
  /** Kafka refused the forward for good (e.g. no Write permission on the users topic). */
  | 'forward_refused';

/** Where a forwarded copy's original was: its users-topic partition and offset. */
export interface Origin {
  partition: number;
  offset: number;
}

export type UserRecord =
  /** Deliverable here: on its key's partition. `origin` is set for a copy forwarded by this region. */
  | { kind: 'event'; event: IncomingEvent; origin: Origin | null }
  /** On another partition than its key's: forward it to `target`. */
  | { kind: 'misrouted'; target: number; key: string }
  | { kind: 'dropped'; reason: DropReason; key: string | null }
  /** A copy forwarded by another region's gateway: that region's users get it, not this one's. */
  | { kind: 'other_region' };

const USER_PREFIX = `${USER_NAMESPACE}:`;

/** The partition Kafka's default (murmur2) partitioner gives a key. */
function murmur2Partition(key: Buffer, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

function parseOrigin(text: string): Origin | null {
  const m = /^(\d{1,9}):(\d{1,19})$/.exec(text);
  return m ? { partition: Number(m[1]), offset: Number(m[2]) } : null;
}

/**
 * Sorts one users-topic record (pure: no logging, no counting, used by the live path and the
 * replay reader alike). `partitions` is the users topic's partition count (0: unknown, nothing is
 * taken as misrouted).
 */
export function classifyUserRecord(m: KafkaMessage, partition: number, partitions: number, region: string): UserRecord {
  const keyBytes = m.key;
  if (!keyBytes || keyBytes.length === 0) return { kind: 'dropped', reason: 'no_key', key: null };
  const key = keyBytes.toString('utf8');
  if (key.length > 200 || parseChannel(USER_PREFIX + key) === null) return { kind: 'dropped', reason: 'invalid_key', key };
  const named = header(m.headers, HEADER_CHANNEL);
  if (named !== undefined && named !== USER_PREFIX + key) return { kind: 'dropped', reason: 'channel_mismatch', key };
  const target = partitions > 0 ? murmur2Partition(keyBytes, partitions) : partition;
  const from = header(m.headers, HEADER_FORWARDED_FROM);
  if (from !== undefined) {
    if (header(m.headers, HEADER_FORWARDED_REGION) !== region) return { kind: 'other_region' };
    const origin = parseOrigin(from);
    if (origin === null || target !== partition) return { kind: 'dropped', reason: 'invalid_copy', key };
    return { kind: 'event', event: fromRecord(m, partition, true)!, origin };
  }
  if (target !== partition) return { kind: 'misrouted', target, key };
  return { kind: 'event', event: fromRecord(m, partition, true)!, origin: null };
}

// ---------------------------------------------------------------------------------------------
// Which partitioner put a record where it is (for the log line only).

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC-32 (IEEE, as zlib and librdkafka's rd_crc32), unsigned. */
export function crc32(b: Buffer): number {
  let c = -1;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** FNV-1a 32 with librdkafka's absolute value (its `fnv1a` partitioner, = Sarama's default hash partitioner). */
function fnv1aAbs(b: Buffer): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return (h < 0 ? -h : h) >>> 0;
}

export type PartitionerGuess = 'crc32' | 'fnv1a' | 'unknown';

/** The known non-murmur2 partitioner that would have chosen `partition` for `key`, if any. */
export function guessPartitioner(key: Buffer, partition: number, partitions: number): PartitionerGuess {
  if (crc32(key) % partitions === partition) return 'crc32';
  if (fnv1aAbs(key) % partitions === partition) return 'fnv1a';
  return 'unknown';
}

const LOOKS_LIKE: Record<PartitionerGuess, string> = {
  crc32:
    "CRC32 of the key: librdkafka's default partitioner (consistent_random), used by kcat, confluent-kafka (Python, Go, .NET) and node-rdkafka unless configured",
  fnv1a: "FNV-1a of the key: librdkafka's fnv1a partitioner, or Sarama's default hash partitioner",
  unknown: 'no known hash of the key: an explicit partition, or another partitioner',
};

const FIX =
  "Set the producer's partitioner to Kafka's murmur2: librdkafka clients partitioner=murmur2_random (kcat -X partitioner=murmur2_random; confluent-kafka {'partitioner': 'murmur2_random'}), kafkajs Partitioners.DefaultPartitioner; the Java client and franz-go hash keys with murmur2 by default; do not name partitions.";

const DROP_FIX: Record<DropReason, string> = {
  no_key: 'Key every users-topic record by its user id.',
  invalid_key: 'Key users-topic records by the user id alone (1 to 200 of [A-Za-z0-9._=@-]).',
  channel_mismatch: 'The fanout-channel header of a users-topic record must be user:<key> (or absent).',
  invalid_copy:
    'Forwarded copies are written by gateways only; the users topic may have changed its partition count, which fanout does not support.',
  forward_refused:
    'Allow the gateways to write to the users topic (Kafka ACL Write on it, and IdempotentWrite on the cluster where the brokers still require it for idempotent producers).',
};

/** How often a pattern that keeps occurring is logged again (with the count since). */
const RELOG_MS = 60 * 60 * 1000;

/** Logs each pattern once, then at most once an hour with the count since the last line. */
class OncePerPattern {
  private readonly seen = new Map<string, { at: number; since: number }>();

  /** Returns the number of occurrences since the last line when a line is due, else null. */
  due(pattern: string, now = Date.now()): number | null {
    const s = this.seen.get(pattern);
    if (!s) {
      this.seen.set(pattern, { at: now, since: 0 });
      return 1;
    }
    s.since++;
    if (now - s.at < RELOG_MS) return null;
    const n = s.since;
    s.at = now;
    s.since = 0;
    return n;
  }
}

export interface MisroutedReporter {
  /** Counted once per record: forwarded (to the key's partition) or dropped (with the reason). */
  onMisrouted(action: 'forwarded' | 'dropped', reason: DropReason | 'wrong_partition', n: number): void;
  /** Forwarded copies read on their partition: delivered, dropped as a repeat, or another region's. */
  onCopy(outcome: 'delivered' | 'duplicate' | 'other_region'): void;
}

/** Logging and counting of misrouted records, for the live path. */
export class MisroutedLog {
  private readonly once = new OncePerPattern();

  constructor(
    private readonly logger: Logger,
    private readonly report: MisroutedReporter,
  ) {}

  /** A misrouted record seen (before its forward): logged once per producer pattern. */
  misrouted(m: KafkaMessage, partition: number, target: number, partitions: number, key: string): void {
    const guess = guessPartitioner(m.key!, partition, partitions);
    // A hash partitioner spreads a producer's keys over every partition: one line per partitioner.
    // Records that match no known hash (an explicit partition, another partitioner) are told apart
    // by the partition they were written to, so a producer that names one partition gets its line.
    const n = this.once.due(guess === 'unknown' ? `unknown:${partition}` : guess);
    if (n === null) return;
    this.logger.warn(
      {
        users_partition: partition,
        offset: Number(m.offset),
        key,
        key_partition: target,
        looks_like: guess,
        records_since_last_line: n,
        fix: FIX,
      },
      `users-topic record for user ${key} on partition ${partition}, but Kafka's murmur2 partitioner puts that key on ${target} (${LOOKS_LIKE[guess]}): forwarding such records to their key's partition (fanout_gateway_misrouted_records_total). ${FIX}`,
    );
  }

  dropped(m: KafkaMessage | null, partition: number, reason: DropReason, key: string | null, err?: unknown): void {
    this.report.onMisrouted('dropped', reason, 1);
    const n = this.once.due(`dropped:${reason}`);
    if (n === null) return;
    this.logger.warn(
      {
        users_partition: partition,
        offset: m ? Number(m.offset) : undefined,
        key,
        reason,
        records_since_last_line: n,
        fix: DROP_FIX[reason],
        ...(err ? { err } : {}),
      },
      `users-topic record dropped (${reason}): it cannot be delivered to a user (fanout_gateway_misrouted_records_total{action="dropped"}). ${DROP_FIX[reason]}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Forwarding.

export interface PendingForward {
  m: KafkaMessage;
  /** The partition the original is on. */
  partition: number;
  target: number;
}

/** Kafka refused the forward in a way retrying cannot cure (authorization, record too large). */
export class ForwardRefusedError extends Error {
  constructor(override readonly cause: unknown) {
    super(`Kafka refused the forwarded records: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'ForwardRefusedError';
  }
}

/** Most records, and about the most bytes, in one produce request of copies. */
const CHUNK_RECORDS = 500;
const CHUNK_BYTES = 512 * 1024;

/** The copy of a misrouted record, for its key's partition. */
export function forwardedCopy(f: PendingForward, region: string): Message {
  const headers: IHeaders = { ...(f.m.headers ?? {}) };
  // The event keeps its id and publish time, whatever the original carried explicitly.
  if (header(f.m.headers, HEADER_ID) === undefined) headers[HEADER_ID] = `${f.partition}-${f.m.offset}`;
  if (header(f.m.headers, HEADER_TS) === undefined) headers[HEADER_TS] = f.m.timestamp;
  headers[HEADER_FORWARDED_FROM] = `${f.partition}:${f.m.offset}`;
  headers[HEADER_FORWARDED_REGION] = region;
  return { key: f.m.key, value: f.m.value, partition: f.target, timestamp: f.m.timestamp, headers };
}

/** Splits copies into produce requests of bounded size, in order. */
export function chunks(items: PendingForward[]): PendingForward[][] {
  const out: PendingForward[][] = [];
  let cur: PendingForward[] = [];
  let bytes = 0;
  for (const f of items) {
    const size = (f.m.value?.length ?? 0) + (f.m.key?.length ?? 0) + 128;
    if (cur.length > 0 && (cur.length >= CHUNK_RECORDS || bytes + size > CHUNK_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(f);
    bytes += size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * Writes copies to the users topic: one idempotent producer (acks=all, one request in flight, so
 * copies keep their order), connected on first use (a gateway that never sees a misrouted record
 * never opens it).
 */
export class Forwarder {
  private producer: Producer | null = null;
  private connecting: Promise<Producer> | null = null;
  private stopped = false;

  constructor(private readonly o: { kafka: Kafka; topic: string; region: string; logger: Logger }) {}

  private connect(): Promise<Producer> {
    if (this.producer) return Promise.resolve(this.producer);
    return (this.connecting ??= (async () => {
      // Few retries inside kafkajs: the consumer retries a failed forward itself, heartbeating between attempts.
      const p = this.o.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, retry: { retries: 3 } });
      try {
        await p.connect();
      } catch (err) {
        this.connecting = null;
        throw err;
      }
      if (this.stopped) {
        await p.disconnect().catch(() => {});
        throw new Error('the gateway is shutting down');
      }
      this.producer = p;
      this.o.logger.info({ topic: this.o.topic }, 'opened the producer that forwards misrouted user records');
      return p;
    })());
  }

  /** Sends one chunk of copies; resolves once Kafka acknowledged them all. */
  async send(chunk: PendingForward[]): Promise<void> {
    if (this.stopped) throw new Error('the gateway is shutting down');
    const producer = await this.connect();
    try {
      await producer.send({ topic: this.o.topic, acks: -1, messages: chunk.map((f) => forwardedCopy(f, this.o.region)) });
    } catch (err) {
      if (refusedForGood(err)) throw new ForwardRefusedError(err);
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const p = this.producer ?? (await this.connecting?.catch(() => null));
    this.producer = null;
    await p?.disconnect().catch(() => {});
  }
}

const REFUSED = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
]);

function refusedForGood(err: unknown): boolean {
  for (let e = err as { type?: string; originalError?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; i++) {
    if (e.type && REFUSED.has(e.type)) return true;
    e = (e.originalError ?? e.cause) as typeof e;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Repeated copies.

interface PartitionCopies {
  /** The first offset judged on this partition since this gateway took it (older ones: unknown). */
  from: number;
  /** The last offset judged in order (live or warm-up). */
  through: number;
  /** Per source partition: the highest origin offset of a copy delivered. */
  highest: Map<number, number>;
  /** Offsets of copies judged repeats (bounded, oldest forgotten first). */
  repeats: Set<number>;
}

const MAX_REPEATS_REMEMBERED = 100_000;

/**
 * Decides which forwarded copies (of this region) a gateway delivers on each users partition it
 * owns: the first copy of each origin, not the repeats (see the module comment for why "origin
 * offset above the highest seen from its source partition" finds exactly the first copies).
 * Judged in offset order by the live consumer and by the warm-up of a gained partition, which
 * loads the recent past before consumption resumes; re-reads (replays for resumes and pulls) reuse
 * the decisions, and for offsets older than what this gateway judged keep the first copy of each
 * origin within what they read.
 */
export class ForwardedCopies {
  private readonly parts = new Map<number, PartitionCopies>();

  /** This gateway starts judging `partition` at `from` (a gained partition's warm-up start). */
  reset(partition: number, from: number): void {
    this.parts.set(partition, { from, through: from - 1, highest: new Map(), repeats: new Set() });
  }

  drop(partition: number): void {
    this.parts.delete(partition);
  }

  /** Judges the copy at `offset` (read in offset order): true to deliver it, false for a repeat. */
  admit(partition: number, offset: number, origin: Origin): boolean {
    let s = this.parts.get(partition);
    if (!s) {
      this.reset(partition, offset);
      s = this.parts.get(partition)!;
    }
    if (offset <= s.through && offset >= s.from) {
      // Read again (a repeated fetch): the decision stands.
      return !s.repeats.has(offset);
    }
    s.through = Math.max(s.through, offset);
    const highest = s.highest.get(origin.partition);
    if (highest !== undefined && origin.offset <= highest) {
      s.repeats.add(offset);
      if (s.repeats.size > MAX_REPEATS_REMEMBERED) s.repeats.delete(s.repeats.values().next().value!);
      return false;
    }
    s.highest.set(origin.partition, origin.offset);
    return true;
  }

  /**
   * Filters what a replay read returned (offset order). `inOrder`: the read covers every record of
   * its range (a warm-up, channel null) and may be judged as new; otherwise copies after what was
   * judged are not decided here.
   */
  filter(partition: number, events: ReplayedEvent[], inOrder: boolean): ReplayedEvent[] {
    if (!events.some((r) => r.origin)) return events;
    const seen = new Set<string>();
    return events.filter((r) => {
      if (!r.origin) return true;
      const s = this.parts.get(partition);
      let keep: boolean;
      if (inOrder && (!s || r.offset > s.through)) keep = this.admit(partition, r.offset, r.origin);
      else if (s && r.offset >= s.from && r.offset <= s.through) keep = !s.repeats.has(r.offset);
      else keep = true; // older than what this gateway judged: the first copy within the read
      const key = `${r.origin.partition}:${r.origin.offset}`;
      if (keep && seen.has(key)) keep = false;
      if (keep) seen.add(key);
      return keep;
    });
  }

  /** A replay view of the users topic that applies these decisions. */
  replay(raw: Replay): Replay {
    return {
      read: async (partition, after, upTo, channel) =>
        this.filter(partition, await raw.read(partition, after, upTo, channel), channel === null),
    };
  }
}
