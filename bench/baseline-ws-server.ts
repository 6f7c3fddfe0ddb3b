/**
 * The fan-out benchmark's baseline: the naive way to do what the gateway does, run as its own
 * process so that bench/fanout.ts can measure its CPU the same way.
 *
 * - A plain `ws` server (no compression) on BASELINE_PORT, path /v1/ws. It speaks just enough of
 *   the gateway's protocol for the benchmark's clients: a welcome frame on open, `subscribed` in
 *   answer to a subscribe frame (the socket joins the set of subscribers whatever the channels).
 * - A kafkajs consumer of BASELINE_TOPIC in a group of its own, positioned at the end offsets taken
 *   when it starts (like the gateway's broadcast consumer), never committing.
 * - For every record: encode the same envelope the gateway sends (once per message), then loop over
 *   the subscribed sockets and call `ws.send` once per message per socket. No batching, no corking.
 * - GET /readyz answers 200 once the consumer has joined and seeked.
 *
 * Env: BASELINE_BROKERS (host:port,...), BASELINE_TOPIC, BASELINE_PORT (0 = any; the port is
 * printed as `listening <port>` on stdout).
 */
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { WebSocketServer, type WebSocket } from 'ws';
import { encodeEnvelope, formatPosition } from '@fanout/protocol';
import { fromRecord, kafkajsSecurity } from '@fanout/kafka';

const brokers = (process.env.BASELINE_BROKERS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const topic = process.env.BASELINE_TOPIC ?? '';
const port = Number(process.env.BASELINE_PORT ?? 0);
if (brokers.length === 0 || !topic) {
  console.error('baseline-ws-server: set BASELINE_BROKERS and BASELINE_TOPIC');
  process.exit(2);
}

let ready = false;
const subscribers = new Set<WebSocket>();
const stats = { consumed: 0, sends: 0 };
// Text frames, like the gateway's; the options object is shared so the loop allocates nothing.
const SEND_OPTS = { binary: false } as const;

const http = createServer((req, res) => {
  if (req.url === '/readyz') {
    res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ready }));
  } else if (req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ...stats, connections: subscribers.size }));
  } else {
    res.writeHead(404);
    res.end();
  }
});
const wss = new WebSocketServer({ server: http, path: '/v1/ws', perMessageDeflate: false, maxPayload: 64 * 1024 });
wss.on('connection', (ws) => {
  ws.send(JSON.stringify({ t: 'welcome', node: 'baseline', region: 'bench', heartbeat_s: 0, max_frame_bytes: 4096 }));
  ws.on('message', (data) => {
    let f: { op?: string; id?: unknown; channels?: unknown };
    try {
      f = JSON.parse(data.toString()) as typeof f;
    } catch {
      return;
    }
    if (f && f.op === 'subscribe') {
      subscribers.add(ws);
      ws.send(JSON.stringify({ t: 'subscribed', ...(f.id !== undefined ? { id: f.id } : {}), channels: f.channels }));
    }
  });
  ws.on('close', () => subscribers.delete(ws));
  ws.on('error', () => subscribers.delete(ws));
});

const kafka = new Kafka({
  brokers,
  clientId: 'fanout-bench-baseline',
  logLevel: logLevel.WARN,
  retry: { initialRetryTime: 100, retries: 8 },
  ...kafkajsSecurity(),
});
const consumer = kafka.consumer({
  groupId: `fanout-bench-baseline-${randomBytes(4).toString('hex')}`,
  // The send loop blocks the event loop for seconds under a burst (that is what is measured); a
  // long session timeout keeps the group from evicting the consumer meanwhile.
  rebalanceTimeout: 60_000,
  sessionTimeout: 60_000,
  heartbeatInterval: 1000,
  maxWaitTimeInMs: 250,
  allowAutoTopicCreation: false,
});

async function main(): Promise<void> {
  await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve));
  const addr = http.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;

  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();

  let joined!: () => void;
  const joinedP = new Promise<void>((r) => (joined = r));
  consumer.on(consumer.events.GROUP_JOIN, () => joined());
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: false });
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 1,
    eachBatchAutoResolve: true,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const e = fromRecord(m, batch.partition, false);
        if (e === null) continue;
        stats.consumed++;
        const frame = Buffer.from(
          encodeEnvelope({
            channel: e.channel,
            eventId: e.id,
            position: formatPosition({ epoch: '1', partition: batch.partition, offset: Number(m.offset) }),
            publishedAt: e.publishedAt,
            dataJson: e.dataJson,
          }),
        );
        for (const ws of subscribers) {
          ws.send(frame, SEND_OPTS);
          stats.sends++;
        }
      }
    },
  });
  for (const e of ends) consumer.seek({ topic, partition: e.partition, offset: e.high });
  await joinedP;
  ready = true;
  console.log(`listening ${actual}`);
}

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 5000).unref();
  for (const ws of subscribers) ws.terminate();
  wss.close();
  http.close();
  await consumer.disconnect().catch(() => {});
  process.exit(0);
}
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());

main().catch((err) => {
  console.error('baseline-ws-server failed:', err);
  process.exit(1);
});
