import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '@fanout/gateway';
import { startPublisher, type RunningPublisher } from '@fanout/publisher';
import { brokers, isSentinel, SENTINEL, TestClient, uniqueTopics, waitFor } from '../../../test/helpers.js';

const KEY = 'test-key-0123456789';
const topics = uniqueTopics('fanout');
let pub: RunningPublisher;
let eu: RunningGateway;
let us: RunningGateway;
const clients: TestClient[] = [];

async function client(gw: RunningGateway): Promise<TestClient> {
  const c = await TestClient.connect(gw.wsUrl);
  clients.push(c);
  return c;
}

async function publish(events: { channel: string; data: unknown }[]): Promise<{ results: { id: string; position: string }[] }> {
  const res = await fetch(pub.url + '/v1/publish/batch', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ events }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { results: { id: string; position: string }[] };
}

beforeAll(async () => {
  pub = await startPublisher({ brokers: brokers(), apiKeys: [KEY], port: 0, ...topics });
  [eu, us] = await Promise.all([
    startGateway({ brokers: brokers(), port: 0, region: 'eu', node: 'gw-eu-0', servePage: false, lagProbeMs: 200, ...topics }),
    startGateway({ brokers: brokers(), port: 0, region: 'us', node: 'gw-us-0', servePage: false, ...topics }),
  ]);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all([eu?.shutdown(), us?.shutdown()]);
  await pub?.shutdown();
});

describe('fan-out from Kafka to WebSocket clients', () => {
  it('delivers an event published over HTTP to clients in both regions, in order per channel', async () => {
    const [a, b, c] = await Promise.all([client(eu), client(eu), client(us)]);
    for (const x of [a, b, c]) expect(await x.subscribe('prices:AAPL')).toMatchObject({ t: 'subscribed', channels: ['prices:AAPL'] });
    const events = Array.from({ length: 60 }, (_, i) => ({ channel: 'prices:AAPL', data: { seq: i } }));
    const { results } = await publish(events);
    for (const x of [a, b, c]) {
      const got = await waitFor(() => (x.messages('prices:AAPL').length >= 60 ? x.messages('prices:AAPL') : undefined), '60 messages');
      expect(got.map((m) => (m.data as { seq: number }).seq)).toEqual(events.map((_, i) => i));
      expect(got.map((m) => m.id)).toEqual(results.map((r) => r.id));
      expect(got.map((m) => m.pos)).toEqual(results.map((r) => r.position));
      expect(got[0]!.ts).toBeGreaterThan(Date.now() - 60_000);
    }
    expect(a.messages().length).toBe(60);
  });

  it('delivers only subscribed channels, and stops after unsubscribe', async () => {
    const x = await client(eu);
    await x.subscribe('news:sports');
    await publish([
      { channel: 'news:sports', data: 1 },
      { channel: 'news:weather', data: 2 },
    ]);
    await waitFor(() => x.messages('news:sports').length === 1, 'the first sports message');
    expect(await x.request({ op: 'unsubscribe', channels: ['news:sports'] })).toMatchObject({ t: 'unsubscribed' });
    await publish([{ channel: 'news:sports', data: 3 }]);
    // A second subscriber proves the later message was delivered by the gateway, just not to x.
    const y = await client(eu);
    await y.subscribe('news:sports');
    await publish([{ channel: 'news:sports', data: 4 }]);
    await waitFor(() => y.messages('news:sports').length === 1, 'the control subscriber');
    expect(x.messages().map((m) => m.data)).toEqual([1]);
  });

  it('delivers a whole namespace to a wildcard subscription, once even with an exact subscription too', async () => {
    const x = await client(us);
    await x.subscribe('fx:*', 'fx:EURUSD');
    // A control subscriber of other:1 proves that record was dispatched, just not to x.
    const y = await client(us);
    await y.subscribe('other:1');
    await publish([
      { channel: 'fx:EURUSD', data: 'e' },
      { channel: 'fx:GBPUSD', data: 'g' },
      { channel: 'other:1', data: 'o' },
    ]);
    await waitFor(() => x.messages().length >= 2, 'two fx messages');
    await waitFor(() => y.messages('other:1').length === 1, 'the control subscriber');
    // A second copy of either fx message would come before that channel's sentinel.
    await publish([
      { channel: 'fx:EURUSD', data: SENTINEL },
      { channel: 'fx:GBPUSD', data: SENTINEL },
    ]);
    await Promise.all([x.beforeSentinel('fx:EURUSD'), x.beforeSentinel('fx:GBPUSD')]);
    expect(
      x
        .messages()
        .filter((m) => !isSentinel(m.data))
        .map((m) => m.ch)
        .sort(),
    ).toEqual(['fx:EURUSD', 'fx:GBPUSD']);
  });
});

describe('bad frames get an error frame with a stable code, and the connection survives', () => {
  it.each([
    ['not JSON', 'hello', 'bad_frame'],
    ['no op', '{"channels":["a:b"]}', 'bad_frame'],
    ['an unknown op', '{"op":"launch","id":5}', 'unknown_op'],
    ['a bad channel', '{"op":"subscribe","channels":["Bad Channel"]}', 'invalid_channel'],
    ['an oversize frame', JSON.stringify({ op: 'subscribe', channels: ['a:b'], pad: 'x'.repeat(10_000) }), 'frame_too_large'],
    ['a user channel without a token', '{"op":"subscribe","channels":["user:1"]}', 'forbidden_channel'],
  ])('%s', async (_name, text, code) => {
    const x = await client(eu);
    x.ws.send(text);
    const err = await waitFor(() => x.errors()[0], 'an error frame');
    expect(err.code).toBe(code);
    expect(err.message.length).toBeGreaterThan(10);
    expect(await x.request({ op: 'ping' })).toMatchObject({ t: 'pong' });
    expect(x.closeCode).toBeNull();
  });

  it('closes a client that keeps sending garbage with 4500 (protocol violation)', async () => {
    const x = await client(eu);
    for (let i = 0; i < 60; i++) x.ws.send('garbage');
    expect(await x.closed()).toBe(4500);
  });

  it('exposes connections and deliveries on /metrics and readiness on /readyz', async () => {
    expect((await fetch(eu.url + '/readyz')).status).toBe(200);
    const text = await (await fetch(eu.url + '/metrics')).text();
    expect(text).toMatch(/fanout_gateway_connections\{[^}]*transport="websocket"[^}]*\} [1-9]/);
    expect(text).toMatch(/fanout_gateway_deliveries_total\{[^}]*\} [1-9]/);
    expect(text).not.toMatch(/prices:AAPL/);
    // Everything published so far was dispatched: no lag on either stream.
    await waitFor(
      async () =>
        /fanout_gateway_kafka_lag_messages\{[^}]*stream="broadcast"[^}]*\} 0\n/.test(await (await fetch(eu.url + '/metrics')).text()),
      'the lag gauge at 0',
      5000,
    );
    expect(await (await fetch(eu.url + '/metrics')).text()).toMatch(/fanout_gateway_kafka_lag_messages\{[^}]*stream="users"[^}]*\} 0\n/);
  });
});
