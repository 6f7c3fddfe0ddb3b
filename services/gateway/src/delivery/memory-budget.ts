/**
 * The gateway-wide memory budget, for connection queues and the channel windows together.
 *
 * The windows are a cache and yield: after each flush round they get what the queues leave of the
 * budget (shared between the broadcast and users windows, each also under its own configured cap),
 * and evict their oldest messages at once to fit. The queues cannot be evicted without loss, so
 * they have the whole budget if they need it.
 *
 * Every connection adds and removes the bytes it queues. When the total reaches the budget, the
 * gateway pauses Kafka consumption instead of growing; healthy connections drain on their own, and
 * if the total is still above the low-water mark after `shedAfterMs`, the connections with the
 * largest queues are shed first, each by its policy (queued droppable messages dropped with a gap
 * frame; what cannot be dropped closes the connection as a slow consumer). Consumption resumes
 * below the low-water mark.
 *
 * Queue bytes are counted per queue: a frame shared by 1,000 queues counts 1,000 times. That
 * overstates the real memory (frames are shared), which errs on the safe side.
 */
export interface BudgetTarget {
  readonly queuedByteCount: number;
  /** Frees what the connection's policy allows; returns the bytes freed. */
  shed(): number;
}

/** Memory that yields to the queues (the channel windows). */
export interface BudgetCache {
  /** What it costs now. */
  readonly bytes: number;
  /** The room it may use now; it evicts at once to fit. */
  setRoom(bytes: number): void;
}

export interface MemoryBudgetOptions {
  /** The budget, in bytes of queued frames. */
  maxBytes: number;
  /** Resume below this fraction of the budget (0..1). */
  lowWater: number;
  /** How long paused before shedding connections, in ms. */
  shedAfterMs: number;
  pause(): void;
  resume(): void;
  connections(): Iterable<BudgetTarget>;
  /** What yields room to the queues (the windows of both streams). */
  caches?: readonly BudgetCache[];
  onShed?(): void;
}

export class MemoryBudget {
  /** Bytes queued across all connections. */
  used = 0;
  paused = false;
  pauses = 0;
  private pausedAt = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: MemoryBudgetOptions) {
    this.shareRoom();
  }

  get maxBytes(): number {
    return this.o.maxBytes;
  }

  /** Queues and windows together: what the budget covers. */
  get totalUsed(): number {
    let t = this.used;
    for (const c of this.o.caches ?? []) t += c.bytes;
    return t;
  }

  /** Gives the windows what the queues leave of the budget, in equal shares. */
  private shareRoom(): void {
    const caches = this.o.caches ?? [];
    if (caches.length === 0) return;
    const room = Math.max(0, this.o.maxBytes - this.used) / caches.length;
    for (const c of caches) c.setRoom(room);
  }

  add(delta: number): void {
    this.used += delta;
  }

  /** Called after each flush round: pauses consumption when the budget is reached. */
  check(): void {
    this.shareRoom();
    if (this.paused || this.used < this.o.maxBytes) return;
    this.paused = true;
    this.pauses++;
    this.pausedAt = Date.now();
    this.o.pause();
    this.timer = setInterval(() => this.tick(), 50);
    this.timer.unref();
  }

  private tick(): void {
    this.shareRoom();
    const low = this.o.maxBytes * this.o.lowWater;
    if (this.used > low && Date.now() - this.pausedAt >= this.o.shedAfterMs) {
      const targets = [...this.o.connections()].filter((c) => c.queuedByteCount > 0).sort((a, b) => b.queuedByteCount - a.queuedByteCount);
      for (const c of targets) {
        if (this.used <= low) break;
        c.shed();
        this.o.onShed?.();
      }
    }
    if (this.used <= low) {
      this.paused = false;
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      this.o.resume();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * What the gateway's RSS stays under (docs/operations.md, "Memory"): the process at start-up
 * (`baseRss`), plus the memory budget (queues and windows, counted at what they cost) twice over
 * (V8 keeps collected garbage and free pages until the next compaction; measured peaks stay under
 * 1.5x), plus Kafka's fetches in flight (kafkajs reads up to 10 MiB per fetch for each of the
 * gateway's three consumers, and decoding roughly doubles it), plus per connection what the
 * connection itself costs and the socket buffer uWebSockets.js may hold for it
 * (FANOUT_SOCKET_BUFFER_BYTES).
 */
export const HEAP_SLACK_FACTOR = 2;
export const KAFKA_FETCH_ALLOWANCE_BYTES = 3 * 2 * 10 * 1024 * 1024;
/** One connection's own memory (session, queue, subscriptions, uWS socket): measured ~2-3 KB idle, rounded up. */
export const CONNECTION_BYTES = 4096;

export function memoryBound(o: { baseRss: number; budgetBytes: number; connections: number; socketBufferBytes: number }): number {
  return (
    o.baseRss + HEAP_SLACK_FACTOR * o.budgetBytes + KAFKA_FETCH_ALLOWANCE_BYTES + o.connections * (CONNECTION_BYTES + o.socketBufferBytes)
  );
}
