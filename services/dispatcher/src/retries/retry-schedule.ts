/**
 * The retry schedule, kept in Kafka: one topic per step (`<prefix>.0` for 5 s, `<prefix>.1` for
 * 5 min, ...). A failed delivery after its n-th attempt is written to step n-1 with its due time
 * (now + the step's delay, plus jitter) in the `fanout-due` header. Every record of one step
 * topic waits about the same time, so due times within a partition are in order (give or take the
 * jitter), and the retry consumer can wait for the head of each partition without a slower retry
 * holding up a faster one. That is what lets retries survive a restart: nothing waits in memory.
 */
import type { BatchedWriter } from '../kafka/batched-writer.js';
import { encodeJob, HEADER_DUE, HEADER_ENDPOINT, type DeliveryJob } from '../delivery/delivery-job.js';

export class RetrySchedule {
  constructor(private readonly o: { writer: BatchedWriter; prefix: string; delaysMs: readonly number[]; jitter: number }) {}

  /** Retries after the first try; a delivery gets steps + 1 attempts in all. */
  get steps(): number {
    return this.o.delaysMs.length;
  }

  get delaysMs(): readonly number[] {
    return this.o.delaysMs;
  }

  /** The whole schedule without jitter, in ms: a deferred delivery older than this is dead-lettered. */
  get spanMs(): number {
    return this.o.delaysMs.reduce((a, b) => a + b, 0);
  }

  topic(step: number): string {
    return `${this.o.prefix}.${step}`;
  }

  get topics(): string[] {
    return this.o.delaysMs.map((_, i) => this.topic(i));
  }

  /** The step whose delay is the shortest at least `delayMs` (the last step if none is that long). */
  stepFor(delayMs: number): number {
    const i = this.o.delaysMs.findIndex((d) => d >= delayMs);
    return i >= 0 ? i : this.o.delaysMs.length - 1;
  }

  /** Writes the delivery to `step`; resolves with its due time once Kafka acknowledged it. */
  async schedule(job: DeliveryJob, step: number, now = Date.now()): Promise<number> {
    const delay = this.o.delaysMs[step]!;
    const due = Math.round(now + delay * (1 + this.o.jitter * Math.random()));
    await this.o.writer.write(this.topic(step), job.endpointId, encodeJob(job), {
      [HEADER_DUE]: String(due),
      [HEADER_ENDPOINT]: job.endpointId,
    });
    return due;
  }
}
