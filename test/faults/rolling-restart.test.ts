/**
 * A full rolling restart of every service of the cluster under load, as a deploy does it: each
 * service in turn stopped with SIGTERM (it drains) and started again, the load balancer (a TCP
 * proxy) moving new connections off a gateway before it stops. Every acknowledged event reaches
 * the SDK client, the SSE reader and the long poller exactly once, in order, and the webhook
 * endpoint at least once.
 */
import { describe, expect, it } from 'vitest';
import {
  expectPromisesKept,
  type FaultCluster,
  flowing,
  Load,
  openReceivers,
  outcome,
  printRow,
  settle,
  sleep,
  useFaultCluster,
} from './harness.js';

const cluster = useFaultCluster();

describe('fault: a rolling restart', () => {
  it('of every service under load: nothing acknowledged lost, nothing twice', async () => {
    const c = cluster();
    const r = await openReceivers(c.proxy.url, c.url('dispatcher'));
    const load = new Load(c.url('publisher'), 50, 'roll').start();
    try {
      await flowing(r.all);
      const faultAt = Date.now();
      const restart = async (name: Parameters<FaultCluster['startService']>[0]) => {
        await c.stopService(name, 'SIGTERM');
        await c.startService(name);
        await sleep(2000);
      };
      await restart('publisher');
      await restart('router');
      await restart('dispatcher');
      // Gateways: the load balancer stops sending new connections to one before it drains.
      c.proxy.route(c.port('gateway-b'));
      await restart('gateway-a');
      c.proxy.route(c.port('gateway-a'));
      await restart('gateway-b');
      const doneAt = Date.now();
      await sleep(3000);
      await load.stop();
      await settle(load, r.all, 60_000);
      const o = outcome(
        `a rolling restart of all 5 services (SIGTERM, one at a time, ${Math.round((doneAt - faultAt) / 1000)} s)`,
        load,
        r.all,
        faultAt,
      );
      printRow(o);
      // With one publisher (production runs several behind a Service), publishes fail while it
      // restarts: refused (connection refused, or 503 while it drains), never acknowledged.
      expect(load.publishes.every((p) => p.status === 200 || p.status === 503 || p.status === 0)).toBe(true);
      expect(load.acked().length).toBeGreaterThan(500);
      expectPromisesKept(o);
    } finally {
      await load.stop();
      await r.close();
    }
  });
});
