/**
 * The broker killed with SIGKILL while events flow to an SDK client, an SSE reader, a long poller
 * and a webhook endpoint, and started again 10 s later. While it is down, publishes are refused
 * with 503 kafka_unavailable and Retry-After, never acknowledged; once it is back, every
 * acknowledged event reaches every receiver exactly once (webhooks: at least once), in order.
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

describe('fault: the broker', () => {
  it('killed with SIGKILL and restarted after 10 s: refused while down, nothing acknowledged lost', async () => {
    const base = cluster.proxy.url.replace(/^ws/, 'http').replace(/\/$/, '');
    const sdk = sdkReceiver(base);
    const sse = sseReceiver(base);
    const poll = pollReceiver(base);
    const hook = await webhookReceiver(cluster.url('dispatcher'));
    const receivers = [sdk.received, sse.received, poll.received, hook.received];
    await new Promise((r) => setTimeout(r, 1000));
    const load = new Load(cluster.url('publisher'), 50, 'broker').start();
    try {
      await flowing(receivers);
      await new Promise((r) => setTimeout(r, 3000));
      const faultAt = Date.now();
      await cluster.kafka.nodes[0]!.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 10_000));
      await cluster.kafka.nodes[0]!.start();
      const backAt = Date.now();
      console.log(`[fault] broker listening again ${backAt - faultAt} ms after the kill`);
      await new Promise((r) => setTimeout(r, 15_000));
      await load.stop();
      await settle(load, receivers, 90_000);
      // Recovery: from the broker being back until every receiver had an event published after that.
      const o = outcome('broker SIGKILL, restarted after 10 s', load, receivers, backAt);
      printRow(o);

      // While it was down: refused (503 with Retry-After), never answered otherwise.
      const during = load.publishes.filter((p) => p.sentAt > faultAt + 500 && p.sentAt < faultAt + 8000);
      expect(during.length).toBeGreaterThan(100);
      const refused = during.filter((p) => p.status === 503);
      expect(refused.length, 'publishes refused while the broker was down').toBeGreaterThan(0);
      expect(refused.every((p) => p.retryAfter === '1')).toBe(true);
      expect([...new Set(load.publishes.map((p) => p.status))].sort(), 'every publish answered 200 or 503').toEqual([200, 503]);
      // After: publishing works again, and nothing acknowledged is missing anywhere.
      const late = load.publishes.filter((p) => p.sentAt > backAt + 10_000);
      expect(late.length).toBeGreaterThan(100);
      expect(late.filter((p) => p.status !== 200).map((p) => `${p.id}: ${p.status}`), 'publishes 10 s after the broker was back').toEqual([]);
      expect(o.lost).toEqual({ 'sdk (websocket)': 0, sse: 0, 'long poll': 0, webhook: 0 });
      expect(o.duplicated['sdk (websocket)']).toBe(0);
      expect(o.duplicated.sse).toBe(0);
      expect(o.duplicated['long poll']).toBe(0);
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
