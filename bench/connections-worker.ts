/**
 * A process of idle clients for bench/connections.ts (IPC). Each client is a raw WebSocket
 * (bench/raw-ws.ts) subscribed to one broadcast channel that behaves as the SDK
 * (packages/client) does when nothing is published:
 *
 * - it answers the gateway's WebSocket pings with pongs (raw-ws.ts does, as browsers and `ws` do);
 * - it sends `{"op":"ping"}` once nothing has arrived for half the `heartbeat_s` of the gateway's
 *   `welcome` (the SDK's liveness check, client.ts startLiveness, checked once a second), and counts
 *   the client as lost past 1.5 heartbeats of silence (reported, not acted on);
 * - a 503 is retried after the wait it names (plus up to 10% jitter), a failed socket after a
 *   full-jitter backoff (base 500 ms, ceiling 15 s, handshake timeout 10 s: the SDK's defaults).
 *
 * Handshakes are started at most `parallel` at a time, so the gateway's accept queue (uWS: 512)
 * does not overflow into SYN retransmissions. Clients take their source address round-robin from
 * `sources` (127.0.0.x) when more ports are needed than one address pair has.
 */
import { RawWs } from './raw-ws.js';
import { emptyTotals, type ConnFromWorker, type ConnToWorker, type ConnTotals } from './connections-ipc.js';

if (!process.send) {
  console.error('connections-worker.ts is started by bench/connections.ts (IPC)');
  process.exit(2);
}
const send = (m: ConnFromWorker) => process.send!(m);

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15_000;
/** The SDK's default connectTimeoutMs. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Attempts per client before it gives up (bounded retries). */
const MAX_ATTEMPTS = 40;
/** The SDK's heartbeat before a `welcome` names one (client.ts DEFAULT_HEARTBEAT_MS). */
const DEFAULT_HEARTBEAT_MS = 30_000;

const now = () => performance.timeOrigin + performance.now();

class Client {
  ws: RawWs | null = null;
  subscribed = false;
  gaveUp = false;
  attempt = 0;
  lastFrameAt = 0;
  heartbeatMs = DEFAULT_HEARTBEAT_MS;
  /** Receipt time of the armed broadcast; 0 until it arrives. */
  gotAt = 0;
  constructor(
    readonly index: number,
    readonly localAddress: string,
  ) {}
}

const totals: ConnTotals = emptyTotals();
let clients: Client[] = [];
let url: URL | null = null;
let channel = '';
let parallel = 64;
let inFlight = 0;
const queue: Client[] = [];
let subscribedCount = 0;
let firstAt = 0;
let lastSubscribedAt: number | null = null;
let connectDone: (() => void) | null = null;

// Broadcast receipts since `arm`.
let armed = false;
let bReceived = 0;
let bFirst: number | null = null;
let bLast: number | null = null;
let bDone: (() => void) | null = null;

function settled(): void {
  if (connectDone && subscribedCount + totals.gaveUp >= clients.length) connectDone();
}

function pump(): void {
  while (inFlight < parallel && queue.length > 0) start(queue.shift()!);
}

function retryLater(c: Client, ms: number): void {
  inFlight--;
  if (c.attempt >= MAX_ATTEMPTS) {
    c.gaveUp = true;
    totals.gaveUp++;
    settled();
  } else {
    setTimeout(() => {
      queue.push(c);
      pump();
    }, ms);
  }
  pump();
}

function start(c: Client): void {
  inFlight++;
  c.attempt++;
  const ws: RawWs = new RawWs(
    url!,
    {
      open: () => ws.send(JSON.stringify({ op: 'subscribe', id: 1, channels: [channel] })),
      text: (p) => onText(c, p),
      ping: () => {
        totals.wsPings++;
      },
      close: (code) => {
        if (c.subscribed) {
          c.subscribed = false;
          subscribedCount--;
          totals.open--;
          totals.closes[code] = (totals.closes[code] ?? 0) + 1;
          return;
        }
        totals.netFailures[`closed ${code}`] = (totals.netFailures[`closed ${code}`] ?? 0) + 1;
        retryLater(c, backoff(c));
      },
      refused: (status, retryAfterMs, body) => {
        if (status === 503 && retryAfterMs !== null) {
          totals.refused503++;
          retryLater(c, retryAfterMs * (1 + Math.random() * 0.1));
        } else if (status === 0) {
          totals.netFailures[body] = (totals.netFailures[body] ?? 0) + 1;
          retryLater(c, backoff(c));
        } else {
          totals.refusedOther++;
          c.attempt = MAX_ATTEMPTS;
          retryLater(c, 0);
        }
      },
    },
    { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, ...(c.localAddress ? { localAddress: c.localAddress } : {}) },
  );
  c.ws = ws;
}

