/**
 * The webhook endpoints of bench/webhooks.ts, in their own process (so that their CPU is measured
 * apart from the dispatcher's and the publisher's): one real HTTP server per endpoint on loopback.
 * Each request is recorded (endpoint, webhook-id, arrival and answer times, status, which attempt
 * of that id it was, the event's publication time from the body), its Standard Webhooks signature
 * is verified with the official `standardwebhooks` library (every request by default), and it is
 * answered 200, or 500 when its endpoint is "flaky" in the current mode and a first attempt draws
 * a failure. Totals go to the parent every 100 ms; the rows on request (`dump`).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { ReceivedRows, ReceiverTotals, ReceiversFromWorker, ReceiversToWorker } from './webhooks-ipc.js';

if (!process.send) {
  console.error('webhooks-receivers.ts is started by bench/webhooks.ts (IPC)');
  process.exit(2);
}

const send = (m: ReceiversFromWorker) => process.send!(m);
const now = () => performance.timeOrigin + performance.now();

interface Endpoint {
  wh: Webhook;
  server: Server;
  /** webhook-id -> arrivals so far. */
  arrivals: Map<string, number>;
  /** webhook-ids answered 2xx. */
  ok: Set<string>;
}

const endpoints: Endpoint[] = [];
/** When each connection was accepted. */
const connectedAt = new WeakMap<object, number>();
let failFraction = 0;
let flaky = new Set<number>();
let verifyEvery = 1;
let seen = 0;
const totals: ReceiverTotals = { pairs2xx: 0, requests: 0, open: 0, lastAt: 0, sigOk: 0, sigFail: 0 };

function emptyRows(): ReceivedRows {
  return { ep: [], id: [], start: [], end: [], status: [], attempt: [], conn: [], pub: [] };
}
let rows = emptyRows();

const TS_FIELD = '"timestamp":"';
/** The publication time the dispatcher put in the body (`"timestamp":"<ISO 8601>"`). */
function publishedAt(body: string): number {
  const i = body.indexOf(TS_FIELD);
  if (i < 0) return NaN;
  const j = body.indexOf('"', i + TS_FIELD.length);
  return j < 0 ? NaN : Date.parse(body.slice(i + TS_FIELD.length, j));
}

function startServer(index: number, secret: string): Promise<number> {
  const ep: Endpoint = { wh: new Webhook(secret), server: null as unknown as Server, arrivals: new Map(), ok: new Set() };
  ep.server = createServer((req, res) => {
    const start = now();
    totals.open++;
    totals.requests++;
    totals.lastAt = start;
    let answered = false;
    const answeredNow = () => {
      if (answered) return false;
      answered = true;
      totals.open--;
      return true;
    };
    // A connection that goes away unanswered (the dispatcher was killed) is no longer open.
    res.once('close', answeredNow);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(req.headers['webhook-id'] ?? '');
      const attempt = (ep.arrivals.get(id) ?? 0) + 1;
      ep.arrivals.set(id, attempt);
      if (seen++ % verifyEvery === 0) {
        try {
          ep.wh.verify(body, req.headers as Record<string, string>);
          totals.sigOk++;
        } catch {
          totals.sigFail++;
        }
      }
      const fail = attempt === 1 && flaky.has(index) && Math.random() < failFraction;
      const status = fail ? 500 : 200;
      if (!fail && !ep.ok.has(id)) {
        ep.ok.add(id);
        totals.pairs2xx++;
      }
      const r = rows;
      const row = r.ep.length;
      r.ep.push(index);
      r.id.push(id);
      r.start.push(start);
      r.end.push(-1);
      r.status.push(status);
      r.attempt.push(attempt);
      r.conn.push(connectedAt.get(req.socket) ?? start);
      r.pub.push(publishedAt(body));
      res.once('finish', () => {
        // A dump in between starts new rows; the old ones were sent with end = -1.
        if (answeredNow() && rows === r) r.end[row] = now();
      });
      const text = fail ? 'failing on purpose' : 'ok';
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': String(text.length) }).end(text);
    });
  });
  ep.server.on('connection', (socket) => connectedAt.set(socket, now()));
  endpoints[index] = ep;
  return new Promise((resolve, reject) => {
    ep.server.once('error', reject);
    ep.server.listen(0, '127.0.0.1', 4096, () => resolve((ep.server.address() as AddressInfo).port));
  });
}

const progress = setInterval(() => send({ op: 'progress', totals: { ...totals } }), 100);

let chain = Promise.resolve();
process.on('message', (m: ReceiversToWorker) => {
  chain = chain
    .then(() => handle(m))
    .catch((err: unknown) => {
      send({ op: 'error', message: err instanceof Error ? err.message : String(err) });
    });
});

async function handle(m: ReceiversToWorker): Promise<void> {
  switch (m.op) {
    case 'start': {
      verifyEvery = Math.max(1, Math.floor(m.verifyEvery));
      const ports = await Promise.all(m.secrets.map((s, i) => startServer(i, s)));
      send({ op: 'started', ports });
      return;
    }
    case 'mode':
      failFraction = m.failFraction;
      flaky = new Set(m.flaky);
      send({ op: 'ok' });
      return;
    case 'dump': {
      const out = rows;
      rows = emptyRows();
      send({ op: 'dump', rows: out, totals: { ...totals } });
      return;
    }
    case 'close':
      clearInterval(progress);
      for (const ep of endpoints) {
        ep.server.closeAllConnections();
        ep.server.close();
      }
      send({ op: 'ok' });
      setTimeout(() => process.exit(0), 50);
      return;
  }
}

process.on('disconnect', () => process.exit(0));
