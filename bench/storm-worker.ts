/**
 * A process of reconnect-storm clients, started by bench/reconnect-storm.ts (IPC). Each client is a
 * raw WebSocket (bench/raw-ws.ts) on one broadcast channel that behaves as the SDK does: it keeps
 * its last position and resubscribes with it, reconnects with full-jitter backoff (base 500 ms,
 * ceiling 15 s, handshake timeout 10 s: the SDK's defaults), waits exactly as long as a `reconnect`
 * frame or a 503's Retry-After says (plus at most 10% jitter; such waits do not grow the backoff), and moves to the next gateway of its list when the
 * one it was on tells it to reconnect or goes away.
 *
 * It counts, per client, messages received once (offset past the last one) and duplicates, and
 * `reset` frames; it tells the parent when every client has a new connection since the last
 * `mark` and has reached its channel's target offset.
 */
import { RawWs } from './raw-ws.js';
import type { StormFromWorker, StormToWorker, WorkerTotals } from './storm-ipc.js';

if (!process.send) {
  console.error('storm-worker.ts is started by bench/reconnect-storm.ts (IPC)');
  process.exit(2);
}
const send = (m: StormFromWorker) => process.send!(m);

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15_000;
/** The SDK's default connectTimeoutMs. */
const CONNECT_TIMEOUT_MS = 10_000;
const POS_NEEDLE = Buffer.from('"pos":"');

class StormClient {
  ws: RawWs | null = null;
  lastPos: string | null = null;
  lastOffset = -1;
  unique = 0;
  dups = 0;
  resets = 0;
  /** Subscriptions answered (one per connection). */
  subscribed = 0;
  subscribedAt = 0;
  /** `subscribed` when the parent last marked a disruption. */
  markSubscribed = 0;
  /** When the client first had a new connection and its target, after the mark; 0 until then. */
  doneAt = 0;
  positionless = false;
  refusals = 0;
  /** What happened to this client since the mark (for the slowest client's story). */
  trail: string[] = [];
  note(what: string): void {
    if (this.trail.length < 60) this.trail.push(`${Date.now() % 100_000} ${what}`);
  }
  private attempt = 0;
  private urlIndex: number;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    readonly channel: string,
    private readonly urls: URL[],
    private readonly localAddress: string,
    first: number,
  ) {
    this.urlIndex = first % urls.length;
  }

  connect(): void {
    this.timer = null;
    if (this.stopped) return;
    this.note('connect');
    this.ws = new RawWs(
      this.urls[this.urlIndex]!,
      {
        open: () => {
          const positions = this.lastPos && !this.positionless ? { positions: { [this.channel]: this.lastPos } } : {};
          this.ws?.send(JSON.stringify({ op: 'subscribe', channels: [this.channel], ...positions }));
        },
        text: (p) => this.onText(p),
        connected: () => this.note('tcp up'),
        close: (code) => {
          this.note(`closed ${code}`);
          this.lost(null, true);
        },
        refused: (status, retryAfterMs, body) => {
          this.refusals++;
          this.note(`refused ${status} ${status === 0 ? body : ''} ra=${retryAfterMs}`);
          if (status === 0) netFailures.set(body, (netFailures.get(body) ?? 0) + 1);
          this.lost(status === 503 && retryAfterMs !== null ? Math.round(retryAfterMs * (1 + Math.random() * 0.1)) : null, false);
        },
      },
      { ...(this.localAddress ? { localAddress: this.localAddress } : {}), handshakeTimeoutMs: CONNECT_TIMEOUT_MS },
    );
  }

  /** Drops the connection and reconnects as after a network blip (floor scenario). */
  drop(positionless: boolean): void {
    this.positionless = positionless;
    this.ws?.destroy();
    this.ws = null;
    this.attempt = 0;
    this.schedule(null);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.ws?.destroy();
  }

  private onText(p: Buffer): void {
    // `{"t":"msg",...`: byte 6 is the m of msg.
    if (p[6] === 0x6d && p[2] === 0x74) {
      const at = p.indexOf(POS_NEEDLE);
      const end = p.indexOf(0x22, at + POS_NEEDLE.length);
      const pos = p.subarray(at + POS_NEEDLE.length, end).toString();
      const offset = Number(pos.slice(pos.lastIndexOf(':') + 1));
      if (offset <= this.lastOffset) this.dups++;
      else {
        this.unique++;
        this.lastOffset = offset;
        this.lastPos = pos;
      }
      return;
    }
    const f = JSON.parse(p.toString()) as { t: string; delay_ms?: number };
    if (f.t === 'subscribed') {
      this.note('subscribed');
      this.subscribed++;
      this.subscribedAt = Date.now();
      this.attempt = 0;
    } else if (f.t === 'reset') {
      this.resets++;
    } else if (f.t === 'reconnect') {
      // The gateway is going away: leave now, come back after its delay, on the next gateway.
      this.ws?.destroy();
      this.ws = null;
      this.lost(typeof f.delay_ms === 'number' ? f.delay_ms : null, true);
    }
  }

  /** Schedules the next attempt: the server's delay if it named one, else full-jitter backoff. */
  private lost(serverDelayMs: number | null, moveOn: boolean): void {
    this.ws = null;
    if (moveOn) this.urlIndex = (this.urlIndex + 1) % this.urls.length;
    this.schedule(serverDelayMs);
  }

  private schedule(serverDelayMs: number | null): void {
    if (this.stopped || this.timer) return;
    // A delay the server named does not grow the backoff: the server is up and said when.
    const delay = serverDelayMs ?? Math.random() * Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt++);
    this.note(`retry in ${Math.round(delay)} (attempt ${this.attempt})`);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}

