/**
 * The recent history of each channel, kept in memory so that a client that reconnects can get what
 * it missed without touching Kafka, and so that pollers and history requests are answered from
 * memory.
 *
 * Bounds: per channel by message count, bytes and age (default 5 minutes); across channels by
 * total bytes (the channel appended to least recently loses its oldest messages first). The total
 * is also capped from outside (`setRoom`): the gateway's memory budget gives the windows only what
 * the connection queues leave, so that windows and queues together stay within the budget (the
 * windows are a cache: what they lose is read from Kafka on a resume).
 *
 * Layout: a window keeps its messages as bytes, not objects. Each channel's window is one Buffer
 * holding, back to back, for each message a RECORD_HEADER_BYTES header (Kafka offset, dispatch
 * time, publish time, lengths), the event id and the record value as they came from Kafka,
 * padded to 8 bytes; the oldest is at `head`, appends go at `tail`. The order of least recent
 * appends is a linked list through the windows. Nothing in
 * it is a JavaScript object the garbage collector has to trace or copy, so a gateway that keeps
 * 64 MiB of recent history does not spend its time promoting and marking hundreds of thousands of
 * small objects, and a record nobody here wants is copied in from Kafka's bytes without being
 * decoded, checked or encoded. Messages are read back as `Outgoing` objects (decoded exactly as
 * `fromRecord` decodes a record, then built by OutgoingFactory.make) only when someone asks: a
 * resume, a poll, a history request.
 *
 * Bytes are what the windows hold in the process: each window's Buffer at its capacity (records
 * and the room it keeps for the next appends) plus WINDOW_OVERHEAD_BYTES and its key, so
 * that a configured byte bound bounds memory. The overhead is measured (heap + external per window
 * after a full GC) by `services/gateway/test/window-cost.test.ts`.
 *
 * A window covers a position when no message of its channel after that position is missing from
 * it: the position is at or after the newest message ever evicted from the window, and at or after
 * the offset at which this gateway started reading the partition.
 */
import { eventData, eventId, RecordEvent, type IncomingEvent } from '@fanout/kafka';
import type { Outgoing } from './outgoing.js';

/**
 * Per message in a window's Buffer, before its bytes: offset, dispatch time, publish time, id
 * length (-1: none) and value length (-1: null), as five float64 (written and read through a
 * Float64Array view: records start at multiples of 8).
 */
export const RECORD_HEADER_BYTES = 40;
/**
 * Process memory of one channel's window beyond its Buffer's capacity and its key: the Window
 * object, the Buffer's objects and backing-store bookkeeping, the Map entry (measured ~400 B).
 */
export const WINDOW_OVERHEAD_BYTES = 480;
/** The smallest Buffer a window grows to. */
const MIN_CAPACITY = 256;

export interface WindowLimits {
  maxMessages: number;
  /** Per channel: records and their headers (RECORD_HEADER_BYTES each). */
  maxBytes: number;
  maxAgeMs: number;
  /** Every window's cost (Buffer capacity, overhead and key) together. */
  maxTotalBytes: number;
}

/** Builds the Outgoing of a windowed message (OutgoingFactory). */
export interface WindowReader {
  make(e: IncomingEvent, partition: number, offset: number, now: number): Outgoing;
}

interface Window {
  channel: string;
  partition: number;
  buf: Buffer;
  /** `buf` as float64 (the headers). */
  f64: Float64Array;
  /** Byte index of the oldest message's header. */
  head: number;
  /** Byte index after the newest message. */
  tail: number;
  /** Byte index of the newest message's header (valid when count > 0). */
  last: number;
  count: number;
  /** Dispatch time of the oldest message. */
  headAt: number;
  /** Offset of the newest message evicted from this window, or the partition floor at creation. */
  evictedOffset: number;
  /** The window's cost in the total: buf.length + WINDOW_OVERHEAD_BYTES + key. */
  cost: number;
  /** Neighbours in the order of appends (older, newer). */
  older: Window | null;
  newer: Window | null;
}

export type Coverage =
  | { kind: 'window'; messages: Outgoing[] }
  /** Not in memory: read (after, upTo] of the partition from Kafka. */
  | { kind: 'kafka'; partition: number; after: number; upTo: number };

