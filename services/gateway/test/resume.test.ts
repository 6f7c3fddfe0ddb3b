import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@fanout/observability';
import { freePort } from '@fanout/kafka';
import { startGateway, type RunningGateway, type GatewayConfig } from '@fanout/gateway';
import { PublisherClient, type PublishedEvent } from '@fanout/publisher';
import { isSentinel, productionGroupBrokers, SENTINEL, TestClient, uniqueTopics, waitFor } from '../../../test/helpers.js';

// Resume is measured where it must hold: a broker with Kafka's default group settings, where every
// new consumer group's first join waits 3 s (so nothing may create a group per resume).
const brokers = productionGroupBrokers;

const topics = uniqueTopics('resume');
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
let pub: PublisherClient;
const gateways: RunningGateway[] = [];
const clients: TestClient[] = [];
const children: ChildProcess[] = [];

async function gateway(extra: Partial<GatewayConfig> = {}): Promise<RunningGateway> {
  const gw = await startGateway({ brokers: brokers(), port: 0, servePage: false, ...topics, ...extra });
  gateways.push(gw);
  return gw;
}

async function client(url: string): Promise<TestClient> {
  const c = await TestClient.connect(url);
  clients.push(c);
  return c;
}

const seqs = (c: TestClient, ch: string) => c.messages(ch).map((m) => (m.data as { seq: number }).seq);
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

function publish(channel: string, from: number, to: number): Promise<PublishedEvent[]> {
  return pub.publishBatch(range(from, to).map((seq) => ({ channel, data: { seq } })));
}

beforeAll(async () => {
  pub = new PublisherClient({
    brokers: brokers(),
    logger: createLogger('test'),
    topics: { broadcast: topics.topicBroadcast, users: topics.topicUsers },
  });
  await pub.connect();
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const p of children) p.kill('SIGKILL');
  await Promise.all(gateways.map((g) => g.shutdown()));
  await pub?.disconnect();
});

