import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@fanout/observability';
import { startGateway, type RunningGateway, type GatewayConfig } from '@fanout/gateway';
import { PublisherClient, type PublishedEvent } from '@fanout/publisher';
import { brokers, TestClient, uniqueTopics, waitFor } from '../../../test/helpers.js';

const topics = uniqueTopics('flow');
const quiet = createLogger('test', {});
let pub: PublisherClient;
let roomy: RunningGateway; // default queue bounds
let tight: RunningGateway; // 5-message queues, no unlimited credits
let budgeted: RunningGateway; // a small gateway-wide memory budget
const clients: TestClient[] = [];

const policies = ['prices=conflate', 'news=drop', 'orders=disconnect'];

async function gateway(extra: Partial<GatewayConfig>): Promise<RunningGateway> {
  return startGateway({
    brokers: brokers(),
    port: 0,
    servePage: false,
    queuePolicies: policies,
    topicBroadcast: topics.topicBroadcast,
    topicUsers: topics.topicUsers,
    ...extra,
  });
}

async function client(gw: RunningGateway, query = ''): Promise<TestClient> {
  const c = await TestClient.connect(gw.wsUrl + query);
  clients.push(c);
  return c;
}

function publish(channel: string, count: number, data: (i: number) => unknown = (i) => ({ seq: i })): Promise<PublishedEvent[]> {
  return pub.publishBatch(Array.from({ length: count }, (_, i) => ({ channel, data: data(i) })));
}

/** A client with unlimited credits on the same channel: once it has `n` messages, the gateway has dispatched them. */
async function witness(gw: RunningGateway, channel: string): Promise<TestClient> {
  const w = await client(gw);
  await w.subscribe(channel);
  return w;
}

beforeAll(async () => {
  pub = new PublisherClient({ brokers: brokers(), logger: quiet, topics: { broadcast: topics.topicBroadcast, users: topics.topicUsers } });
  await pub.connect();
  [roomy, tight, budgeted] = await Promise.all([
    gateway({}),
    gateway({ queueMaxMessages: 5, allowUnlimitedCredits: false, initialCredits: '100' }),
    gateway({ memoryBudgetBytes: 64 * 1024, queueMaxBytes: 40 * 1024, shedAfterMs: 200 }),
  ]);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all([roomy?.shutdown(), tight?.shutdown(), budgeted?.shutdown()]);
  await pub?.disconnect();
});

describe('credits', () => {
  it('a client that granted 10 credits receives exactly 10 until it grants more', async () => {
    const c = await client(roomy, '?credits=0');
    expect(c.frames[0]).toMatchObject({ t: 'welcome', credits: 0 });
    const w = await witness(roomy, 'news:credits');
    await c.subscribe('news:credits');
    await publish('news:credits', 30);
    await waitFor(() => w.messages().length === 30, 'the witness to get all 30');
    expect(c.messages()).toHaveLength(0);
    expect(await c.request({ op: 'credit', n: 10 })).toMatchObject({ t: 'credits' });
    await waitFor(() => c.messages().length === 10, '10 messages');
    // A round trip: the gateway has handled everything the client sent before this ping.
    expect(await c.request({ op: 'ping' })).toMatchObject({ t: 'pong' });
    expect(c.messages()).toHaveLength(10);
    await c.request({ op: 'credit', n: 5 });
    await waitFor(() => c.messages().length === 15, '15 messages');
    // One more credit is the sentinel: the 20 still queued wait for credits, so the next to arrive is
    // seq 15; a message sent beyond the credits before it would show as 16 messages or a seq out of place.
    await c.request({ op: 'credit', n: 1 });
    await waitFor(() => c.messages().find((m) => (m.data as { seq: number }).seq === 15), 'seq 15');
    expect(c.messages().map((m) => (m.data as { seq: number }).seq)).toEqual(Array.from({ length: 16 }, (_, i) => i));
  });

  it.each([
    ['a negative grant', { op: 'credit', n: -5 }],
    ['a zero grant', { op: 'credit', n: 0 }],
    ['a fractional grant', { op: 'credit', n: 1.5 }],
    ['a string grant', { op: 'credit', n: '10' }],
    ['an enormous grant', { op: 'credit', n: 1e12 }],
    ['no amount', { op: 'credit' }],
    ['extra fields', { op: 'credit', n: 5, unlimited: true }],
  ])('%s gets invalid_credit and changes nothing', async (_name, frame) => {
    const c = await client(roomy, '?credits=3');
    expect(await c.request(frame)).toMatchObject({ t: 'error', code: 'invalid_credit' });
    expect(await c.request({ op: 'credit', n: 1 })).toMatchObject({ t: 'credits', credits: 4 });
  });

  it('refuses unlimited credits where the server does not allow them', async () => {
    const c = await client(tight, '?credits=unlimited');
    expect(c.frames[0]).toMatchObject({ t: 'welcome', credits: 100 });
    await waitFor(() => c.errors()[0], 'an error frame');
    expect(c.errors()[0]!.code).toBe('unlimited_not_allowed');
    expect(await c.request({ op: 'credit', unlimited: true })).toMatchObject({ t: 'error', code: 'unlimited_not_allowed' });
    const open = await client(roomy, '?credits=0');
    expect(await open.request({ op: 'credit', unlimited: true })).toMatchObject({ t: 'credits', credits: 'unlimited' });
  });
});

