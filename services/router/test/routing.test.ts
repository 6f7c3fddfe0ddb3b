import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Partitioners } from 'kafkajs';
import WebSocket from 'ws';
import { signConnectToken } from '@fanout/auth';
import { createLogger } from '@fanout/observability';
import { startGateway, type RunningGateway } from '@fanout/gateway';
import { PublisherClient } from '@fanout/publisher';
import { startRouter, type RunningRouter, type Route } from '@fanout/router';
import { isSentinel, productionGroupBrokers, SENTINEL, TestClient, uniqueTopics, waitFor } from '../../../test/helpers.js';

// Rebalances are tested where they must hold: a broker with Kafka's default group settings.
const brokers = productionGroupBrokers;

const SECRET = 'router-test-secret-0123456789-abcdefgh';
const t = uniqueTopics('route');
const topics = { topicBroadcast: t.topicBroadcast, topicUsers: t.topicUsers };
const groupIdTemplate = `${t.userGroupId}-{region}`;
let pub: PublisherClient;
let router: RunningRouter;
const gateways: RunningGateway[] = [];

async function gateway(region: string, node: string): Promise<RunningGateway> {
  const gw = await startGateway({
    brokers: brokers(),
    port: 0,
    region,
    node,
    servePage: false,
    tokenSecret: SECRET,
    userGroupId: groupIdTemplate.replace('{region}', region),
    groupRefreshMs: 300,
    drainJitterMs: 100,
    drainDelayMs: 300,
    ...topics,
  });
  gateways.push(gw);
  return gw;
}

async function route(user: string, region: string): Promise<{ status: number; body: Route & { error?: { code: string } } }> {
  const res = await fetch(`${router.url}/v1/route?user=${encodeURIComponent(user)}&region=${region}`);
  return { status: res.status, body: (await res.json()) as Route & { error?: { code: string } } };
}

/** Waits until the router names an owner for every partition in each region. */
async function settled(regions: string[], gatewaysPerRegion: number): Promise<void> {
  await waitFor(
    async () => {
      const s = (await (await fetch(`${router.url}/v1/status`)).json()) as {
        regions: { region: string; state: string; unowned_partitions: number; gateways: unknown[] }[];
      };
      const groupsStable = s.regions
        .filter((r) => regions.includes(r.region))
        .every((r) => r.state === 'Stable' && r.unowned_partitions === 0 && r.gateways.length === gatewaysPerRegion);
      if (!groupsStable) return false;
      // And every gateway has taken up what Kafka assigned it (its start offsets are known).
      const live = gateways.filter((g) => regions.includes(g.config.region) && g.health.ready);
      return regions.every(
        (region) => live.filter((g) => g.config.region === region).reduce((n, g) => n + g.users.ownedPartitions.length, 0) === 12,
      );
    },
    'the regions to settle',
    30_000,
  );
}

/**
 * A client for one user in one region that behaves as the SDK does: asks the router, connects,
 * subscribes with its last position, and on a reconnect frame, a close or wrong_gateway, asks again.
 */
class UserClient {
  readonly seqs: number[] = [];
  readonly nodes: string[] = [];
  readonly closes: number[] = [];
  /** Subscribed frames and sentinel messages (see SENTINEL) received; sentinels are kept out of seqs. */
  subscribed = 0;
  sentinels = 0;
  private last: string | undefined;
  private stopped = false;
  private ws: WebSocket | null = null;

  constructor(
    private readonly user: string,
    private readonly region: string,
    private readonly token: string,
  ) {}

  async run(): Promise<void> {
    while (!this.stopped) {
      const r = await route(this.user, this.region).catch(() => null);
      if (!r || r.status !== 200) {
        await new Promise((res) => setTimeout(res, 150));
        continue;
      }
      await this.session(r.body).catch(() => {});
      if (!this.stopped) await new Promise((res) => setTimeout(res, 100 + Math.random() * 100));
    }
  }

