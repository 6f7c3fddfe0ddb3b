import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import type { PublisherClient } from '@fanout/publisher';
import { startDispatcher, type RunningDispatcher } from '@fanout/dispatcher';
import { createKafka, HEADER_FORWARDED_FROM, HEADER_FORWARDED_REGION, toRecord } from '@fanout/kafka';
import { createLogger } from '@fanout/observability';
import { brokers, waitFor } from '../../../test/helpers.js';
import { Receiver, type Answer } from './receiver.js';
import { api, dispatcherTopics, metric, publisher, testConfig } from './harness.js';

const topics = dispatcherTopics('wh-retry');
let d: RunningDispatcher;
let pub: PublisherClient;
const receivers: Receiver[] = [];

async function receiver(answer?: (r: { id: string; attempt: number }) => Answer): Promise<Receiver> {
  const r = await Receiver.start(answer);
  receivers.push(r);
  return r;
}

beforeAll(async () => {
  [d, pub] = await Promise.all([
    startDispatcher(
      testConfig(topics, { retrySchedule: ['200ms', '300ms', '400ms', '500ms'], partitionWindow: 3, maxQueuedDeliveries: 4 }),
    ),
    publisher(topics),
  ]);
});
afterAll(async () => {
  await d?.shutdown();
  await pub?.disconnect();
  await Promise.all(receivers.map((r) => r.close()));
});

describe('forwarded copies of misrouted user records', () => {
  it('delivers the original record once and skips the copies gateways write to the right partition', async () => {
    const r = await receiver();
    expect((await api(d.url, 'POST', '/v1/endpoints', { url: r.url, channels: ['user:*'] })).status).toBe(201);
    const kafka = createKafka({
      brokers: brokers(),
      clientId: 'forwarded-copies-test',
      logger: createLogger('test').child({}, { level: 'fatal' }),
    });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const original = toRecord({ channel: 'user:misrouted-7', id: 'evt-misrouted-1', dataJson: '{"n":1}' }, Date.now());
    // The original on whatever partition another client chose, then two regions' copies of it.
    await producer.send({ topic: topics.topicUsers, messages: [{ ...original, partition: 0 }] });
    for (const region of ['eu', 'us']) {
      await producer.send({
        topic: topics.topicUsers,
        messages: [
          {
            ...original,
            partition: 1,
            headers: { ...original.headers, [HEADER_FORWARDED_FROM]: '0:0', [HEADER_FORWARDED_REGION]: region },
          },
        ],
      });
    }
    await producer.disconnect();
    await waitFor(
      async () => (await metric(d.url, 'fanout_webhook_skipped_records_total', { kind: 'forwarded_copy' })) >= 2,
      'both copies skipped',
    );
    await waitFor(() => r.delivered().has('evt-misrouted-1'), 'the original delivered');
    expect(r.attemptsOf('evt-misrouted-1')).toHaveLength(1);
  });
});

