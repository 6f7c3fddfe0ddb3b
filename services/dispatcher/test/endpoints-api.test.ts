import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, ConfigResourceTypes } from 'kafkajs';
import type { PublisherClient } from '@fanout/publisher';
import { startDispatcher, type RunningDispatcher } from '@fanout/dispatcher';
import { brokers, waitFor } from '../../../test/helpers.js';
import { countRecords, readAll } from '../../../test/kafka-read.js';
import { Receiver } from './receiver.js';
import { api, capturingLogger, dispatcherTopics, metric, publisher, testConfig } from './harness.js';

const topics = dispatcherTopics('wh-api');
/** Loopback allowed (tests, local development). */
let open: RunningDispatcher;
/** Production defaults: nothing private allowed. Same registry topic, its own consumer group. */
let strict: RunningDispatcher;
let pub: PublisherClient;
let receiver: Receiver;

beforeAll(async () => {
  receiver = await Receiver.start();
  [open, strict, pub] = await Promise.all([
    startDispatcher(testConfig(topics, { allowedTargets: ['127.0.0.0/8', '::1/128'] })),
    // Its refused deliveries end as dead letters; their log lines are kept out of the test output.
    startDispatcher(
      testConfig(topics, { allowedTargets: [], groupId: `${topics.groupId}-strict`, retrySchedule: ['100ms'] }),
      capturingLogger().logger,
    ),
    publisher(topics),
  ]);
});
afterAll(async () => {
  await Promise.all([open?.shutdown(), strict?.shutdown()]);
  await pub?.disconnect();
  await receiver?.close();
});

describe('authentication', () => {
  it.each([
    ['no API key', null],
    ['a wrong API key', 'wrong-key-0000000'],
  ])('refuses %s with 401 unauthorized', async (_name, key) => {
    const r = await api(open.url, 'GET', '/v1/endpoints', undefined, key);
    expect(r).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } });
  });

  it('accepts the key as x-api-key too, and serves health and metrics without one', async () => {
    const r = await fetch(open.url + '/v1/endpoints', { headers: { 'x-api-key': 'test-dispatcher-key-0123' } });
    expect(r.status).toBe(200);
    expect((await fetch(open.url + '/healthz')).status).toBe(200);
    expect((await fetch(open.url + '/readyz')).status).toBe(200);
    expect(await (await fetch(open.url + '/metrics')).text()).toMatch(/fanout_webhook_endpoints\{/);
  });
});

describe('validation', () => {
  const cases: [string, unknown, number, string][] = [
    ['no url', { channels: ['a:b'] }, 400, 'invalid_webhook_url'],
    ['no channels', { url: 'http://127.0.0.1:9/x' }, 400, 'invalid_endpoint'],
    ['a bad channel pattern', { url: 'http://127.0.0.1:9/x', channels: ['not a channel'] }, 400, 'invalid_endpoint'],
    ['an unknown field', { url: 'http://127.0.0.1:9/x', channels: ['a:b'], colour: 'red' }, 400, 'invalid_endpoint'],
    ['a non-http scheme', { url: 'ftp://127.0.0.1/x', channels: ['a:b'] }, 400, 'invalid_webhook_url'],
    ['credentials in the URL', { url: 'http://user:pw@127.0.0.1:9/x', channels: ['a:b'] }, 400, 'invalid_webhook_url'],
    ['not a URL', { url: 'nope', channels: ['a:b'] }, 400, 'invalid_webhook_url'],
    ['a malformed secret', { url: 'http://127.0.0.1:9/x', channels: ['a:b'], secret: 'whsec_short' }, 400, 'invalid_endpoint'],
    ['a bad concurrency', { url: 'http://127.0.0.1:9/x', channels: ['a:b'], max_concurrency: 0 }, 400, 'invalid_endpoint'],
    ['a bad rate', { url: 'http://127.0.0.1:9/x', channels: ['a:b'], rate_limit_per_s: -1 }, 400, 'invalid_endpoint'],
  ];
  it.each(cases)('refuses %s', async (_name, body, status, code) => {
    const r = await api(open.url, 'POST', '/v1/endpoints', body);
    expect(r).toMatchObject({ status, body: { error: { code, message: expect.any(String) } } });
  });

  it('refuses invalid JSON and other content types', async () => {
    const headers = { authorization: 'Bearer test-dispatcher-key-0123' };
    const bad = await fetch(open.url + '/v1/endpoints', {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: '{"url":',
    });
    expect([bad.status, ((await bad.json()) as any).error.code]).toEqual([400, 'invalid_json']);
    const text = await fetch(open.url + '/v1/endpoints', {
      method: 'POST',
      headers: { ...headers, 'content-type': 'text/plain' },
      body: 'x',
    });
    expect([text.status, ((await text.json()) as any).error.code]).toEqual([415, 'unsupported_media_type']);
  });

  it('answers unknown routes, ids and methods with stable codes', async () => {
    expect((await api(open.url, 'GET', '/v1/nope')).body.error.code).toBe('not_found');
    expect(await api(open.url, 'GET', '/v1/endpoints/ep_doesnotexist')).toMatchObject({
      status: 404,
      body: { error: { code: 'endpoint_not_found' } },
    });
    expect(await api(open.url, 'PUT', '/v1/endpoints')).toMatchObject({ status: 405, body: { error: { code: 'method_not_allowed' } } });
  });
});

