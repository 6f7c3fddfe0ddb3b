/**
 * The fault suite's cluster and observers (`npm run test:faults`): a Kafka of its own (so that it
 * can be killed), the services as real processes (their main.ts, as `npm start` runs them), a TCP
 * proxy in front of the gateways standing in for a load balancer, and every kind of receiver the
 * product promises something to:
 *
 * - an SDK client (`FanoutClient` over WebSocket, resuming by position after a reconnect);
 * - an SSE reader that reconnects with Last-Event-ID;
 * - a long poller that carries its cursor from answer to answer;
 * - a webhook endpoint registered at the dispatcher;
 *
 * and a publisher load over HTTP that records what was acknowledged. `outcome()` compares: every
 * acknowledged event at every receiver (lost), positions seen twice (duplicates), and the time
 * from the fault until every receiver had an event published after it (recovery).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import { FanoutClient, type FanoutMessage } from '@fanout/client';
import { freePort, startLocalKafka, type LocalKafka } from '@fanout/kafka';
import { spawnService, stopChild, waitReady } from '../../bench/processes.js';
import { Receiver } from '../../services/dispatcher/test/receiver.js';
import { SseReader } from '../sse-reader.js';
import { startProxy, type TcpProxy } from '../tcp-proxy.js';

export const API_KEY = 'faults-api-key-0123';
export const TOKEN_SECRET = 'faults-token-secret-0123456789abcdef';
export const CHANNEL = 'faults:stream';

type Service = 'publisher' | 'gateway-a' | 'gateway-b' | 'router' | 'dispatcher';

interface Running {
  proc: ChildProcess;
  port: number;
  script: string;
  env: Record<string, string>;
}

const SCRIPTS: Record<Service, string> = {
  publisher: 'services/publisher/src/main.ts',
  'gateway-a': 'services/gateway/src/main.ts',
  'gateway-b': 'services/gateway/src/main.ts',
  router: 'services/router/src/main.ts',
  dispatcher: 'services/dispatcher/src/main.ts',
};

/** One acknowledged-or-not publish of the load. */
export interface Publish {
  seq: number;
  id: string;
  sentAt: number;
  status?: number;
  retryAfter?: string | null;
  ackAt?: number;
  position?: string;
}

/** What one receiver got: event ids with their positions, in arrival order. */
export interface Received {
  name: string;
  got: { id: string; position: string; at: number }[];
  /** Connections (or streams) opened: 1 means the receiver never had to reconnect. */
  connections?: number;
  /** Gaps and resets the receiver was told about. */
  gaps?: number;
}

export class FaultCluster {
  readonly services = new Map<Service, Running>();
  proxy!: TcpProxy;
  readonly run = randomBytes(3).toString('hex');
  private constructor(
    readonly kafka: LocalKafka,
    readonly kafkaProxy: TcpProxy | null,
  ) {}

  /**
   * `cutOff`: gateway-b reaches Kafka only through `kafkaProxy` (a second broker listener that
   * advertises the proxy's port), so that the test can cut that one gateway's network.
   */
  static async start(opts: { cutOff?: boolean } = {}): Promise<FaultCluster> {
    let kafkaProxy: TcpProxy | null = null;
    let proxiedListener: { port: number; advertisedPort: number } | undefined;
    if (opts.cutOff) {
      kafkaProxy = await startProxy(null);
      proxiedListener = { port: await freePort(), advertisedPort: kafkaProxy.port };
      kafkaProxy.route(proxiedListener.port);
    }
    // A SIGKILLed node is let back in once its old session expired: 3 s rather than Kafka's 9 s.
    const kafka = await startLocalKafka({
      heap: '384m',
      brokerSessionTimeoutMs: 3000,
      ...(proxiedListener ? { proxiedListener } : {}),
      log: (m) => console.log(`[kafka] ${m}`),
    });
    const c = new FaultCluster(kafka, kafkaProxy);
    await c.startService('publisher');
    await c.startService('gateway-a');
    await c.startService('gateway-b');
    await c.startService('router');
    await c.startService('dispatcher');
    c.proxy = await startProxy(c.port('gateway-a'));
    return c;
  }

