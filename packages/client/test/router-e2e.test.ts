/**
 * User channels end to end: the SDK asks the real router (services/router) where each user lives,
 * connects to that gateway, and follows a rolling change of the region's gateways (one stops, one
 * starts, partitions move) without losing or repeating an event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { signConnectToken } from '@fanout/auth';
import { createLogger } from '@fanout/observability';
import { startGateway, type RunningGateway } from '@fanout/gateway';
import { PublisherClient } from '@fanout/publisher';
import { startRouter, type RunningRouter } from '@fanout/router';
import { FanoutClient, type FanoutClientEvents } from '@fanout/client';
import { brokers, isSentinel, SENTINEL, uniqueTopics } from '../../../test/helpers.js';
import { sleep, waitFor } from './fake-gateway.js';

const SECRET = 'client-router-test-secret-0123456789-abc';
const t = uniqueTopics('client-route');
const topics = { topicBroadcast: t.topicBroadcast, topicUsers: t.topicUsers };
const groupIdTemplate = `${t.userGroupId}-{region}`;
const quiet = createLogger('client-router-test', {});
quiet.level = 'error';
let pub: PublisherClient;
let router: RunningRouter;
const gateways: RunningGateway[] = [];
const clients: FanoutClient[] = [];

async function gateway(node: string): Promise<RunningGateway> {
  const gw = await startGateway(
    {
      brokers: brokers(),
      port: 0,
      region: 'eu',
      node,
      servePage: false,
      tokenSecret: SECRET,
      userGroupId: groupIdTemplate.replace('{region}', 'eu'),
      groupRefreshMs: 300,
      drainJitterMs: 100,
      drainDelayMs: 300,
      ...topics,
    },
    quiet,
  );
  gateways.push(gw);
  return gw;
}

/** Waits until the router names an owner for every partition, and the gateways have taken them up. */
async function settled(count: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = (await (await fetch(`${router.url}/v1/status`)).json()) as {
      regions: { region: string; state: string; unowned_partitions: number; gateways: unknown[] }[];
    };
    const eu = s.regions.find((r) => r.region === 'eu');
    const live = gateways.filter((g) => g.health.ready);
    if (
      eu &&
      eu.state === 'Stable' &&
      eu.unowned_partitions === 0 &&
      eu.gateways.length === count &&
      live.reduce((n, g) => n + g.users.ownedPartitions.length, 0) === 12
    )
      return;
    if (Date.now() > deadline) throw new Error('the region did not settle');
    await sleep(100);
  }
}

beforeAll(async () => {
  pub = new PublisherClient({ brokers: brokers(), logger: quiet, topics: { broadcast: topics.topicBroadcast, users: topics.topicUsers } });
  await pub.connect();
  router = await startRouter(
    { brokers: brokers(), port: 0, regions: ['eu'], groupIdTemplate, topicUsers: topics.topicUsers, refreshMs: 200, infoRefreshMs: 500 },
    quiet,
  );
  await Promise.all([gateway('gw-eu-0'), gateway('gw-eu-1')]);
  await settled(2);
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(gateways.map((g) => g.shutdown()));
  await router?.shutdown();
  await pub?.disconnect();
});

describe('the SDK with the router', () => {
  it('connects each user where the router says, and follows partitions that move without losing or repeating events', async () => {
    const users = Array.from({ length: 8 }, (_, i) => `u${i}`);
    const seen = new Map<string, number[]>();
    const nodes = new Map<string, string[]>();
    const redirects = new Map<string, number>();
    const errors: FanoutClientEvents['error'][] = [];
    const sentinels = new Set<string>();
    for (const u of users) {
      const c = new FanoutClient({
        routerUrl: router.url,
        region: 'eu',
        token: await signConnectToken(SECRET, { sub: u }),
        WebSocket,
        channels: [`user:${u}`],
        backoff: { baseMs: 100, maxMs: 1000 },
      });
      clients.push(c);
      seen.set(u, []);
      nodes.set(u, []);
      c.on('message', (m) => (isSentinel(m.data) ? sentinels.add(u) : seen.get(u)!.push((m.data as { seq: number }).seq)));
      c.on('welcome', (w) => nodes.get(u)!.push(w.node));
      c.on('reconnect', (r) => r.reason === 'rebalance' && redirects.set(u, (redirects.get(u) ?? 0) + 1));
      c.on('disconnect', (d) => d.code === 4002 && redirects.set(u, (redirects.get(u) ?? 0) + 1));
      c.on('error', (e) => errors.push(e));
      c.connect();
    }
    await waitFor(() => clients.every((c) => c.state === 'open'), 'every client open');
    await Promise.all(clients.map((c) => c.subscribe(c.channels)));
    // Each connected to the owner of its partition.
    for (const u of users) {
      const route = (await (await fetch(`${router.url}/v1/route?user=${u}&region=eu`)).json()) as { node: string };
      expect(nodes.get(u)).toEqual([route.node]);
    }

    const total = 120;
    const publishing = (async () => {
      for (let seq = 0; seq < total; seq++) {
        await pub.publishBatch(users.map((u) => ({ channel: `user:${u}`, data: { seq } })));
        await sleep(40);
      }
    })();
    await waitFor(() => users.every((u) => seen.get(u)!.length >= 20), 'the stream to be under way at every client', 30_000);
    await gateways.find((g) => g.config.node === 'gw-eu-0')!.shutdown();
    await settled(1);
    await gateway('gw-eu-2');
    await settled(2);
    await publishing;
    await waitFor(() => users.every((u) => seen.get(u)!.length >= total), 'every event at every client', 60_000);
    // A repeat would come before its user's sentinel (one channel, one partition, in order).
    await pub.publishBatch(users.map((u) => ({ channel: `user:${u}`, data: SENTINEL })));
    await waitFor(() => sentinels.size === users.length, 'every sentinel at every client', 30_000);

    const expected = Array.from({ length: total }, (_, i) => i);
    for (const u of users) expect(seen.get(u), u).toEqual(expected);
    // Everyone on the gateway that stopped moved; the gateway that started took partitions from the
    // other one, whose clients it told to go (a reconnect frame or close 4002) and the router sent there.
    for (const u of users) if (nodes.get(u)![0] === 'gw-eu-0') expect(nodes.get(u)!.length, u).toBeGreaterThan(1);
    const movedToNew = users.filter((u) => nodes.get(u)!.includes('gw-eu-2'));
    for (const u of movedToNew) expect(redirects.get(u) ?? (nodes.get(u)![0] === 'gw-eu-0' ? 1 : 0), u).toBeGreaterThan(0);
    // While the region rebalanced, the router may have had no owner (503) or named the old one
    // (wrong_gateway from the gateway): both retried, never fatal.
    expect(errors.filter((e) => e.fatal || !['router_unavailable', 'wrong_gateway'].includes(e.code))).toEqual([]);
  }, 120_000);
});
