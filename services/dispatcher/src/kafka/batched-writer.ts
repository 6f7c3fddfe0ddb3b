/**
 * Writes records through one idempotent producer (acks=all), gathering the writes made in one
 * event-loop turn into one request: when a circuit opens and a thousand queued deliveries are
 * deferred at once, that is one produce call, not a thousand. Each write resolves only once Kafka
 * has acknowledged it; that acknowledgement is what lets the consumers commit past the record
 * that caused it.
 */
import type { IHeaders, Message, Producer } from 'kafkajs';
import { TurnBatcher } from '@fanout/kafka';

interface Write {
  topic: string;
  message: Message;
}

/** Bytes per produce request: under the broker's default message.max.bytes (1 MiB). */
const MAX_BATCH_BYTES = 768 * 1024;

export class BatchedWriter {
  private readonly batcher: TurnBatcher<Write, void>;

  constructor(producer: Producer) {
    this.batcher = new TurnBatcher<Write, void>({
      maxBytes: MAX_BATCH_BYTES,
      sizeOf: (w) =>
        String(w.message.key ?? '').length + (w.message.value === null ? 0 : Buffer.byteLength(w.message.value as string)) + 128,
      send: async (writes) => {
        const byTopic = new Map<string, Message[]>();
        for (const w of writes) {
          let list = byTopic.get(w.topic);
          if (!list) byTopic.set(w.topic, (list = []));
          list.push(w.message);
        }
        await producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
        return writes.map(() => undefined);
      },
    });
  }

  write(topic: string, key: string, value: string | null, headers: IHeaders = {}): Promise<void> {
    return this.batcher.add({ topic, message: { key, value, headers } });
  }

  /** Waits (bounded) until every queued write was answered. */
  idle(timeoutMs: number): Promise<void> {
    return this.batcher.idle(timeoutMs);
  }
}
