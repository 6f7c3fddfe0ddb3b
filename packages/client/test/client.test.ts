/**
 * The client against a scripted gateway on loopback (fake-gateway.ts): exact timings, frames the
 * real gateway only sends in rare situations (reset, gap, wrong_gateway), duplicates, chunking,
 * the SSE fallback and the router. gateway.test.ts runs the same client against the real thing.
 */
import { describe, expect, it, vi } from 'vitest';
import { FanoutClientError } from '@fanout/client';
import { useHarness } from './harness.js';
import { msg, sleep, waitFor } from './fake-gateway.js';

const { gateway, client } = useHarness();

describe('connecting and subscribing', () => {
  it('connects to <url>/v1/ws with token and credits, subscribes after the welcome, and delivers messages', async () => {
    const g = await gateway();
    const { c, of, data } = client({ url: g.url, token: 'tok en', credits: 25 });
    expect(c.state).toBe('closed');
    c.connect();
    expect(c.state).toBe('connecting');
    const sub = c.subscribe(['a:x', 'b:*']);
    await sub;
    expect(c.state).toBe('open');
    expect(g.conns[0]!.url.pathname).toBe('/v1/ws');
    expect(g.conns[0]!.url.searchParams.get('token')).toBe('tok en');
    expect(g.conns[0]!.url.searchParams.get('credits')).toBe('25');
    expect(g.sent(0, 'subscribe')).toEqual([{ op: 'subscribe', id: 1, channels: ['a:x', 'b:*'] }]);
    g.conns[0]!.send(msg('a:x', 1, { v: 1 }));
    g.conns[0]!.send(msg('b:q', 7, 'wild'));
    g.conns[0]!.send(msg('c:other', 1, 'not subscribed'));
    await waitFor(() => of('message').length === 2, 'two messages');
    expect(of('message')[0]).toMatchObject({ channel: 'a:x', data: { v: 1 }, id: 'e-a:x-1', position: '1:0:1' });
    expect(data()).toEqual([{ v: 1 }, 'wild']);
    expect(of('welcome')[0]).toMatchObject({ node: 'fake-1', region: 'test', transport: 'websocket' });
    expect(of('state').map((s) => s.state)).toEqual(['connecting', 'open']);
    expect(c.positions()).toEqual({ 'a:x': '1:0:1', 'b:q': '1:0:7' });
    // grant() sends credit frames.
    expect(c.grant(5)).toBe(true);
    await waitFor(() => g.sent(0, 'credit').length === 1, 'a credit frame');
    expect(g.sent(0, 'credit')[0]).toEqual({ op: 'credit', n: 5 });
  });

  it('rejects a refused subscribe and drops the channel; throws on names that are not channels', async () => {
    const g = await gateway();
    g.onConnection = (conn) => {
      conn.send({ t: 'welcome', node: 'n', region: 'r', heartbeat_s: 32, max_frame_bytes: 4096, user: null, credits: 'unlimited' });
      conn.ws.on('message', (d) => {
        const f = JSON.parse(d.toString());
        if (f.op !== 'subscribe') return;
        if (f.channels.includes('secret:x')) conn.send({ t: 'error', code: 'forbidden_channel', message: 'no', id: f.id });
        else conn.send({ t: 'subscribed', id: f.id, channels: f.channels });
      });
    };
    const { c, of } = client({ url: g.url });
    c.connect();
    await c.subscribe('ok:x');
    const err = await c.subscribe('secret:x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FanoutClientError);
    expect((err as FanoutClientError).code).toBe('forbidden_channel');
    expect(c.channels).toEqual(['ok:x']);
    expect(of('error')[0]).toMatchObject({ code: 'forbidden_channel', fatal: false, channels: ['secret:x'] });
    expect(() => c.subscribe('Not A Channel')).toThrow(TypeError);
  });

  it('does not deliver messages of an unsubscribed channel that were still in flight', async () => {
    const g = await gateway();
    const { c, data } = client({ url: g.url });
    c.connect();
    await c.subscribe(['a:x', 'a:y']);
    c.unsubscribe('a:x');
    await waitFor(() => g.sent(0, 'unsubscribe').length === 1, 'unsubscribe frame');
    g.conns[0]!.send(msg('a:x', 1, 'late'));
    g.conns[0]!.send(msg('a:y', 1, 'kept'));
    // 'kept' follows 'late' on the same socket: once it is delivered, 'late' has been handled.
    await waitFor(() => data().includes('kept'), 'the kept message');
    expect(data()).toEqual(['kept']);
    expect(c.stats.unwanted).toBe(1);
  });
});

describe('resume and dedupe', () => {
  it('resubscribes with the last position per channel after a reconnect and drops replayed duplicates', async () => {
    const g = await gateway();
    const { c, data, of } = client({ url: g.url });
    c.connect();
    await c.subscribe(['a:x', 'a:y', 'w:*']);
    for (let i = 1; i <= 3; i++) g.conns[0]!.send(msg('a:x', i));
    g.conns[0]!.send(msg('a:y', 40, 'y40', '1', 2));
    g.conns[0]!.send(msg('w:q', 9, 'w9'));
    await waitFor(() => data().length === 5, 'five messages');
    g.dropAll();
    await waitFor(() => g.conns.length === 2 && g.sent(1, 'subscribe').length === 1, 'the resubscribe');
    // Exact channels carry their positions; a wildcard cannot (the gateway refuses positions for patterns).
    expect(g.sent(1, 'subscribe')[0]).toMatchObject({
      op: 'subscribe',
      channels: ['a:x', 'a:y', 'w:*'],
      positions: { 'a:x': '1:0:3', 'a:y': '1:2:40' },
    });
    await waitFor(() => of('subscribed').length === 2, 'subscribed again');
    expect(of('subscribed')[1]!.resumed).toEqual(['a:x', 'a:y']);
    // An at-least-once replay: 2 and 3 again, then 4; and the same message twice.
    for (const i of [2, 3, 4, 4, 5]) g.conns[1]!.send(msg('a:x', i));
    g.conns[1]!.send(msg('a:y', 40, 'y40 again', '1', 2));
    // Every frame sent has been handled once the client has received all 11 (the last a duplicate).
    await waitFor(() => c.stats.received === 11, 'the 11 frames');
    expect(data()).toEqual([1, 2, 3, 'y40', 'w9', 4, 5]);
    expect(c.stats).toMatchObject({ received: 11, delivered: 7, duplicates: 4 });
    expect(c.positions()).toMatchObject({ 'a:x': '1:0:5' });
  });

  it('starts from saved positions, and a new epoch is not a duplicate', async () => {
    const g = await gateway();
    const { c, data } = client({ url: g.url, positions: { 'a:x': '1:0:10' } });
    c.connect();
    await c.subscribe('a:x');
    expect(g.sent(0, 'subscribe')[0]).toMatchObject({ positions: { 'a:x': '1:0:10' } });
    g.conns[0]!.send(msg('a:x', 10));
    g.conns[0]!.send(msg('a:x', 11));
    g.conns[0]!.send(msg('a:x', 3, 'new epoch', '2'));
    await waitFor(() => data().length === 2, 'two messages');
    expect(data()).toEqual([11, 'new epoch']);
  });

  it("surfaces reset and gap as typed events; a reset moves the position to the gateway's newest", async () => {
    const g = await gateway();
    const { c, of } = client({ url: g.url, positions: { 'a:x': '0:0:5' } });
    c.connect();
    await c.subscribe(['a:x', 'n:y']);
    g.conns[0]!.send({ t: 'reset', ch: 'a:x', reason: 'epoch_changed', position: '1:0:99' });
    g.conns[0]!.send({ t: 'gap', ch: 'n:y', from: '1:1:10', to: '1:1:19', count: 10 });
    await waitFor(() => of('gap').length === 1 && of('reset').length === 1, 'reset and gap');
    expect(of('reset')[0]).toEqual({ channel: 'a:x', reason: 'epoch_changed', position: '1:0:99' });
    expect(of('gap')[0]).toEqual({ channel: 'n:y', from: '1:1:10', to: '1:1:19', count: 10 });
    expect(c.positions()['a:x']).toBe('1:0:99');
  });

  it('resubscribes without positions when the gateway refuses them (invalid_position)', async () => {
    const g = await gateway();
    g.onConnection = (conn) => {
      conn.send({ t: 'welcome', node: 'n', region: 'r', heartbeat_s: 32, max_frame_bytes: 4096, user: null, credits: 'unlimited' });
      conn.ws.on('message', (d) => {
        const f = JSON.parse(d.toString());
        if (f.op !== 'subscribe') return;
        if (f.positions) conn.send({ t: 'error', code: 'invalid_position', message: 'no', id: f.id });
        else conn.send({ t: 'subscribed', id: f.id, channels: f.channels });
      });
    };
    const { c } = client({ url: g.url, positions: { 'a:x': '1:0:10' } });
    c.connect();
    await c.subscribe('a:x');
    expect(g.sent(0, 'subscribe').map((f) => 'positions' in f)).toEqual([true, false]);
    expect(c.positions()).toEqual({});
  });

  it("splits a large resubscribe into frames under the gateway's max_frame_bytes and 100 channels", async () => {
    const g = await gateway();
    g.welcomeExtra = { max_frame_bytes: 1024 };
    const channels = Array.from({ length: 150 }, (_, i) => `prices:SYMBOL${String(i).padStart(3, '0')}`);
    const positions = Object.fromEntries(channels.map((ch, i) => [ch, `1:${i % 6}:${1_000_000 + i}`]));
    const { c } = client({ url: g.url, positions });
    c.connect();
    await c.subscribe(channels);
    const frames = g.sent(0, 'subscribe');
    expect(frames.length).toBeGreaterThan(5);
    for (const f of frames) expect(JSON.stringify(f).length).toBeLessThanOrEqual(1024);
    expect(frames.flatMap((f) => f.channels as string[])).toEqual(channels);
    expect(Object.assign({}, ...frames.map((f) => f.positions))).toEqual(positions);
  });
});

describe('reconnecting', () => {
  it('backs off with full jitter within the bounds, and resets after a stable connection', async () => {
    const g = await gateway();
    g.refuseUpgrades = 503;
    const { c, of } = client({
      url: g.url,
      transports: ['websocket'],
      backoff: { baseMs: 40, maxMs: 200, stableMs: 300 },
      random: () => 0.999999,
    });
    c.connect();
    await waitFor(() => of('attempt').length >= 6, 'six attempts');
    const plans = of('state').filter((s) => s.state === 'reconnecting');
    // random ~1: each delay is its ceiling: 40, 80, 160, 200, 200.
    expect(plans.slice(0, 5).map((s) => s.delayMs)).toEqual([40, 80, 160, 200, 200]);
    const times = g.upgrades.map((u) => u.at);
    for (let i = 1; i < 5; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual([40, 80, 160, 200][i - 1]! - 5);
    g.refuseUpgrades = null;
    await waitFor(() => c.state === 'open', 'open');
    // Stable: the client measures how long a connection was up with Date.now, so a fake clock (only
    // Date; sockets and the client's timers run as usual) moves it past stableMs (300) at once.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 350);
      const before = of('state').filter((s) => s.state === 'reconnecting').length;
      g.dropAll();
      await waitFor(() => of('state').filter((s) => s.state === 'reconnecting').length > before, 'a new plan');
    } finally {
      vi.useRealTimers();
    }
    expect(
      of('state')
        .filter((s) => s.state === 'reconnecting')
        .at(-1)!.delayMs,
    ).toBe(40); // attempt 0 again
  });

  it('waits exactly as long as a reconnect frame asks', async () => {
    const g = await gateway();
    const { c, of, events } = client({ url: g.url, backoff: { baseMs: 5000, maxMs: 10_000 } });
    c.connect();
    await c.subscribe('a:x');
    g.conns[0]!.send({ t: 'reconnect', reason: 'shutdown', delay_ms: 700 });
    await waitFor(() => g.conns.length === 2, 'the second connection', 5000);
    expect(of('reconnect')[0]).toEqual({ reason: 'shutdown', delayMs: 700 });
    expect(of('disconnect')[0]).toMatchObject({ opened: true, willReconnect: true });
    expect(of('state').find((st) => st.state === 'reconnecting')).toMatchObject({ delayMs: 700 });
    const askedAt = events.find((e) => e.type === 'reconnect')!.at;
    const attemptAt = events.filter((e) => e.type === 'attempt')[1]!.at;
    expect(attemptAt - askedAt).toBeGreaterThanOrEqual(695);
    expect(attemptAt - askedAt).toBeLessThan(700 + 500);
    await waitFor(() => c.state === 'open', 'open again');
  });

  it('does not reconnect after 4501, and reports the token error once, as fatal', async () => {
    const g = await gateway();
    g.onConnection = (conn) => {
      conn.send({ t: 'error', code: 'token_expired', message: 'The connect token has expired' });
      conn.close(4501, 'unauthorized');
    };
    const { c, of } = client({ url: g.url, token: 'expired' });
    c.connect();
    const sub = c.subscribe('a:x');
    await waitFor(() => c.state === 'closed', 'closed');
    await expect(sub).rejects.toMatchObject({ code: 'token_expired' });
    // No sentinel can show that a reconnect will never come: a quiet period of six times the first
    // backoff delay (50 ms in the harness), in which a planned reconnect would have opened a connection.
    await sleep(300);
    expect(g.conns.length).toBe(1);
    expect(of('error')).toEqual([{ code: 'token_expired', message: 'The connect token has expired', fatal: true, closeCode: 4501 }]);
    expect(of('state').at(-1)).toMatchObject({ state: 'closed', code: 4501 });
    expect(of('disconnect')[0]).toMatchObject({ code: 4501, willReconnect: false });
  });

  it('reconnects after 4003 (the token could not be checked just now), reporting the error as not fatal', async () => {
    const g = await gateway();
    g.onConnection = (conn) => {
      if (g.conns.length === 1) {
        conn.send({ t: 'error', code: 'token_keys_unavailable', message: 'keys unreachable' });
        conn.close(4003, 'try again');
      } else {
        g.welcome(conn);
      }
    };
    const { c, of } = client({ url: g.url, token: 't' });
    c.connect();
    await c.subscribe('a:x');
    expect(of('error')).toEqual([{ code: 'token_keys_unavailable', message: 'keys unreachable', fatal: false, closeCode: 4003 }]);
    expect(g.conns.length).toBe(2);
  });

  it('reconnects after 4000-4499 closes (service restart, slow consumer)', async () => {
    const g = await gateway();
    const { c } = client({ url: g.url });
    c.connect();
    await c.subscribe('a:x');
    g.conns[0]!.close(4001, 'slow consumer');
    await waitFor(() => g.conns.length === 2 && c.state === 'open', 'reconnected');
  });

  it('presumes a silent connection dead after 1.5 heartbeats, pinging at half of one', async () => {
    const g = await gateway();
    g.welcomeExtra = { heartbeat_s: 1 };
    g.onConnection = (conn) => {
      // Welcomes and answers subscribe, but never a ping: the line looks dead.
      conn.send({ t: 'welcome', node: 'n', region: 'r', heartbeat_s: 2, max_frame_bytes: 4096, user: null, credits: 'unlimited' });
    };
    const { c, of } = client({ url: g.url });
    c.connect();
    void c.subscribe('a:x');
    await waitFor(() => of('disconnect').length === 1, 'a liveness timeout', 8000);
    expect(g.sent(0, 'ping').length).toBeGreaterThanOrEqual(1);
    expect(of('disconnect')[0]!.reason).toMatch(/nothing from the gateway/);
    await waitFor(() => g.conns.length === 2, 'a new connection');
  });

  it('close() stops everything; connect() resumes with positions', async () => {
    const g = await gateway();
    const { c } = client({ url: g.url });
    c.connect();
    await c.subscribe('a:x');
    g.conns[0]!.send(msg('a:x', 8));
    await waitFor(() => c.positions()['a:x'] === '1:0:8', 'position');
    c.close();
    expect(c.state).toBe('closed');
    // No sentinel can show that a reconnect will never come: a quiet period of four times the first
    // backoff delay (50 ms in the harness), in which a reconnect would have opened a connection.
    await sleep(200);
    expect(g.conns.length).toBe(1);
    c.connect();
    await waitFor(() => g.sent(1, 'subscribe').length === 1, 'resubscribed');
    expect(g.sent(1, 'subscribe')[0]).toMatchObject({ positions: { 'a:x': '1:0:8' } });
  });
});

describe('credits', () => {
  it("'auto' opens with the window and grants what was used once half of it is", async () => {
    const g = await gateway();
    g.welcomeExtra = { credits: 10 };
    const { c, data } = client({ url: g.url, credits: 'auto', creditWindow: 10 });
    c.connect();
    await c.subscribe('a:x');
    expect(g.conns[0]!.url.searchParams.get('credits')).toBe('10');
    for (let i = 1; i <= 12; i++) g.conns[0]!.send(msg('a:x', i));
    g.conns[0]!.send(msg('a:x', 12)); // a duplicate still used a credit
    await waitFor(() => data().length === 12, 'twelve messages');
    await waitFor(() => g.sent(0, 'credit').length === 2, 'two grants');
    expect(g.sent(0, 'credit')).toEqual([
      { op: 'credit', n: 5 },
      { op: 'credit', n: 5 },
    ]);
    expect(c.stats.granted).toBe(10);
  });
});

describe('SSE fallback', () => {
  it('falls back to SSE after failed WebSocket opens, resumes with the cursor, and honours the close frame', async () => {
    const g = await gateway();
    g.refuseUpgrades = 403; // a proxy that blocks WebSockets
    g.onSse = (r) => {
      r.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      r.res.write('retry: 2000\n\n');
      r.send({ t: 'welcome', node: 'sse-node', region: 'test', heartbeat_s: 32, max_frame_bytes: 4096, user: null, credits: 'unlimited' });
      r.send({ t: 'subscribed', channels: r.url.searchParams.get('channels')!.split(',') });
    };
    const { c, of, data } = client({ url: g.url, wsFailuresBeforeSse: 2, token: 'tk' });
    c.connect();
    await c.subscribe(['a:x', 'a:y']);
    expect(g.upgrades.length).toBe(2);
    expect(c.transport).toBe('sse');
    const first = g.sse[0]!;
    expect(first.url.searchParams.get('channels')).toBe('a:x,a:y');
    expect(first.url.searchParams.get('token')).toBe('tk');
    expect(first.url.searchParams.get('cursor')).toBeNull();
    first.send(msg('a:x', 1, 'one'), '1:0:1');
    first.comment();
    // A multi-line data field is joined with newlines.
    first.res.write(`id: c2\ndata: {"t":"msg","ch":"a:y","id":"e","pos":"1:3:5",\ndata: "ts":1,"data":"two"}\n\n`);
    await waitFor(() => data().length === 2, 'two messages');
    expect(data()).toEqual(['one', 'two']);
    // The gateway ends the stream as it would close a socket: the client resumes with the last id.
    first.send({ t: 'close', code: 4000, reason: 'service restart' });
    first.end();
    await waitFor(() => g.sse.length === 2, 'a new stream');
    expect(g.sse[1]!.url.searchParams.get('cursor')).toBe('c2');
    await waitFor(() => of('welcome').length === 2, 'welcome again');
    expect(of('welcome').map((w) => w.transport)).toEqual(['sse', 'sse']);
    // Subscribing opens a stream with the new channel list, and a cursor built from positions.
    await c.subscribe('a:z');
    expect(g.sse[2]!.url.searchParams.get('channels')).toBe('a:x,a:y,a:z');
    const cursor = g.sse[2]!.url.searchParams.get('cursor')!;
    expect(JSON.parse(Buffer.from(cursor.slice(2), 'base64url').toString())).toEqual({ 'a:x': '1:0:1', 'a:y': '1:3:5' });
    // 4501 in a close frame is final, as over WebSocket.
    g.sse[2]!.send({ t: 'close', code: 4501, reason: 'unauthorized' });
    await waitFor(() => c.state === 'closed', 'closed');
  });

  it('goes back to WebSocket when SSE is not there either', async () => {
    const g = await gateway();
    g.refuseUpgrades = 503;
    const { c, of } = client({ url: g.url, wsFailuresBeforeSse: 2, channels: ['a:x'] });
    c.connect();
    await waitFor(() => of('attempt').length >= 5, 'five attempts');
    expect(
      of('attempt')
        .slice(0, 5)
        .map((a) => a.transport),
    ).toEqual(['websocket', 'websocket', 'sse', 'websocket', 'websocket']);
    g.refuseUpgrades = null;
    await waitFor(() => c.state === 'open', 'open');
    expect(c.transport).toBe('websocket');
  });

  it('uses SSE only, and treats an expired cursor (410) as a reset per channel', async () => {
    const g = await gateway();
    g.onSse = (r) => {
      if (r.url.searchParams.get('cursor')) {
        r.res
          .writeHead(410, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { code: 'cursor_expired', message: 'too old' } }));
        return;
      }
      r.res.writeHead(200, { 'content-type': 'text/event-stream' });
      r.send({ t: 'welcome', node: 'n', region: 'r', heartbeat_s: 32, max_frame_bytes: 4096, user: null, credits: 'unlimited' });
      r.send({ t: 'subscribed', channels: r.url.searchParams.get('channels')!.split(',') });
    };
    const { c, of } = client({ url: g.url, transports: ['sse'], positions: { 'a:x': '1:0:4' } });
    c.connect();
    await c.subscribe('a:x');
    expect(g.sse[0]!.url.searchParams.get('cursor')).toBe('1:0:4');
    expect(of('reset')).toEqual([{ channel: 'a:x', reason: 'cursor_expired', position: null }]);
    expect(g.sse.length).toBe(2);
    expect(c.positions()).toEqual({});
  });
});

