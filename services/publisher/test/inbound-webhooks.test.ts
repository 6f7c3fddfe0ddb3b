import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { ConfigError } from '@fanout/observability';
import { publisherConfig, startPublisher, type RunningPublisher } from '@fanout/publisher';
import { brokers, uniqueTopics } from '../../../test/helpers.js';
import { countRecords, readAll } from '../../../test/kafka-read.js';

const secret = () => 'whsec_' + randomBytes(32).toString('base64');
const BILLING = secret();
const CRM_OLD = secret();
const CRM_NEW = secret();
const topics = uniqueTopics('inbound');
let pub: RunningPublisher;

/** Signs like any Standard Webhooks sender, with the official library. */
function signed(secretKey: string, id: string, body: string, at = new Date()): Record<string, string> {
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secretKey).sign(id, at, body),
  };
}

async function post(source: string, body: string, headers: Record<string, string>, method = 'POST') {
  const res = await fetch(`${pub.url}/v1/inbound/${source}`, { method, headers, ...(method === 'POST' ? { body } : {}) });
  return { status: res.status, body: (await res.json()) as any };
}

const written = async () => countRecords(brokers(), topics.topicBroadcast);

beforeAll(async () => {
  pub = await startPublisher({
    brokers: brokers(),
    apiKeys: ['test-key-0123456789'],
    port: 0,
    ...topics,
    inboundWebhooks: JSON.stringify({
      billing: { channel: 'billing:stripe', secrets: [BILLING] },
      crm: { channel: 'crm:events', secrets: [CRM_OLD, CRM_NEW] },
    }),
    inboundToleranceS: 300,
  });
});
afterAll(async () => {
  await pub?.shutdown();
});

describe('POST /v1/inbound/<source>', () => {
  it('verifies the signature, publishes the body to the source channel and acknowledges with the position', async () => {
    const body = JSON.stringify({ type: 'invoice.paid', data: { invoice: 'in_1', amount: 4200 } });
    const r = await post('billing', body, signed(BILLING, 'msg-paid-1', body));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: 'billing:msg-paid-1', channel: 'billing:stripe', duplicate: false, position: expect.any(String) });
    const [rec] = await readAll(brokers(), topics.topicBroadcast, 1);
    expect(rec).toMatchObject({ key: 'billing:stripe', value: body });
    expect(rec!.headers).toMatchObject({ 'fanout-id': 'billing:msg-paid-1', 'fanout-channel': 'billing:stripe' });
  });

  it('acknowledges a repeated webhook-id without publishing it twice, even when the repeats arrive together', async () => {
    const body = JSON.stringify({ n: 1 });
    const first = await post('billing', body, signed(BILLING, 'msg-repeat', body));
    const before = await written();
    const again = await post('billing', body, signed(BILLING, 'msg-repeat', body));
    expect(again).toMatchObject({ status: 200, body: { id: 'billing:msg-repeat', duplicate: true, position: first.body.position } });
    expect(await written()).toBe(before);

    const burst = await Promise.all(Array.from({ length: 5 }, () => post('billing', body, signed(BILLING, 'msg-burst', body))));
    expect(burst.map((b) => b.status)).toEqual([200, 200, 200, 200, 200]);
    expect(burst.filter((b) => !b.body.duplicate)).toHaveLength(1);
    expect(await written()).toBe(before + 1);
  });

  it("accepts any of the source's secrets (rotation) and derives a valid event id from any webhook-id", async () => {
    const body = JSON.stringify({ contact: 9 });
    const r = await post('crm', body, signed(CRM_NEW, 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', body));
    expect(r.status).toBe(200);
    // Svix-style ids (with `_`) are kept as they are.
    expect(r.body.id).toBe('crm:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W');
    expect((await post('crm', body, signed(CRM_OLD, 'msg-old-key', body))).status).toBe(200);
    // An id that would not fit the event id grammar (too long, other characters) is hashed.
    const long = await post('crm', body, signed(CRM_NEW, 'x'.repeat(140), body));
    expect(long.status).toBe(200);
    expect(long.body.id).toMatch(/^crm:sha-[0-9a-f]{40}$/);
  });

  it('counts inbound webhooks in the publisher metrics', async () => {
    const text = await (await fetch(pub.url + '/metrics')).text();
    expect(text).toMatch(/fanout_publisher_inbound_webhooks_total\{[^}]*source="billing"[^}]*outcome="published"/);
  });
});

