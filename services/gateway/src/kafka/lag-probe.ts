/**
 * Consumer lag, measured by the gateway itself: for every partition it reads, the records Kafka
 * holds beyond the last one the gateway dispatched (high watermark - 1 - last offset). The
 * broadcast stream has no committed offsets, so an external lag exporter cannot see it; this can.
 * End offsets are read every `everyMs`; the metric reports the latest reading.
 *
 * The same reading tells whether Kafka answers at all: a reading that fails (its admin client
 * retries once, quickly) marks Kafka unreachable (`reachable`, `onReachable`), and the next one
 * that succeeds marks it back. The gateway's readiness and `fanout_gateway_kafka_reachable`
 * follow it, so that a gateway cut off from Kafka stops taking new clients while it keeps the
 * ones it has (they resume without a gap once it reads again).
 */
import type { Kafka } from 'kafkajs';
import { withRetry } from '@fanout/kafka';
import type { Logger } from '@fanout/observability';

export interface LagSource {
  topic: string;
  /** Partitions read now, and the last offset dispatched on each (undefined: none yet). */
  partitions(): number[];
  lastOffset(partition: number): number | undefined;
}

export class LagProbe {
  readonly lag = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  /** One admin connection for the probe's lifetime (not one per reading). */
  private admin: ReturnType<Kafka['admin']> | null = null;
  /** Whether the latest reading got an answer from Kafka. */
  reachable = true;

  constructor(
    private readonly o: {
      kafka: Kafka;
      sources: Record<string, LagSource>;
      everyMs: number;
      logger: Logger;
      onReachable?: (reachable: boolean) => void;
    },
  ) {}

  private mark(reachable: boolean, err?: unknown): void {
    if (reachable === this.reachable) return;
    this.reachable = reachable;
    if (reachable) this.o.logger.warn('Kafka answers again');
    else
      this.o.logger.error({ err: (err as Error | undefined)?.message }, 'Kafka does not answer: not ready for new clients until it does');
    this.o.onReachable?.(reachable);
  }

  start(): void {
    // A partition (no answer at all, not even a refusal) leaves a request hanging until kafkajs'
    // request timeout (30 s): a reading that takes longer than this is taken as Kafka not answering.
    const verdictMs = Math.max(3000, this.o.everyMs);
    let slow: NodeJS.Timeout | null = null;
    const tick = async () => {
      if (this.running) return;
      this.running = true;
      slow = setTimeout(() => this.mark(false, new Error(`no answer within ${verdictMs} ms`)), verdictMs);
      try {
        if (!this.admin) {
          // Quick verdicts: one retry, and withRetry's 3 attempts, rather than the client's 8.
          this.admin = this.o.kafka.admin({ retry: { initialRetryTime: 100, maxRetryTime: 500, retries: 1 } });
          await this.admin.connect();
        }
        const admin = this.admin;
        for (const [name, src] of Object.entries(this.o.sources)) {
          const ends = await withRetry(() => admin.fetchTopicOffsets(src.topic), 3);
          let total = 0;
          for (const p of src.partitions()) {
            const high = Number(ends.find((e) => e.partition === p)?.high ?? 0);
            const last = src.lastOffset(p);
            // Before any record is dispatched the window starts at the end offset (last = start - 1).
            total += Math.max(0, high - 1 - (last ?? high - 1));
          }
          this.lag.set(name, total);
        }
        this.mark(true);
      } catch (err) {
        this.o.logger.debug({ err }, 'lag probe failed');
        this.mark(false, err);
      } finally {
        if (slow) clearTimeout(slow);
        this.running = false;
      }
    };
    this.timer = setInterval(() => void tick(), this.o.everyMs);
    this.timer.unref();
    void tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.admin?.disconnect().catch(() => {});
    this.admin = null;
  }
}
