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
 * Bytes are what the contents cost in the process, not only the frames: each message is counted
 * as its frame plus MESSAGE_OVERHEAD_BYTES (the Outgoing object, its position string, the Buffer
 * object and its backing-store bookkeeping) and each window as WINDOW_OVERHEAD_BYTES plus its key.
 * Both constants are measured (heap + external per message after a full GC, by
 * `services/gateway/test/window-cost.test.ts`), so that a configured byte bound bounds memory.
 *
 * A window covers a position when no message of its channel after that position is missing from
 * it: the position is at or after the newest message ever evicted from the window, and at or after
 * the offset at which this gateway started reading the partition.
 */
import type { Outgoing } from './outgoing.js';

/**
 * Process memory of one windowed message beyond its frame bytes. Measured once its frame is bytes
 * (sent to someone): ~290-305 B heap + ~16 B external; while still text it costs less.
 */
export const MESSAGE_OVERHEAD_BYTES = 336;
/** Process memory of one channel's window beyond its messages and key (the Window object, its array and Map entry; measured ~300 B). */
export const WINDOW_OVERHEAD_BYTES = 320;

/** What one windowed message costs, in bytes of process memory. */
export function messageCost(o: Outgoing): number {
  return o.bytes + MESSAGE_OVERHEAD_BYTES;
}

export interface WindowLimits {
  maxMessages: number;
  maxBytes: number;
  maxAgeMs: number;
  maxTotalBytes: number;
}

interface Window {
  items: Outgoing[];
  head: number;
  /** The messages' cost (messageCost), without the window's own overhead. */
  bytes: number;
  /** Offset of the newest message evicted from this window, or the partition floor at creation. */
  evictedOffset: number;
  partition: number;
}

export type Coverage =
  | { kind: 'window'; messages: Outgoing[] }
  /** Not in memory: read (after, upTo] of the partition from Kafka. */
  | { kind: 'kafka'; partition: number; after: number; upTo: number };

export class ChannelWindows {
  private readonly windows = new Map<string, Window>();
  /** Every window's messages and overhead (messageCost, WINDOW_OVERHEAD_BYTES and the key). */
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

  constructor(private readonly limits: WindowLimits) {
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
    for (const [channel, w] of this.windows) {
      if (w.partition !== partition) continue;
      this.totalBytes -= w.bytes + windowOverhead(channel);
      this.messages -= w.items.length - w.head;
      this.windows.delete(channel);
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

  append(o: Outgoing): void {
    let w = this.windows.get(o.channel);
    if (w) {
      // Keep Map order = least recently appended first.
      this.windows.delete(o.channel);
    } else {
      w = { items: [], head: 0, bytes: 0, evictedOffset: this.droppedFloors.get(o.partition) ?? -1, partition: o.partition };
      this.totalBytes += windowOverhead(o.channel);
    }
    this.windows.set(o.channel, w);
    w.items.push(o);
    const cost = messageCost(o);
    w.bytes += cost;
    this.totalBytes += cost;
    this.messages++;
    const cutoff = o.at - this.limits.maxAgeMs;
    while (
      w.head < w.items.length &&
      (w.items.length - w.head > this.limits.maxMessages || w.bytes > this.limits.maxBytes || w.items[w.head]!.at < cutoff)
    ) {
      this.evictOne(o.channel, w);
    }
    this.evictToCap();
  }

  /**
   * Over the cap, the least recently appended windows lose their oldest messages until the total
   * is 1/64 under it, so that a full cache evicts in rounds rather than on every append.
   */
  private evictToCap(): void {
    if (this.totalBytes <= this.cap) return;
    const target = this.cap - Math.floor(this.cap / 64);
    // Map order is least recently appended first; deleting the current entry while iterating is safe.
    for (const [channel, w] of this.windows) {
      while (this.totalBytes > target && w.head < w.items.length) this.evictOne(channel, w);
      if (this.totalBytes <= target) return;
    }
  }

  /** The newest message of a channel, if the window holds one (after age eviction). */
  latest(channel: string, now = Date.now()): Outgoing | undefined {
    const w = this.windows.get(channel);
    if (!w) return undefined;
    this.expire(channel, w, now);
    return w.head < w.items.length ? w.items[w.items.length - 1] : undefined;
  }

  /**
   * What a client that last saw `offset` on `partition` is owed: from the window, or a range to
   * read from Kafka when the window does not cover it.
   */
  since(channel: string, partition: number, offset: number, now = Date.now()): Coverage {
    const w = this.windows.get(channel);
    if (w) this.expire(channel, w, now);
    const start = this.startOffsets.get(partition) ?? Number.MAX_SAFE_INTEGER;
    const evicted = w && w.partition === partition ? w.evictedOffset : (this.droppedFloors.get(partition) ?? -1);
    const floor = Math.max(evicted, start - 1);
    if (offset >= floor) {
      const messages: Outgoing[] = [];
      if (w && w.partition === partition) {
        for (let i = w.head; i < w.items.length; i++) if (w.items[i]!.offset > offset) messages.push(w.items[i]!);
      }
      return { kind: 'window', messages };
    }
    return { kind: 'kafka', partition, after: offset, upTo: this.lastOffsets.get(partition) ?? offset };
  }

  /** Every message the window holds for a channel, oldest first. */
  all(channel: string, now = Date.now()): Outgoing[] {
    const w = this.windows.get(channel);
    if (!w) return [];
    this.expire(channel, w, now);
    return this.windows.has(channel) ? w.items.slice(w.head) : [];
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
    for (const [channel, w] of this.windows) this.expire(channel, w, now);
  }

  private expire(channel: string, w: Window, now: number): void {
    const cutoff = now - this.limits.maxAgeMs;
    while (w.head < w.items.length && w.items[w.head]!.at < cutoff) this.evictOne(channel, w);
  }

  private evictOne(channel: string, w: Window): void {
    const o = w.items[w.head]!;
    w.items[w.head] = undefined as unknown as Outgoing;
    w.head++;
    const cost = messageCost(o);
    w.bytes -= cost;
    this.totalBytes -= cost;
    this.messages--;
    w.evictedOffset = o.offset;
    if (w.head === w.items.length) {
      // An empty window is dropped; its eviction mark moves to the partition's floor, so that
      // older positions are still known not to be covered.
      this.windows.delete(channel);
      this.totalBytes -= windowOverhead(channel);
      this.droppedFloors.set(w.partition, Math.max(this.droppedFloors.get(w.partition) ?? -1, w.evictedOffset));
    } else if (w.head > 256 && w.head * 2 > w.items.length) {
      w.items = w.items.slice(w.head);
      w.head = 0;
    }
  }
}

/** A window's own cost: WINDOW_OVERHEAD_BYTES and its key (UTF-16 at worst). */
function windowOverhead(channel: string): number {
  return WINDOW_OVERHEAD_BYTES + 2 * channel.length;
}
