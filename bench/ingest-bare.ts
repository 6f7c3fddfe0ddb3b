/**
 * The reference of `npm run bench:ingest` (bench/ingest.ts): a bare kafkajs consumer of the
 * broadcast topic, in a process of its own. It is configured like the gateway's broadcast consumer
 * (services/gateway/src/kafka/broadcast-consumer.ts: the project's kafkajs client settings from
 * createKafka, a group of its own, the same session, heartbeat and fetch wait, no commits, one
 * partition at a time, eachBatch) and does nothing per record but count it, so the difference
 * between the two is the gateway's own work per record.
 *
 * It joins before any record is written and reads from the beginning of every partition (the topic
 * is empty when it joins, so nothing is skipped and nothing older is read). It reports its count
 * every 250 ms and answers `count` with the exact figure.
 */
import { randomBytes } from 'node:crypto';
import type { Consumer } from 'kafkajs';
import { pino } from 'pino';
import { createKafka } from '@fanout/kafka';
import type { BareFromWorker, BareToWorker } from './ingest-ipc.js';

if (!process.send) {
  console.error('ingest-bare.ts is started by bench/ingest.ts (IPC)');
  process.exit(2);
}

const send = (m: BareFromWorker) => process.send!(m);
let consumer: Consumer | null = null;
let records = 0;
let batches = 0;
let reported = -1;
const progress = setInterval(() => {
  if (records !== reported) {
    reported = records;
    send({ op: 'progress', records });
  }
}, 250);

async function start(brokers: string[], topic: string): Promise<number> {
  const logger = pino({ name: 'bare-consumer', level: 'warn' }, process.stderr);
  const kafka = createKafka({ brokers, clientId: 'fanout-bench-bare', logger });
  const c = kafka.consumer({
    groupId: `fanout-bench-bare-${randomBytes(4).toString('hex')}`,
    rebalanceTimeout: 10_000,
    sessionTimeout: 10_000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 250,
    allowAutoTopicCreation: false,
    retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 8 },
  });
  consumer = c;
  const joined = new Promise<number>((resolve) =>
    c.on(c.events.GROUP_JOIN, (e) => resolve(e.payload.memberAssignment[topic]?.length ?? 0)),
  );
  await c.connect();
  await c.subscribe({ topic, fromBeginning: true });
  await c.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 1,
    eachBatchAutoResolve: true,
    eachBatch: async ({ batch }) => {
      // Nothing per record but counting it.
      records += batch.messages.length;
      batches++;
    },
  });
  return joined;
}

let chain = Promise.resolve();
process.on('message', (m: BareToWorker) => {
  chain = chain
    .then(() => handle(m))
    .catch((err: unknown) => {
      send({ op: 'error', message: err instanceof Error ? err.message : String(err) });
    });
});

async function handle(m: BareToWorker): Promise<void> {
  switch (m.op) {
    case 'start': {
      const partitions = await Promise.race([
        start(m.brokers, m.topic),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no group join within 60 s')), 60_000).unref()),
      ]);
      send({ op: 'joined', partitions });
      return;
    }
    case 'count':
      send({ op: 'count', records, batches });
      return;
    case 'close':
      clearInterval(progress);
      await Promise.race([consumer?.disconnect(), new Promise((r) => setTimeout(r, 5000))]);
      send({ op: 'ok' });
      setTimeout(() => process.exit(0), 50);
      return;
  }
}

process.on('disconnect', () => process.exit(0));
