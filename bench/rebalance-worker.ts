/**
 * A process of rebalance-benchmark clients, forked by bench/rebalance.ts (IPC; see
 * bench/rebalance-ipc.ts for the messages). It runs one `FanoutClient` (@fanout/client, with its
 * own router lookups, backoff and resume) per user it is given, each subscribed to `user:<id>` with
 * a connect token whose `sub` is the user, and records per client:
 *
 * - how many times each sequence number arrived (the data of every event is `{"s":<seq>}`, and
 *   `{"s":<seq>,"end":1}` for the final sentinel), after the SDK's own de-duplication;
 * - every disruption: from the first `reconnect` frame or lost connection to the next `subscribed`,
 *   with the gateway instance before and after (the SDK's `welcome` names the node; the parent tells
 *   which instance of a node is running, since a replacement reuses its node name).
 */
import WebSocket from 'ws';
import { FanoutClient } from '@fanout/client';
import { signConnectToken } from '@fanout/auth';
import {
  emptyCounters,
  type Disruption,
  type FromWorker,
  type Progress,
  type ToWorker,
  type UserResult,
  type WorkerCounters,
} from './rebalance-ipc.js';

if (!process.send) {
  console.error('rebalance-worker.ts is started by bench/rebalance.ts (IPC)');
  process.exit(2);
}

const send = (m: FromWorker) => {
  if (process.connected) process.send!(m);
};

/** Disruption trails keep their first TRAIL_HEAD and last TRAIL_TAIL entries (a retry loop can make hundreds). */
const TRAIL_HEAD = 10;
const TRAIL_TAIL = 14;

interface Tracked {
  user: string;
  client: FanoutClient;
  counts: number[];
  sentinel: number;
  maxSeq: number;
  outOfOrder: number;
  received: number;
  /** Instance (`node#instance`) of the connection's last welcome. */
  instance: string | null;
  transport: string | null;
  /** Instance the client was last subscribed on. */
  subscribedOn: string | null;
  subscribed: boolean;
  started: boolean;
  stopped: boolean;
  disruption: Disruption | null;
  firstSubscribed: Promise<void>;
}

const instances = new Map<string, string>();
const tracked: Tracked[] = [];
const finished: Disruption[] = [];
const counters: WorkerCounters = emptyCounters();
const bump = (rec: Record<string, number>, key: string) => {
  rec[key] = (rec[key] ?? 0) + 1;
};

function begin(t: Tracked, cause: string): void {
  if (t.disruption || !t.started) return;
  t.disruption = { user: t.user, start: Date.now(), end: null, cause, from: t.subscribedOn, to: null, attempts: 0, trail: [] };
}

/** The last entries of each open disruption's trail, beyond its head. */
const tails = new WeakMap<Disruption, { entries: string[]; dropped: number }>();

function note(t: Tracked, what: string): void {
  const d = t.disruption;
  if (!d) return;
  const entry = `+${Date.now() - d.start}ms ${what}`;
  if (d.trail.length < TRAIL_HEAD) {
    d.trail.push(entry);
    return;
  }
  let tail = tails.get(d);
  if (!tail) tails.set(d, (tail = { entries: [], dropped: 0 }));
  tail.entries.push(entry);
  if (tail.entries.length > TRAIL_TAIL) {
    tail.entries.shift();
    tail.dropped++;
  }
}

/** The disruption with its whole kept trail: head, how many were left out, tail. */
function closed(d: Disruption): Disruption {
  const tail = tails.get(d);
  return tail ? { ...d, trail: [...d.trail, ...(tail.dropped > 0 ? [`(${tail.dropped} more)`] : []), ...tail.entries] } : d;
}

