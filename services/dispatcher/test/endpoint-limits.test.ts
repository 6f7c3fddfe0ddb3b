import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PublisherClient } from '@fanout/publisher';
import { startDispatcher, type RunningDispatcher } from '@fanout/dispatcher';
import { waitFor } from '../../../test/helpers.js';
import { Receiver, type Answer } from './receiver.js';
import { api, capturingLogger, dispatcherTopics, metric, publisher, testConfig } from './harness.js';

const topics = dispatcherTopics('wh-limits');
let d: RunningDispatcher;
let pub: PublisherClient;
const receivers: Receiver[] = [];

async function receiver(answer?: (r: { id: string; attempt: number }) => Answer): Promise<Receiver> {
  const r = await Receiver.start(answer);
  receivers.push(r);
  return r;
}

beforeAll(async () => {
  [d, pub] = await Promise.all([
    // The slow receiver's deliveries are still unsettled at shutdown; that warning stays out of the output.
    startDispatcher(
      testConfig(topics, {
        requestTimeoutMs: 5000,
        circuitFailureThreshold: 3,
        circuitOpenMs: 1500,
        retrySchedule: ['300ms', '300ms', '300ms', '2s', '2s'],
        shutdownGraceMs: 500,
      }),
      capturingLogger().logger,
    ),
    publisher(topics),
  ]);
});
afterAll(async () => {
  await d?.shutdown();
  await pub?.disconnect();
  await Promise.all(receivers.map((r) => r.close()));
});

describe('per-endpoint limits', () => {
  it('a slow receiver does not delay a fast one, and gets no more concurrent requests than its limit', async () => {
    const slow = await receiver(() => ({ status: 200, delayMs: 2500 }));
    const fast = await receiver();
    await api(d.url, 'POST', '/v1/endpoints', { url: slow.url, channels: ['ticks:*'], max_concurrency: 2 });
    await api(d.url, 'POST', '/v1/endpoints', { url: fast.url, channels: ['ticks:*'] });
    const ids = Array.from({ length: 30 }, (_, i) => `evt-tick-${i}`);
    const started = performance.now();
    await pub.publishBatch(ids.map((id, i) => ({ channel: `ticks:s${i % 3}`, data: { i }, id })));
    await waitFor(() => ids.every((id) => fast.delivered().has(id)), 'the fast receiver to have every event', 5000);
    const fastDone = performance.now() - started;
    // Well before the slow receiver answered even its first two requests.
    expect(fastDone).toBeLessThan(2000);
    expect(slow.delivered().size).toBe(0);
    await waitFor(() => slow.delivered().size >= 2, 'the slow receiver to answer its first requests', 6000);
    expect(slow.maxConcurrent).toBe(2);
    // At its pace (2 per 2.5 s) the slow endpoint cannot send its queue within the wait limit:
    // the excess goes to the retry topic instead of holding memory and offsets.
    await waitFor(
      async () => (await metric(d.url, 'fanout_webhook_deferrals_total', { reason: 'slow_endpoint' })) > 0,
      'the slow lane to be trimmed',
    );
  });

  it('paces an endpoint with its rate limit (token bucket)', async () => {
    const r = await receiver();
    await api(d.url, 'POST', '/v1/endpoints', { url: r.url, channels: ['paced:x'], rate_limit_per_s: 5 });
    const ids = Array.from({ length: 12 }, (_, i) => `evt-paced-${i}`);
    await pub.publishBatch(ids.map((id) => ({ channel: 'paced:x', data: 1, id })));
    await waitFor(() => ids.every((id) => r.delivered().has(id)), 'every paced event', 8000);
    const times = r.requests.map((q) => q.at).sort((a, b) => a - b);
    // A burst of 5, then 5 a second: the other 7 take about 1.4 s.
    expect(times[times.length - 1]! - times[0]!).toBeGreaterThan(1200);
    expect(times[4]! - times[0]!).toBeLessThan(500);
  });

  it('opens the circuit of an endpoint that keeps failing, defers its deliveries without spending attempts, and closes it after a successful probe', async () => {
    let failing = true;
    const r = await receiver(() => ({ status: failing ? 502 : 200 }));
    await api(d.url, 'POST', '/v1/endpoints', { url: r.url, channels: ['flaky:x'], max_concurrency: 1 });
    const ids = Array.from({ length: 8 }, (_, i) => `evt-flaky-${i}`);
    await pub.publishBatch(ids.map((id) => ({ channel: 'flaky:x', data: 1, id })));
    await waitFor(async () => (await metric(d.url, 'fanout_webhook_open_circuits')) === 1, 'the circuit to open');
    // Three failures opened it: the queued deliveries were deferred, not attempted.
    expect(r.requests.length).toBe(3);
    expect(await metric(d.url, 'fanout_webhook_deferrals_total', { reason: 'circuit_open' })).toBeGreaterThanOrEqual(5);
    expect(await metric(d.url, 'fanout_webhook_circuits_opened_total')).toBe(1);
    failing = false;
    await waitFor(() => ids.every((id) => r.delivered().has(id)), 'every event once the endpoint recovered', 15_000);
    await waitFor(async () => (await metric(d.url, 'fanout_webhook_open_circuits')) === 0, 'the circuit to close');
  });
});
