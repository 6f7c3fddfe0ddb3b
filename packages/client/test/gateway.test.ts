/**
 * The client SDK against real gateways and the run's real Kafka (published with PublisherClient),
 * in Node 20 with the `ws` package's WebSocket. A TCP proxy stands in for a load balancer, so a
 * gateway can go away and a new one take over the address the client uses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Kafka, logLevel } from 'kafkajs';
import { createLogger } from '@fanout/observability';
import { PublisherClient, type PublishedEvent } from '@fanout/publisher';
import { signConnectToken } from '@fanout/auth';
import { startGateway, type GatewayConfig, type RunningGateway } from '@fanout/gateway';
import { backoffCeiling, FanoutClient, type FanoutClientEvents, type FanoutClientOptions, type WebSocketLike } from '@fanout/client';
import { brokers, isSentinel, SENTINEL, uniqueTopics } from '../../../test/helpers.js';
import { startProxy, type TcpProxy } from '../../../test/tcp-proxy.js';
import { sleep, waitFor } from './fake-gateway.js';

const topics = uniqueTopics('client');
const quiet = createLogger('client-test', {});
const SECRET = 'client-sdk-test-secret-0123456789-abcdef';
let pub: PublisherClient;
const gateways: RunningGateway[] = [];
const proxies: TcpProxy[] = [];
const clients: FanoutClient[] = [];

/** Gateways log errors only: several in one region rebalance their user-channel group as they come and go. */
const gatewayLogger = createLogger('gateway', {});
gatewayLogger.level = 'error';

async function gateway(extra: Partial<GatewayConfig> = {}): Promise<RunningGateway> {
  const gw = await startGateway(
    {
      brokers: brokers(),
      port: 0,
      servePage: false,
      region: 'test',
      drainJitterMs: 300,
      drainDelayMs: 1500,
      shutdownGraceMs: 15_000,
      ...topics,
      ...extra,
    },
    gatewayLogger,
  );
  gateways.push(gw);
  return gw;
}

async function proxy(target: number | null): Promise<TcpProxy> {
  const p = await startProxy(target);
  proxies.push(p);
  return p;
}

type Recorded = { [K in keyof FanoutClientEvents]: { type: K; ev: FanoutClientEvents[K]; at: number } }[keyof FanoutClientEvents];

/** A `ws` WebSocket that logs what the client sends, and can deliver every frame twice. */
function recordingWebSocket(opts: { duplicate?: boolean } = {}) {
  const sent: Record<string, unknown>[] = [];
  const urls: string[] = [];
  class Recording implements WebSocketLike {
    private readonly inner: WebSocket;
    onopen: ((ev: unknown) => void) | null = null;
    onmessage: ((ev: { data: unknown }) => void) | null = null;
    onclose: ((ev: unknown) => void) | null = null;
    onerror: ((ev: unknown) => void) | null = null;
    constructor(url: string) {
      urls.push(url);
      this.inner = new WebSocket(url);
      this.inner.onopen = (e) => this.onopen?.(e);
      this.inner.onclose = (e) => this.onclose?.(e);
      this.inner.onerror = (e) => this.onerror?.(e);
      const recent: unknown[] = [];
      this.inner.onmessage = (e) => {
        this.onmessage?.({ data: e.data });
        if (!opts.duplicate || !String(e.data).startsWith('{"t":"msg"')) return;
        // At-least-once, exaggerated: every message again, and every 10th replays the last 5.
        this.onmessage?.({ data: e.data });
        recent.push(e.data);
        if (recent.length > 5) recent.shift();
        if (recent.length === 5 && Math.random() < 0.1) for (const d of recent) this.onmessage?.({ data: d });
      };
    }
    get readyState() {
      return this.inner.readyState;
    }
    send(d: string) {
      sent.push(JSON.parse(d) as Record<string, unknown>);
      this.inner.send(d);
    }
    close(code?: number, reason?: string) {
      this.inner.close(code, reason);
    }
  }
  return { Ctor: Recording, sent, urls };
}

function client(opts: FanoutClientOptions) {
  const c = new FanoutClient({ WebSocket, ...opts });
  clients.push(c);
  const events: Recorded[] = [];
  for (const type of [
    'message',
    'state',
    'welcome',
    'subscribed',
    'reset',
    'gap',
    'error',
    'reconnect',
    'disconnect',
    'attempt',
  ] as const) {
    c.on(type, (ev) => events.push({ type, ev, at: Date.now() } as Recorded));
  }
  const of = <K extends keyof FanoutClientEvents>(type: K) =>
    events.filter((e) => e.type === type).map((e) => e.ev as FanoutClientEvents[K]);
  const seqs = (channel?: string) =>
    of('message')
      .filter((m) => (channel === undefined || m.channel === channel) && !isSentinel(m.data))
      .map((m) => (m.data as { seq: number }).seq);
  /** Sentinel messages delivered (see SENTINEL in test/helpers.ts); seqs() leaves them out. */
  const sentinels = () => of('message').filter((m) => isSentinel(m.data)).length;
  return { c, events, of, seqs, sentinels };
}

