/** Publishes per second per API key: over the limit a 429 rate_limited with Retry-After; other keys go on. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPublisher, type RunningPublisher } from '@fanout/publisher';
import { brokers, uniqueTopics } from '../../../test/helpers.js';

const A = 'rate-key-a-0123456789';
const B = 'rate-key-b-0123456789';
let pub: RunningPublisher;
beforeAll(async () => {
  const t = uniqueTopics('rate');
  pub = await startPublisher({
    brokers: brokers(),
    apiKeys: [A, B],
    port: 0,
    maxBatchEvents: 10,
    publishRatePerKey: 5,
    publishBurstPerKey: 20,
    topicBroadcast: t.topicBroadcast,
    topicUsers: t.topicUsers,
  });
});
afterAll(async () => {
  await pub?.shutdown();
});

const batch = (key: string, n: number) =>
  fetch(`${pub.url}/v1/publish/batch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ events: Array.from({ length: n }, (_, i) => ({ channel: 'news:rate', data: { i } })) }),
  });

describe('publish rate per API key', () => {
  it('counts events, refuses the key over its rate with 429 rate_limited and Retry-After, and leaves other keys alone', async () => {
    expect((await batch(A, 10)).status).toBe(200);
    expect((await batch(A, 10)).status).toBe(200);
    const over = await batch(A, 10);
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await over.json()) as { error: { code: string; retriable: boolean } }).error).toMatchObject({
      code: 'rate_limited',
      retriable: true,
    });
    // Nothing of the refused batch was written; the other key publishes as before.
    expect((await batch(B, 10)).status).toBe(200);
    const metrics = await (await fetch(`${pub.url}/metrics`)).text();
    expect(metrics).toMatch(/fanout_publisher_rate_limited_total(\{[^}]*\})? 1\b/);
  });

  it('answers another method with 405 and Allow: POST (RFC 9110)', async () => {
    const r = await fetch(`${pub.url}/v1/publish`, { method: 'PUT', headers: { authorization: `Bearer ${A}` } });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('POST');
  });
});
