/**
 * Hostile JSON on every HTTP API that takes a JSON body: nesting deeper than MAX_JSON_DEPTH is a
 * stable 400 json_too_deep (a 100 000-deep body once ended as 500 internal: JSON.parse takes it,
 * JSON.stringify then overflows the stack), an over-size body is 413 payload_too_large, never 500.
 * The router answers GET only; a body there is 405. The gateway's WebSocket frames are covered by
 * services/gateway/test/ws-conformance.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { jsonTooDeep, MAX_JSON_DEPTH } from '@fanout/protocol';
import { startPublisher, type RunningPublisher } from '@fanout/publisher';
import { startDispatcher, type RunningDispatcher } from '@fanout/dispatcher';
import { startRouter, type RunningRouter } from '@fanout/router';
import { brokers, uniqueTopics } from './helpers.js';
import { API_KEY as DISPATCHER_KEY, dispatcherTopics, testConfig } from '../services/dispatcher/test/harness.js';

const KEY = 'test-key-0123456789';
const INBOUND = 'whsec_' + randomBytes(32).toString('base64');
const N = 100_000;
const deepArray = '['.repeat(N) + ']'.repeat(N);
const deepObject = '{"a":'.repeat(N) + '1' + '}'.repeat(N);
const deepData = `{"channel":"news:x","data":${deepArray}}`;
const deepBatch = `{"events":[{"channel":"news:x","data":${deepObject}}]}`;
const MIB = 1024 * 1024;
const oversize = JSON.stringify({ channel: 'news:x', data: 'x'.repeat(2 * MIB) });

let pub: RunningPublisher;
let disp: RunningDispatcher;
let router: RunningRouter;

beforeAll(async () => {
  const topics = uniqueTopics('jsonlim');
  [pub, disp, router] = await Promise.all([
    // The defaults for body (1 MiB) and event size (64 KiB).
    startPublisher({
      brokers: brokers(),
      apiKeys: [KEY],
      port: 0,
      ...topics,
      inboundWebhooks: JSON.stringify({ billing: { channel: 'billing:stripe', secrets: [INBOUND] } }),
    }),
    // A body limit above the deep bodies' 200 KB, so that it is their depth that is refused.
    startDispatcher(testConfig(dispatcherTopics('jsonlim'), { maxBodyBytes: MIB })),
    startRouter({
      brokers: brokers(),
      port: 0,
      regions: ['eu'],
      groupIdTemplate: `${topics.topicUsers}.{region}`,
      topicUsers: topics.topicUsers,
      refreshMs: 200,
      infoRefreshMs: 500,
    }),
  ]);
}, 120_000);
afterAll(async () => {
  await Promise.all([pub?.shutdown(), disp?.shutdown(), router?.shutdown()]);
});

async function send(url: string, method: string, body: string, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method, headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

describe('jsonTooDeep: a linear scan, no recursion', () => {
  it('counts [ and { outside strings only', () => {
    const nest = (d: number) => '['.repeat(d) + ']'.repeat(d);
    expect(jsonTooDeep(nest(MAX_JSON_DEPTH))).toBe(false);
    expect(jsonTooDeep(nest(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(jsonTooDeep('{"a":' + '{"a":'.repeat(MAX_JSON_DEPTH) + '1' + '}'.repeat(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(jsonTooDeep(JSON.stringify({ s: '['.repeat(1000) }))).toBe(false);
    expect(jsonTooDeep(JSON.stringify({ s: '"\\[' + '{'.repeat(1000) }))).toBe(false);
    expect(jsonTooDeep(`["\\\\"${'['.repeat(100)}`)).toBe(true);
    expect(jsonTooDeep(Buffer.from(deepArray))).toBe(true);
    expect(jsonTooDeep(Buffer.from(JSON.stringify({ s: 'é[['.repeat(100), n: [[1]] })))).toBe(false);
    expect(jsonTooDeep('[[1],[2],[3]]', 2)).toBe(false);
    expect(jsonTooDeep('[[[1]]]', 2)).toBe(true);
  });
});

describe('every JSON-taking route answers deep JSON with 400 json_too_deep', () => {
  const routes: [string, () => string, string, string][] = [
    ['publisher POST /v1/publish', () => pub.url + '/v1/publish', 'POST', deepData],
    ['publisher POST /v1/publish (a deep body)', () => pub.url + '/v1/publish', 'POST', deepArray],
    ['publisher POST /v1/publish/batch', () => pub.url + '/v1/publish/batch', 'POST', deepBatch],
    ['dispatcher POST /v1/endpoints', () => disp.url + '/v1/endpoints', 'POST', deepObject],
    ['dispatcher PATCH /v1/endpoints/:id', () => disp.url + '/v1/endpoints/ep_nope', 'PATCH', deepArray],
    ['dispatcher POST /v1/endpoints/:id/secret/rotate', () => disp.url + '/v1/endpoints/ep_nope/secret/rotate', 'POST', deepObject],
    [
      'dispatcher POST /v1/endpoints/:id/dead-letters/redrive',
      () => disp.url + '/v1/endpoints/ep_nope/dead-letters/redrive',
      'POST',
      deepArray,
    ],
  ];
  it.each(routes)('%s', async (name, url, method, body) => {
    const key = name.startsWith('publisher') ? KEY : DISPATCHER_KEY;
    const r = await send(url(), method, body, { authorization: `Bearer ${key}` });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'json_too_deep', retriable: false });
    expect(r.body.error.message).toMatch(/64 levels/);
  });

  it('publisher POST /v1/inbound/<source> (signed)', async () => {
    const at = new Date();
    const headers = {
      'webhook-id': 'msg-deep',
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': new Webhook(INBOUND).sign('msg-deep', at, deepObject),
    };
    const r = await send(pub.url + '/v1/inbound/billing', 'POST', deepObject, headers);
    expect(r).toMatchObject({ status: 400, body: { error: { code: 'json_too_deep' } } });
  });

  it('the router takes no bodies: 405', async () => {
    const r = await send(router.url + '/v1/route', 'POST', deepArray, {});
    expect(r).toMatchObject({ status: 405, body: { error: { code: 'method_not_allowed' } } });
  });

  it('64 levels are accepted', async () => {
    const data = JSON.parse('['.repeat(63) + '1' + ']'.repeat(63));
    const r = await send(pub.url + '/v1/publish', 'POST', JSON.stringify({ channel: 'news:x', data }), { authorization: `Bearer ${KEY}` });
    expect(r.status).toBe(200);
  });
});

describe('over-size bodies are 413 payload_too_large', () => {
  it.each([
    ['publisher POST /v1/publish', () => pub.url + '/v1/publish', KEY],
    ['publisher POST /v1/inbound/<source>', () => pub.url + '/v1/inbound/billing', ''],
    ['dispatcher POST /v1/endpoints', () => disp.url + '/v1/endpoints', DISPATCHER_KEY],
  ])('%s', async (_name, url, key) => {
    const r = await send(
      url(),
      'POST',
      oversize,
      key
        ? { authorization: `Bearer ${key}` }
        : { 'webhook-id': 'm', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,x' },
    );
    expect(r).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
  });
});