describe('SSRF', () => {
  const forbidden = [
    'http://127.0.0.1:9/hook',
    'http://2130706433/hook', // 127.0.0.1 written as a number
    'http://localhost:9/hook', // resolves to loopback
    'http://10.1.2.3/hook',
    'http://172.16.5.4/hook',
    'http://192.168.1.10/hook',
    'http://169.254.169.254/latest/meta-data',
    'http://100.64.0.1/hook',
    'http://0.0.0.0/hook',
    'http://[::1]/hook',
    'http://[::ffff:10.0.0.1]/hook',
    'http://[fe80::1]/hook',
    'http://[fd00::1]/hook',
  ];
  it.each(forbidden)('refuses %s by default', async (url) => {
    const r = await api(strict.url, 'POST', '/v1/endpoints', { url, channels: ['ssrf:x'] });
    expect(r).toMatchObject({ status: 400, body: { error: { code: 'webhook_url_forbidden' } } });
  });

  it('accepts loopback only where the allow-list names it, and still refuses other private ranges there', async () => {
    expect((await api(open.url, 'POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/hook', channels: ['ssrf:ok'] })).status).toBe(201);
    expect((await api(open.url, 'POST', '/v1/endpoints', { url: 'http://localhost:9/hook', channels: ['ssrf:ok'] })).status).toBe(201);
    expect((await api(open.url, 'POST', '/v1/endpoints', { url: 'http://10.1.2.3/hook', channels: ['ssrf:ok'] })).body.error.code).toBe(
      'webhook_url_forbidden',
    );
  });

  it('checks the address again when connecting: an instance without the allow-list does not deliver to a loopback endpoint another instance registered', async () => {
    const ep = await api(open.url, 'POST', '/v1/endpoints', { url: receiver.url, channels: ['ssrf:deliver'] });
    await waitFor(() => strict.endpoints.get(ep.body.id), 'the strict instance to see the endpoint');
    await pub.publish({ channel: 'ssrf:deliver', data: 1, id: 'evt-ssrf' });
    await waitFor(() => receiver.delivered().has('evt-ssrf'), 'delivery by the allowed instance');
    await waitFor(
      async () => (await metric(strict.url, 'fanout_webhook_attempts_total', { result: 'forbidden_target' })) >= 1,
      'the strict instance to refuse the target',
    );
    expect(receiver.attemptsOf('evt-ssrf')).toHaveLength(1);
  });
});

