/**
 * 503 + Retry-After: a gateway under a reconnect storm refuses the excess and says when to come
 * back. The client waits that long (plus at most 10% jitter) over the transports that can see the
 * refusal (SSE read with fetch, WebSocket with the `ws` package), without counting it as a broken
 * transport or a stale route; a browser-shaped WebSocket, which cannot see it, keeps its backoff.
 * The gateway is fake-gateway.ts on loopback, answering with real HTTP over real sockets.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseRetryAfter, retryAfterDelay, retryAfterFromBody, serverRetryAfterMs, type WebSocketLike } from '@fanout/client';
import { useHarness } from './harness.js';
import { msg, waitFor, type SseRequest } from './fake-gateway.js';

const { gateway, client } = useHarness();

/** An SSE endpoint like the gateway's: welcome, then the channels of the URL confirmed. */
function serveSse(r: SseRequest): void {
  r.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  r.send({ t: 'welcome', node: 'sse-node', region: 'test', heartbeat_s: 32, max_frame_bytes: 4096, user: null, credits: 'unlimited' });
  r.send({ t: 'subscribed', channels: r.url.searchParams.get('channels')!.split(',') });
}

/** Timers may fire a millisecond or two before Date.now() says the delay is over. */
const TIMER_SLACK_MS = 5;

describe('reading a refusal', () => {
  it('reads Retry-After as delta-seconds or an HTTP-date, and ignores anything else', () => {
    const now = Date.parse('2024-05-01T12:00:00Z');
    expect(parseRetryAfter('1', now)).toBe(1000);
    expect(parseRetryAfter(' 30 ', now)).toBe(30_000);
    expect(parseRetryAfter(['2'], now)).toBe(2000);
    expect(parseRetryAfter('Wed, 01 May 2024 12:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 01 May 2024 11:00:00 GMT', now)).toBe(0);
    for (const bad of [null, undefined, '', '-1', '1.5', 'soon', '2024-05-01']) expect(parseRetryAfter(bad, now)).toBeUndefined();
  });

  it("prefers the body's detail.retry_after_ms over the header, and reads either only on 503 and 429", () => {
    const body = { error: { code: 'overloaded', message: 'm', retriable: true, detail: { retry_after_ms: 1234 } } };
    expect(retryAfterFromBody(body)).toBe(1234);
    expect(retryAfterFromBody({ error: { code: 'not_ready', message: 'm' } })).toBeUndefined();
    expect(retryAfterFromBody({ error: { detail: { retry_after_ms: -5 } } })).toBeUndefined();
    expect(retryAfterFromBody('not json')).toBeUndefined();
    expect(serverRetryAfterMs(503, '2', body)).toBe(1234);
    expect(serverRetryAfterMs(503, '2', { error: { code: 'not_ready', message: 'm' } })).toBe(2000);
    expect(serverRetryAfterMs(429, '3', undefined)).toBe(3000);
    expect(serverRetryAfterMs(503, null, undefined)).toBeUndefined();
    expect(serverRetryAfterMs(502, '2', body)).toBeUndefined();
    expect(serverRetryAfterMs(403, '2', body)).toBeUndefined();
  });

  it('waits at least what was asked and at most 10% more, within the cap', () => {
    expect(retryAfterDelay(1200, 600_000, () => 0)).toBe(1200);
    expect(retryAfterDelay(1200, 600_000, () => 0.999999)).toBe(1319);
    expect(retryAfterDelay(1200, 600_000, () => 0.5)).toBe(1260);
    expect(retryAfterDelay(3_600_000, 600_000, () => 0.5)).toBe(600_000);
    expect(retryAfterDelay(0, 600_000, () => 0.7)).toBe(0);
    for (let i = 0; i < 200; i++) {
      const d = retryAfterDelay(1000, 600_000);
      expect(d).toBeGreaterThanOrEqual(1000);
      expect(d).toBeLessThanOrEqual(1100);
    }
  });
});