describe('resume from a position', () => {
  it('replays from the in-memory window exactly once, in order, then goes live', async () => {
    const gw = await gateway();
    const a = await client(gw.wsUrl);
    await a.subscribe('news:win');
    const sent = await publish('news:win', 0, 10);
    await waitFor(() => a.messages().length === 10, '10 messages');
    const b = await client(gw.wsUrl);
    expect(await b.request({ op: 'subscribe', channels: ['news:win'], positions: { 'news:win': sent[4]!.position } })).toMatchObject({
      t: 'subscribed',
    });
    await waitFor(() => b.messages().length === 5, 'the 5 missed messages');
    await publish('news:win', 10, 12);
    await waitFor(() => b.messages().length === 7, 'two live messages');
    await pub.publishBatch([{ channel: 'news:win', data: SENTINEL }]);
    const got = await b.beforeSentinel('news:win');
    expect(got.map((m) => (m.data as { seq: number }).seq)).toEqual(range(5, 12));
  });

  it('reads from Kafka what the window no longer holds, with no duplicate at the seam', async () => {
    const gw = await gateway({ windowMaxMessages: 5 });
    const a = await client(gw.wsUrl);
    await a.subscribe('news:deep');
    const sent = await publish('news:deep', 0, 20);
    await waitFor(() => a.messages().length === 20, '20 messages');
    const b = await client(gw.wsUrl);
    await b.request({ op: 'subscribe', channels: ['news:deep'], positions: { 'news:deep': sent[2]!.position } });
    // Live messages published while the replay reads Kafka are held and follow it.
    await publish('news:deep', 20, 25);
    await waitFor(() => b.messages().length === 22, 'messages 3..24', 20_000);
    await pub.publishBatch([{ channel: 'news:deep', data: SENTINEL }]);
    const got = await b.beforeSentinel('news:deep');
    expect(got.map((m) => (m.data as { seq: number }).seq)).toEqual(range(3, 25));
    const metrics = await (await fetch(gw.url + '/metrics')).text();
    expect(metrics).toMatch(/fanout_gateway_resumes_total\{[^}]*source="kafka"[^}]*\} 1/);
  });

  it('resumes positions from before the gateway started from its warmed window, without reading Kafka', async () => {
    const sent = await publish('news:before', 0, 8);
    const gw = await gateway();
    const c = await client(gw.wsUrl);
    await c.request({ op: 'subscribe', channels: ['news:before'], positions: { 'news:before': sent[3]!.position } });
    await waitFor(() => c.messages().length === 4, 'messages 4..7', 20_000);
    await publish('news:before', 8, 10);
    await waitFor(() => c.messages().length === 6, 'two live messages');
    expect(seqs(c, 'news:before')).toEqual(range(4, 10));
    const metrics = await (await fetch(gw.url + '/metrics')).text();
    expect(metrics).toMatch(/fanout_gateway_resumes_total\{[^}]*source="window"[^}]*\} 1/);
    expect(metrics).not.toMatch(/fanout_gateway_replay_reads_total\{/);
  });

  it('resumes positions from before the gateway started from Kafka when warm-up is off', async () => {
    const sent = await publish('news:cold', 0, 8);
    const gw = await gateway({ warmMaxRecords: 0 });
    const c = await client(gw.wsUrl);
    await c.request({ op: 'subscribe', channels: ['news:cold'], positions: { 'news:cold': sent[3]!.position } });
    await waitFor(() => c.messages().length === 4, 'messages 4..7', 20_000);
    expect(seqs(c, 'news:cold')).toEqual(range(4, 8));
    expect(await (await fetch(gw.url + '/metrics')).text()).toMatch(/fanout_gateway_resumes_total\{[^}]*source="kafka"[^}]*\} 1/);
  });

  it('past the warm-up time limit, is ready at once and still gives a resuming client every message once, in order', async () => {
    const sent = await publish('news:slowwarm', 0, 60);
    const gw = await gateway({ warmTimeoutMs: 0 });
    const c = await client(gw.wsUrl);
    await c.request({ op: 'subscribe', channels: ['news:slowwarm'], positions: { 'news:slowwarm': sent[9]!.position } });
    await publish('news:slowwarm', 60, 62);
    await waitFor(() => c.messages().length === 52, 'messages 10..61', 20_000);
    // A sentinel after the last: nothing more (no repeat of the history) arrives before it.
    await publish('news:slowwarm', 62, 63);
    await waitFor(() => c.messages().length >= 53, 'the sentinel');
    expect(seqs(c, 'news:slowwarm')).toEqual(range(10, 63));
  });

  it('serves many concurrent resumes of one partition with shared Kafka reads, each exactly once and in order', async () => {
    const sent = await publish('news:herd', 0, 40);
    const gw = await gateway({ warmMaxRecords: 0 });
    const n = 30;
    const herd = await Promise.all(Array.from({ length: n }, () => client(gw.wsUrl)));
    // Every client resumes from its own position, all at once.
    await Promise.all(
      herd.map((c, i) => c.request({ op: 'subscribe', channels: ['news:herd'], positions: { 'news:herd': sent[i]!.position } })),
    );
    await publish('news:herd', 40, 42);
    for (const [i, c] of herd.entries()) await waitFor(() => c.messages().length === 41 - i, `client ${i}: messages ${i + 1}..41`, 20_000);
    for (const [i, c] of herd.entries()) expect(seqs(c, 'news:herd')).toEqual(range(i + 1, 42));
    const metrics = await (await fetch(gw.url + '/metrics')).text();
    expect(metrics).toMatch(new RegExp(`fanout_gateway_resumes_total\\{[^}]*source="kafka"[^}]*\\} ${n}`));
    const reads = Number(/fanout_gateway_replay_reads_total\{[^}]*stream="broadcast"[^}]*\} (\d+)/.exec(metrics)?.[1]);
    // One read, plus at most one more for the resumes that arrived after it had passed their start.
    expect(reads).toBeGreaterThanOrEqual(1);
    expect(reads).toBeLessThanOrEqual(2);
  });

  it('answers resumes beyond the waiting bound with an explicit reset replay_busy, and serves the others', async () => {
    const sent = await publish('news:busy', 0, 20);
    const gw = await gateway({ warmMaxRecords: 0, replayMaxWaiting: 2 });
    const herd = await Promise.all(Array.from({ length: 6 }, () => client(gw.wsUrl)));
    await Promise.all(
      herd.map((c) => c.request({ op: 'subscribe', channels: ['news:busy'], positions: { 'news:busy': sent[0]!.position } })),
    );
    for (const c of herd)
      await waitFor(() => c.messages().length === 19 || c.frames.some((f) => f.t === 'reset'), 'each client served or reset', 20_000);
    const reset = herd.filter((c) => c.frames.some((f) => f.t === 'reset'));
    const served = herd.filter((c) => c.messages().length === 19);
    expect(reset.length + served.length).toBe(6);
    expect(served.length).toBeGreaterThanOrEqual(2);
    expect(reset.length).toBeGreaterThanOrEqual(1);
    for (const c of reset) expect(c.frames.find((f) => f.t === 'reset')).toMatchObject({ ch: 'news:busy', reason: 'replay_busy' });
    for (const c of served) expect(seqs(c, 'news:busy')).toEqual(range(1, 20));
  });

  it('does not resend what a client already has when it resumes from a position this gateway has not reached', async () => {
    const gw = gateways[0]!;
    const a = await client(gw.wsUrl);
    await a.subscribe('news:ahead');
    const sent = await publish('news:ahead', 0, 3);
    await waitFor(() => a.messages().length === 3, '3 messages');
    // A position two offsets ahead on the channel's partition: as if another gateway were ahead.
    const [e, p, o] = sent[2]!.position.split(':');
    const b = await client(gw.wsUrl);
    await b.request({ op: 'subscribe', channels: ['news:ahead'], positions: { 'news:ahead': `${e}:${p}:${Number(o) + 2}` } });
    await publish('news:ahead', 3, 8);
    await waitFor(() => a.messages().length === 8, 'the 5 new messages at the first client');
    await waitFor(() => b.messages().length === 3, 'the messages after the position');
    expect(seqs(b, 'news:ahead')).toEqual([5, 6, 7]);
  });

  it('sends an explicit reset beyond the replay limit, on an epoch change or a partition change, and stays live', async () => {
    const gw = await gateway({ windowMaxMessages: 2, replayMaxOffsets: 5 });
    const a = await client(gw.wsUrl);
    await a.subscribe('news:far');
    const sent = await publish('news:far', 0, 20);
    await waitFor(() => a.messages().length === 20, '20 messages');
    const [e, p, o] = sent[0]!.position.split(':');
    const cases: [string, string][] = [
      [sent[0]!.position, 'beyond_replay_limit'],
      [`${e}x:${p}:${o}`, 'epoch_changed'],
      [`${e}:${(Number(p) + 1) % 6}:${o}`, 'partition_changed'],
    ];
    for (const [position, reason] of cases) {
      const c = await client(gw.wsUrl);
      await c.request({ op: 'subscribe', channels: ['news:far'], positions: { 'news:far': position } });
      const reset = await waitFor(() => c.frames.find((f) => f.t === 'reset'), 'a reset frame');
      expect(reset).toEqual({ t: 'reset', ch: 'news:far', reason, position: sent[19]!.position });
      expect(c.messages()).toHaveLength(0);
    }
    const c = clients.at(-1)!;
    await publish('news:far', 20, 21);
    await waitFor(() => c.messages().length === 1, 'the next live message');
  });

  it('answers a malformed position with invalid_position and subscribes nothing', async () => {
    const gw = gateways[0]!;
    const c = await client(gw.wsUrl);
    expect(await c.request({ op: 'subscribe', channels: ['news:x'], positions: { 'news:x': 'yesterday' } })).toMatchObject({
      t: 'error',
      code: 'invalid_position',
    });
    expect(await c.request({ op: 'subscribe', channels: ['news:x'], positions: { 'news:other': '1:0:1' } })).toMatchObject({
      t: 'error',
      code: 'invalid_position',
    });
    expect(gw.hub.connections.size).toBeGreaterThan(0);
  });
});