describe('the registry', () => {
  it('creates, lists, gets, updates, disables, enables, shows the secret of and deletes an endpoint', async () => {
    const created = await api(open.url, 'POST', '/v1/endpoints', {
      url: 'http://127.0.0.1:9/crud',
      channels: ['crud:*'],
      description: 'orders',
      rate_limit_per_s: 50,
      max_concurrency: 4,
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.body).toMatchObject({
      id: expect.stringMatching(/^ep_/),
      url: 'http://127.0.0.1:9/crud',
      channels: ['crud:*'],
      description: 'orders',
      disabled: false,
      rate_limit_per_s: 50,
      max_concurrency: 4,
      dead_letters: 0,
    });
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

    const got = await api(open.url, 'GET', `/v1/endpoints/${id}`);
    expect(got.body).toMatchObject({ id, url: 'http://127.0.0.1:9/crud' });
    expect(JSON.stringify(got.body)).not.toContain('whsec_');
    const list = await api(open.url, 'GET', '/v1/endpoints?limit=1000');
    expect(list.body.endpoints.map((e: { id: string }) => e.id)).toContain(id);

    const patched = await api(open.url, 'PATCH', `/v1/endpoints/${id}`, {
      channels: ['crud:a', 'user:7'],
      description: 'changed',
      rate_limit_per_s: null,
    });
    expect(patched.body).toMatchObject({
      channels: ['crud:a', 'user:7'],
      description: 'changed',
      rate_limit_per_s: null,
      max_concurrency: 4,
    });
    expect((await api(open.url, 'PATCH', `/v1/endpoints/${id}`, { secret: created.body.secret })).body.error.code).toBe('invalid_endpoint');
    expect((await api(open.url, 'POST', `/v1/endpoints/${id}/disable`)).body.disabled).toBe(true);
    expect((await api(open.url, 'POST', `/v1/endpoints/${id}/enable`)).body.disabled).toBe(false);
    expect((await api(open.url, 'GET', `/v1/endpoints/${id}/secret`)).body).toEqual({ secret: created.body.secret, previous: [] });

    // Every instance sees the same registry: it is the topic.
    await waitFor(() => strict.endpoints.get(id)?.description === 'changed', 'the other instance to see the update');
    expect((await api(strict.url, 'GET', `/v1/endpoints/${id}`)).body).toMatchObject({ channels: ['crud:a', 'user:7'] });

    expect(await api(open.url, 'DELETE', `/v1/endpoints/${id}`)).toMatchObject({ status: 200, body: { id, deleted: true } });
    expect((await api(open.url, 'GET', `/v1/endpoints/${id}`)).status).toBe(404);
    await waitFor(() => strict.endpoints.get(id) === undefined, 'the other instance to see the deletion');
  });

  it('is a compacted topic keyed by endpoint id, where a delete is a tombstone', async () => {
    const kafka = new Kafka({ brokers: brokers(), clientId: 'test-admin', logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const cfg = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topics.topicEndpoints, configNames: ['cleanup.policy'] }],
      });
      expect(cfg.resources[0]!.configEntries[0]!.configValue).toBe('compact');
      const dl = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topics.topicDeadLetters, configNames: ['cleanup.policy'] }],
      });
      expect(dl.resources[0]!.configEntries[0]!.configValue).toBe('compact,delete');
    } finally {
      await admin.disconnect();
    }
    const created = await api(open.url, 'POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/compact', channels: ['compact:x'] });
    await api(open.url, 'DELETE', `/v1/endpoints/${created.body.id}`);
    // The delete answered once the tombstone was read back, so both records are in the topic.
    const all = await readAll(brokers(), topics.topicEndpoints, await countRecords(brokers(), topics.topicEndpoints));
    const mine = all.filter((r) => r.key === created.body.id);
    expect(mine).toHaveLength(2);
    expect(JSON.parse(mine[0]!.value!)).toMatchObject({ v: 1, id: created.body.id, url: 'http://127.0.0.1:9/compact' });
    expect(mine[mine.length - 1]!.value).toBeNull();
  });
});