describe('forged, stale or malformed inbound webhooks are refused with a stable code and publish nothing', () => {
  const body = JSON.stringify({ type: 'invoice.paid' });
  const now = new Date();
  const cases: [string, () => Promise<{ status: number; body: any }>, number, string][] = [
    ['a signature by another secret', () => post('billing', body, signed(secret(), 'msg-forged', body)), 400, 'inbound_signature_invalid'],
    [
      'a body changed after signing',
      () => post('billing', body.replace('paid', 'void'), signed(BILLING, 'msg-tampered', body)),
      400,
      'inbound_signature_invalid',
    ],
    [
      'a signature over another id',
      () => post('billing', body, { ...signed(BILLING, 'msg-a', body), 'webhook-id': 'msg-b' }),
      400,
      'inbound_signature_invalid',
    ],
    [
      'a stale timestamp, validly signed',
      () => post('billing', body, signed(BILLING, 'msg-stale', body, new Date(now.getTime() - 10 * 60_000))),
      400,
      'inbound_timestamp_out_of_tolerance',
    ],
    [
      'a timestamp from the future',
      () => post('billing', body, signed(BILLING, 'msg-future', body, new Date(now.getTime() + 10 * 60_000))),
      400,
      'inbound_timestamp_out_of_tolerance',
    ],
    [
      'a timestamp that is not a number',
      () => post('billing', body, { ...signed(BILLING, 'msg-nan', body), 'webhook-timestamp': 'yesterday' }),
      400,
      'inbound_timestamp_out_of_tolerance',
    ],
    [
      'no signature header',
      () =>
        post('billing', body, {
          'content-type': 'application/json',
          'webhook-id': 'x',
          'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
        }),
      400,
      'inbound_headers_missing',
    ],
    [
      'valid signature over a body that is not JSON',
      () => post('billing', 'not json', signed(BILLING, 'msg-text', 'not json')),
      400,
      'invalid_json',
    ],
    ['an unknown source', () => post('nobody', body, signed(BILLING, 'msg-unknown', body)), 404, 'inbound_source_unknown'],
    ['a GET', () => post('billing', body, {}, 'GET'), 405, 'method_not_allowed'],
  ];

  it.each(cases)('%s', async (_name, call, status, code) => {
    const before = await written();
    const r = await call();
    expect(r.status).toBe(status);
    expect(r.body.error).toMatchObject({ code, message: expect.any(String), retriable: false });
    expect(await written()).toBe(before);
  });
});

describe('configuration', () => {
  it.each([
    ['not JSON', '{'],
    ['a bad source name', JSON.stringify({ 'Bad Name': { channel: 'a:b', secrets: [BILLING] } })],
    ['a bad channel', JSON.stringify({ s: { channel: 'nope', secrets: [BILLING] } })],
    ['no secrets', JSON.stringify({ s: { channel: 'a:b', secrets: [] } })],
    ['a secret without whsec_', JSON.stringify({ s: { channel: 'a:b', secrets: ['abc'] } })],
  ])('refuses FANOUT_INBOUND_WEBHOOKS with %s, naming the variable', (_name, value) => {
    expect(() => publisherConfig({ brokers: ['127.0.0.1:1'], apiKeys: ['test-key-0123456789'], inboundWebhooks: value })).toThrow(
      ConfigError,
    );
    try {
      publisherConfig({ brokers: ['127.0.0.1:1'], apiKeys: ['test-key-0123456789'], inboundWebhooks: value });
    } catch (err) {
      expect((err as ConfigError).variable).toBe('FANOUT_INBOUND_WEBHOOKS');
    }
  });
});
