/**
 * What the dispatcher keeps per endpoint: the deliveries waiting for it (bounded, oldest first),
 * how many requests it has in flight, its token bucket and its circuit breaker. Each endpoint has
 * its own lane, so a slow or failing endpoint only ever fills its own.
 */
import { CircuitBreaker } from './circuit-breaker.js';
import { TokenBucket } from './token-bucket.js';
import type { DeliveryJob } from './delivery-job.js';

export type Outcome = 'delivered' | 'retry_scheduled' | 'deferred' | 'dead_lettered' | 'dropped';
export type Settle = (outcome: Outcome) => void;

export interface Queued {
  job: DeliveryJob;
  settle: Settle;
  /** When it was queued (ms since the epoch). */
  at: number;
  /** Read from an event topic just now (not a retry or redrive): its first attempt's lag is measured. */
  fresh: boolean;
}

export class EndpointLane {
  private items: Queued[] = [];
  private head = 0;
  inFlight = 0;
  bucket: TokenBucket | null = null;
  readonly breaker: CircuitBreaker;
  /** Set while waiting for the bucket's next token. */
  timer: NodeJS.Timeout | null = null;

  constructor(
    readonly endpointId: string,
    breaker: { threshold: number; openMs: number; maxOpenMs: number },
    /** Told of every change of the queue's length (the engine keeps the total). */
    private readonly onLength: (delta: number) => void,
  ) {
    this.breaker = new CircuitBreaker(breaker);
  }

  get length(): number {
    return this.items.length - this.head;
  }

  push(q: Queued): void {
    this.items.push(q);
    this.onLength(1);
  }

  peek(): Queued | undefined {
    return this.items[this.head];
  }

  shift(): Queued | undefined {
    if (this.head >= this.items.length) return undefined;
    const q = this.items[this.head]!;
    this.items[this.head++] = undefined as unknown as Queued;
    this.onLength(-1);
    // Compact once the consumed head is large, so the array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return q;
  }

  /** Removes the newest waiting delivery. */
  pop(): Queued | undefined {
    if (this.head >= this.items.length) return undefined;
    const q = this.items.pop()!;
    this.onLength(-1);
    return q;
  }

  /** Removes and returns every waiting delivery. */
  takeAll(): Queued[] {
    const all = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    this.onLength(-all.length);
    return all;
  }

  /** Applies the endpoint's rate (0: unlimited). */
  setRate(ratePerS: number): void {
    if (ratePerS <= 0) this.bucket = null;
    else if (!this.bucket) this.bucket = new TokenBucket(ratePerS);
    else if (this.bucket.rate !== ratePerS) this.bucket.setRate(ratePerS);
  }

  get idle(): boolean {
    return this.inFlight === 0 && this.length === 0 && this.timer === null;
  }

  // Recent throughput: completed attempts per second in 1-second buckets over the last 10 s,
  // counted from when the lane last became busy (an idle lane is not a slow one).
  private readonly buckets = new Array<number>(RATE_WINDOW_S).fill(0);
  private bucketSecond = 0;
  /** When the lane last went from idle to busy (ms since the epoch); 0 while idle. */
  private busySince = 0;

  private roll(now: number): void {
    const sec = Math.floor(now / 1000);
    if (sec - this.bucketSecond >= RATE_WINDOW_S) this.buckets.fill(0);
    else for (let s = this.bucketSecond + 1; s <= sec; s++) this.buckets[s % RATE_WINDOW_S] = 0;
    this.bucketSecond = sec;
  }

  /** Marks the lane busy (work queued or in flight) or idle. */
  busy(now: number): void {
    if (this.busySince === 0) this.busySince = now;
  }

  settleIdle(): void {
    if (this.idle) this.busySince = 0;
  }

  completed(now: number): void {
    this.roll(now);
    this.buckets[Math.floor(now / 1000) % RATE_WINDOW_S]!++;
  }

  /**
   * How long a delivery queued now would wait, from the recent throughput (ms); 0 while the lane
   * has been busy less than a second (nothing is known yet), Infinity when nothing completed.
   */
  estimatedWaitMs(now: number): number {
    if (this.length === 0 || this.busySince === 0) return 0;
    const busyS = (now - this.busySince) / 1000;
    if (busyS < 1) return 0;
    this.roll(now);
    let done = 0;
    for (const b of this.buckets) done += b;
    const rate = done / Math.min(RATE_WINDOW_S, busyS);
    return rate === 0 ? Infinity : (this.length / rate) * 1000;
  }
}

/** Seconds of history behind the throughput estimate. */
const RATE_WINDOW_S = 10;
