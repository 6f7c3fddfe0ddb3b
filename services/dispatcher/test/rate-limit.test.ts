/** Endpoint API requests per second per client address: over it a 429 rate_limited with Retry-After. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDispatcher, type RunningDispatcher } from '@fanout/dispatcher';
import { API_KEY, dispatcherTopics, testConfig } from './harness.js';

let d: RunningDispatcher;
beforeAll(async () => {
  d = await startDispatcher(
    testConfig(dispatcherTopics('wh-rate'), { ratePerAddress: 2, ratePerAddressBurst: 3, clientAddressHeader: 'x-forwarded-for' }),
  );
});
afterAll(async () => {
  await d?.shutdown();
});

describe('endpoint API rate per address', () => {
  it('refuses an address over its rate with 429 rate_limited and Retry-After; another address, /healthz and /metrics go on', async () => {
    const list = (address: string) =>
      fetch(`${d.url}/v1/endpoints`, { headers: { authorization: `Bearer ${API_KEY}`, 'x-forwarded-for': address } });
    const statuses: number[] = [];
    let refused: Response | null = null;
    for (let i = 0; i < 5; i++) {
      const r = await list('198.51.100.20');
      statuses.push(r.status);
      if (r.status === 429) refused ??= r;
    }
    expect(statuses.slice(0, 3), statuses.join(',')).toEqual([200, 200, 200]);
    expect(refused).not.toBeNull();
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await refused!.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    expect((await list('198.51.100.21')).status).toBe(200);
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${d.url}/metrics`)).text()).toMatch(/fanout_webhook_api_rate_limited_total(\{[^}]*\})? [1-9]/);
  });
});