describe('a gateway killed mid-stream', () => {
  it('the client reconnects to the other gateway and receives every message exactly once, in order', async () => {
    const ports = [await freePort(), await freePort()];
    const start = (port: number, node: string) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'services/gateway/src/main.ts', '--region', 'eu', '--node', node], {
        cwd: ROOT,
        env: {
          ...process.env,
          FANOUT_BROKERS: brokers().join(','),
          FANOUT_PORT: String(port),
          FANOUT_TOPIC_BROADCAST: topics.topicBroadcast,
          FANOUT_TOPIC_USERS: topics.topicUsers,
        },
        stdio: 'ignore',
      });
      children.push(child);
      return child;
    };
    const ready = async (port: number) => {
      const deadline = Date.now() + 60_000;
      while (
        (await fetch(`http://127.0.0.1:${port}/readyz`).then(
          (r) => r.status,
          () => 0,
        )) !== 200
      ) {
        if (Date.now() > deadline) throw new Error(`gateway on ${port} not ready`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const [g1, g2] = [start(ports[0]!, 'gw-kill-1'), start(ports[1]!, 'gw-kill-2')];
    await Promise.all(ports.map(ready));

    // The client: remembers its last position, and on any close reconnects to the other gateway.
    const received: number[] = [];
    let sentinels = 0;
    let last: string | undefined;
    let current = await client(`ws://127.0.0.1:${ports[0]}/v1/ws`);
    const attach = async (c: TestClient) => {
      c.ws.on('message', (d) => {
        const f = JSON.parse(d.toString());
        if (f.t === 'msg' && isSentinel(f.data)) sentinels++;
        else if (f.t === 'msg') {
          received.push(f.data.seq);
          last = f.pos;
        }
      });
      await c.request({ op: 'subscribe', channels: ['news:kill'], ...(last ? { positions: { 'news:kill': last } } : {}) });
    };
    await attach(current);

    const total = 300;
    const publishing = (async () => {
      for (let i = 0; i < total; i += 10) {
        await publish('news:kill', i, i + 10);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await waitFor(() => received.length >= 60, 'the stream to be under way');
    g1.kill('SIGKILL');
    await current.closed();
    current = await client(`ws://127.0.0.1:${ports[1]}/v1/ws`);
    await attach(current);
    await publishing;
    await waitFor(() => received.length >= total, `all ${total} messages`, 30_000);
    // A duplicate after the reconnect would come before the sentinel (one channel, in order).
    await pub.publishBatch([{ channel: 'news:kill', data: SENTINEL }]);
    await waitFor(() => sentinels > 0, 'the sentinel');
    expect(received).toEqual(range(0, total));
    g2.kill('SIGTERM');
  }, 120_000);
});
