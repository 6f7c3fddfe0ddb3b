/**
 * Warming the windows: before a gateway serves a partition (at start for the broadcast topic, after
 * a rebalance for the user partitions it gains) it reads the partition's recent past into the
 * per-channel windows, so that clients moving here after a drain or a crash resume from memory
 * instead of each reading Kafka.
 *
 * For each partition being warmed this holds `end`, the first offset that is live: records before
 * it are history (they go to the windows only, never to connections, whose clients either had them
 * from the previous gateway or subscribe from now on); records from `end` on are dispatched as
 * usual. A resume on a partition still warming waits here (`whenWarm`) and is then served from the
 * window. A partition stops warming when its record at `end - 1` has been appended, or when the
 * start-up time limit gives up on it (`finishAll`): from then on its remaining history is
 * dispatched like live records, which loses nothing and only means the window starts later.
 */
import type { Logger } from '@fanout/observability';
import type { OutgoingFactory } from './outgoing.js';
import type { Stream } from './streams.js';

export class WarmUp {
  /** Partition -> first live offset, for partitions still warming. */
  private readonly ends = new Map<number, number>();
  private readonly waiters = new Map<number, (() => void)[]>();
  private allResolve: (() => void) | null = null;

  /** Registers a partition whose offsets [start, end) are history; nothing to do when start >= end. */
  begin(partition: number, start: number, end: number): void {
    if (start >= end) return this.finish(partition);
    this.ends.set(partition, end);
  }

  /** Whether the record at `offset` is history (append it to the window only). */
  isHistory(partition: number, offset: number): boolean {
    const end = this.ends.get(partition);
    return end !== undefined && offset < end;
  }

  /** Records that `offset` was handled; the partition is warm once its last history offset was. */
  handled(partition: number, offset: number): void {
    const end = this.ends.get(partition);
    if (end !== undefined && offset >= end - 1) this.finish(partition);
  }

  warming(partition: number): boolean {
    return this.ends.has(partition);
  }

  get partitionsWarming(): number {
    return this.ends.size;
  }

  /** Runs `fn` once the partition is warm (now, if it is). */
  whenWarm(partition: number, fn: () => void): void {
    if (!this.ends.has(partition)) return fn();
    let list = this.waiters.get(partition);
    if (!list) this.waiters.set(partition, (list = []));
    list.push(fn);
  }

  /** Resolves when no partition is warming (or finishAll gave up on them). */
  allWarm(): Promise<void> {
    if (this.ends.size === 0) return Promise.resolve();
    return new Promise((r) => {
      const prev = this.allResolve;
      this.allResolve = () => {
        prev?.();
        r();
      };
    });
  }

  /** Stops warming every partition (the start-up limit was reached, or the partition was lost). */
  finishAll(): void {
    for (const p of [...this.ends.keys()]) this.finish(p);
  }

  finish(partition: number): void {
    this.ends.delete(partition);
    const list = this.waiters.get(partition);
    this.waiters.delete(partition);
    if (list) for (const fn of list) fn();
    if (this.ends.size === 0 && this.allResolve) {
      const r = this.allResolve;
      this.allResolve = null;
      r();
    }
  }
}

/**
 * Warms the windows of partitions this gateway gained in a rebalance from Kafka through the shared
 * replay reader (every channel of [start, resumeAt)), while the region's consumer keeps them paused.
 * A read that fails leaves the partition's window starting at `resumeAt`: older positions are then
 * read from Kafka per resume, as for any client that was away longer.
 */
export async function warmGainedPartitions(
  stream: Stream,
  factory: OutgoingFactory,
  gained: Map<number, { start: number; resumeAt: number }>,
  logger: Logger,
): Promise<void> {
  for (const [p, { start, resumeAt }] of gained) {
    stream.windows.setStart(p, start);
    stream.warmup.begin(p, start, resumeAt);
  }
  await Promise.all(
    [...gained].map(async ([p, { start, resumeAt }]) => {
      if (start >= resumeAt) return;
      try {
        const events = await stream.replay.read(p, start - 1, resumeAt - 1, null);
        if (!stream.warmup.warming(p)) return; // lost again meanwhile
        const now = Date.now();
        for (const r of events) {
          stream.windows.noteOffset(p, r.offset);
          stream.windows.append(r.event, p, r.offset, Math.min(now, r.event.publishedAt));
        }
        stream.windows.noteOffset(p, resumeAt - 1);
        logger.info({ users_partition: p, records: events.length }, 'warmed the window of a gained partition');
      } catch (err) {
        logger.warn({ err, users_partition: p }, 'warming a gained partition failed; its window starts at the committed offset');
        if (stream.warmup.warming(p)) {
          stream.windows.dropPartition(p);
          stream.windows.setStart(p, resumeAt);
        }
      } finally {
        stream.warmup.finish(p);
      }
    }),
  );
}