describe('SSE through an EventSource class', () => {
  it('reads frames, and reconnects itself with the last event id as the cursor', async () => {
    const made: FakeEventSource[] = [];
    class FakeEventSource {
      readyState = 0;
      onopen: ((ev: unknown) => void) | null = null;
      onmessage: ((ev: { data: string; lastEventId: string }) => void) | null = null;
      onerror: ((ev: unknown) => void) | null = null;
      closed = false;
      constructor(readonly url: string) {
        made.push(this);
        setTimeout(() => {
          this.readyState = 1;
          this.onopen?.({});
          this.emit({ t: 'welcome', node: 'es', region: 'r', heartbeat_s: 32, max_frame_bytes: 4096, user: null, credits: 'unlimited' });
          this.emit({ t: 'subscribed', channels: ['a:x'] });
        }, 5);
      }
      emit(frame: unknown, id = '') {
        this.onmessage?.({ data: JSON.stringify(frame), lastEventId: id });
      }
      addEventListener() {}
      close() {
        this.closed = true;
      }
    }
    const { c, data } = client({ url: 'http://127.0.0.1:1', transports: ['sse'], EventSource: FakeEventSource });
    c.connect();
    await c.subscribe('a:x');
    expect(new URL(made[0]!.url).pathname).toBe('/v1/sse');
    made[0]!.emit(msg('a:x', 3, 'three'), '1:0:3');
    expect(data()).toEqual(['three']);
    made[0]!.onerror?.({}); // the stream broke: the client closes it and reconnects on its own schedule
    expect(made[0]!.closed).toBe(true);
    await waitFor(() => made.length === 2, 'a new EventSource');
    expect(new URL(made[1]!.url).searchParams.get('cursor')).toBe('1:0:3');
    await waitFor(() => c.state === 'open', 'open');
  });
});

