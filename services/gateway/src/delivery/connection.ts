/**
 * One client connection on the delivery path: its subscriptions, its credits, and the bounded
 * queue of messages it is owed but has not been written yet.
 *
 * Messages are shared Outgoing objects (encoded once per message per gateway). `enqueue` appends
 * (conflating while the connection is blocked); `flush` writes what the connection may receive
 * (credits left, socket buffer under its limit) in one corked batch, then applies the queue bounds
 * and the channel policies to what is left; that waits for more credits or the transport's drain
 * event. A slow client costs only its own bounded queue.
 */
import { CLOSE, gapFrame } from '@fanout/protocol';
import { ANONYMOUS, type Principal } from '@fanout/auth';
import { WriteResult, type Sink } from './sink.js';
import type { Outgoing } from './outgoing.js';
import type { BudgetTarget, MemoryBudget } from './memory-budget.js';

export interface ConnectionLimits {
  socketBufferBytes: number;
  queueMaxMessages: number;
  queueMaxBytes: number;
}

/** Counters the hub turns into metrics. Shared by every connection of a gateway. */
export interface DeliveryCounters {
  written: number;
  conflated: number;
  dropped: number;
  slowConsumerCloses: number;
  creditStalls: number;
  socketStalls: number;
}

export function newCounters(): DeliveryCounters {
  return { written: 0, conflated: 0, dropped: 0, slowConsumerCloses: 0, creditStalls: 0, socketStalls: 0 };
}

interface Gap {
  from: string;
  to: string;
  count: number;
}

let nextId = 1;

export class Connection implements BudgetTarget {
  readonly id = nextId++;
  /** Exact channel subscriptions. */
  readonly channels = new Set<string>();
  /** Namespace wildcard subscriptions (`prices:*` -> `prices`). */
  readonly namespaces = new Set<string>();
  closed = false;
  /** Who is connected: set from the connect token once verified; anonymous without one. */
  principal: Principal = ANONYMOUS;
  /** False until the connect token (if any) is verified; frames wait until then. */
  authenticated = false;
  /** Set while the connection sits in the hub's dirty list (so it is listed once per turn). */
  dirty = false;
  /** Messages the client may still receive; Infinity when unlimited. */
  credits: number;
  /** True when the last flush left messages queued (no credits or a full socket). */
  blocked = false;

  /** Queue slots; null marks a message removed by conflation or dropping. */
  private items: (Outgoing | null)[] = [];
  private head = 0;
  /** Absolute index of items[0], so conflation indices survive compaction. */
  private base = 0;
  private live = 0;
  private bytes = 0;
  private readonly latestByKey = new Map<string, number>();
  private readonly gaps = new Map<string, Gap>();
  /** Channels being resumed from Kafka: live messages wait here until the replay is queued. */
  private catchingUp: Map<string, Outgoing[]> | null = null;
  /**
   * Per channel: the client already has every offset up to this one (it resumed from a position
   * this gateway has not reached yet, e.g. after moving from a gateway that was ahead), so those
   * are not sent again. An entry goes once a later message of its channel passes.
   */
  private skipThrough: Map<string, number> | null = null;

  constructor(
    readonly sink: Sink,
    private readonly limits: ConnectionLimits,
    private readonly counters: DeliveryCounters,
    private readonly budget: MemoryBudget | null,
    initialCredits: number,
    readonly meta: { transport: string; remote?: string } = { transport: 'websocket' },
  ) {
    this.credits = initialCredits;
  }

  get queuedMessages(): number {
    return this.live;
  }

  get queuedByteCount(): number {
    return this.bytes;
  }

  /** Adds a message to what this connection is owed. Returns false if the connection was closed. */
  enqueue(o: Outgoing): boolean {
    if (this.closed) return false;
    if (this.skipThrough !== null) {
      const had = this.skipThrough.get(o.channel);
      if (had !== undefined) {
        if (o.offset <= had) return false;
        this.skipThrough.delete(o.channel);
        if (this.skipThrough.size === 0) this.skipThrough = null;
      }
    }
    if (this.catchingUp !== null) {
      const held = this.catchingUp.get(o.channel);
      if (held) {
        held.push(o);
        return false;
      }
    }
    if (o.conflateKey !== null && (this.blocked || this.credits <= 0)) {
      const prev = this.latestByKey.get(o.conflateKey);
      if (prev !== undefined && prev - this.base >= this.head) {
        const old = this.items[prev - this.base];
        if (old) {
          this.remove(prev - this.base, old);
          this.counters.conflated++;
        }
      }
      this.latestByKey.set(o.conflateKey, this.base + this.items.length);
    }
    this.items.push(o);
    this.live++;
    this.bytes += o.bytes;
    this.budget?.add(o.bytes);
    return true;
  }

  /**
   * Applies the queue bounds to what is left after a flush, i.e. to what the connection is owed
   * but cannot be sent yet (a burst that is written in the same turn never counts against them).
   */
  private enforceBounds(): void {
    while (this.live > this.limits.queueMaxMessages || this.bytes > this.limits.queueMaxBytes) {
      if (!this.dropOldestDroppable()) {
        this.slowConsumer();
        return;
      }
    }
  }