describe('a refused WebSocket upgrade (the ws package sees the status)', () => {
  it("waits the body's retry_after_ms (plus at most 10%) instead of its backoff, then connects and resumes", async () => {
    const g = await gateway();
    const { c, of, plans, data } = client({ url: g.url, transports: ['websocket'] });
    c.connect();
    await c.subscribe('a:x');
    for (let i = 1; i <= 3; i++) g.conns[0]!.send(msg('a:x', i));
    await waitFor(() => data().length === 3, 'three messages');

    // The gateway goes away; when the client comes back, admission control turns it away once.
    g.overload = { remaining: 1, retryAfterS: 1, retryAfterMs: 1200 };
    g.dropAll();
    await waitFor(() => g.conns.length === 2 && g.sent(1, 'subscribe').length === 1, 'the resubscribe after the refusal', 10_000);

    expect(g.refused.map((r) => r.kind)).toEqual(['websocket']);
    const plan = plans().find((p) => p.reason === 'overloaded')!;
    expect(plan).toMatchObject({ state: 'reconnecting', transport: 'websocket', retryAfterMs: 1200 });
    expect(plan.delayMs).toBeGreaterThanOrEqual(1200);
    expect(plan.delayMs).toBeLessThanOrEqual(1320);
    // The server said when: the backoff exponent stays at 1 (after the drop) instead of growing.
    expect(plans().map((p) => p.attempt)).toEqual([1, 1]);
    expect(of('disconnect')[1]).toMatchObject({
      transport: 'websocket',
      opened: false,
      httpStatus: 503,
      retryAfterMs: 1200,
      willReconnect: true,
    });

    const waited = g.conns[1]!.at - g.refused[0]!.at;
    expect(waited).toBeGreaterThanOrEqual(plan.delayMs! - TIMER_SLACK_MS);
    expect(waited).toBeLessThan(plan.delayMs! + 700);

    expect(g.sent(1, 'subscribe')[0]).toMatchObject({ channels: ['a:x'], positions: { 'a:x': '1:0:3' } });
    g.conns[1]!.send(msg('a:x', 3));
    g.conns[1]!.send(msg('a:x', 4));
    await waitFor(() => data().length === 4, 'the fourth message');
    expect(data()).toEqual([1, 2, 3, 4]);
    expect(c.state).toBe('open');
  });

  it('does not count as a WebSocket failure: the client stays on WebSocket instead of falling back to SSE', async () => {
    const g = await gateway();
    g.onSse = serveSse; // SSE would work, so a switch would show
    g.overload = { remaining: 3, retryAfterS: 1, retryAfterMs: 100 };
    const { c, of } = client({ url: g.url, wsFailuresBeforeSse: 1, channels: ['a:x'] });
    c.connect();
    await c.subscribe('a:x');
    expect(g.refused.map((r) => r.kind)).toEqual(['websocket', 'websocket', 'websocket']);
    expect(of('attempt').map((a) => a.transport)).toEqual(['websocket', 'websocket', 'websocket', 'websocket']);
    expect(c.transport).toBe('websocket');
    expect(g.sse).toEqual([]);
  });

  it("keeps the router's answer: a refusal with Retry-After is not a stale route", async () => {
    const [router, target] = await Promise.all([gateway(), gateway()]);
    const asked: string[] = [];
    router.onHttp = (req, res) => {
      asked.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          url: target.url,
          ws_url: `${target.url.replace('http', 'ws')}/v1/ws`,
          node: 'gw-a',
          partition: 0,
          generation: 1,
        }),
      );
      return true;
    };
    target.overload = { remaining: 2, retryAfterS: 1, retryAfterMs: 100 };
    const { c } = client({ routerUrl: router.url, user: 'alice', transports: ['websocket'] });
    c.connect();
    await c.subscribe('user:alice');
    expect(target.refused.length).toBe(2);
    expect(target.conns.length).toBe(1);
    expect(asked.length).toBe(1);
  });

  it('a browser-shaped WebSocket (no .on) cannot see the 503 and reconnects with its backoff', async () => {
    /** The browser's WebSocket surface over `ws`: events as on* properties only, no emitter. */
    class BrowserShapedWebSocket implements WebSocketLike {
      onopen: ((ev: unknown) => void) | null = null;
      onmessage: ((ev: unknown) => void) | null = null;
      onclose: ((ev: unknown) => void) | null = null;
      onerror: ((ev: unknown) => void) | null = null;
      private readonly ws: WebSocket;
      constructor(url: string) {
        this.ws = new WebSocket(url);
        this.ws.onopen = (ev) => this.onopen?.(ev);
        this.ws.onmessage = (ev) => this.onmessage?.(ev);
        this.ws.onclose = (ev) => this.onclose?.(ev);
        this.ws.onerror = (ev) => this.onerror?.(ev);
      }
      get readyState(): number {
        return this.ws.readyState;
      }
      send(data: string): void {
        this.ws.send(data);
      }
      close(code?: number, reason?: string): void {
        this.ws.close(code, reason);
      }
    }
    const g = await gateway();
    g.overload = { remaining: 1, retryAfterS: 1, retryAfterMs: 1200 };
    const { c, of, plans } = client({ url: g.url, WebSocket: BrowserShapedWebSocket, transports: ['websocket'], random: () => 0.999999 });
    c.connect();
    await c.subscribe('a:x');
    expect(g.refused.length).toBe(1);
    expect(of('disconnect')[0]).toMatchObject({ code: 1006, opened: false });
    expect(of('disconnect')[0]!.httpStatus).toBeUndefined();
    expect(of('disconnect')[0]!.retryAfterMs).toBeUndefined();
    // The first backoff ceiling (baseMs 50, random ~1), not the 1200 ms it could not read.
    expect(plans()).toHaveLength(1);
    expect(plans()[0]!.delayMs).toBe(50);
    expect(plans()[0]!.retryAfterMs).toBeUndefined();
    expect(plans()[0]!.reason).not.toBe('overloaded');
    expect(g.conns[0]!.at - g.refused[0]!.at).toBeLessThan(1000);
  });
});

