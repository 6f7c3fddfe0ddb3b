/**
 * A producer-library user for the publisher-kill fault: publishes batches of 50 events to CHANNEL
 * as fast as Kafka acknowledges them (several batches in flight), and prints `ack <id> <position>`
 * for every event the moment its publish resolves, so that the test knows exactly what the
 * library acknowledged before the process was killed.
 */
import { createLogger } from '@fanout/observability';
import { PublisherClient } from '@fanout/publisher';

const topics = { broadcast: process.env.FANOUT_TOPIC_BROADCAST!, users: process.env.FANOUT_TOPIC_USERS! };
const client = new PublisherClient({
  brokers: process.env.FANOUT_BROKERS!.split(','),
  logger: createLogger('producer-worker'),
  topics,
  createTopics: false,
});
await client.connect();
process.stdout.write('ready\n');
let seq = 0;
const inFlight = new Set<Promise<void>>();
for (;;) {
  while (inFlight.size >= 4) await Promise.race(inFlight);
  const events = Array.from({ length: 50 }, () => ({ channel: process.env.CHANNEL!, id: `lib-${seq++}`, data: { seq } }));
  const p = client.publishBatch(events).then(
    (results) => void process.stdout.write(results.map((r) => `ack ${r.id} ${r.position}\n`).join('')),
    () => {},
  );
  inFlight.add(p);
  void p.finally(() => inFlight.delete(p));
  await new Promise((r) => setTimeout(r, 5));
}
