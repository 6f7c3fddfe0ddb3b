/**
 * Writes records through one idempotent producer (acks=all), gathering the writes made in one
 * event-loop turn into one request: when a circuit opens and a thousand queued deliveries are
 * deferred at once, that is one produce call, not a thousand. Each write resolves only once Kafka
 * has acknowledged it; that acknowledgement is what lets the consumers commit past the record
 * that caused it.
 */
import type { IHeaders, Message, Producer } from 'kafkajs';

interface Pending {
  topic: string;
  message: Message;
  bytes: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Bytes per produce request: under the broker's default message.max.bytes (1 MiB). */
const MAX_BATCH_BYTES = 768 * 1024;

export class BatchedWriter {
  private queue: Pending[] = [];
  private scheduled = false;
  private flushing = false;

  constructor(private readonly producer: Producer) {}

  write(topic: string, key: string, value: string | null, headers: IHeaders = {}): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const bytes = key.length + (value === null ? 0 : Buffer.byteLength(value)) + 128;
      this.queue.push({ topic, message: { key, value, headers }, bytes, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        let n = 0;
        let bytes = 0;
        while (n < this.queue.length && (n === 0 || bytes + this.queue[n]!.bytes <= MAX_BATCH_BYTES)) bytes += this.queue[n++]!.bytes;
        const batch = this.queue.splice(0, n);
        const byTopic = new Map<string, Message[]>();
        for (const p of batch) {
          let list = byTopic.get(p.topic);
          if (!list) byTopic.set(p.topic, (list = []));
          list.push(p.message);
        }
        try {
          await this.producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
          for (const p of batch) p.resolve();
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Waits (bounded) until every queued write was answered. */
  async idle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.flushing || this.queue.length > 0 || this.scheduled) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }
}