describe('a refused SSE request (fetch sees the status)', () => {
  it("waits the body's retry_after_ms (plus at most 10%), then opens the stream with its cursor", async () => {
    const g = await gateway();
    g.onSse = serveSse;
    g.overload = { remaining: 1, retryAfterS: 1, retryAfterMs: 1200 };
    const { c, of, plans } = client({ url: g.url, transports: ['sse'], positions: { 'a:x': '1:0:4' } });
    c.connect();
    await c.subscribe('a:x');

    expect(g.refused.map((r) => r.kind)).toEqual(['sse']);
    expect(new URL(g.refused[0]!.url, 'http://x').searchParams.get('cursor')).toBe('1:0:4');
    expect(of('disconnect')[0]).toMatchObject({
      transport: 'sse',
      opened: false,
      httpStatus: 503,
      retryAfterMs: 1200,
      willReconnect: true,
    });
    const plan = plans()[0]!;
    expect(plan).toMatchObject({ reason: 'overloaded', retryAfterMs: 1200, transport: 'sse' });
    expect(plan.delayMs).toBeGreaterThanOrEqual(1200);
    expect(plan.delayMs).toBeLessThanOrEqual(1320);

    const waited = g.sse[0]!.at - g.refused[0]!.at;
    expect(waited).toBeGreaterThanOrEqual(plan.delayMs! - TIMER_SLACK_MS);
    expect(waited).toBeLessThan(plan.delayMs! + 700);
    // Resumed: the same cursor, no reset, and the stream delivers after it.
    expect(g.sse[0]!.url.searchParams.get('cursor')).toBe('1:0:4');
    g.sse[0]!.send(msg('a:x', 5, 'five'), '1:0:5');
    await waitFor(() => of('message').length === 1, 'a message');
    expect(of('message')[0]).toMatchObject({ data: 'five', position: '1:0:5' });
    expect(c.state).toBe('open');
  });
});

describe('Retry-After without retry_after_ms (not_ready: starting or draining)', () => {
  it.each(['websocket', 'sse'] as const)("over %s, waits the header's seconds", async (transport) => {
    const g = await gateway();
    g.onSse = serveSse;
    g.overload = { remaining: 1, retryAfterS: 1, code: 'not_ready' };
    const { c, plans } = client({ url: g.url, transports: [transport], channels: ['a:x'] });
    c.connect();
    await c.subscribe('a:x');
    const plan = plans()[0]!;
    expect(plan).toMatchObject({ reason: 'not_ready', retryAfterMs: 1000, transport });
    expect(plan.delayMs).toBeGreaterThanOrEqual(1000);
    expect(plan.delayMs).toBeLessThanOrEqual(1100);
    const servedAt = transport === 'websocket' ? g.conns[0]!.at : g.sse[0]!.at;
    expect(servedAt - g.refused[0]!.at).toBeGreaterThanOrEqual(plan.delayMs! - TIMER_SLACK_MS);
    expect(c.transport).toBe(transport);
  });
});

describe('a refusal the client cannot read', () => {
  it('a 503 without Retry-After or retry_after_ms keeps the backoff (and counts as a failure)', async () => {
    const g = await gateway();
    g.overload = { remaining: 1 };
    const { c, plans, of } = client({ url: g.url, transports: ['websocket'], random: () => 0.999999 });
    c.connect();
    await c.subscribe('a:x');
    expect(of('disconnect')[0]).toMatchObject({ httpStatus: 503, opened: false });
    expect(of('disconnect')[0]!.retryAfterMs).toBeUndefined();
    expect(plans()[0]).toMatchObject({ delayMs: 50, reason: 'HTTP 503 overloaded' });
  });
});