  /** The client has every message of `channel` up to `offset`: do not send those again. */
  alreadyHas(channel: string, offset: number): void {
    (this.skipThrough ??= new Map()).set(channel, offset);
  }

  /** Holds live messages of `channel` until its replay from Kafka is queued (endCatchUp). */
  beginCatchUp(channel: string): void {
    (this.catchingUp ??= new Map()).set(channel, []);
  }

  /**
   * Queues the replayed messages (offsets up to `upTo`), then the live ones that arrived meanwhile
   * and come after them, so the client sees every message once, in order.
   */
  endCatchUp(channel: string, replayed: Outgoing[], upTo: number): void {
    const held = this.catchingUp?.get(channel) ?? [];
    this.catchingUp?.delete(channel);
    if (this.catchingUp?.size === 0) this.catchingUp = null;
    for (const o of replayed) this.enqueue(o);
    for (const o of held) if (o.offset > upTo) this.enqueue(o);
  }

  /** Adds credits (capped); true if the connection was waiting for them. */
  grant(n: number, max: number): boolean {
    const wasStalled = this.credits <= 0 && this.live > 0;
    if (this.credits !== Infinity) this.credits = Math.min(this.credits + n, max);
    return wasStalled;
  }

  /** Writes what the connection may receive, in one corked batch. Returns messages written. */
  flush(): number {
    if (this.closed) return 0;
    if (this.live === 0 && this.gaps.size === 0) {
      this.blocked = false;
      return 0;
    }
    let written = 0;
    const limit = this.limits.socketBufferBytes;
    let socketFull = false;
    this.sink.cork(() => {
      // Gap notices first: what was dropped is older than anything still queued.
      for (const [channel, g] of this.gaps) {
        if (this.sink.bufferedAmount() >= limit) {
          socketFull = true;
          return;
        }
        this.sink.write(Buffer.from(gapFrame(channel, g.from, g.to, g.count)));
        this.gaps.delete(channel);
      }
      while (this.head < this.items.length) {
        const item = this.items[this.head];
        if (item === null || item === undefined) {
          this.head++;
          continue;
        }
        if (this.credits <= 0) {
          this.counters.creditStalls++;
          break;
        }
        if (this.sink.bufferedAmount() >= limit) {
          socketFull = true;
          break;
        }
        const r = this.sink.write(item.frame, item);
        if (r === WriteResult.Dropped) {
          socketFull = true;
          break;
        }
        this.items[this.head++] = null;
        this.live--;
        this.bytes -= item.bytes;
        this.budget?.add(-item.bytes);
        this.credits--;
        written++;
        if (r === WriteResult.Backpressure) {
          socketFull = true;
          break;
        }
      }
    });
    if (socketFull) this.counters.socketStalls++;
    this.counters.written += written;
    if (this.live > 0) this.enforceBounds();
    if (this.closed) return written;
    this.compact();
    this.blocked = this.live > 0;
    // Gaps recorded just now are written at the next flush (drain or new data), ahead of the rest.
    return written;
  }

  /** Writes a control frame now (answers, errors): control frames bypass credits and the queue. */
  sendControl(text: string): void {
    if (this.closed) return;
    this.sink.cork(() => this.sink.write(Buffer.from(text)));
  }

  /** Memory shedding: drop every droppable queued message; close if anything else remains. */
  shed(): number {
    const before = this.bytes;
    while (this.dropOldestDroppable());
    if (this.live > 0) this.slowConsumer();
    return before - this.bytes;
  }

  closeWith(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.dropQueue();
    this.sink.close(code, reason);
  }

  /** Called by the transport once the socket is gone (whoever closed it). */
  markClosed(): void {
    this.closed = true;
    this.dropQueue();
  }

  private slowConsumer(): void {
    this.counters.slowConsumerCloses++;
    this.closeWith(CLOSE.SLOW_CONSUMER.code, CLOSE.SLOW_CONSUMER.reason);
  }

  /** Drops the oldest message whose policy allows it, recording the gap. False if none. */
  private dropOldestDroppable(): boolean {
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i];
      if (!item || item.policy === 'disconnect') continue;
      this.remove(i, item);
      const g = this.gaps.get(item.channel);
      if (g) {
        g.to = item.position;
        g.count++;
      } else {
        this.gaps.set(item.channel, { from: item.position, to: item.position, count: 1 });
      }
      this.counters.dropped++;
      return true;
    }
    return false;
  }

  private remove(i: number, item: Outgoing): void {
    this.items[i] = null;
    this.live--;
    this.bytes -= item.bytes;
    this.budget?.add(-item.bytes);
  }

  private compact(): void {
    while (this.head < this.items.length && this.items[this.head] === null) this.head++;
    if (this.head === this.items.length) {
      this.base += this.items.length;
      this.items = [];
      this.head = 0;
      this.latestByKey.clear();
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.base += this.head;
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  private dropQueue(): void {
    this.budget?.add(-this.bytes);
    this.items = [];
    this.head = 0;
    this.live = 0;
    this.bytes = 0;
    this.latestByKey.clear();
    this.gaps.clear();
    this.catchingUp = null;
    this.skipThrough = null;
  }
}
