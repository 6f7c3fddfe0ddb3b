/**
 * The gateway-wide memory budget for connection queues.
 *
 * Every connection adds and removes the bytes it queues. When the total reaches the budget, the
 * gateway pauses Kafka consumption instead of growing; healthy connections drain on their own, and
 * if the total is still above the low-water mark after `shedAfterMs`, the connections with the
 * largest queues are shed first, each by its policy (queued droppable messages dropped with a gap
 * frame; what cannot be dropped closes the connection as a slow consumer). Consumption resumes
 * below the low-water mark.
 *
 * Bytes are counted per queue: a frame shared by 1,000 queues counts 1,000 times. That overstates
 * the real memory (frames are shared), which errs on the safe side.
 */
export interface BudgetTarget {
  readonly queuedByteCount: number;
  /** Frees what the connection's policy allows; returns the bytes freed. */
  shed(): number;
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
  onShed?(): void;
}

export class MemoryBudget {
  used = 0;
  paused = false;
  pauses = 0;
  private pausedAt = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: MemoryBudgetOptions) {}

  get maxBytes(): number {
    return this.o.maxBytes;
  }

  add(delta: number): void {
    this.used += delta;
  }

  /** Called after each flush round: pauses consumption when the budget is reached. */
  check(): void {
    if (this.paused || this.used < this.o.maxBytes) return;
    this.paused = true;
    this.pauses++;
    this.pausedAt = Date.now();
    this.o.pause();
    this.timer = setInterval(() => this.tick(), 50);
    this.timer.unref();
  }

  private tick(): void {
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
