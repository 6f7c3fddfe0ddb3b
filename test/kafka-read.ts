/** Reads records straight from Kafka, to check what a service wrote (or that it wrote nothing). */
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { kafkajsSecurity } from '@fanout/kafka';

export interface ReadRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

function kafka(brokers: string[]): Kafka {
  // The FANOUT_KAFKA_* settings of the run (none for the plaintext test brokers).
  return new Kafka({ brokers, clientId: 'test-reader', logLevel: logLevel.NOTHING, ...kafkajsSecurity() });
}

/** Total records in a topic (sum of high watermarks minus low watermarks). */
export async function countRecords(brokers: string[], topic: string): Promise<number> {
  const admin = kafka(brokers).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Reads every record of a topic from the beginning until `expected` have arrived. */
export async function readAll(brokers: string[], topic: string, expected: number, timeoutMs = 20_000): Promise<ReadRecord[]> {
  const consumer = kafka(brokers).consumer({ groupId: `test-reader-${Math.random().toString(36).slice(2)}` });
  const out: ReadRecord[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${out.length} of ${expected} records from ${topic}`)), timeoutMs);
    void consumer.run({
      eachMessage: async ({ partition, message }: { partition: number; message: KafkaMessage }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(Array.isArray(v) ? v[0] : v);
        out.push({
          partition,
          offset: Number(message.offset),
          key: message.key?.toString() ?? null,
          value: message.value?.toString() ?? null,
          headers,
        });
        if (out.length >= expected) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  try {
    await done;
  } finally {
    await consumer.disconnect();
  }
  return out;
}
