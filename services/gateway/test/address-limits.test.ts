/**
 * Limits per client address on a real gateway: open connections (WebSocket, SSE, held long polls)
 * and new connections/requests per second, each refused with 429, a stable code and Retry-After;
 * behind a proxy the address comes from the configured header only.
 */
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startGateway, type RunningGateway } from '@fanout/gateway';
import { KeyedRateLimiter, clientAddress } from '@fanout/http-api';
import { brokers, uniqueTopics, waitFor } from '../../../test/helpers.js';

let gw: RunningGateway;
const sockets: WebSocket[] = [];
beforeAll(async () => {
  gw = await startGateway({
    brokers: brokers(),
    port: 0,
    servePage: false,
    ...uniqueTopics('addr'),
    maxConnectionsPerAddress: 3,
    ratePerAddress: 5,
    ratePerAddressBurst: 8,
    clientAddressHeader: 'x-forwarded-for',
  });
});
afterAll(async () => {
  for (const s of sockets) s.terminate();
  await gw?.shutdown();
});

/** Opens a WebSocket as `address` (through the trusted header); resolves with 101 or the refusal's status, code and Retry-After. */
function ws(address: string): Promise<{ status: number; code?: string; retryAfter?: string }> {
  return new Promise((resolve) => {
    const s = new WebSocket(gw.wsUrl, { headers: { 'x-forwarded-for': `203.0.113.77, ${address}` } });
    s.once('open', () => {
      sockets.push(s);
      resolve({ status: 101 });
    });
    s.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          code: (JSON.parse(body) as { error: { code: string } }).error.code,
          retryAfter: res.headers['retry-after'] as string,
        }),
      );
    });
    s.once('error', () => {});
  });
}

describe('limits per client address', () => {
  it('refuses a fourth open connection from one address with 429 too_many_connections, and counts WebSockets, SSE streams and held polls alike', async () => {
    expect((await ws('198.51.100.1')).status).toBe(101);
    expect((await ws('198.51.100.1')).status).toBe(101);
    // An SSE stream from the same address is the third open connection.
    const sse = new AbortController();
    const stream = await fetch(`${gw.url}/v1/sse?channels=news:addr`, {
      headers: { 'x-forwarded-for': '198.51.100.1' },
      signal: sse.signal,
    });
    expect(stream.status).toBe(200);
    const fourth = await ws('198.51.100.1');
    expect(fourth).toEqual({ status: 429, code: 'too_many_connections', retryAfter: '1' });
    const poll = await fetch(`${gw.url}/v1/poll?channel=news:addr&timeout=5`, { headers: { 'x-forwarded-for': '198.51.100.1' } });
    expect(poll.status).toBe(429);
    expect(((await poll.json()) as { error: { code: string } }).error.code).toBe('too_many_connections');
    // Another address is not affected; the one the client put first in the header is ignored.
    expect((await ws('198.51.100.2')).status).toBe(101);
    // Closing one frees a place.
    sse.abort();
    await waitFor(async () => (await ws('198.51.100.1')).status === 101, 'a place freed by the closed stream', 5000);
  });

  it('refuses requests over the address rate with 429 rate_limited and Retry-After, while another address goes on', async () => {
    // 192.0.2.9 is an address no earlier test used: its bucket starts full (burst 8). The bucket takes
    // its time from Date.now in this process, so a fake clock (only Date; the gateway's and Kafka's
    // timers run as usual) stands still while the 12 requests go out, however slow the machine, and
    // then moves on to show the refill.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const statuses: number[] = [];
      let refused: Response | null = null;
      for (let i = 0; i < 12; i++) {
        const r = await fetch(`${gw.url}/v1/latest?channel=news:rate`, { headers: { 'x-forwarded-for': '192.0.2.9' } });
        statuses.push(r.status);
        if (r.status === 429 && !refused) refused = r;
      }
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(8);
      expect(refused, `statuses ${statuses.join(',')}`).not.toBeNull();
      expect(refused!.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      expect(((await refused!.json()) as { error: { code: string; retriable: boolean } }).error).toMatchObject({
        code: 'rate_limited',
        retriable: true,
      });
      expect((await fetch(`${gw.url}/v1/latest?channel=news:rate`, { headers: { 'x-forwarded-for': '192.0.2.10' } })).status).toBe(200);
      // After Retry-After the bucket has refilled (5 tokens a second).
      vi.setSystemTime(Date.now() + Number(refused!.headers.get('retry-after')) * 1000);
      expect((await fetch(`${gw.url}/v1/latest?channel=news:rate`, { headers: { 'x-forwarded-for': '192.0.2.9' } })).status).toBe(200);
    } finally {
      vi.useRealTimers();
    }
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/fanout_gateway_admission_refused_total\{[^}]*reason="address_rate"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/fanout_gateway_admission_refused_total\{[^}]*reason="address_connections"[^}]*\} [1-9]/);
  });
});

describe('KeyedRateLimiter and clientAddress', () => {
  it('gives each key its own bucket, says when to come back, and forgets the least recently seen keys beyond its bound', () => {
    const l = new KeyedRateLimiter({ ratePerS: 10, burst: 2, maxKeys: 3 });
    expect(l.take('a', 1, 0)).toBeNull();
    expect(l.take('a', 1, 0)).toBeNull();
    expect(l.take('a', 1, 0)).toBe(100);
    expect(l.take('b', 1, 0)).toBeNull();
    expect(l.take('a', 1, 100)).toBeNull();
    for (const k of ['c', 'd', 'e']) l.take(k, 1, 200);
    expect(l.size).toBe(3);
    expect(new KeyedRateLimiter({ ratePerS: 0, burst: 1 }).take('x', 1000)).toBeNull();
  });

  it('takes the address from the last entry of the trusted header only when one is configured', () => {
    expect(clientAddress('10.0.0.1', '', '1.2.3.4')).toBe('10.0.0.1');
    expect(clientAddress('10.0.0.1', 'x-forwarded-for', '6.6.6.6, 1.2.3.4')).toBe('1.2.3.4');
    expect(clientAddress('10.0.0.1', 'x-forwarded-for', '')).toBe('10.0.0.1');
  });
});
