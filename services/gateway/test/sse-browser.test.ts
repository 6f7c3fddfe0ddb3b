import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { createLogger } from '@fanout/observability';
import { startGateway, type RunningGateway } from '@fanout/gateway';
import { PublisherClient } from '@fanout/publisher';
import { brokers, SENTINEL, uniqueTopics } from '../../../test/helpers.js';
import { launchChromium } from '../../../test/browser.js';
import { startProxy, type TcpProxy } from '../../../test/tcp-proxy.js';

const topics = uniqueTopics('ssebrowser');
let pub: PublisherClient;
let gw: RunningGateway;
let proxy: TcpProxy;
let browser: Browser;

beforeAll(async () => {
  pub = new PublisherClient({
    brokers: brokers(),
    logger: createLogger('test'),
    topics: { broadcast: topics.topicBroadcast, users: topics.topicUsers },
  });
  await pub.connect();
  gw = await startGateway({ brokers: brokers(), port: 0, ...topics });
  proxy = await startProxy(gw.port);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await proxy?.close();
  await gw?.shutdown();
  await pub?.disconnect();
});

describe('SSE in a real browser', () => {
  it("EventSource's own reconnect resumes with Last-Event-ID: every message once, in order", async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${proxy.port}/healthz`);
    await page.evaluate(() => {
      const w = window as unknown as { seqs: number[]; opens: number; subscribed: number; sentinels: number; es: EventSource };
      w.seqs = [];
      w.opens = 0;
      w.subscribed = 0;
      w.sentinels = 0;
      w.es = new EventSource('/v1/sse?channels=news:browser');
      w.es.onopen = () => w.opens++;
      w.es.onmessage = (e) => {
        const f = JSON.parse(e.data);
        if (f.t === 'subscribed') w.subscribed++;
        else if (f.t === 'msg' && f.data.sentinel === true) w.sentinels++;
        else if (f.t === 'msg') w.seqs.push(f.data.seq);
      };
    });
    const seqs = () => page.evaluate(() => (window as unknown as { seqs: number[] }).seqs);
    const opens = () => page.evaluate(() => (window as unknown as { opens: number }).opens);
    await page.waitForFunction(() => (window as unknown as { opens: number }).opens === 1);
    // The gateway has registered the subscription: publish after its subscribed frame.
    await page.waitForFunction(() => (window as unknown as { subscribed: number }).subscribed === 1);
    await pub.publishBatch([0, 1, 2, 3, 4].map((seq) => ({ channel: 'news:browser', data: { seq } })));
    await page.waitForFunction(() => (window as unknown as { seqs: number[] }).seqs.length === 5);

    // The network drops the stream; messages keep being published while the browser is away.
    proxy.cut();
    await pub.publishBatch([5, 6, 7].map((seq) => ({ channel: 'news:browser', data: { seq } })));
    await page.waitForFunction(() => (window as unknown as { opens: number }).opens === 2, undefined, { timeout: 15_000 });
    await pub.publishBatch([8, 9].map((seq) => ({ channel: 'news:browser', data: { seq } })));
    await page.waitForFunction(() => (window as unknown as { seqs: number[] }).seqs.length >= 10, undefined, { timeout: 15_000 });
    // A repeat would come before the sentinel (one channel, in order).
    await pub.publishBatch([{ channel: 'news:browser', data: SENTINEL }]);
    await page.waitForFunction(() => (window as unknown as { sentinels: number }).sentinels === 1, undefined, { timeout: 15_000 });
    expect(await seqs()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await opens()).toBe(2);
    await page.close();
  }, 60_000);
});