describe('queue policies', () => {
  it('conflate delivers only the latest value per key to a stalled client, and nothing stale after it', async () => {
    const c = await client(roomy, '?credits=0');
    const w = await witness(roomy, 'prices:*');
    await c.subscribe('prices:AAA', 'prices:BBB');
    await Promise.all([publish('prices:AAA', 20), publish('prices:BBB', 20)]);
    await waitFor(() => w.messages().length === 40, 'the witness to get all 40');
    await c.request({ op: 'credit', n: 100 });
    await waitFor(() => c.messages().length === 2, 'one message per key');
    expect(
      c
        .messages()
        .map((m) => [m.ch, (m.data as { seq: number }).seq])
        .sort(),
    ).toEqual([
      ['prices:AAA', 19],
      ['prices:BBB', 19],
    ]);
    // With credits the client flows again: later ticks arrive, all newer than what it saw. They are
    // also the sentinels: a stale value of either key would come before them on its channel.
    await Promise.all([publish('prices:AAA', 3, (i) => ({ seq: 100 + i })), publish('prices:BBB', 1, () => ({ seq: 200 }))]);
    await waitFor(() => c.messages('prices:AAA').length >= 4 && c.messages('prices:BBB').length >= 2, 'three more AAA ticks, one BBB');
    expect(c.messages('prices:AAA').map((m) => (m.data as { seq: number }).seq)).toEqual([19, 100, 101, 102]);
    expect(c.messages('prices:BBB').map((m) => (m.data as { seq: number }).seq)).toEqual([19, 200]);
  });

  it('drop keeps the newest, and tells the client the exact position range it missed', async () => {
    const c = await client(tight, '?credits=0');
    const w = await witness(tight, 'news:drop');
    await c.subscribe('news:drop');
    const sent = await publish('news:drop', 20);
    await waitFor(() => w.messages().length === 20, 'the witness to get all 20');
    await c.request({ op: 'credit', n: 100 });
    await waitFor(() => c.messages().length === 5, 'the 5 newest');
    const gap = c.frames.find((f) => f.t === 'gap');
    expect(gap).toEqual({ t: 'gap', ch: 'news:drop', from: sent[0]!.position, to: sent[14]!.position, count: 15 });
    // The gap notice comes before the messages that survived.
    expect(c.frames.indexOf(gap!)).toBeLessThan(c.frames.indexOf(c.messages()[0]!));
    expect(c.messages().map((m) => m.pos)).toEqual(sent.slice(15).map((s) => s.position));
  });

  it('disconnect closes a client whose queue overflows with 4001, and the client can reconnect and go on', async () => {
    const c = await client(tight, '?credits=0');
    await c.subscribe('orders:desk-1');
    await publish('orders:desk-1', 10);
    expect(await c.closed()).toBe(4001);
    expect(c.closeReason).toBe('slow consumer');
    const again = await client(tight);
    await again.subscribe('orders:desk-1');
    const [next] = await publish('orders:desk-1', 1, () => 'after');
    await waitFor(() => again.messages().length === 1, 'the next order');
    expect(again.messages()[0]).toMatchObject({ pos: next!.position, data: 'after' });
  });
});

