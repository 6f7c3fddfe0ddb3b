/**
 * The live ticks page in headless Chromium, against an in-process gateway and the run's Kafka:
 * the page connects, subscribes, shows published prices and counts, and follows a gateway
 * shutdown (reconnect frame, reconnecting, back to open on a new gateway at the same address).
 *
 * The page's connection is the client SDK, served by the gateway as /fanout-client.js.
 *
 * The browser reaches the gateways through a small TCP proxy standing in for a load balancer, so
 * that a replacement gateway can take over the address the page uses; a second proxy refuses
 * WebSocket upgrades, as some corporate proxies do, and the page falls back to SSE.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../../../test/browser.js';
import { createLogger } from '@fanout/observability';
import { PublisherClient } from '@fanout/publisher';
import { startProxy, type TcpProxy } from '../../../test/tcp-proxy.js';
import { brokers, uniqueTopics } from '../../../test/helpers.js';
import { startGateway, type RunningGateway } from '../src/index.js';

const topics = uniqueTopics('page');
const logger = createLogger('page-test');
const SYMBOLS = ['AAPL', 'MSFT', 'GOOG'];
const BASE_PRICES: Record<string, number> = { AAPL: 189.0, MSFT: 415.3, GOOG: 165.1 };

function gatewayOptions(node: string) {
  return {
    brokers: brokers(),
    port: 0,
    ...topics,
    node,
    region: 'test-eu',
    drainJitterMs: 300,
    drainDelayMs: 2000,
    shutdownGraceMs: 15_000,
  };
}

interface TickData {
  sym: string;
  bid: number;
  ask: number;
  last: number;
  size: number;
  seq: number;
}

describe('live ticks page', () => {
  let publisher: PublisherClient;
  let gateway: RunningGateway;
  let second: RunningGateway | undefined;
  let browser: Browser;
  let page: Page;
  let url: string;
  let proxy: TcpProxy;
  let blocking: TcpProxy | undefined;
  const pageErrors: string[] = [];
  const seq = new Map<string, number>();

  const tick = (sym: string, bid: number, ask: number, last: number, size = 100): TickData => {
    const n = (seq.get(sym) ?? 0) + 1;
    seq.set(sym, n);
    return { sym, bid, ask, last, size, seq: n };
  };
  const publish = (...ticks: TickData[]) => publisher.publishBatch(ticks.map((t) => ({ channel: `prices:${t.sym}`, data: t })));
  const text = (selector: string) => page.locator(selector).innerText();
  const waitForState = (state: string, timeout = 15_000) => page.waitForSelector(`#state[data-state="${state}"]`, { timeout });

  beforeAll(async () => {
    publisher = new PublisherClient({ brokers: brokers(), logger, topics: { broadcast: topics.topicBroadcast, users: topics.topicUsers } });
    await publisher.connect();
    gateway = await startGateway(gatewayOptions('gw-page-1'));
    proxy = await startProxy(gateway.port);
    url = `http://127.0.0.1:${proxy.port}/?symbols=${SYMBOLS.join(',')}`;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (m) => {
      // While no gateway answers, failed connection attempts (WebSocket, and SSE after a few) are expected.
      const attempt =
        /WebSocket connection to .* failed/.test(m.text()) ||
        (/Failed to load resource/.test(m.text()) && /\/v1\/(ws|sse)/.test(m.location().url));
      if (m.type() === 'error' && !attempt) pageErrors.push(m.text());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await blocking?.close();
    await Promise.all([gateway?.shutdown(), second?.shutdown()]);
    await publisher?.disconnect();
    const admin = new Kafka({ brokers: brokers(), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topics.topicBroadcast, topics.topicUsers] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('serves the page and its script', async () => {
    const html = await fetch(`${gateway.url}/`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await html.text()).toContain('/board.js');
    const js = await fetch(`${gateway.url}/board.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await js.text()).toContain("from '/fanout-client.js'");
    // The client SDK, bundled by the gateway at start-up.
    const sdk = await fetch(`${gateway.url}/fanout-client.js`);
    expect(sdk.status).toBe(200);
    expect(sdk.headers.get('content-type')).toMatch(/^text\/javascript/);
    const code = await sdk.text();
    expect(code).toMatch(/export\s*\{[^}]*\bFanoutClient\b/);
    expect(code).not.toMatch(/from\s*['"]node:/);
    const etag = sdk.headers.get('etag')!;
    expect((await fetch(`${gateway.url}/fanout-client.js`, { headers: { 'if-none-match': etag } })).status).toBe(304);
  });

  it('connects, subscribes and shows published prices, rate, count and latency', async () => {
    await page.goto(url);
    await waitForState('open');
    await page.waitForSelector('#board[data-subscribed="true"]');
    expect(await text('#node')).toBe('gw-page-1');
    expect(await text('#region')).toBe('test-eu');
    expect(await page.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.symbol))).toEqual(SYMBOLS);

    // A stream for a bit over a second (so the rate shows), then known closing prices.
    let sent = 0;
    const started = Date.now();
    let rateSeen = 0;
    while (Date.now() - started < 1500) {
      const ticks = SYMBOLS.map((s) => {
        const bid = Math.round((BASE_PRICES[s]! + (Math.random() - 0.5) * 0.3) * 100) / 100;
        return tick(s, bid, Number((bid + 0.02).toFixed(2)), Number((bid + 0.01).toFixed(2)), 100 * (1 + Math.floor(Math.random() * 5)));
      });
      await publish(...ticks);
      sent += ticks.length;
      rateSeen = Math.max(rateSeen, Number(await page.locator('#rate').getAttribute('data-value')));
      await new Promise((r) => setTimeout(r, 50));
    }
    await publish(
      tick('AAPL', 189.12, 189.14, 189.13, 100),
      tick('MSFT', 415.1, 415.14, 415.12, 300),
      tick('GOOG', 165.3, 165.32, 165.31, 42),
    );
    // The board shows each symbol's latest tick once per frame; let these show before the next.
    await page.waitForFunction(() => document.querySelector('[data-symbol="MSFT"] .last')?.textContent?.includes('415.12'), undefined, {
      timeout: 15_000,
    });
    await page.waitForFunction(() => document.querySelector('[data-symbol="AAPL"] .last')?.textContent?.includes('189.13'), undefined, {
      timeout: 15_000,
    });
    await publish(tick('AAPL', 189.19, 189.21, 189.2, 200), tick('MSFT', 414.96, 415.0, 414.98, 500));
    sent += 5;

    const aapl = '[data-symbol="AAPL"]';
    const msft = '[data-symbol="MSFT"]';
    await page.waitForFunction((n) => document.querySelector<HTMLElement>('#total')?.dataset.value === String(n), sent, {
      timeout: 15_000,
    });
    await page.waitForFunction(() => document.querySelector('[data-symbol="AAPL"] .last')?.textContent?.includes('189.20'), undefined, {
      timeout: 15_000,
    });
    await page.waitForFunction(() => document.querySelector('[data-symbol="MSFT"] .last')?.textContent?.includes('414.98'), undefined, {
      timeout: 15_000,
    });

    expect(await text(`${aapl} .bid`)).toBe('189.19');
    expect(await text(`${aapl} .ask`)).toBe('189.21');
    expect(await text(`${aapl} .last`)).toContain('189.20');
    expect(await page.locator(`${aapl} .last`).getAttribute('data-dir')).toBe('up');
    expect(await text(`${aapl} .size`)).toBe('200');
    expect(await text(`${msft} .bid`)).toBe('414.96');
    expect(await text(`${msft} .ask`)).toBe('415.00');
    expect(await page.locator(`${msft} .last`).getAttribute('data-dir')).toBe('down');
    expect(await text('[data-symbol="GOOG"] .last')).toContain('165.31');
    expect(Number(await text(`${aapl} .count`))).toBe(seq.get('AAPL'));
    expect(await text('#total')).toBe(sent.toLocaleString('en-US'));

    // Roughly 3 messages per 50 ms round trip: the rate showed something, and a number.
    expect(rateSeen).toBeGreaterThan(5);
    const latency = Number(await page.locator('#latency').getAttribute('data-value'));
    expect(Number.isFinite(latency)).toBe(true);
    expect(latency).toBeGreaterThanOrEqual(0);
    expect(latency).toBeLessThan(10_000);

    await page.waitForTimeout(800); // let the flashes fade before the picture
    await page.screenshot({ path: '/tmp/board.png', fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('follows a gateway shutdown: reconnecting, then open again on a new gateway at the same address', async () => {
    const stopping = gateway.shutdown();
    await waitForState('reconnecting', 10_000);
    expect(await page.locator('#log').innerText()).toMatch(/reconnect \(shutdown\)/);
    expect(await page.locator('#board').getAttribute('data-subscribed')).toBe('false');
    await stopping;
    // Nothing listens now: the page keeps retrying with backoff and says so.
    await page.waitForTimeout(1000);
    expect(await page.locator('#state').getAttribute('data-state')).toBe('reconnecting');
    expect(await text('#detail')).toMatch(/attempt \d+/);

    second = await startGateway(gatewayOptions('gw-page-2'));
    proxy.route(second.port);
    await waitForState('open', 30_000);
    await page.waitForSelector('#board[data-subscribed="true"]');
    expect(await text('#node')).toBe('gw-page-2');
    // Subscribed again: new prices arrive.
    await publish(tick('GOOG', 166.01, 166.03, 166.02));
    await page.waitForFunction(() => document.querySelector('[data-symbol="GOOG"] .last')?.textContent?.includes('166.02'), undefined, {
      timeout: 15_000,
    });
    expect(await page.locator('[data-symbol="GOOG"] .last').getAttribute('data-dir')).toBe('up');
  });

  it('shows closed when disconnected by hand, and reconnects on demand', async () => {
    await page.click('#toggle');
    await waitForState('closed', 5_000);
    await page.waitForFunction(() => document.querySelector('#rate')?.getAttribute('data-value') === '0', undefined, { timeout: 5_000 });
    await page.click('#toggle');
    await waitForState('open');
    expect(pageErrors).toEqual([]);
  });

  it('falls back to SSE where a proxy blocks WebSockets, and shows prices all the same', async () => {
    blocking = await startProxy(second!.port, { blockUpgrades: true });
    const sse = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    const errors: string[] = [];
    sse.on('pageerror', (err) => errors.push(err.message));
    await sse.goto(`http://127.0.0.1:${blocking.port}/?symbols=${SYMBOLS.join(',')}`);
    await sse.waitForSelector('#state[data-state="open"]', { timeout: 30_000 });
    await sse.waitForSelector('#board[data-subscribed="true"]');
    expect(await sse.locator('#detail').innerText()).toBe('SSE');
    expect(await sse.locator('#log').innerText()).toMatch(/connected to gw-page-2 \(test-eu\) over SSE/);
    await publish(tick('MSFT', 420.5, 420.52, 420.51));
    await sse.waitForFunction(() => document.querySelector('[data-symbol="MSFT"] .last')?.textContent?.includes('420.51'), undefined, {
      timeout: 15_000,
    });
    expect(await sse.locator('[data-symbol="MSFT"] .bid').innerText()).toBe('420.50');
    await sse.screenshot({ path: '/tmp/board-sse.png', fullPage: true });
    expect(errors).toEqual([]);
    await sse.close();
  });
});
