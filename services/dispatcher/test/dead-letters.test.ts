import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PublisherClient } from '@fanout/publisher';
import { startDispatcher, type RunningDispatcher } from '@fanout/dispatcher';
import { brokers, waitFor } from '../../../test/helpers.js';
import { readAll } from '../../../test/kafka-read.js';
import { Receiver } from './receiver.js';
import { api, capturingLogger, dispatcherTopics, metric, publisher, testConfig } from './harness.js';

const topics = dispatcherTopics('wh-dlq');
const logs = capturingLogger();
let d: RunningDispatcher;
let pub: PublisherClient;
let healthy = false;
let r: Receiver;

beforeAll(async () => {
  r = await Receiver.start(() => (healthy ? { status: 200 } : { status: 500, body: 'database down' }));
  [d, pub] = await Promise.all([
    startDispatcher(testConfig(topics, { retrySchedule: ['100ms', '200ms'] }), logs.logger),
    publisher(topics),
  ]);
});
afterAll(async () => {
  await d?.shutdown();
  await pub?.disconnect();
  await r?.close();
});

describe('dead letters', () => {
  it('a receiver that never succeeds sends the event to the dead-letter topic after the last try, visible through the API; redrive delivers it once fixed', async () => {
    const ep = await api(d.url, 'POST', '/v1/endpoints', { url: r.url, channels: ['billing:*'] });
    expect(ep.status).toBe(201);
    const id = ep.body.id as string;
    await pub.publish({ channel: 'billing:invoices', data: { invoice: 'inv-1' }, id: 'evt-dead-1' });

    // One try plus one per step of the schedule, then the dead-letter topic.
    const [record] = await readAll(brokers(), topics.topicDeadLetters, 1);
    expect(record!.key).toBe(`${id}/evt-dead-1`);
    const value = JSON.parse(record!.value!) as Record<string, any>;
    expect(value).toMatchObject({
      endpoint_id: id,
      attempt: 3,
      reason: 'exhausted',
      event: { id: 'evt-dead-1', channel: 'billing:invoices', data_json: '{"invoice":"inv-1"}' },
    });
    expect(value.last).toMatchObject({ status: 500, error: 'http_500: database down' });
    expect(r.attemptsOf('evt-dead-1').map((a) => a.status)).toEqual([500, 500, 500]);

    const listed = await waitFor(async () => {
      const l = await api(d.url, 'GET', `/v1/endpoints/${id}/dead-letters`);
      return l.body.total === 1 ? l : null;
    }, 'the dead letter in the API');
    expect(listed.body.dead_letters[0]).toMatchObject({
      event_id: 'evt-dead-1',
      channel: 'billing:invoices',
      attempts: 3,
      reason: 'exhausted',
      data: { invoice: 'inv-1' },
      last_attempt: { status: 500 },
    });
    expect((await api(d.url, 'GET', `/v1/endpoints/${id}`)).body.dead_letters).toBe(1);

    // One log line for the final failure, with the endpoint id and never the secret.
    const line = logs.lines.find((l) => l.msg === 'webhook delivery failed for good; dead-lettered');
    expect(line).toMatchObject({ endpoint_id: id, event_id: 'evt-dead-1', attempts: 3, reason: 'exhausted', last_status: 500 });
    expect(logs.raw.some((l) => l.includes(ep.body.secret as string) || l.includes((ep.body.secret as string).slice(6)))).toBe(false);
    expect(await metric(d.url, 'fanout_webhook_dead_lettered_total', { reason: 'exhausted' })).toBe(1);
    expect(await metric(d.url, 'fanout_webhook_dead_letters')).toBe(1);

    // Fixed: a redrive delivers it (from the first attempt) and removes the dead letter.
    healthy = true;
    const redrive = await api(d.url, 'POST', `/v1/endpoints/${id}/dead-letters/redrive`);
    expect(redrive).toMatchObject({ status: 202, body: { redriven: 1, not_found: [] } });
    await waitFor(() => r.delivered().has('evt-dead-1'), 'the redriven delivery');
    expect(r.attemptsOf('evt-dead-1').map((a) => a.status)).toEqual([500, 500, 500, 200]);
    await waitFor(
      async () => (await api(d.url, 'GET', `/v1/endpoints/${id}/dead-letters`)).body.total === 0,
      'the dead letter to be removed',
    );
    const tombstone = (await readAll(brokers(), topics.topicDeadLetters, 2))[1]!;
    expect(tombstone).toMatchObject({ key: `${id}/evt-dead-1`, value: null });
    expect(await metric(d.url, 'fanout_webhook_redriven_total')).toBe(1);
  });

  it('redrives only the named dead letters, reports unknown ones, and refuses a disabled endpoint', async () => {
    healthy = false;
    const ep = await api(d.url, 'POST', '/v1/endpoints', { url: r.url, channels: ['audit:x'] });
    const id = ep.body.id as string;
    await pub.publishBatch([
      { channel: 'audit:x', data: 1, id: 'evt-a' },
      { channel: 'audit:x', data: 2, id: 'evt-b' },
    ]);
    await waitFor(async () => (await api(d.url, 'GET', `/v1/endpoints/${id}/dead-letters`)).body.total === 2, 'two dead letters');
    healthy = true;
    const redrive = await api(d.url, 'POST', `/v1/endpoints/${id}/dead-letters/redrive`, { event_ids: ['evt-b', 'evt-nope'] });
    expect(redrive.body).toEqual({ redriven: 1, not_found: ['evt-nope'] });
    await waitFor(() => r.delivered().has('evt-b'), 'evt-b redriven');
    const left = await waitFor(async () => {
      const l = await api(d.url, 'GET', `/v1/endpoints/${id}/dead-letters`);
      return l.body.total === 1 ? l : null;
    }, 'one dead letter left');
    expect(left.body.dead_letters[0].event_id).toBe('evt-a');
    expect(r.delivered().has('evt-a')).toBe(false);

    expect((await api(d.url, 'POST', `/v1/endpoints/${id}/disable`)).body.disabled).toBe(true);
    const refused = await api(d.url, 'POST', `/v1/endpoints/${id}/dead-letters/redrive`);
    expect(refused).toMatchObject({ status: 409, body: { error: { code: 'endpoint_disabled' } } });
  });
});