describe('retries', () => {
  it('a receiver that fails the first three attempts gets the event on the fourth, signed so that the official verifier accepts it', async () => {
    const r = await receiver(({ attempt }) => ({ status: attempt <= 3 ? 503 : 204 }));
    const created = await api(d.url, 'POST', '/v1/endpoints', { url: r.url, channels: ['orders:*'] });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_/);
    const started = performance.now();
    await pub.publish({ channel: 'orders:eu', data: { order: 7, total: 12.5 }, id: 'evt-retry-1' });

    await waitFor(() => r.delivered().has('evt-retry-1'), 'the fourth attempt to succeed');
    const attempts = r.attemptsOf('evt-retry-1');
    expect(attempts.map((a) => a.status)).toEqual([503, 503, 503, 204]);
    // The waits follow the schedule (200, 300, 400 ms, plus up to 10% jitter), measured at the receiver.
    const gaps = attempts.slice(1).map((a, i) => a.at - attempts[i]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(190);
    expect(gaps[1]).toBeGreaterThanOrEqual(290);
    expect(gaps[2]).toBeGreaterThanOrEqual(390);
    expect(attempts[3]!.at - started).toBeLessThan(10_000);

    const wh = new Webhook(created.body.secret);
    for (const a of attempts) {
      expect(a.headers['webhook-id']).toBe('evt-retry-1');
      const payload = wh.verify(a.body, a.headers as Record<string, string>) as Record<string, unknown>;
      expect(payload).toMatchObject({ type: 'fanout.event', id: 'evt-retry-1', channel: 'orders:eu', data: { order: 7, total: 12.5 } });
    }
    // A different secret does not verify it.
    expect(() =>
      new Webhook('whsec_' + Buffer.alloc(32, 7).toString('base64')).verify(
        attempts[3]!.body,
        attempts[3]!.headers as Record<string, string>,
      ),
    ).toThrow();

    expect(await metric(d.url, 'fanout_webhook_attempts_total', { result: 'http_error' })).toBeGreaterThanOrEqual(3);
    expect(await metric(d.url, 'fanout_webhook_deliveries_total', { outcome: 'retry_scheduled' })).toBeGreaterThanOrEqual(3);
    expect(await metric(d.url, 'fanout_webhook_deliveries_total', { outcome: 'delivered' })).toBeGreaterThanOrEqual(1);
    expect(await metric(d.url, 'fanout_webhook_attempt_duration_seconds_count')).toBeGreaterThanOrEqual(4);
  });

  it('delivers user channels and only to endpoints whose patterns match', async () => {
    const mine = await receiver();
    const other = await receiver();
    // A control endpoint for the event nobody else may get: once it has it, the dispatcher has matched it.
    const control = await receiver();
    const a = await api(d.url, 'POST', '/v1/endpoints', { url: mine.url, channels: ['user:42', 'news:global'] });
    const b = await api(d.url, 'POST', '/v1/endpoints', { url: other.url, channels: ['user:43'] });
    const c = await api(d.url, 'POST', '/v1/endpoints', { url: control.url, channels: ['news:local'] });
    expect([a.status, b.status, c.status]).toEqual([201, 201, 201]);
    await pub.publishBatch([
      { channel: 'user:42', data: { hello: 42 }, id: 'evt-u42' },
      { channel: 'news:global', data: 'headline', id: 'evt-news' },
      { channel: 'news:local', data: 'not for them', id: 'evt-local' },
    ]);
    await waitFor(() => mine.delivered().has('evt-u42') && mine.delivered().has('evt-news'), 'both matching events');
    const body = JSON.parse(mine.attemptsOf('evt-u42')[0]!.body) as Record<string, unknown>;
    expect(body).toMatchObject({ type: 'fanout.event', channel: 'user:42', data: { hello: 42 } });
    expect(Date.parse(body.timestamp as string)).toBeGreaterThan(Date.now() - 60_000);
    await waitFor(() => control.delivered().has('evt-local'), 'the control endpoint');
    // Nothing queued or in flight: a delivery of evt-local to another endpoint would have reached it.
    await waitFor(
      async () =>
        (await metric(d.url, 'fanout_webhook_queued_deliveries')) === 0 && (await metric(d.url, 'fanout_webhook_requests_in_flight')) === 0,
      'no delivery queued or in flight',
    );
    expect(mine.delivered().has('evt-local')).toBe(false);
    expect(other.requests).toHaveLength(0);
  });

  it('signs with both secrets during a rotation overlap, and only with the new one after it', async () => {
    const r = await receiver();
    const created = await api(d.url, 'POST', '/v1/endpoints', { url: r.url, channels: ['rotate:x'] });
    const oldSecret = created.body.secret as string;
    const rotated = await api(d.url, 'POST', `/v1/endpoints/${created.body.id}/secret/rotate`, { overlap_s: 3600 });
    expect(rotated.status).toBe(200);
    const newSecret = rotated.body.secret as string;
    expect(newSecret).not.toBe(oldSecret);
    expect(rotated.body.previous).toEqual([{ secret: oldSecret, expires_at: expect.any(String) }]);
    await pub.publish({ channel: 'rotate:x', data: 1, id: 'evt-rot-1' });
    await waitFor(() => r.delivered().has('evt-rot-1'), 'the delivery during the overlap');
    const during = r.attemptsOf('evt-rot-1')[0]!;
    expect(String(during.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(() => new Webhook(oldSecret).verify(during.body, during.headers as Record<string, string>)).not.toThrow();
    expect(() => new Webhook(newSecret).verify(during.body, during.headers as Record<string, string>)).not.toThrow();

    const again = await api(d.url, 'POST', `/v1/endpoints/${created.body.id}/secret/rotate`, { overlap_s: 0 });
    expect(again.body.previous).toEqual([]);
    await pub.publish({ channel: 'rotate:x', data: 2, id: 'evt-rot-2' });
    await waitFor(() => r.delivered().has('evt-rot-2'), 'the delivery after the overlap');
    const after = r.attemptsOf('evt-rot-2')[0]!;
    expect(() => new Webhook(again.body.secret).verify(after.body, after.headers as Record<string, string>)).not.toThrow();
    expect(() => new Webhook(newSecret).verify(after.body, after.headers as Record<string, string>)).toThrow();
    expect(() => new Webhook(oldSecret).verify(after.body, after.headers as Record<string, string>)).toThrow();
  });

  it('keeps at most the window of unsettled records per partition in memory, pausing and resuming the partition without skipping any', async () => {
    const r = await receiver(() => ({ status: 200, delayMs: 50 }));
    await api(d.url, 'POST', '/v1/endpoints', { url: r.url, channels: ['window:one'], max_concurrency: 1 });
    const ids = Array.from({ length: 20 }, (_, i) => `evt-window-${i}`);
    // One channel: one partition, in order; with one request at a time and a window of 3 the partition pauses often.
    await pub.publishBatch(ids.map((id, i) => ({ channel: 'window:one', data: { i }, id })));
    await waitFor(() => ids.every((id) => r.delivered().has(id)), 'every event through the window', 10_000);
    expect(r.requests.map((q) => q.id)).toEqual(ids);
    expect(await metric(d.url, 'fanout_webhook_consumer_pauses_total', { reason: 'window' })).toBeGreaterThan(0);
  });

  it('stops reading while the read-ahead budget of waiting deliveries is full, and resumes without deferring or losing any', async () => {
    const r = await receiver(() => ({ status: 200, delayMs: 20 }));
    await api(d.url, 'POST', '/v1/endpoints', { url: r.url, channels: ['budget:*'], max_concurrency: 1 });
    const ids = Array.from({ length: 30 }, (_, i) => `evt-budget-${i}`);
    await pub.publishBatch(ids.map((id, i) => ({ channel: `budget:c${i % 6}`, data: { i }, id })));
    await waitFor(() => ids.every((id) => r.delivered().has(id)), 'every event through the budget', 10_000);
    expect(await metric(d.url, 'fanout_webhook_consumer_pauses_total', { reason: 'budget' })).toBeGreaterThan(0);
    expect(await metric(d.url, 'fanout_webhook_deferrals_total')).toBe(0);
  });
});
