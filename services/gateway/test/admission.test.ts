/**
 * Admission at a bounded rate: a storm of new connections is answered 503 overloaded with
 * Retry-After beyond the rate (WebSocket upgrades and SSE streams alike), and the SDK comes back
 * when told to and connects.
 */
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startGateway, type RunningGateway } from '@fanout/gateway';
import { FanoutClient, type StateEvent } from '@fanout/client';
import { Admission } from '../src/transports/admission.js';
import { brokers, uniqueTopics, waitFor } from '../../../test/helpers.js';

const topics = uniqueTopics('admission');
const running: RunningGateway[] = [];
const sockets: WebSocket[] = [];

afterAll(async () => {
  for (const ws of sockets) ws.terminate();
  await Promise.all(running.map((g) => g.shutdown()));
});

/** Opens a WebSocket and reports how the handshake was answered. */
function handshake(url: string): Promise<{
  status: number;
  retryAfter: string | null;
  body: { error?: { code: string; retriable: boolean; detail?: { retry_after_ms?: number } } };
}> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    sockets.push(ws);
    ws.on('open', () => resolve({ status: 101, retryAfter: null, body: {} }));
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          retryAfter: (res.headers['retry-after'] as string | undefined) ?? null,
          body: JSON.parse(text),
        }),
      );
    });
    ws.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

describe('admission at a bounded rate', () => {
  it('answers connections over the rate with 503 overloaded and Retry-After, over WebSocket and SSE, and counts them', async () => {
    const gw = await startGateway({ brokers: brokers(), port: 0, servePage: false, admissionRatePerS: 1, admissionBurst: 2, ...topics });
    running.push(gw);
    expect((await handshake(gw.wsUrl)).status).toBe(101);
    expect((await handshake(gw.wsUrl)).status).toBe(101);
    const refused = await handshake(gw.wsUrl);
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatchObject({ code: 'overloaded', retriable: true });
    const ms = refused.body.error!.detail!.retry_after_ms!;
    expect(ms).toBeGreaterThan(0);
    expect(Number(refused.retryAfter)).toBe(Math.max(1, Math.ceil(ms / 1000)));

    const sse = await fetch(`${gw.url}/v1/sse?channels=news:adm`);
    expect(sse.status).toBe(503);
    expect(Number(sse.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await sse.json()) as { error: { code: string } }).error.code).toBe('overloaded');

    const metrics = await (await fetch(gw.url + '/metrics')).text();
    expect(metrics).toMatch(/fanout_gateway_admission_refused_total\{[^}]*reason="overloaded"[^}]*\} 2/);
  });

  it('the SDK waits the Retry-After it was given, then connects', async () => {
    const gw = await startGateway({
      brokers: brokers(),
      port: 0,
      servePage: false,
      admissionRatePerS: 1,
      admissionBurst: 1,
      ...topics,
      node: 'gw-adm-2',
    });
    running.push(gw);
    // The one token goes to this connection; the SDK's first attempt is then over the rate.
    expect((await handshake(gw.wsUrl)).status).toBe(101);
    const states: StateEvent[] = [];
    const sdk = new FanoutClient({ url: gw.url, WebSocket: WebSocket as never, transports: ['websocket'] });
    sdk.on('state', (s) => states.push(s));
    let welcomed = false;
    sdk.on('welcome', () => (welcomed = true));
    sdk.connect();
    try {
      await waitFor(() => welcomed, 'the SDK to be welcomed', 20_000);
      const told = states.find((s) => s.state === 'reconnecting' && s.reason === 'overloaded');
      expect(told?.retryAfterMs).toBeGreaterThan(0);
      expect(told!.delayMs).toBeGreaterThanOrEqual(told!.retryAfterMs!);
    } finally {
      sdk.close();
    }
  });
});

describe('the admission queue (no sockets)', () => {
  // random 0.5: the +-10 % jitter factor is exactly 1.
  const mid = () => 0.5;

  it('admits the burst, then one per 1000/rate ms as tokens come back', () => {
    const a = new Admission({ ratePerS: 10, burst: 3, random: mid });
    const t = Date.now();
    expect([a.admit(t), a.admit(t), a.admit(t)]).toEqual([null, null, null]);
    expect(a.admit(t)).not.toBeNull();
    expect(a.admit(t + 100)).toBeNull(); // one token after 100 ms at 10/s
    expect(a.admit(t + 100)).not.toBeNull();
  });

  it('gives the refused consecutive slots paced at the rate, no sooner than the next token and never under 200 ms', () => {
    const a = new Admission({ ratePerS: 100, burst: 1, random: mid });
    const t = Date.now();
    expect(a.admit(t)).toBeNull();
    const waits = Array.from({ length: 5 }, () => a.admit(t)!.retryAfterMs);
    // 200 ms floor, then one slot (10 ms at 100/s) after another.
    expect(waits).toEqual([210, 220, 230, 240, 250]);
    // Later, with the queue drained, the wait falls back to the floor.
    expect(a.refuse(t + 60_000).retryAfterMs).toBe(210);
  });

  it('names a not-ready wait at least a second away, and caps every wait at a minute', () => {
    const a = new Admission({ ratePerS: 10, burst: 1, random: mid });
    const t = Date.now();
    expect(a.refuse(t, 1000).retryAfterMs).toBe(1100);
    let last = 0;
    for (let i = 0; i < 2000; i++) last = a.refuse(t).retryAfterMs;
    expect(last).toBe(60_000);
  });

  it('admits everything when the rate is 0', () => {
    const a = new Admission({ ratePerS: 0, burst: 1 });
    for (let i = 0; i < 1000; i++) expect(a.admit()).toBeNull();
  });
});
