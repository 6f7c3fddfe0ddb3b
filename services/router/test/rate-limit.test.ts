/** Requests per second per client address on the router: over it a 429 rate_limited with Retry-After. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRouter, type RunningRouter } from '@fanout/router';
import { brokers, uniqueTopics } from '../../../test/helpers.js';

let router: RunningRouter;
beforeAll(async () => {
  const t = uniqueTopics('router-rate');
  router = await startRouter({
    brokers: brokers(),
    port: 0,
    regions: ['eu'],
    groupIdTemplate: `${t.userGroupId}-{region}`,
    topicUsers: t.topicUsers,
    ratePerAddress: 2,
    ratePerAddressBurst: 3,
    clientAddressHeader: 'x-forwarded-for',
  });
});
afterAll(async () => {
  await router?.shutdown();
});

describe('router rate per address', () => {
  it('refuses an address over its rate with 429 rate_limited and Retry-After; another address and /healthz go on', async () => {
    const ask = (address: string) => fetch(`${router.url}/v1/route?user=u1&region=eu`, { headers: { 'x-forwarded-for': address } });
    const statuses: number[] = [];
    let refused: Response | null = null;
    for (let i = 0; i < 5; i++) {
      const r = await ask('198.51.100.7');
      statuses.push(r.status);
      if (r.status === 429) refused ??= r;
    }
    expect(
      statuses.slice(0, 3).every((s) => s !== 429),
      statuses.join(','),
    ).toBe(true);
    expect(refused).not.toBeNull();
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await refused!.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    expect((await ask('198.51.100.8')).status).not.toBe(429);
    expect((await fetch(`${router.url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${router.url}/metrics`)).text()).toMatch(/fanout_router_rate_limited_total(\{[^}]*\})? [1-9]/);
  });

  it('answers another method with 405 and Allow: GET (RFC 9110)', async () => {
    const r = await fetch(`${router.url}/v1/route?user=u1&region=eu`, { method: 'DELETE', headers: { 'x-forwarded-for': '198.51.100.9' } });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET');
  });
});