describe('a slow client never hurts the others', () => {
  it('a client that stops reading its socket does not delay a fast client or grow without bound', async () => {
    const fast = await client(roomy);
    const slow = await client(roomy);
    await fast.subscribe('news:bulk');
    await slow.subscribe('news:bulk');
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const pad = 'x'.repeat(2000);
    const total = 3000;
    let maxQueued = 0;
    const sampler = setInterval(() => (maxQueued = Math.max(maxQueued, roomy.budget.used)), 5);
    for (let i = 0; i < total; i += 500) await publish('news:bulk', 500, (j) => ({ seq: i + j, pad }));
    await waitFor(() => fast.messages().length === total, `the fast client to get all ${total}`, 30_000);
    clearInterval(sampler);
    expect(fast.messages().map((m) => (m.data as { seq: number }).seq)).toEqual(Array.from({ length: total }, (_, i) => i));
    // The slow one holds at most its own bounded queue (4 MiB by default), and Kafka never paused.
    expect(maxQueued).toBeLessThanOrEqual(roomy.config.queueMaxBytes + 4096);
    expect(roomy.budget.pauses).toBe(0);
    const metrics = await (await fetch(roomy.url + '/metrics')).text();
    expect(metrics).toMatch(/fanout_gateway_socket_stalls_total\{[^}]*\} [1-9]/);
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
  }, 60_000);
});

describe('the gateway-wide memory budget', () => {
  it('pauses Kafka when stalled queues reach it, sheds the largest queues by policy, then resumes', async () => {
    const fast = await client(budgeted);
    await fast.subscribe('news:mem');
    const stalled = await Promise.all([0, 1, 2, 3].map(() => client(budgeted, '?credits=0')));
    for (const s of stalled) await s.subscribe('news:mem');
    const pad = 'y'.repeat(1000);
    const sent = await publish('news:mem', 100, (i) => ({ seq: i, pad }));
    await waitFor(() => budgeted.budget.pauses >= 1, 'the budget to pause consumption');
    await waitFor(() => !budgeted.budget.paused, 'consumption to resume', 10_000);
    expect(budgeted.budget.used).toBeLessThanOrEqual(64 * 1024 * 0.8);
    // Consumption went on: the fast client gets everything, including what came after the pause.
    const more = await publish('news:mem', 10, (i) => ({ seq: 100 + i }));
    await waitFor(() => fast.messages().length === 110, 'all 110 messages at the fast client', 15_000);
    expect(fast.messages().at(-1)!.pos).toBe(more.at(-1)!.position);
    // A shed client learns what it missed.
    const shedOne = stalled.find((s) => s.closeCode === null)!;
    await shedOne.request({ op: 'credit', n: 1000 });
    const gap = await waitFor(() => shedOne.frames.find((f) => f.t === 'gap'), 'a gap frame');
    expect(gap).toMatchObject({ ch: 'news:mem', from: sent[0]!.position });
    const metrics = await (await fetch(budgeted.url + '/metrics')).text();
    expect(metrics).toMatch(/fanout_gateway_memory_budget_pauses_total\{[^}]*\} [1-9]/);
    expect(metrics).toMatch(/fanout_gateway_dropped_total\{[^}]*\} [1-9]/);
  }, 60_000);
});