export class ChannelWindows {
  private readonly windows = new Map<string, Window>();
  /** The least and the most recently appended window. */
  private oldest: Window | null = null;
  private newest: Window | null = null;
  /** Every window's cost (Buffer capacity, WINDOW_OVERHEAD_BYTES and the key). */
  private totalBytes = 0;
  private messages = 0;
  /** The total's cap now: the configured maxTotalBytes, or less when the memory budget needs room. */
  private cap: number;
  /** Per partition: the first offset this gateway read (earlier offsets are only in Kafka). */
  private readonly startOffsets = new Map<number, number>();
  /** Per partition: the last offset dispatched. */
  private readonly lastOffsets = new Map<number, number>();
  /**
   * Per partition: the newest offset evicted from a window that was then dropped. A channel with
   * no window (or a window created later) cannot prove it holds everything after this.
   */
  private readonly droppedFloors = new Map<number, number>();

  constructor(
    private readonly limits: WindowLimits,
    private readonly reader: WindowReader,
  ) {
    this.cap = limits.maxTotalBytes;
  }

  /**
   * The room the memory budget leaves the windows (bytes): the total is capped at the smaller of
   * this and maxTotalBytes, and the least recently appended channels lose their oldest messages
   * at once until it fits.
   */
  setRoom(bytes: number): void {
    this.cap = Math.max(0, Math.min(this.limits.maxTotalBytes, bytes));
    this.evictToCap();
  }

  /** The total's cap now (bytes). */
  get capBytes(): number {
    return this.cap;
  }

  /** Records where this gateway started reading a partition (the first offset it will see). */
  setStart(partition: number, offset: number): void {
    this.startOffsets.set(partition, offset);
    // A record may already have been read (the start is learned asynchronously after a rebalance).
    this.lastOffsets.set(partition, Math.max(this.lastOffsets.get(partition) ?? -1, offset - 1));
  }

  /** Forgets a partition (it moved to another gateway): its windows no longer grow, so they go. */
  dropPartition(partition: number): void {
    for (const w of this.windows.values()) {
      if (w.partition !== partition) continue;
      this.totalBytes -= w.cost;
      this.messages -= w.count;
      this.remove(w);
    }
    this.startOffsets.delete(partition);
    this.lastOffsets.delete(partition);
    this.droppedFloors.delete(partition);
  }

  /** The last offset dispatched on a partition (every record, whatever its channel). */
  noteOffset(partition: number, offset: number): void {
    this.lastOffsets.set(partition, offset);
  }

  lastOffset(partition: number): number | undefined {
    return this.lastOffsets.get(partition);
  }

  /**
   * Appends a message: its id and data as they came from Kafka when the event is a RecordEvent
   * (copied, not decoded), else as text. `at`: when it was dispatched, for the age bound.
   */
  append(e: IncomingEvent, partition: number, offset: number, at: number): void {
    let id: Buffer | string | null;
    let value: Buffer | string | null;
    if (e instanceof RecordEvent) {
      id = e.rawId ?? null;
      value = e.rawValue;
    } else {
      id = e.id;
      value = e.dataJson;
    }
    const idBytes = id === null ? 0 : typeof id === 'string' ? Buffer.byteLength(id) : id.length;
    const valueBytes = value === null ? 0 : typeof value === 'string' ? Buffer.byteLength(value) : value.length;
    const size = recordBytes(idBytes + valueBytes);
    const channel = e.channel;
    let w = this.windows.get(channel);
    if (w) {
      if (w !== this.newest) {
        this.unlink(w);
        this.link(w);
      }
      if (w.tail + size > w.buf.length) this.makeRoom(w, size);
    } else {
      // A new window gets room for its first message only: most channels of a large topic hold one
      // or two messages at a time, and room kept for appends that never come would crowd others out.
      const buf = Buffer.allocUnsafeSlow(size);
      w = {
        channel,
        partition,
        buf,
        f64: new Float64Array(buf.buffer, 0, buf.length >> 3),
        head: 0,
        tail: 0,
        last: 0,
        count: 0,
        headAt: at,
        evictedOffset: this.droppedFloors.get(partition) ?? -1,
        cost: buf.length + windowOverhead(channel),
        older: null,
        newer: null,
      };
      this.totalBytes += w.cost;
      this.windows.set(channel, w);
      this.link(w);
    }
    const p = w.tail;
    const i = p >> 3;
    const f64 = w.f64;
    f64[i] = offset;
    f64[i + 1] = at;
    f64[i + 2] = e.publishedAt;
    f64[i + 3] = id === null ? -1 : idBytes;
    f64[i + 4] = value === null ? -1 : valueBytes;
    const buf = w.buf;
    let q = p + RECORD_HEADER_BYTES;
    if (typeof id === 'string') buf.write(id, q, idBytes, 'utf8');
    else if (id !== null) buf.set(id, q);
    q += idBytes;
    if (typeof value === 'string') buf.write(value, q, valueBytes, 'utf8');
    else if (value !== null) buf.set(value, q);
    if (w.count === 0) w.headAt = at;
    w.last = p;
    w.tail = p + size;
    w.count++;
    this.messages++;
    const limits = this.limits;
    if (w.count > limits.maxMessages || w.tail - w.head > limits.maxBytes || w.headAt < at - limits.maxAgeMs) {
      const cutoff = at - limits.maxAgeMs;
      while (w.count > 0 && (w.count > limits.maxMessages || w.tail - w.head > limits.maxBytes || w.headAt < cutoff)) this.evictOne(w);
    }
    if (this.totalBytes > this.cap) this.evictToCap();
  }

