/**
 * Consumer lag, measured by the gateway itself: for every partition it reads, the records Kafka
 * holds beyond the last one the gateway dispatched (high watermark - 1 - last offset). The
 * broadcast stream has no committed offsets, so an external lag exporter cannot see it; this can.
 * End offsets are read every `everyMs`; the metric reports the latest reading.
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

  constructor(private readonly o: { kafka: Kafka; sources: Record<string, LagSource>; everyMs: number; logger: Logger }) {}

  start(): void {
    const tick = async () => {
      if (this.running) return;
      this.running = true;
      try {
        if (!this.admin) {
          this.admin = this.o.kafka.admin();
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
      } catch (err) {
        this.o.logger.debug({ err }, 'lag probe failed');
      } finally {
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
