import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionFor } from '@fanout/kafka';
import { startPublisher, type RunningPublisher } from '@fanout/publisher';
import { brokers, uniqueTopics } from '../../../test/helpers.js';
import { countRecords, readAll } from '../../../test/kafka-read.js';

const KEY = 'test-key-0123456789';
const topics = uniqueTopics('publish');
let pub: RunningPublisher;

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(pub.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  pub = await startPublisher({
    brokers: brokers(),
    apiKeys: [KEY],
    port: 0,
    maxEventBytes: 1024,
    maxBodyBytes: 16 * 1024,
    maxBatchEvents: 10,
    ...topics,
  });
});
afterAll(async () => {
  await pub?.shutdown();
});

describe('POST /v1/publish', () => {
  it('answers with the position Kafka acknowledged, and the record carries key, headers and JSON value', async () => {
    const r = await post('/v1/publish', { channel: 'prices:AAPL', data: { bid: 1.5 }, id: 'evt-aapl-1' });
    expect(r.status).toBe(200);
    const partition = partitionFor('prices:AAPL', 6);
    expect(r.body).toMatchObject({ id: 'evt-aapl-1', channel: 'prices:AAPL', partition, position: `1:${partition}:${r.body.offset}` });
    const [rec] = await readAll(brokers(), topics.topicBroadcast, 1);
    expect(rec).toMatchObject({ partition, offset: r.body.offset, key: 'prices:AAPL', value: '{"bid":1.5}' });
    expect(rec!.headers).toMatchObject({ 'fanout-id': 'evt-aapl-1', 'fanout-channel': 'prices:AAPL', 'content-type': 'application/json' });
    expect(Number(rec!.headers['fanout-ts'])).toBeGreaterThan(Date.now() - 60_000);
  });

  it('routes user channels to the users topic keyed by user id', async () => {
    const r = await post('/v1/publish', { channel: 'user:42', data: 'hi' });
    expect(r.status).toBe(200);
    expect(r.body.partition).toBe(partitionFor('42', 12));
    const [rec] = await readAll(brokers(), topics.topicUsers, 1);
    expect(rec).toMatchObject({ key: '42', value: '"hi"' });
    expect(rec!.headers['fanout-id']).toBe(r.body.id);
  });
});

describe('POST /v1/publish/batch', () => {
  it('publishes every event and returns consecutive offsets per partition in request order', async () => {
    const events = Array.from({ length: 5 }, (_, i) => ({ channel: 'news:global', data: { i } }));
    const r = await post('/v1/publish/batch', { events });
    expect(r.status).toBe(200);
    const offsets = r.body.results.map((x: { offset: number }) => x.offset);
    expect(offsets).toEqual(offsets.map((_: number, i: number) => offsets[0] + i));
  });
});

describe('bad requests get a 4xx with a stable code and nothing reaches Kafka', () => {
  const cases: [string, () => Promise<{ status: number; body: any }>, number, string][] = [
    [
      'a wrong API key',
      () => post('/v1/publish', { channel: 'news:x', data: 1 }, { authorization: 'Bearer wrong-key-000' }),
      401,
      'unauthorized',
    ],
    ['no API key', () => post('/v1/publish', { channel: 'news:x', data: 1 }, { authorization: '' }), 401, 'unauthorized'],
    ['a bad channel', () => post('/v1/publish', { channel: 'not a channel', data: 1 }), 400, 'invalid_channel'],
    ['an oversize event', () => post('/v1/publish', { channel: 'news:x', data: 'x'.repeat(2000) }), 413, 'payload_too_large'],
    [
      'an oversize body',
      () => post('/v1/publish/batch', { events: [{ channel: 'news:x', data: 'y'.repeat(20_000) }] }),
      413,
      'payload_too_large',
    ],
    ['invalid JSON', () => post('/v1/publish', '{"channel":'), 400, 'invalid_json'],
    [
      'JSON nested deeper than 64 levels',
      () => post('/v1/publish', '{"channel":"news:x","data":' + '['.repeat(1000) + ']'.repeat(1000) + '}'),
      400,
      'json_too_deep',
    ],
    ['a deep body in a batch', () => post('/v1/publish/batch', '{"a":'.repeat(2000) + '1' + '}'.repeat(2000)), 400, 'json_too_deep'],
    ['a deep body over the size limit', () => post('/v1/publish', '['.repeat(100_000) + ']'.repeat(100_000)), 413, 'payload_too_large'],
    ['a non-JSON content type', () => post('/v1/publish', '{}', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type'],
    ['a bad event id', () => post('/v1/publish', { channel: 'news:x', data: 1, id: 'spaces are bad' }), 400, 'invalid_event_id'],
    [
      'a batch with one bad event',
      () =>
        post('/v1/publish/batch', {
          events: [
            { channel: 'news:ok', data: 1 },
            { channel: 'bad', data: 2 },
          ],
        }),
      400,
      'invalid_channel',
    ],
    [
      'a batch over the count limit',
      () => post('/v1/publish/batch', { events: Array.from({ length: 11 }, () => ({ channel: 'news:x', data: 1 })) }),
      413,
      'batch_too_large',
    ],
  ];

  it.each(cases)('%s', async (_name, call, status, code) => {
    const before = (await countRecords(brokers(), topics.topicBroadcast)) + (await countRecords(brokers(), topics.topicUsers));
    const r = await call();
    expect(r.status).toBe(status);
    expect(r.body.error.code).toBe(code);
    expect(r.body.error.message).toEqual(expect.any(String));
    const after = (await countRecords(brokers(), topics.topicBroadcast)) + (await countRecords(brokers(), topics.topicUsers));
    expect(after).toBe(before);
  });

  it('answers unknown routes with not_found', async () => {
    const r = await post('/v1/nope', {});
    expect(r).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
  });
});

describe('health', () => {
  it('is live and ready once connected to Kafka, and exposes fanout_ metrics', async () => {
    expect((await fetch(pub.url + '/healthz')).status).toBe(200);
    expect((await fetch(pub.url + '/readyz')).status).toBe(200);
    const text = await (await fetch(pub.url + '/metrics')).text();
    expect(text).toMatch(/fanout_publisher_events_total\{[^}]*outcome="published"/);
  });
});
