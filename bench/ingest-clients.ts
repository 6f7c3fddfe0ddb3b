/**
 * A process of subscribers for `npm run bench:ingest` (bench/ingest.ts): raw RFC 6455 clients
 * (bench/raw-ws.ts, the cheap load generator), connection i subscribed to its own list of
 * channels in `subscribe` frames of at most 100 channels (the protocol's limit per frame). `msg`
 * frames are recognised by their first bytes and counted; `gap` frames are parsed and the messages
 * they announce as lost are counted apart. Reports its count every 100 ms.
 */
import { RawWs } from './raw-ws.js';
import type { ClientsFromWorker, ClientsToWorker } from './ingest-ipc.js';

if (!process.send) {
  console.error('ingest-clients.ts is started by bench/ingest.ts (IPC)');
  process.exit(2);
}

/** Channels per subscribe frame (docs/protocol.md, limits). */
const PER_FRAME = 100;

const send = (m: ClientsFromWorker) => process.send!(m);
const sockets: RawWs[] = [];
let received = 0;
let gapped = 0;
const closes: Record<string, number> = {};
let reported = -1;
const progress = setInterval(() => {
  if (received !== reported) {
    reported = received;
    send({ op: 'progress', received });
  }
}, 100);

/** Opens one connection and subscribes it to `channels`; resolves once every frame was answered `subscribed`. */
function connectOne(url: URL, i: number, channels: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const frames = Math.ceil(channels.length / PER_FRAME);
    let answered = 0;
    let done = false;
    const timer = setTimeout(() => fail(new Error(`client ${i}: not subscribed within 30 s`)), 30_000);
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(err);
    };
    const open = () => {
      const ws: RawWs = new RawWs(url, {
        open: () => {
          for (let f = 0; f < frames; f++)
            ws.send(JSON.stringify({ op: 'subscribe', id: f + 1, channels: channels.slice(f * PER_FRAME, (f + 1) * PER_FRAME) }));
        },
        text: (payload) => {
          // `{"t":"msg",...`: bytes 2 (t) and 6 (m).
          if (payload[6] === 0x6d && payload[2] === 0x74) {
            received++;
            return;
          }
          const f = JSON.parse(payload.toString()) as { t?: string; count?: number };
          if (f.t === 'gap') gapped += f.count ?? 0;
          else if (f.t === 'subscribed' && ++answered === frames && !done) {
            done = true;
            clearTimeout(timer);
            resolve();
          } else if (f.t === 'error') fail(new Error(`client ${i}: ${payload.toString().slice(0, 200)}`));
        },
        close: (code) => {
          closes[code] = (closes[code] ?? 0) + 1;
          fail(new Error(`client ${i}: closed (${code}) before subscribing`));
        },
        refused: (status, retryAfterMs, body) => {
          if (status === 503 && retryAfterMs !== null && !done) setTimeout(open, retryAfterMs);
          else fail(new Error(`client ${i}: upgrade refused: ${status} ${body.slice(0, 80)}`));
        },
      });
      sockets.push(ws);
    };
    open();
  });
}

let chain = Promise.resolve();
process.on('message', (m: ClientsToWorker) => {
  chain = chain
    .then(() => handle(m))
    .catch((err: unknown) => {
      send({ op: 'error', message: err instanceof Error ? err.message : String(err) });
    });
});

async function handle(m: ClientsToWorker): Promise<void> {
  switch (m.op) {
    case 'connect': {
      const url = new URL(m.url);
      for (let base = 0; base < m.channels.length; base += m.parallel) {
        const batch: Promise<void>[] = [];
        for (let i = base; i < Math.min(m.channels.length, base + m.parallel); i++) batch.push(connectOne(url, i, m.channels[i]!));
        await Promise.all(batch);
      }
      send({ op: 'connected', connections: m.channels.length, subscriptions: m.channels.reduce((n, c) => n + c.length, 0) });
      return;
    }
    case 'count':
      send({ op: 'count', received, gapped, closes });
      return;
    case 'close':
      clearInterval(progress);
      for (const s of sockets) s.destroy();
      send({ op: 'ok' });
      setTimeout(() => process.exit(0), 50);
      return;
  }
}

process.on('disconnect', () => process.exit(0));