let clients: StormClient[] = [];
/** Attempts that never got an HTTP answer, by why (refused, timed out...). */
const netFailures = new Map<string, number>();
let targets: Record<string, number> = {};

function totals(): WorkerTotals {
  const t: WorkerTotals = {
    clients: clients.length,
    unique: 0,
    dups: 0,
    resets: 0,
    refusals: 0,
    perChannelUnique: {},
    netFailures: Object.fromEntries(netFailures),
  };
  for (const c of clients) {
    t.unique += c.unique;
    t.dups += c.dups;
    t.resets += c.resets;
    t.refusals += c.refusals;
  }
  return t;
}

/** Resolves with the latest time a client met `cond` once all have, or null at the deadline. */
async function allOf(
  cond: (c: StormClient) => number,
  timeoutMs: number,
): Promise<{ lastAt: number | null; pending: number; times: number[] }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last = 0;
    let pending = 0;
    const times: number[] = [];
    for (const c of clients) {
      const at = cond(c);
      if (at === 0) pending++;
      else {
        times.push(at);
        if (at > last) last = at;
      }
    }
    if (pending === 0) return { lastAt: last, pending, times };
    if (Date.now() > deadline) return { lastAt: null, pending, times };
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Time the client had a new connection and everything up to its target; 0 if not yet. */
const resumedAt = (c: StormClient): number => {
  if (c.doneAt === 0 && c.subscribed > c.markSubscribed && c.lastOffset >= (targets[c.channel] ?? Infinity)) c.doneAt = Date.now();
  return c.doneAt;
};

async function handle(m: StormToWorker): Promise<void> {
  switch (m.op) {
    case 'connect': {
      const urls = m.urls.map((u) => new URL(u));
      clients = Array.from(
        { length: m.n },
        (_, k) => new StormClient(m.channels[(m.base + k) % m.channels.length]!, urls, m.localAddress, 0),
      );
      // Connections open spread over `spreadMs`, each honouring 503s like any reconnect.
      for (const c of clients) setTimeout(() => c.connect(), Math.random() * m.spreadMs);
      const r = await allOf((c) => (c.subscribed > 0 ? c.subscribedAt : 0), m.timeoutMs);
      send({ op: 'connected', lastAt: r.lastAt, pending: r.pending });
      return;
    }
    case 'mark':
      targets = {};
      netFailures.clear();
      for (const c of clients) {
        c.markSubscribed = c.subscribed;
        c.doneAt = 0;
        c.trail = [];
      }
      send({ op: 'ok' });
      return;
    case 'drop':
      for (const c of clients) c.drop(m.positionless);
      send({ op: 'ok' });
      return;
    case 'await-resumed': {
      targets = m.targets;
      const r = await allOf(resumedAt, m.timeoutMs);
      const slowest = clients.reduce((a, b) => (b.doneAt > a.doneAt ? b : a), clients[0]!);
      send({ op: 'resumed', lastAt: r.lastAt, pending: r.pending, totals: totals(), times: r.times, trail: slowest?.trail ?? [] });
      return;
    }
    case 'await-resubscribed': {
      const r = await allOf((c) => (c.subscribed > c.markSubscribed ? c.subscribedAt : 0), m.timeoutMs);
      send({ op: 'resumed', lastAt: r.lastAt, pending: r.pending, totals: totals(), times: r.times, trail: [] });
      return;
    }
    case 'final': {
      // Every client reaches the last acknowledged offset of its channel (or the deadline passes).
      targets = m.targets;
      const r = await allOf((c) => (c.lastOffset >= (targets[c.channel] ?? Infinity) ? 1 : 0), m.timeoutMs);
      const t = totals();
      for (const c of clients) t.perChannelUnique[c.channel] = (t.perChannelUnique[c.channel] ?? 0) + c.unique;
      send({ op: 'final', pending: r.pending, totals: t });
      return;
    }
    case 'close':
      for (const c of clients) c.stop();
      send({ op: 'ok' });
      setTimeout(() => process.exit(0), 50);
      return;
  }
}

let chain = Promise.resolve();
process.on('message', (m: StormToWorker) => {
  chain = chain
    .then(() => handle(m))
    .catch((err: unknown) => {
      send({ op: 'error', message: err instanceof Error ? err.message : String(err) });
    });
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