  private session(r: Route): Promise<void> {
    return new Promise((resolve) => {
      const ws = new WebSocket(`${r.ws_url}?token=${this.token}`);
      this.ws = ws;
      const channel = `user:${this.user}`;
      ws.on('message', (d) => {
        const f = JSON.parse(d.toString());
        if (f.t === 'welcome') {
          this.nodes.push(f.node);
          ws.send(
            JSON.stringify({ op: 'subscribe', id: 1, channels: [channel], ...(this.last ? { positions: { [channel]: this.last } } : {}) }),
          );
        } else if (f.t === 'subscribed') {
          this.subscribed++;
        } else if (f.t === 'msg') {
          if (isSentinel(f.data)) this.sentinels++;
          else this.seqs.push(f.data.seq);
          this.last = f.pos;
        } else if (f.t === 'error' && f.code === 'wrong_gateway') {
          ws.close();
        } else if (f.t === 'reconnect') {
          ws.close();
        }
      });
      ws.on('close', (code) => {
        this.closes.push(code);
        resolve();
      });
      ws.on('error', () => resolve());
    });
  }

  stop(): void {
    this.stopped = true;
    this.ws?.close();
  }
}

beforeAll(async () => {
  pub = new PublisherClient({
    brokers: brokers(),
    logger: createLogger('test'),
    topics: { broadcast: topics.topicBroadcast, users: topics.topicUsers },
  });
  await pub.connect();
  router = await startRouter({
    brokers: brokers(),
    port: 0,
    regions: ['eu', 'us'],
    groupIdTemplate,
    topicUsers: topics.topicUsers,
    refreshMs: 200,
    infoRefreshMs: 500,
  });
  await Promise.all([gateway('eu', 'gw-eu-0'), gateway('eu', 'gw-eu-1'), gateway('us', 'gw-us-0'), gateway('us', 'gw-us-1')]);
  await settled(['eu', 'us'], 2);
}, 120_000);

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.shutdown()));
  await router?.shutdown();
  await pub?.disconnect();
});

describe('the router', () => {
  it("names the partition Kafka's default partitioner gives the user id", async () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    const partitionMetadata = Array.from({ length: 12 }, (_, i) => ({
      partitionId: i,
      leader: 0,
      partitionErrorCode: 0,
      replicas: [0],
      isr: [0],
    }));
    for (const user of ['1', '42', 'alice', 'user-9000', 'x.y@z']) {
      const r = await route(user, 'eu');
      expect(r.status).toBe(200);
      expect(r.body.partition).toBe(kafkajs({ topic: topics.topicUsers, partitionMetadata, message: { key: user, value: null } }));
    }
  });

  it('answers unknown regions and bad user ids with their codes, and exposes its metrics', async () => {
    expect(await route('42', 'mars')).toMatchObject({ status: 404, body: { error: { code: 'unknown_region' } } });
    expect(await route('not ok', 'eu')).toMatchObject({ status: 400, body: { error: { code: 'invalid_parameter' } } });
    const metrics = await (await fetch(`${router.url}/metrics`)).text();
    expect(metrics).toMatch(/fanout_router_lookups_total\{[^}]*outcome="unknown_region"[^}]*\} 1/);
    expect(metrics).toMatch(/fanout_router_gateways\{[^}]*region="eu"[^}]*\} 2/);
    expect(metrics).toMatch(/fanout_router_lookup_seconds_bucket/);
    const page = await (await fetch(router.url + '/')).text();
    expect(page).toMatch(/fanout router/);
  });
});