  /**
   * Room for `size` more bytes at the tail: the live messages move to the front when that leaves at
   * least a quarter of the Buffer free (each byte is moved at most a few times), else into a new
   * Buffer half again as large as what it must hold (or smaller, when most of the old one was free).
   */
  private makeRoom(w: Window, size: number): void {
    const live = w.tail - w.head;
    const need = live + size;
    if (need <= w.buf.length * 0.75 && need * 4 > w.buf.length) w.buf.copyWithin(0, w.head, w.tail);
    else this.moveTo(w, capacityFor(need));
    w.last -= w.head;
    w.tail = live;
    w.head = 0;
  }

  /** Copies a window's live messages to the front of a new Buffer of `capacity` bytes (head and tail are left to the caller). */
  private moveTo(w: Window, capacity: number): void {
    const buf = Buffer.allocUnsafeSlow(capacity);
    buf.set(w.buf.subarray(w.head, w.tail), 0);
    this.totalBytes += buf.length - w.buf.length;
    w.cost += buf.length - w.buf.length;
    w.buf = buf;
    w.f64 = new Float64Array(buf.buffer, 0, buf.length >> 3);
  }

  /**
   * Over the cap, the least recently appended windows lose their oldest messages until the total
   * is 1/64 under it, so that a full cache evicts in rounds rather than on every append. A window
   * that keeps some of its messages is moved into a Buffer of exactly their size, so that what it
   * gave up is freed.
   */
  private evictToCap(): void {
    if (this.totalBytes <= this.cap) return;
    const target = this.cap - Math.floor(this.cap / 64);
    for (let w = this.oldest; w !== null && this.totalBytes > target;) {
      const newer = w.newer;
      const excess = this.totalBytes - target;
      if (w.cost <= excess) {
        while (w.count > 0) this.evictOne(w);
      } else {
        // Keep the newest messages that fit in (buffer - excess) bytes, in a buffer of their size.
        const keep = w.buf.length - excess;
        while (w.count > 0 && w.tail - w.head > keep) this.evictOne(w);
        if (w.count > 0 && w.tail - w.head < w.buf.length) {
          const live = w.tail - w.head;
          this.moveTo(w, live);
          w.last -= w.head;
          w.tail = live;
          w.head = 0;
        }
      }
      w = newer;
    }
  }

  /** The newest message of a channel, if the window holds one (after age eviction). */
  latest(channel: string, now = Date.now()): Outgoing | undefined {
    const w = this.windows.get(channel);
    if (!w) return undefined;
    this.expire(w, now);
    return w.count > 0 ? this.read(w, w.last) : undefined;
  }

  /** Where the newest message of a channel is (after age eviction), without reading it back: ETags name it. */
  latestPosition(channel: string, now = Date.now()): { partition: number; offset: number } | undefined {
    const w = this.windows.get(channel);
    if (!w) return undefined;
    this.expire(w, now);
    return w.count > 0 ? { partition: w.partition, offset: w.f64[w.last >> 3]! } : undefined;
  }

  /**
   * What a client that last saw `offset` on `partition` is owed: from the window, or a range to
   * read from Kafka when the window does not cover it.
   */
  since(channel: string, partition: number, offset: number, now = Date.now()): Coverage {
    const w = this.windows.get(channel);
    if (w) this.expire(w, now);
    const start = this.startOffsets.get(partition) ?? Number.MAX_SAFE_INTEGER;
    const evicted = w && w.partition === partition ? w.evictedOffset : (this.droppedFloors.get(partition) ?? -1);
    const floor = Math.max(evicted, start - 1);
    if (offset >= floor) {
      const messages: Outgoing[] = [];
      if (w && w.partition === partition && w.count > 0) {
        for (let p = w.head; p < w.tail; p = next(w, p)) if (w.f64[p >> 3]! > offset) messages.push(this.read(w, p));
      }
      return { kind: 'window', messages };
    }
    return { kind: 'kafka', partition, after: offset, upTo: this.lastOffsets.get(partition) ?? offset };
  }