function backoff(c: Client): number {
  return Math.random() * Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(c.attempt, 10));
}

/** `{"t":"msg"...`: byte 2 is the t of the key, byte 6 the first letter of the type. */
function onText(c: Client, p: Buffer): void {
  c.lastFrameAt = Date.now();
  if (c.subscribed) {
    if (p[2] === 0x74 && p[6] === 0x6d) {
      if (armed && c.gotAt === 0) {
        const at = now();
        c.gotAt = at;
        bReceived++;
        if (bFirst === null) bFirst = at;
        bLast = at;
        if (bDone && bReceived >= subscribedCount) bDone();
      }
    } else if (p[2] === 0x74 && p[6] === 0x70) totals.pongs++;
    return;
  }
  const f = JSON.parse(p.toString()) as { t?: string; heartbeat_s?: number };
  if (f.t === 'welcome') {
    if (typeof f.heartbeat_s === 'number' && f.heartbeat_s > 0) c.heartbeatMs = f.heartbeat_s * 1000;
  } else if (f.t === 'subscribed') {
    c.subscribed = true;
    subscribedCount++;
    totals.open++;
    inFlight--;
    lastSubscribedAt = now();
    settled();
    pump();
  } else if (f.t === 'error') {
    totals.refusedOther++;
    c.ws?.destroy();
    c.attempt = MAX_ATTEMPTS;
    retryLater(c, 0);
  }
}

// The SDK's liveness check, for every client once a second.
const liveness = setInterval(() => {
  const t = Date.now();
  let silent = 0;
  for (const c of clients) {
    if (!c.subscribed || !c.ws) continue;
    const quiet = t - c.lastFrameAt;
    if (quiet > c.heartbeatMs * 1.5) silent++;
    else if (quiet > c.heartbeatMs / 2) {
      c.ws.send('{"op":"ping"}');
      totals.appPings++;
    }
  }
  totals.silent = silent;
}, 1000);

const progress = setInterval(() => send({ op: 'progress', subscribed: subscribedCount }), 1000);

async function handle(m: ConnToWorker): Promise<void> {
  switch (m.op) {
    case 'connect': {
      url = new URL(m.url);
      channel = m.channel;
      parallel = Math.max(1, m.parallel);
      clients = Array.from({ length: m.n }, (_, i) => new Client(i, m.sources.length > 0 ? m.sources[i % m.sources.length]! : ''));
      totals.clients = m.n;
      firstAt = now();
      queue.push(...clients);
      const done = new Promise<void>((r) => (connectDone = r));
      pump();
      settled();
      const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), m.timeoutMs))]);
      connectDone = null;
      if (timedOut) queue.length = 0;
      send({ op: 'connected', firstAt, lastAt: lastSubscribedAt, pending: clients.length - subscribedCount - totals.gaveUp, totals });
      return;
    }
    case 'totals':
      send({ op: 'totals', totals });
      return;
    case 'arm':
      for (const c of clients) c.gotAt = 0;
      bReceived = 0;
      bFirst = null;
      bLast = null;
      armed = true;
      send({ op: 'ok' });
      return;
    case 'await-broadcast': {
      if (bReceived < subscribedCount) {
        const done = new Promise<void>((r) => (bDone = r));
        await Promise.race([done, new Promise((r) => setTimeout(r, m.timeoutMs))]);
        bDone = null;
      }
      armed = false;
      send({ op: 'broadcast', received: bReceived, expected: subscribedCount, firstAt: bFirst, lastAt: bLast });
      return;
    }
    case 'close':
      clearInterval(liveness);
      clearInterval(progress);
      for (const c of clients) c.ws?.destroy();
      send({ op: 'ok' });
      setTimeout(() => process.exit(0), 50);
      return;
  }
}

// Requests are handled one at a time, in order.
let chain = Promise.resolve();
process.on('message', (m: ConnToWorker) => {
  chain = chain
    .then(() => handle(m))
    .catch((err: unknown) => {
      send({ op: 'error', message: err instanceof Error ? err.message : String(err) });
    });
});

// The parent going away ends the worker.
process.on('disconnect', () => process.exit(0));