function publish(channel: string, from: number, count: number): Promise<PublishedEvent[]> {
  return pub.publishBatch(Array.from({ length: count }, (_, i) => ({ channel, data: { seq: from + i } })));
}

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

beforeAll(async () => {
  pub = new PublisherClient({ brokers: brokers(), logger: quiet, topics: { broadcast: topics.topicBroadcast, users: topics.topicUsers } });
  await pub.connect();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(proxies.map((p) => p.close()));
  await Promise.all(gateways.map((g) => g.shutdown()));
  await pub?.disconnect();
  const admin = new Kafka({ brokers: brokers(), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topics.topicBroadcast, topics.topicUsers] }).catch(() => undefined);
  await admin.disconnect();
});

describe('the client SDK against a real gateway', () => {
  it('delivers published messages in order, with ids and positions', async () => {
    const gw = await gateway();
    const { c, of, seqs } = client({ url: gw.url });
    c.connect();
    await c.subscribe(['news:order', 'news:other']);
    expect(c.state).toBe('open');
    expect(of('welcome')[0]).toMatchObject({ region: 'test', transport: 'websocket' });
    const published = await publish('news:order', 0, 300);
    await waitFor(() => seqs('news:order').length >= 300, '300 messages');
    expect(seqs('news:order')).toEqual(range(0, 300));
    const got = of('message');
    expect(got.map((m) => m.id)).toEqual(published.map((p) => p.id));
    expect(got.map((m) => m.position)).toEqual(published.map((p) => p.position));
    expect(c.positions()['news:order']).toBe(published.at(-1)!.position);
    expect(c.stats.duplicates).toBe(0);
  });

  it('reconnects with backoff after the gateway goes away, comes back on a new one, and resubscribes with its positions', async () => {
    const first = await gateway({ node: 'gw-client-a' });
    const lb = await proxy(first.port);
    const ws = recordingWebSocket();
    const { c, of, seqs, events } = client({
      url: lb.url,
      WebSocket: ws.Ctor,
      transports: ['websocket'],
      backoff: { baseMs: 100, maxMs: 800 },
    });
    c.connect();
    await c.subscribe('news:away');
    await publish('news:away', 0, 5);
    await waitFor(() => seqs().length === 5, 'five messages');
    const lastBefore = c.positions()['news:away'];

    // The gateway drains (reconnect frame, then close) and nothing answers at the address for a while.
    lb.route(null);
    await first.shutdown();
    await waitFor(() => of('reconnect').length === 1, 'the reconnect frame');
    expect(of('reconnect')[0]!.reason).toBe('shutdown');
    await publish('news:away', 5, 3); // published while no gateway has the client
    // The first attempt waits the reconnect frame's delay (not counted by the backoff); the
    // failures after it each raise the backoff's exponent.
    await waitFor(() => of('attempt').length >= 6, 'several failed attempts', 15_000);
    expect(c.state).toBe('reconnecting');
    // Every planned wait is within its full-jitter bound.
    const plans = of('state').filter((s) => s.state === 'reconnecting' && s.delayMs !== undefined);
    for (const p of plans.slice(1)) expect(p.delayMs!).toBeLessThanOrEqual(backoffCeiling(p.attempt - 1, 100, 800));
    expect(Math.max(...plans.map((p) => p.attempt))).toBeGreaterThanOrEqual(4);

    const second = await gateway({ node: 'gw-client-b' });
    lb.route(second.port);
    await waitFor(() => c.state === 'open' && of('welcome').length === 2, 'open on the new gateway', 15_000);
    expect(of('welcome')[1]!.node).toBe('gw-client-b');
    await waitFor(() => of('subscribed').length === 2, 'subscribed again');
    const resub = ws.sent.filter((f) => f.op === 'subscribe').at(-1)!;
    expect(resub).toMatchObject({ channels: ['news:away'], positions: { 'news:away': lastBefore } });
    expect(of('subscribed')[1]!.resumed).toEqual(['news:away']);

    // What was published during the outage is replayed from Kafka; then the live stream goes on.
    await publish('news:away', 8, 4);
    await waitFor(() => seqs().length >= 12, 'the replay and the live messages', 15_000);
    expect(seqs()).toEqual(range(0, 12));
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
  });

  it("waits the delay of the gateway's reconnect frame, then reconnects to the replacement", async () => {
    const old = await gateway({ node: 'gw-client-old', drainJitterMs: 1500, drainDelayMs: 5000 });
    const lb = await proxy(old.port);
    const { c, of, events } = client({ url: lb.url, backoff: { baseMs: 5000, maxMs: 10_000 } });
    c.connect();
    await c.subscribe('news:drain');
    const replacement = await gateway({ node: 'gw-client-new' });
    lb.route(replacement.port);
    const stopping = old.shutdown();
    await waitFor(() => of('attempt').length === 2, 'the reconnect attempt', 10_000);
    const asked = events.find((e) => e.type === 'reconnect')!;
    const attempt = events.filter((e) => e.type === 'attempt')[1]!;
    const delay = (asked.ev as FanoutClientEvents['reconnect']).delayMs;
    expect(delay).toBeGreaterThanOrEqual(0);
    expect(delay).toBeLessThanOrEqual(1500);
    // The retry was planned with the gateway's delay, not the (5 s) backoff, and kept to it.
    expect(of('state').find((s) => s.state === 'reconnecting')).toMatchObject({ delayMs: delay });
    expect(attempt.at - asked.at).toBeGreaterThanOrEqual(delay - 5);
    expect(attempt.at - asked.at).toBeLessThan(delay + 1000);
    await waitFor(() => of('welcome').length === 2, 'welcome from the replacement');
    expect(of('welcome')[1]!.node).toBe('gw-client-new');
    await stopping;
  });

  it('does not retry after 4501 (bad token), and surfaces it; a good token connects', async () => {
    const gw = await gateway({ tokenSecret: SECRET, publicNamespaces: ['news'] });
    const bad = client({
      url: gw.url,
      token: await signConnectToken('another-secret-0123456789-abcdefghij', { sub: 'mallory' }),
      backoff: { baseMs: 50, maxMs: 100 },
    });
    bad.c.connect();
    const sub = bad.c.subscribe('news:x');
    await waitFor(() => bad.c.state === 'closed', 'closed');
    await expect(sub).rejects.toMatchObject({ code: 'token_invalid' });
    expect(bad.of('error')).toEqual([expect.objectContaining({ code: 'token_invalid', fatal: true, closeCode: 4501 })]);
    expect(bad.of('state').at(-1)).toMatchObject({ state: 'closed', code: 4501 });
    // No sentinel can show that a retry will never come: a quiet period of three times the backoff
    // ceiling (100 ms), in which a planned retry would have made a second attempt.
    await sleep(300);
    expect(bad.of('attempt').length).toBe(1);

    const good = client({ url: gw.url, token: async () => signConnectToken(SECRET, { sub: 'alice', channels: ['orders:*'] }) });
    good.c.connect();
    await good.c.subscribe('orders:desk-1');
    expect(good.of('welcome')[0]!.user).toBe('alice');
  });

  it("keeps a long stream flowing with credits: 'auto' and a finite ?credits=", async () => {
    const gw = await gateway({ allowUnlimitedCredits: false, initialCredits: '0' });
    const ws = recordingWebSocket();
    const { c, of, seqs } = client({ url: gw.url, WebSocket: ws.Ctor, credits: 'auto', creditWindow: 64 });
    c.connect();
    await c.subscribe('news:flow');
    expect(new URL(ws.urls[0]!).searchParams.get('credits')).toBe('64');
    expect(of('welcome')[0]!.credits).toBe(64);
    const N = 3000;
    for (let i = 0; i < N; i += 500) await publish('news:flow', i, 500);
    await waitFor(() => seqs().length >= N, `${N} messages`, 30_000);
    expect(seqs()).toEqual(range(0, N));
    const grants = ws.sent.filter((f) => f.op === 'credit').map((f) => f.n as number);
    expect(grants.every((n) => n === 32)).toBe(true);
    expect(grants.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(N - 64);
    expect(of('gap')).toEqual([]);
  });

  it('with a number of credits, receives that many until the app grants more', async () => {
    const gw = await gateway({ allowUnlimitedCredits: false, initialCredits: '0' });
    const { c, seqs } = client({ url: gw.url, credits: 10 });
    c.connect();
    await c.subscribe('news:manual');
    await publish('news:manual', 0, 30);
    await waitFor(() => seqs().length === 10, 'ten messages');
    expect(seqs().length).toBe(10);
    expect(c.grant(5)).toBe(true);
    await waitFor(() => seqs().length === 15, 'five more');
    // One more credit is the sentinel: the 15 still queued wait for credits, so the next to arrive is
    // seq 15; a message sent beyond the credits before it would show as a seq out of place.
    expect(c.grant(1)).toBe(true);
    await waitFor(() => seqs().includes(15), 'seq 15');
    expect(seqs()).toEqual(range(0, 16));
  });

  it('deduplicates by position: frames delivered twice (and replayed) reach the app once', async () => {
    const gw = await gateway();
    const ws = recordingWebSocket({ duplicate: true });
    const { c, seqs, sentinels } = client({ url: gw.url, WebSocket: ws.Ctor });
    c.connect();
    await c.subscribe(['news:dup-a', 'news:dup-b']);
    await Promise.all([publish('news:dup-a', 0, 200), publish('news:dup-b', 0, 200)]);
    await waitFor(() => seqs().length >= 400, '400 messages');
    // A repeat that got through would come before its channel's sentinel.
    await Promise.all(['news:dup-a', 'news:dup-b'].map((channel) => pub.publishBatch([{ channel, data: SENTINEL }])));
    await waitFor(() => sentinels() === 2, 'the two sentinels');
    expect(seqs('news:dup-a')).toEqual(range(0, 200));
    expect(seqs('news:dup-b')).toEqual(range(0, 200));
    expect(c.stats.duplicates).toBeGreaterThanOrEqual(400);
    expect(c.stats.delivered).toBe(400 + 2);
  });

  it('falls back to SSE where WebSockets are blocked, and resumes the stream with its cursor after a cut', async () => {
    const gw = await gateway({ node: 'gw-client-sse' });
    const lb = await proxy(gw.port);
    /** A WebSocket that never opens, as behind a proxy that refuses upgrades. */
    class BlockedWebSocket implements WebSocketLike {
      readyState = 0;
      onopen = null;
      onmessage = null;
      onclose: ((ev: unknown) => void) | null = null;
      onerror = null;
      constructor() {
        setTimeout(() => {
          this.readyState = 3;
          this.onclose?.({ code: 1006, reason: '' });
        }, 5);
      }
      send() {}
      close() {}
    }
    const { c, of, seqs, sentinels } = client({
      url: lb.url,
      WebSocket: BlockedWebSocket,
      wsFailuresBeforeSse: 2,
      backoff: { baseMs: 50, maxMs: 300 },
    });
    c.connect();
    await c.subscribe(['news:sse-a', 'news:sse-b']);
    expect(c.transport).toBe('sse');
    expect(of('attempt').map((a) => a.transport)).toEqual(['websocket', 'websocket', 'sse']);
    expect(of('welcome')[0]).toMatchObject({ node: 'gw-client-sse', transport: 'sse' });
    await publish('news:sse-a', 0, 50);
    await publish('news:sse-b', 0, 50);
    await waitFor(() => seqs().length >= 100, '100 messages over SSE');
    expect(seqs('news:sse-a')).toEqual(range(0, 50));

    // The network drops the stream; meanwhile more is published. The new stream resumes after the cursor.
    lb.route(null);
    lb.cut();
    await waitFor(() => c.state === 'reconnecting', 'reconnecting');
    await publish('news:sse-a', 50, 10);
    await publish('news:sse-b', 50, 10);
    // The client comes back once the gateway has them (seq 59 its latest on both channels), so they are a replay.
    await waitFor(async () => {
      for (const channel of ['news:sse-a', 'news:sse-b']) {
        const body = (await (await fetch(`${gw.url}/v1/latest?channel=${channel}`)).json()) as {
          message: { data: { seq: number } } | null;
        };
        if (body.message?.data.seq !== 59) return false;
      }
      return true;
    }, 'the gateway to have the messages published meanwhile');
    lb.route(gw.port);
    await waitFor(() => seqs().length >= 120, 'the replay over SSE', 15_000);
    await publish('news:sse-a', 60, 5);
    await waitFor(() => seqs('news:sse-a').length >= 65, 'live again');
    // A repeat would come before its channel's sentinel.
    await Promise.all(['news:sse-a', 'news:sse-b'].map((channel) => pub.publishBatch([{ channel, data: SENTINEL }])));
    await waitFor(() => sentinels() === 2, 'the two sentinels');
    expect(seqs('news:sse-a')).toEqual(range(0, 65));
    expect(seqs('news:sse-b')).toEqual(range(0, 60));
    expect(of('welcome').length).toBe(2);
    expect(of('welcome')[1]!.transport).toBe('sse');
    expect(of('subscribed').at(-1)!.resumed.sort()).toEqual(['news:sse-a', 'news:sse-b']);
    expect(of('error')).toEqual([]);
  });
});