  /** Environment every service shares: this run's topics and groups, the test broker. */
  private common(): Record<string, string> {
    return {
      ...this.kafka.clientEnv,
      FANOUT_BROKERS: this.kafka.brokers.join(','),
      // Quiet: a killed broker makes every kafkajs client log its reconnects at error level.
      FANOUT_LOG_LEVEL: process.env.FANOUT_FAULTS_LOG_LEVEL ?? 'fatal',
      FANOUT_TOPIC_BROADCAST: `faults.${this.run}.broadcast`,
      FANOUT_TOPIC_USERS: `faults.${this.run}.users`,
      FANOUT_BROADCAST_PARTITIONS: '3',
      FANOUT_USER_PARTITIONS: '3',
      FANOUT_API_KEYS: API_KEY,
      FANOUT_TOKEN_SECRET: TOKEN_SECRET,
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
    };
  }

  private envFor(name: Service): Record<string, string> {
    const base = this.common();
    switch (name) {
      case 'publisher':
        // A publish waits 3 s for Kafka, then 503 with Retry-After (the broker fault keeps Kafka away for 10 s).
        return { ...base, FANOUT_PUBLISH_TIMEOUT_MS: '3000' };
      case 'gateway-a':
      case 'gateway-b':
        return {
          ...base,
          ...(name === 'gateway-b' && this.kafkaProxy ? { FANOUT_BROKERS: `127.0.0.1:${this.kafkaProxy.port}`, KAFKA_BROKERS: '' } : {}),
          FANOUT_LAG_PROBE_MS: '1000',
          FANOUT_REGION: 'eu',
          FANOUT_NODE: name,
          FANOUT_USER_GROUP_ID: `faults.${this.run}.gw-eu`,
          FANOUT_SERVE_PAGE: 'false',
          FANOUT_DRAIN_DELAY_MS: '300',
          FANOUT_DRAIN_JITTER_MS: '300',
        };
      case 'router':
        return { ...base, FANOUT_REGIONS: 'eu', FANOUT_GROUP_ID_TEMPLATE: `faults.${this.run}.gw-{region}` };
      case 'dispatcher':
        return {
          ...base,
          FANOUT_GROUP_ID: `faults.${this.run}.dispatcher`,
          FANOUT_TOPIC_ENDPOINTS: `faults.${this.run}.endpoints`,
          FANOUT_TOPIC_RETRY_PREFIX: `faults.${this.run}.retry`,
          FANOUT_TOPIC_DEAD_LETTERS: `faults.${this.run}.dead`,
          FANOUT_ALLOWED_TARGETS: '127.0.0.0/8',
          FANOUT_RETRY_SCHEDULE: '200ms,500ms,1s,2s,5s',
          FANOUT_COMMIT_INTERVAL_MS: '100',
          FANOUT_START_FROM: 'earliest',
        };
    }
  }

  async startService(name: Service): Promise<void> {
    const prev = this.services.get(name);
    const port = prev?.port ?? (await freePort());
    const env = { ...this.envFor(name), FANOUT_PORT: String(port) };
    const proc = spawnService(name, SCRIPTS[name], env);
    this.services.set(name, { proc, port, script: SCRIPTS[name], env });
    await waitReady(proc, `http://127.0.0.1:${port}/readyz`, 90_000);
  }

  /** SIGKILL (a crash) or SIGTERM (a graceful stop: drain), resolving once the process is gone. */
  async stopService(name: Service, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const s = this.services.get(name)!;
    if (signal === 'SIGKILL') {
      s.proc.kill('SIGKILL');
      await new Promise<void>((r) => (s.proc.exitCode !== null || s.proc.signalCode !== null ? r() : s.proc.once('exit', () => r())));
    } else {
      await stopChild(s.proc, 30_000);
    }
  }

  port(name: Service): number {
    return this.services.get(name)!.port;
  }

  url(name: Service): string {
    return `http://127.0.0.1:${this.port(name)}`;
  }

  async stop(): Promise<void> {
    await this.proxy?.close();
    await this.kafkaProxy?.close();
    await Promise.all([...this.services.values()].map((s) => stopChild(s.proc, 5000)));
    await this.kafka.stop();
  }
}

