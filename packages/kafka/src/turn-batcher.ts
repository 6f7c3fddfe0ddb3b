/**
 * Gathers what is handed over in one event-loop turn and sends it in requests cut by count and by
 * bytes (the broker refuses a produce request over message.max.bytes), one request at a time, in
 * call order. Each item's promise settles with its own result, or with the request's error.
 * The publisher's producer library and the dispatcher's writer both produce through it.
 */
interface Queued<T, R> {
  item: T;
  size: number;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export interface TurnBatcherOptions<T, R> {
  /** Sends one request; returns one result per item, in order. A throw rejects every item of it. */
  send(items: T[]): Promise<R[]>;
  /** Bytes an item adds to a request (an estimate is enough: keep maxBytes under the broker's limit). */
  sizeOf(item: T): number;
  maxBytes: number;
  maxCount?: number;
}

export class TurnBatcher<T, R> {
  private queue: Queued<T, R>[] = [];
  private scheduled = false;
  private flushing = false;

  constructor(private readonly o: TurnBatcherOptions<T, R>) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, size: this.o.sizeOf(item), resolve, reject });
      if (!this.scheduled && !this.flushing) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  get busy(): boolean {
    return this.scheduled || this.flushing || this.queue.length > 0;
  }

  /** Waits (bounded) until every queued item was answered. */
  async idle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.busy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  /** Rejects what is still waiting to be sent (shutdown). */
  rejectQueued(err: unknown): void {
    for (const q of this.queue.splice(0)) q.reject(err);
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    if (this.flushing) return;
    this.flushing = true;
    try {
      const maxCount = this.o.maxCount ?? Number.MAX_SAFE_INTEGER;
      while (this.queue.length > 0) {
        let n = 0;
        let bytes = 0;
        while (n < this.queue.length && n < maxCount && (n === 0 || bytes + this.queue[n]!.size <= this.o.maxBytes))
          bytes += this.queue[n++]!.size;
        const batch = this.queue.splice(0, n);
        try {
          const results = await this.o.send(batch.map((q) => q.item));
          batch.forEach((q, i) => q.resolve(results[i]!));
        } catch (err) {
          for (const q of batch) q.reject(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
