/**
 * The network between one gateway and Kafka cut for 20 s (a partition: nothing gets through and
 * nothing is refused; a TCP proxy the test controls, on 127.0.0.1), then restored, while an SDK
 * client, an SSE reader and a long poller on that gateway receive a steady stream. The clients
 * keep their connections; the gateway reports the outage (not ready for new clients,
 * fanout_gateway_kafka_reachable 0); afterwards no client has a silent gap.
 */
import { describe, expect, it } from 'vitest';
import {
  expectPromisesKept,
  flowing,
  Load,
  outcome,
  pollReceiver,
  printRow,
  sdkReceiver,
  settle,
  sleep,
  sseReceiver,
  useFaultCluster,
} from './harness.js';

// Clients on gateway-b, the one whose network to Kafka is cut.
const fault = useFaultCluster({ cutOff: true }, (c) => c.proxy.route(c.port('gateway-b')));

async function gatewayState(): Promise<{ ready: number; reachable: number }> {
  const ready = (await fetch(`${fault().url('gateway-b')}/readyz`)).status;
  const metrics = await (await fetch(`${fault().url('gateway-b')}/metrics`)).text();
  const m = /^fanout_gateway_kafka_reachable(?:\{[^}]*\})? (\d+)/m.exec(metrics);
  return { ready, reachable: m ? Number(m[1]) : -1 };
}

describe('fault: the network', () => {
  it('between a gateway and Kafka cut for 20 s: clients stay connected, the outage is reported, no silent gap', async () => {
    const base = fault().proxy.url;
    const sdk = sdkReceiver(base);
    const sse = sseReceiver(base);
    const poll = pollReceiver(base);
    const receivers = [sdk.received, sse.received, poll.received];
    await sleep(1000);
    const load = new Load(fault().url('publisher'), 50, 'net').start();
    try {
      await flowing(receivers);
      expect(await gatewayState()).toEqual({ ready: 200, reachable: 1 });
      await sleep(2000);
      const faultAt = Date.now();
      fault().kafkaProxy!.blackhole(true);
      // The gateway notices within a few seconds and says so, while it keeps its clients.
      let reported: { ready: number; reachable: number } | null = null;
      while (Date.now() - faultAt < 15_000) {
        const s = await gatewayState();
        if (s.ready === 503 && s.reachable === 0) {
          reported = s;
          break;
        }
        await sleep(250);
      }
      const reportedAfterMs = Date.now() - faultAt;
      await sleep(Math.max(0, 20_000 - (Date.now() - faultAt)));
      fault().kafkaProxy!.blackhole(false);
      const healedAt = Date.now();
      let readyAgainMs = -1;
      while (Date.now() - healedAt < 30_000) {
        const s = await gatewayState();
        if (s.ready === 200 && s.reachable === 1) {
          readyAgainMs = Date.now() - healedAt;
          break;
        }
        await sleep(250);
      }
      await sleep(5000);
      await load.stop();
      await settle(load, receivers, 60_000);
      const o = outcome('the network between a gateway and Kafka cut for 20 s', load, receivers, healedAt);
      printRow(o);
      console.log(
        `[fault] outage reported after ${reportedAfterMs} ms; ready again ${readyAgainMs} ms after the network came back; connections: sdk ${sdk.received.connections}, sse ${sse.received.connections}; gaps/resets told: sdk ${sdk.received.gaps ?? 0}, sse ${sse.received.gaps ?? 0}`,
      );

      expect(reported, 'not ready and fanout_gateway_kafka_reachable 0 during the cut').toEqual({ ready: 503, reachable: 0 });
      expect(readyAgainMs).toBeGreaterThanOrEqual(0);
      // The clients kept their connections: one each for the whole run.
      expect(sdk.received.connections).toBe(1);
      expect(sse.received.connections).toBe(1);
      expectPromisesKept(o);
    } finally {
      fault().kafkaProxy?.blackhole(false);
      await load.stop();
      sdk.close();
      sse.close();
      poll.close();
    }
  });
});