/** Publishes R events/s to CHANNEL over HTTP, each request on its own; never retries. */
export class Load {
  readonly publishes: Publish[] = [];
  private stopped = false;
  private readonly inFlight = new Set<Promise<void>>();
  private loop: Promise<void> | null = null;

  constructor(
    private readonly publisherUrl: string,
    private readonly rate: number,
    private readonly prefix: string,
  ) {}

  start(): this {
    const started = Date.now();
    this.loop = (async () => {
      let seq = 0;
      while (!this.stopped) {
        const due = started + (seq * 1000) / this.rate;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
        const p: Publish = { seq, id: `${this.prefix}-${seq}`, sentAt: Date.now() };
        seq++;
        this.publishes.push(p);
        const req = fetch(`${this.publisherUrl}/v1/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel: CHANNEL, id: p.id, data: { seq: p.seq } }),
          signal: AbortSignal.timeout(30_000),
        }).then(
          async (res) => {
            p.status = res.status;
            p.retryAfter = res.headers.get('retry-after');
            const body = (await res.json().catch(() => ({}))) as { position?: string };
            if (res.status === 200) {
              p.ackAt = Date.now();
              p.position = body.position;
            }
          },
          () => void (p.status = 0),
        );
        this.inFlight.add(req);
        void req.finally(() => this.inFlight.delete(req));
      }
    })();
    return this;
  }

  /** One batch request of `n` events; each is recorded like the steady load's. */
  async burst(n: number): Promise<void> {
    const sentAt = Date.now();
    const batch: Publish[] = Array.from({ length: n }, (_, i) => ({ seq: -1 - i, id: `${this.prefix}-burst-${i}`, sentAt }));
    this.publishes.push(...batch);
    const res = await fetch(`${this.publisherUrl}/v1/publish/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events: batch.map((p) => ({ channel: CHANNEL, id: p.id, data: { burst: p.seq } })) }),
    }).catch(() => null);
    const body = res && res.status === 200 ? ((await res.json()) as { results: { id: string; position: string }[] }) : null;
    for (const p of batch) {
      p.status = res?.status ?? 0;
      const r = body?.results.find((x) => x.id === p.id);
      if (r) {
        p.ackAt = Date.now();
        p.position = r.position;
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
  }

  acked(): Publish[] {
    return this.publishes.filter((p) => p.ackAt !== undefined);
  }
}

/** An SDK client (WebSocket; resumes by position) through the proxy. */
export function sdkReceiver(baseUrl: string): { received: Received; close(): void } {
  const received: Received = { name: 'sdk (websocket)', got: [] };
  const client = new FanoutClient({
    url: baseUrl,
    WebSocket: WebSocket as never,
    transports: ['websocket'],
    credits: 'auto',
    backoff: { baseMs: 200, maxMs: 1000 },
    channels: [CHANNEL],
  });
  client.on('message', (m: FanoutMessage) => received.got.push({ id: m.id, position: m.position, at: Date.now() }));
  client.on('welcome', () => (received.connections = (received.connections ?? 0) + 1));
  client.on('gap', () => (received.gaps = (received.gaps ?? 0) + 1));
  client.on('reset', () => (received.gaps = (received.gaps ?? 0) + 1));
  client.on('error', () => {});
  client.connect();
  return { received, close: () => client.close() };
}

/** An SSE reader through the proxy that reconnects with Last-Event-ID whenever its stream ends. */
export function sseReceiver(baseUrl: string): { received: Received; close(): void } {
  const received: Received = { name: 'sse', got: [] };
  let closed = false;
  let reader: SseReader | null = null;
  void (async () => {
    let last: string | undefined;
    while (!closed) {
      try {
        reader = await SseReader.open(`${baseUrl}/v1/sse?channels=${encodeURIComponent(CHANNEL)}`, last ? { 'last-event-id': last } : {});
        if (reader.status === 200) received.connections = (received.connections ?? 0) + 1;
        let seen = 0;
        while (!closed && !reader.ended) {
          for (; seen < reader.events.length; seen++) {
            const e = reader.events[seen]!;
            const f = JSON.parse(e.data) as { t: string; id?: string; pos?: string };
            if (f.t === 'reset' || f.t === 'gap') received.gaps = (received.gaps ?? 0) + 1;
            if (f.t === 'msg' && f.id && f.pos) {
              received.got.push({ id: f.id, position: f.pos, at: Date.now() });
              last = f.pos;
            }
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      } catch {
        /* the gateway is gone: try again */
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    received,
    close: () => {
      closed = true;
      reader?.close();
    },
  };
}

/** A long poller through the proxy, carrying its cursor from answer to answer. */
export function pollReceiver(baseUrl: string): { received: Received; close(): void } {
  const received: Received = { name: 'long poll', got: [] };
  let closed = false;
  const abort = new AbortController();
  void (async () => {
    let cursor: string | undefined;
    // The first answer (timeout=0) gives the cursor to start from, with nothing replayed.
    while (!closed) {
      try {
        const q = new URLSearchParams({ channel: CHANNEL, timeout: cursor === undefined ? '0' : '5', limit: '1000' });
        if (cursor) q.set('cursor', cursor);
        const res = await fetch(`${baseUrl}/v1/poll?${q}`, { signal: abort.signal });
        if (res.status !== 200) throw new Error(String(res.status));
        const body = (await res.json()) as { messages: { id: string; pos: string }[]; cursor: string };
        for (const m of body.messages) received.got.push({ id: m.id, position: m.pos, at: Date.now() });
        cursor = body.cursor;
      } catch {
        if (!closed) await new Promise((r) => setTimeout(r, 200));
      }
    }
  })();
  return {
    received,
    close: () => {
      closed = true;
      abort.abort();
    },
  };
}

/** A webhook endpoint registered at the dispatcher for CHANNEL. */
export async function webhookReceiver(dispatcherUrl: string): Promise<{ received: Received; receiver: Receiver; close(): Promise<void> }> {
  const receiver = await Receiver.start(() => ({ status: 204 }));
  const res = await fetch(`${dispatcherUrl}/v1/endpoints`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url: receiver.url, channels: [CHANNEL] }),
  });
  if (res.status !== 201) throw new Error(`endpoint not created: ${res.status} ${await res.text()}`);
  const received: Received = {
    name: 'webhook',
    get got() {
      return receiver.requests
        .filter((r) => r.status >= 200 && r.status < 300)
        .map((r) => ({
          id: r.id,
          position: (JSON.parse(r.body) as { position?: string }).position ?? r.id,
          at: r.at + performance.timeOrigin,
        }));
    },
  };
  return { received, receiver, close: () => receiver.close() };
}

export interface FaultOutcome {
  fault: string;
  published: number;
  acked: number;
  refused: number;
  /** Per receiver: acknowledged events never received. */
  lost: Record<string, number>;
  /** Per receiver: positions received more than once. */
  duplicated: Record<string, number>;
  /** Per receiver: positions received out of partition order. */
  outOfOrder: Record<string, number>;
  /** From the fault until every receiver had an event published after it, in ms (null: nothing was published after it). */
  recoverMs: number | null;
}

export function outcome(fault: string, load: Load, receivers: Received[], faultAt: number): FaultOutcome {
  const acked = load.acked();
  const o: FaultOutcome = {
    fault,
    published: load.publishes.length,
    acked: acked.length,
    refused: load.publishes.filter((p) => p.status !== undefined && p.status !== 200).length,
    lost: {},
    duplicated: {},
    outOfOrder: {},
    recoverMs: null,
  };
  const sentAfter = new Set(load.publishes.filter((p) => p.sentAt >= faultAt).map((p) => p.id));
  for (const r of receivers) {
    const got = r.got;
    const ids = new Set(got.map((g) => g.id));
    o.lost[r.name] = acked.filter((p) => !ids.has(p.id)).length;
    const seen = new Set<string>();
    let dup = 0;
    for (const g of got) {
      if (seen.has(g.position)) dup++;
      seen.add(g.position);
    }
    o.duplicated[r.name] = dup;
    const lastByPartition = new Map<string, number>();
    let ooo = 0;
    for (const g of got) {
      const [, partition, offset] = g.position.split(':');
      if (offset === undefined) continue;
      const prev = lastByPartition.get(partition!) ?? -1;
      if (Number(offset) < prev) ooo++;
      lastByPartition.set(partition!, Math.max(prev, Number(offset)));
    }
    o.outOfOrder[r.name] = ooo;
    const first = got.find((g) => sentAfter.has(g.id));
    if (sentAfter.size > 0) o.recoverMs = Math.max(o.recoverMs ?? 0, first ? Math.round(first.at - faultAt) : Number.POSITIVE_INFINITY);
  }
  if (sentAfter.size === 0) o.recoverMs = null;
  return o;
}

/** Waits until every receiver has every acknowledged event (or the time is up). */
export async function settle(load: Load, receivers: Received[], timeoutMs = 60_000): Promise<void> {
  const want = load.acked().map((p) => p.id);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (
      receivers.every((r) => {
        const ids = new Set(r.got.map((g) => g.id));
        return want.every((id) => ids.has(id));
      })
    )
      return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Waits until every receiver has received at least one event (the load reaches them all). */
export async function flowing(receivers: Received[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (receivers.every((r) => r.got.length > 0)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not every receiver got an event: ${receivers.map((r) => `${r.name}=${r.got.length}`).join(', ')}`);
}

/** A row for docs/reliability.md, printed by each fault test. */
export function printRow(o: FaultOutcome): void {
  const sum = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
  console.log(
    `[fault] ${o.fault}: published ${o.published}, acknowledged ${o.acked}, refused ${o.refused}; lost ${sum(o.lost)} ${JSON.stringify(o.lost)}; duplicated ${sum(o.duplicated)} ${JSON.stringify(o.duplicated)}; out of order ${sum(o.outOfOrder)}; recovered in ${o.recoverMs === null ? 'n/a' : `${o.recoverMs} ms`}`,
  );
  console.log(`[fault-json] ${JSON.stringify(o)}`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A test file's cluster: started before its tests, stopped after them. */
export function useFaultCluster(opts: { cutOff?: boolean } = {}, then?: (c: FaultCluster) => void): () => FaultCluster {
  let cluster: FaultCluster | undefined;
  beforeAll(async () => {
    cluster = await FaultCluster.start(opts);
    then?.(cluster);
  });
  afterAll(async () => {
    await cluster?.stop();
  });
  return () => cluster!;
}

/** The SDK client, the SSE reader and the long poller on `base` (and, with a dispatcher URL, the webhook endpoint). */
export async function openReceivers(
  base: string,
  dispatcherUrl?: string,
): Promise<{ all: Received[]; hook: Awaited<ReturnType<typeof webhookReceiver>> | null; close(): Promise<void> }> {
  const sdk = sdkReceiver(base);
  const sse = sseReceiver(base);
  const poll = pollReceiver(base);
  const hook = dispatcherUrl ? await webhookReceiver(dispatcherUrl) : null;
  // Let them connect and subscribe before the load starts.
  await sleep(1000);
  return {
    all: [sdk.received, sse.received, poll.received, ...(hook ? [hook.received] : [])],
    hook,
    close: async () => {
      sdk.close();
      sse.close();
      poll.close();
      await hook?.close();
    },
  };
}

/**
 * The promises, checked on a fault's outcome: no acknowledged event lost anywhere, nothing out
 * of order, no position twice at a socket or poll receiver (webhooks are at least once: repeats
 * are counted in the row, and checked by the test where it bounds them).
 */
export function expectPromisesKept(o: FaultOutcome): void {
  const zeros = (m: Record<string, number>) => Object.fromEntries(Object.keys(m).map((k) => [k, 0]));
  expect(o.lost, 'acknowledged events lost').toEqual(zeros(o.lost));
  expect(o.outOfOrder, 'out of order').toEqual(zeros(o.outOfOrder));
  const sockets = Object.fromEntries(Object.entries(o.duplicated).filter(([k]) => k !== 'webhook'));
  expect(sockets, 'positions delivered twice').toEqual(zeros(sockets));
}