  /** The newest `limit` messages the window holds for a channel (all by default), oldest first. */
  all(channel: string, limit = Infinity, now = Date.now()): Outgoing[] {
    const w = this.windows.get(channel);
    if (!w) return [];
    this.expire(w, now);
    const out: Outgoing[] = [];
    if (w.count === 0) return out;
    let skip = Math.max(0, w.count - limit);
    for (let p = w.head; p < w.tail; p = next(w, p)) {
      if (skip > 0) skip--;
      else out.push(this.read(w, p));
    }
    return out;
  }

  /** What the windows cost now (bytes of process memory, as counted above). */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Messages held across every window. */
  get messageCount(): number {
    return this.messages;
  }

  get channelCount(): number {
    return this.windows.size;
  }

  /** Drops messages past the age bound (also run periodically, so idle channels free memory). */
  expireAll(now = Date.now()): void {
    for (const w of this.windows.values()) this.expire(w, now);
  }

  private expire(w: Window, now: number): void {
    const cutoff = now - this.limits.maxAgeMs;
    while (w.count > 0 && w.headAt < cutoff) this.evictOne(w);
  }

  /** The message at byte index `p`, decoded as `fromRecord` decodes a record, as an Outgoing. */
  private read(w: Window, p: number): Outgoing {
    const i = p >> 3;
    const f64 = w.f64;
    const offset = f64[i]!;
    const idBytes = f64[i + 3]!;
    const valueBytes = f64[i + 4]!;
    const start = p + RECORD_HEADER_BYTES;
    const idLen = Math.max(0, idBytes);
    const id = idBytes < 0 ? null : w.buf.toString('utf8', start, start + idLen);
    const value = valueBytes < 0 ? null : w.buf.toString('utf8', start + idLen, start + idLen + valueBytes);
    const e = { channel: w.channel, id: eventId(id, w.partition, offset), publishedAt: f64[i + 2]!, dataJson: eventData(value) };
    return this.reader.make(e, w.partition, offset, f64[i + 1]!);
  }

  private evictOne(w: Window): void {
    w.evictedOffset = w.f64[w.head >> 3]!;
    w.head = next(w, w.head);
    w.count--;
    this.messages--;
    if (w.count > 0) {
      w.headAt = w.f64[(w.head >> 3) + 1]!;
      return;
    }
    // An empty window is dropped; its eviction mark moves to the partition's floor, so that
    // older positions are still known not to be covered.
    this.totalBytes -= w.cost;
    this.remove(w);
    this.droppedFloors.set(w.partition, Math.max(this.droppedFloors.get(w.partition) ?? -1, w.evictedOffset));
  }

  private remove(w: Window): void {
    this.windows.delete(w.channel);
    this.unlink(w);
  }

  /** Puts a window last in the order of appends. */
  private link(w: Window): void {
    w.older = this.newest;
    w.newer = null;
    if (this.newest) this.newest.newer = w;
    else this.oldest = w;
    this.newest = w;
  }

  private unlink(w: Window): void {
    if (w.older) w.older.newer = w.newer;
    else this.oldest = w.newer;
    if (w.newer) w.newer.older = w.older;
    else this.newest = w.older;
    w.older = w.newer = null;
  }
}

/** The byte index of the message after the one at `p`. */
function next(w: Window, p: number): number {
  const i = p >> 3;
  return p + recordBytes(Math.max(0, w.f64[i + 3]!) + Math.max(0, w.f64[i + 4]!));
}

/** The bytes a message with `bytes` of id and value takes in a window: header, bytes, padding. */
export function recordBytes(bytes: number): number {
  return RECORD_HEADER_BYTES + pad8(bytes);
}

/** `n` rounded up to a multiple of 8. */
function pad8(n: number): number {
  return (n + 7) & ~7;
}

/** A new Buffer's size for `bytes` of messages: half again as much, in 64-byte steps, at least MIN_CAPACITY. */
function capacityFor(bytes: number): number {
  return Math.max(MIN_CAPACITY, Math.ceil((bytes * 1.5) / 64) * 64);
}

/** A window's own cost beyond its Buffer: WINDOW_OVERHEAD_BYTES and its key (UTF-16 at worst). */
function windowOverhead(channel: string): number {
  return WINDOW_OVERHEAD_BYTES + 2 * channel.length;
}
