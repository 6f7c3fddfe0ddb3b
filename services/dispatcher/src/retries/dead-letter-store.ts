/**
 * Dead letters: deliveries that used up the retry schedule (or expired, or whose endpoint was
 * disabled). They live in the dead-letter topic, compacted by `<endpoint id>/<event id>` and
 * deleted after its retention; a redrive or the endpoint's deletion writes a tombstone. Every
 * instance reads the topic into a bounded index (newest kept) that the API lists and redrives from.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from '@fanout/observability';
import { CompactedTopicView } from '../kafka/compacted-view.js';
import type { BatchedWriter } from '../kafka/batched-writer.js';
import { decodeJob, deadLetterKey, encodeJob, HEADER_ENDPOINT, type DeadLetter } from '../delivery/delivery-job.js';

export class DeadLetterStore {
  /** key -> dead letter, in the order they were read (oldest first). */
  private readonly all = new Map<string, DeadLetter>();
  private readonly byEndpoint = new Map<string, Set<string>>();
  private readonly view: CompactedTopicView;
  /** Keys being redriven by this instance (a second redrive call skips them). */
  readonly redriving = new Set<string>();
  /** Dead letters dropped from the index to stay under its bound (they are still in the topic). */
  evicted = 0;

  constructor(
    private readonly o: {
      kafka: Kafka;
      writer: BatchedWriter;
      topic: string;
      groupPrefix: string;
      indexMax: number;
      logger: Logger;
      onCrash?: (err: Error) => void;
    },
  ) {
    this.view = new CompactedTopicView({
      kafka: o.kafka,
      topic: o.topic,
      groupPrefix: o.groupPrefix,
      logger: o.logger.child({ module: 'dead-letters' }),
      apply: (key, value) => this.apply(key, value),
      ...(o.onCrash ? { onCrash: o.onCrash } : {}),
    });
  }

  async start(): Promise<void> {
    await this.view.start();
    await this.view.ready;
  }

  private apply(key: string, value: Buffer | null): void {
    this.forget(key);
    if (value === null) return;
    const dl = decodeJob(value);
    if (!dl || !('deadAt' in dl) || deadLetterKey(dl.endpointId, dl.event.id) !== key) {
      this.o.logger.warn({ key: key.slice(0, 120) }, 'skipped a dead-letter record that is not one');
      return;
    }
    if (this.o.indexMax === 0) return;
    this.all.set(key, dl);
    let set = this.byEndpoint.get(dl.endpointId);
    if (!set) this.byEndpoint.set(dl.endpointId, (set = new Set()));
    set.add(key);
    while (this.all.size > this.o.indexMax) {
      const oldest = this.all.keys().next().value as string;
      this.forget(oldest);
      this.evicted++;
    }
  }

  private forget(key: string): void {
    const old = this.all.get(key);
    if (!old) return;
    this.all.delete(key);
    const set = this.byEndpoint.get(old.endpointId);
    set?.delete(key);
    if (set?.size === 0) this.byEndpoint.delete(old.endpointId);
  }

  /** Dead letters indexed here (all endpoints). */
  get size(): number {
    return this.all.size;
  }

  countFor(endpointId: string): number {
    return this.byEndpoint.get(endpointId)?.size ?? 0;
  }

  /** An endpoint's dead letters, oldest first, `limit` after the one with event id `after`. */
  list(endpointId: string, limit: number, after?: string): DeadLetter[] {
    const keys = [...(this.byEndpoint.get(endpointId) ?? [])];
    let start = 0;
    if (after !== undefined) {
      const i = keys.indexOf(deadLetterKey(endpointId, after));
      start = i >= 0 ? i + 1 : keys.length;
    }
    return keys.slice(start, start + limit).map((k) => this.all.get(k)!);
  }

  get(endpointId: string, eventId: string): DeadLetter | undefined {
    return this.all.get(deadLetterKey(endpointId, eventId));
  }

  /** Appends a dead letter; resolves once Kafka acknowledged it. */
  write(dl: DeadLetter): Promise<void> {
    return this.o.writer.write(this.o.topic, deadLetterKey(dl.endpointId, dl.event.id), encodeJob(dl), {
      [HEADER_ENDPOINT]: dl.endpointId,
    });
  }

  /** Removes a dead letter (after its redrive settled, or with its endpoint). */
  tombstone(endpointId: string, eventId: string): Promise<void> {
    return this.o.writer.write(this.o.topic, deadLetterKey(endpointId, eventId), null, { [HEADER_ENDPOINT]: endpointId });
  }

  async stop(): Promise<void> {
    await this.view.stop();
  }
}