function track(user: string, client: FanoutClient): Tracked {
  let firstResolve!: () => void;
  const t: Tracked = {
    user,
    client,
    counts: [],
    sentinel: -1,
    maxSeq: -1,
    outOfOrder: 0,
    received: 0,
    instance: null,
    transport: null,
    subscribedOn: null,
    subscribed: false,
    started: false,
    stopped: false,
    disruption: null,
    firstSubscribed: new Promise<void>((r) => (firstResolve = r)),
  };
  client.on('welcome', (w) => {
    t.instance = `${w.node}#${instances.get(w.node) ?? '?'}`;
    t.transport = w.transport;
    bump(counters.welcomes, w.transport);
    note(t, `welcome ${t.instance} (${w.transport})`);
  });
  client.on('subscribed', () => {
    const d = t.disruption;
    if (d) {
      d.end = Date.now();
      d.to = t.instance;
      finished.push(closed(d));
      t.disruption = null;
    }
    t.subscribed = true;
    t.subscribedOn = t.instance;
    if (!t.started) {
      t.started = true;
      firstResolve();
    }
  });
  client.on('reconnect', (r) => {
    bump(counters.reconnects, r.reason);
    begin(t, `reconnect:${r.reason}`);
    note(t, `reconnect frame ${r.reason} delay ${r.delayMs}ms`);
  });
  client.on('disconnect', (d) => {
    bump(counters.closeCodes, String(d.code));
    t.subscribed = false;
    begin(t, `close:${d.code}`);
    note(t, `${d.opened ? 'closed' : 'failed to open'} ${d.transport} ${d.code}${d.reason ? ` ${d.reason.slice(0, 60)}` : ''}`);
    if (!d.willReconnect) {
      t.stopped = true;
      counters.stopped++;
    }
  });
  client.on('attempt', (a) => {
    counters.attempts++;
    if (t.disruption) t.disruption.attempts++;
    note(t, `attempt ${a.attempt} ${a.transport} ${/^\w+:\/\/[^/]+/.exec(a.url)?.[0] ?? a.url}`);
  });
  client.on('error', (e) => {
    bump(counters.errors, e.fatal ? `fatal:${e.code}` : e.code);
    note(t, `error ${e.code}${e.code === 'router_unavailable' ? ` (${e.message.slice(0, 80)})` : ''}`);
  });
  client.on('state', (s) => {
    if (s.state === 'reconnecting' && s.delayMs !== undefined) {
      note(
        t,
        `retry in ${s.delayMs}ms (backoff attempt ${s.attempt}${s.retryAfterMs !== undefined ? `, server asked ${s.retryAfterMs}ms` : ''})`,
      );
    }
  });
  client.on('reset', (e) => bump(counters.resets, e.reason));
  client.on('gap', () => counters.gaps++);
  client.on('message', (m) => {
    const data = m.data as { s?: unknown; end?: unknown } | null;
    const seq = typeof data?.s === 'number' && Number.isInteger(data.s) && data.s >= 0 ? data.s : -1;
    if (seq < 0) return;
    t.received++;
    while (t.counts.length <= seq) t.counts.push(0);
    t.counts[seq]!++;
    if (seq < t.maxSeq) t.outOfOrder++;
    else t.maxSeq = seq;
    if (data!.end === 1) t.sentinel = seq;
  });
  return t;
}

function progress(): Progress {
  const p: Progress = { clients: tracked.length, started: 0, subscribed: 0, disrupted: 0, withMessage: 0, received: 0, sentinels: 0 };
  for (const t of tracked) {
    if (t.started) p.started++;
    if (t.subscribed && !t.disruption) p.subscribed++;
    if (t.disruption) p.disrupted++;
    if (t.received > 0) p.withMessage++;
    p.received += t.received;
    if (t.sentinel >= 0) p.sentinels++;
  }
  return p;
}

const ticker = setInterval(() => send({ op: 'progress', progress: progress() }), 250);

async function start(m: Extract<ToWorker, { op: 'start' }>): Promise<void> {
  const t0 = Date.now();
  for (const [node, instance] of Object.entries(m.instances)) instances.set(node, instance);
  const tokens = await Promise.all(m.users.map((u) => signConnectToken(m.tokenSecret, { sub: u, channels: [`user:${u}`], ttlS: 3600 })));
  let next = 0;
  // At most `parallel` clients still waiting for their first subscription: a bounded ramp, not a storm.
  const lane = async () => {
    while (next < m.users.length && Date.now() < m.deadline) {
      const i = next++;
      const user = m.users[i]!;
      const client = new FanoutClient({
        routerUrl: m.routerUrl,
        region: m.region,
        token: tokens[i]!,
        WebSocket,
        channels: [`user:${user}`],
      });
      const t = track(user, client);
      tracked.push(t);
      client.connect();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([t.firstSubscribed, new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, m.deadline - Date.now()))))]);
      clearTimeout(timer);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, m.parallel) }, lane));
  // Clients created last may still be on their way; give them until the deadline.
  while (tracked.some((t) => !t.started) && Date.now() < m.deadline) await new Promise((r) => setTimeout(r, 50));
  send({ op: 'started', started: tracked.filter((t) => t.started).length, ms: Date.now() - t0 });
}

function results(): Extract<FromWorker, { op: 'results' }> {
  const users: UserResult[] = tracked.map((t) => ({ user: t.user, counts: t.counts, sentinel: t.sentinel, outOfOrder: t.outOfOrder }));
  const open = tracked.filter((t) => t.disruption).map((t) => closed(t.disruption!));
  counters.sdkDuplicates = tracked.reduce((n, t) => n + t.client.stats.duplicates, 0);
  counters.finalTransports = {};
  for (const t of tracked) bump(counters.finalTransports, t.transport ?? 'none');
  return { op: 'results', users, disruptions: [...finished, ...open], counters };
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.op) {
    case 'start':
      await start(m);
      return;
    case 'instance':
      instances.set(m.node, m.instance);
      send({ op: 'ok' });
      return;
    case 'results':
      send(results());
      return;
    case 'close':
      clearInterval(ticker);
      for (const t of tracked) t.client.close();
      send({ op: 'ok' });
      setTimeout(() => process.exit(0), 200);
      return;
  }
}

// Requests are handled one at a time, in order.
let chain = Promise.resolve();
process.on('message', (m: ToWorker) => {
  chain = chain
    .then(() => handle(m))
    .catch((err: unknown) => send({ op: 'error', message: err instanceof Error ? err.message : String(err) }));
});

// The parent going away ends the worker (and its sockets).
process.on('disconnect', () => process.exit(0));