describe('user channels', () => {
  it('delivers an event for a user once in each region, at the gateway the router names; the other gateway refuses with wrong_gateway', async () => {
    const user = 'alice';
    const token = await signConnectToken(SECRET, { sub: user });
    const received: Record<string, TestClient> = {};
    for (const region of ['eu', 'us']) {
      const r = await route(user, region);
      expect(r.status).toBe(200);
      const owner = gateways.find((g) => g.config.node === r.body.node)!;
      const other = gateways.find((g) => g.config.region === region && g !== owner)!;
      const c = await TestClient.connect(`${owner.wsUrl}?token=${token}`);
      expect(await c.subscribe(`user:${user}`)).toMatchObject({ t: 'subscribed' });
      received[region] = c;
      const wrong = await TestClient.connect(`${other.wsUrl}?token=${token}`);
      const err = await wrong.subscribe(`user:${user}`);
      expect(err).toMatchObject({ t: 'error', code: 'wrong_gateway' });
      expect((err as { message: string }).message).toContain(owner.url);
      wrong.close();
    }
    const [sent] = await pub.publishBatch([{ channel: `user:${user}`, data: { hello: 1 } }]);
    for (const region of ['eu', 'us']) {
      await waitFor(() => received[region]!.messages().length === 1, `the event in ${region}`);
      expect(received[region]!.messages()[0]).toMatchObject({ ch: `user:${user}`, id: sent!.id });
    }
    // A second copy in either region would come before the sentinel (one channel, in order).
    await pub.publishBatch([{ channel: `user:${user}`, data: SENTINEL }]);
    for (const region of ['eu', 'us']) {
      expect(await received[region]!.beforeSentinel(`user:${user}`)).toHaveLength(1);
      received[region]!.close();
    }
  });

  it("refuses another user's channel and a token for nobody", async () => {
    const r = await route('bob', 'eu');
    const owner = gateways.find((g) => g.config.node === r.body.node)!;
    const c = await TestClient.connect(`${owner.wsUrl}?token=${await signConnectToken(SECRET, { sub: 'alice' })}`);
    expect(await c.subscribe('user:bob')).toMatchObject({ t: 'error', code: 'forbidden_channel' });
    c.close();
  });

  it('stopping a gateway and starting another moves partitions; redirected clients lose nothing', async () => {
    // Users spread over the partitions, so that some move whichever gateway stops.
    const users = Array.from({ length: 8 }, (_, i) => `u${i}`);
    const clients = await Promise.all(users.map(async (u) => new UserClient(u, 'eu', await signConnectToken(SECRET, { sub: u }))));
    const running = clients.map((c) => c.run());
    await waitFor(() => clients.every((c) => c.nodes.length > 0), 'every client connected');
    await waitFor(() => clients.every((c) => c.subscribed > 0), 'every client subscribed');

    const total = 150;
    const publishing = (async () => {
      for (let seq = 0; seq < total; seq++) {
        await pub.publishBatch(users.map((u) => ({ channel: `user:${u}`, data: { seq } })));
        await new Promise((r) => setTimeout(r, 40));
      }
    })();
    await waitFor(() => clients.every((c) => c.seqs.length >= 20), 'the stream to be under way at every client', 30_000);
    const leaving = gateways.find((g) => g.config.node === 'gw-eu-0')!;
    await leaving.shutdown();
    await settled(['eu'], 1);
    await gateway('eu', 'gw-eu-2');
    await settled(['eu'], 2);
    await publishing;
    await waitFor(() => clients.every((c) => c.seqs.length >= total), 'every event at every client', 60_000);
    // A repeat would come before its user's sentinel (one channel, one partition, in order).
    await pub.publishBatch(users.map((u) => ({ channel: `user:${u}`, data: SENTINEL })));
    await waitFor(() => clients.every((c) => c.sentinels > 0), 'every sentinel at every client', 30_000);
    for (const c of clients) c.stop();
    await Promise.all(running);

    const expected = Array.from({ length: total }, (_, i) => i);
    for (const c of clients) expect(c.seqs).toEqual(expected);
    // Some clients were moved by the rebalance, not only by the shutdown.
    const redirected = clients.filter((c) => c.closes.includes(4002));
    expect(redirected.length).toBeGreaterThan(0);
    expect(clients.some((c) => c.nodes.includes('gw-eu-2'))).toBe(true);
    // The gateways that gained partitions warmed their windows first: the moved clients resumed
    // from memory, none read Kafka on its own, none was reset.
    for (const g of gateways.filter((x) => x.config.region === 'eu' && x.health.ready)) {
      const metrics = await (await fetch(g.url + '/metrics')).text();
      expect(metrics, g.config.node).not.toMatch(/fanout_gateway_resumes_total\{[^}]*source="(kafka|reset)"/);
    }
  }, 120_000);
});
