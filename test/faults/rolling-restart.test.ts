/**
 * A full rolling restart of every service of the cluster under load, as a deploy does it: each
 * service in turn stopped with SIGTERM (it drains) and started again, the load balancer (a TCP
 * proxy) moving new connections off a gateway before it stops. Every acknowledged event reaches
 * the SDK client, the SSE reader and the long poller exactly once, in order, and the webhook
 * endpoint at least once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultCluster, flowing, Load, outcome, pollReceiver, printRow, sdkReceiver, settle, sseReceiver, webhookReceiver } from './harness.js';

let cluster: FaultCluster;
beforeAll(async () => {
  cluster = await FaultCluster.start();
});
afterAll(async () => {
  await cluster?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fault: a rolling restart', () => {
  it('of every service under load: nothing acknowledged lost, nothing twice', async () => {
    const base = cluster.proxy.url;
    const sdk = sdkReceiver(base);
    const sse = sseReceiver(base);
    const poll = pollReceiver(base);
    const hook = await webhookReceiver(cluster.url('dispatcher'));
    const receivers = [sdk.received, sse.received, poll.received, hook.received];
    await sleep(1000);
    const load = new Load(cluster.url('publisher'), 50, 'roll').start();
    try {
      await flowing(receivers);
      const faultAt = Date.now();
      const restart = async (name: Parameters<FaultCluster['startService']>[0]) => {
        await cluster.stopService(name, 'SIGTERM');
        await cluster.startService(name);
        await sleep(2000);
      };
      await restart('publisher');
      await restart('router');
      await restart('dispatcher');
      // Gateways: the load balancer stops sending new connections to one before it drains.
      cluster.proxy.route(cluster.port('gateway-b'));
      await restart('gateway-a');
      cluster.proxy.route(cluster.port('gateway-a'));
      await restart('gateway-b');
      const doneAt = Date.now();
      await sleep(3000);
      await load.stop();
      await settle(load, receivers, 60_000);
      const o = outcome(`a rolling restart of all 5 services (SIGTERM, one at a time, ${Math.round((doneAt - faultAt) / 1000)} s)`, load, receivers, faultAt);
      printRow(o);
      // With one publisher (production runs several behind a Service), publishes fail while it
      // restarts: refused (connection refused, or 503 while it drains), never acknowledged.
      expect(new Set(load.publishes.map((p) => p.status)).size).toBeLessThanOrEqual(3);
      expect(load.publishes.every((p) => p.status === 200 || p.status === 503 || p.status === 0)).toBe(true);
      expect(load.acked().length).toBeGreaterThan(500);
      expect(o.lost).toEqual({ 'sdk (websocket)': 0, sse: 0, 'long poll': 0, webhook: 0 });
      expect(o.duplicated).toMatchObject({ 'sdk (websocket)': 0, sse: 0, 'long poll': 0 });
      expect(o.outOfOrder).toEqual({ 'sdk (websocket)': 0, sse: 0, 'long poll': 0, webhook: 0 });
    } finally {
      await load.stop();
      sdk.close();
      sse.close();
      poll.close();
      await hook.close();
    }
  });
});