describe('router', () => {
  it('asks the router where the user lives, and asks again after wrong_gateway', async () => {
    const [router, wrong, right] = await Promise.all([gateway(), gateway(), gateway()]);
    const asked: URL[] = [];
    router.onHttp = (req, res) => {
      const u = new URL(req.url!, 'http://x');
      if (u.pathname !== '/v1/route') return false;
      asked.push(u);
      const target = asked.length === 1 ? wrong : right;
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          url: target.url,
          ws_url: target.url.replace('http', 'ws') + '/v1/ws',
          node: asked.length === 1 ? 'gw-a' : 'gw-b',
          partition: 3,
          generation: asked.length,
        }),
      );
      return true;
    };
    wrong.onConnection = (conn) => {
      wrong.welcome(conn);
      conn.send({ t: 'error', code: 'wrong_gateway', message: 'user:alice lives elsewhere now' });
    };
    const token = `x.${Buffer.from(JSON.stringify({ sub: 'alice' })).toString('base64url')}.y`;
    const { c, of } = client({ routerUrl: router.url, region: 'eu', token });
    c.connect();
    await c.subscribe('user:alice');
    expect(asked.map((u) => [u.searchParams.get('user'), u.searchParams.get('region')])).toEqual([
      ['alice', 'eu'],
      ['alice', 'eu'],
    ]);
    expect(wrong.conns.length).toBe(1);
    expect(right.conns.length).toBe(1);
    expect(right.conns[0]!.url.searchParams.get('token')).toBe(token);
    expect(of('error')[0]).toMatchObject({ code: 'wrong_gateway', fatal: false });
    expect(c.state).toBe('open');
  });

  it('retries with backoff while the router is down', async () => {
    const router = await gateway();
    let up = false;
    const target = await gateway();
    router.onHttp = (_req, res) => {
      if (!up) res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"code":"not_ready","message":"starting"}}');
      else
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            url: target.url,
            ws_url: target.url.replace('http', 'ws') + '/v1/ws',
            node: 'n',
            partition: 0,
            generation: 1,
          }),
        );
      return true;
    };
    const { c, of } = client({ routerUrl: router.url, user: 'bob' });
    c.connect();
    await waitFor(() => of('error').length >= 2, 'two router errors');
    expect(of('error')[0]).toMatchObject({ code: 'router_unavailable', fatal: false });
    expect(c.state).toBe('reconnecting');
    up = true;
    await waitFor(() => c.state === 'open', 'open');
  });
});
