import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@fanout/observability';
import { startGateway, type RunningGateway } from '@fanout/gateway';
import { PublisherClient } from '@fanout/publisher';
import { brokers, uniqueTopics, waitFor } from '../../../test/helpers.js';
import { SseReader } from '../../../test/sse-reader.js';

const topics = uniqueTopics('pull');
let pub: PublisherClient;
let gw: RunningGateway;
const readers: SseReader[] = [];

const get = (path: string, headers: Record<string, string> = {}) => fetch(gw.url + path, { headers });

/** Waits until the gateway holds `n` long polls (its gauge), i.e. a poll sent before is registered. */
const heldPolls = (n: number) =>
  waitFor(
    async () => new RegExp(`^fanout_gateway_long_polls(\\{[^}]*\\})? ${n}$`, 'm').test(await (await get('/metrics')).text()),
    `${n} held long polls`,
    5000,
  );

beforeAll(async () => {
  pub = new PublisherClient({
    brokers: brokers(),
    logger: createLogger('test'),
    topics: { broadcast: topics.topicBroadcast, users: topics.topicUsers },
  });
  await pub.connect();
  gw = await startGateway({ brokers: brokers(), port: 0, servePage: false, sseHeartbeatMs: 300, ...topics });
});

afterAll(async () => {
  for (const r of readers) r.close();
  await gw?.shutdown();
  await pub?.disconnect();
});

describe('SSE', () => {
  it('streams messages with id: set to the position and resumes after Last-Event-ID', async () => {
    const r = await SseReader.open(gw.url + '/v1/sse?channels=news:sse');
    readers.push(r);
    expect(r.status).toBe(200);
    expect(r.headers!.get('content-type')).toMatch(/^text\/event-stream/);
    await waitFor(() => r.frames().find((f) => f.t === 'subscribed'), 'subscribed');
    const sent = await pub.publishBatch([0, 1, 2, 3, 4].map((seq) => ({ channel: 'news:sse', data: { seq } })));
    await waitFor(() => r.frames().filter((f) => f.t === 'msg').length === 5, '5 events');
    const msgEvents = r.events.filter((e) => JSON.parse(e.data).t === 'msg');
    expect(msgEvents.map((e) => e.id)).toEqual(sent.map((s) => s.position));
    r.close();

    const more = await pub.publishBatch([5, 6, 7].map((seq) => ({ channel: 'news:sse', data: { seq } })));
    const again = await SseReader.open(gw.url + '/v1/sse?channels=news:sse', { 'last-event-id': msgEvents[2]!.id! });
    readers.push(again);
    await waitFor(() => again.frames().filter((f) => f.t === 'msg').length === 5, 'the 5 after the third');
    expect(
      again
        .frames()
        .filter((f) => f.t === 'msg')
        .map((f) => (f.data as { seq: number }).seq),
    ).toEqual([3, 4, 5, 6, 7]);
    expect(again.events.filter((e) => e.id).at(-1)!.id).toBe(more[2]!.position);
  });

  it('keeps multi-line data intact and sends comment heartbeats', async () => {
    const r = await SseReader.open(gw.url + '/v1/sse?channels=news:multi,news:other');
    readers.push(r);
    await waitFor(() => r.frames().find((f) => f.t === 'subscribed'), 'subscribed');
    await pub.publish({ channel: 'news:multi', data: { text: 'line one\nline two\n\ndata: not an event' } });
    const msg = await waitFor(() => r.frames().find((f) => f.t === 'msg'), 'the message');
    expect(msg.data).toEqual({ text: 'line one\nline two\n\ndata: not an event' });
    // Several channels: the id is a composite cursor naming each channel's position.
    expect(r.events.find((e) => e.id)!.id).toMatch(/^m\./);
    await waitFor(() => r.comments.length > 0, 'a heartbeat comment', 3000);
  });

  it.each([
    ['no channels', '/v1/sse', 400, 'invalid_parameter'],
    ['a bad channel', '/v1/sse?channels=Not%20A%20Channel', 400, 'invalid_channel'],
    ['a bad cursor', '/v1/sse?channels=news:x&cursor=garbage', 400, 'invalid_position'],
    ['a forged composite cursor', '/v1/sse?channels=news:x,news:y&cursor=m.bm90IGpzb24', 400, 'invalid_position'],
  ])('refuses %s with a documented 4xx', async (_name, path, status, code) => {
    const res = await get(path);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
  });
});

describe('long polling', () => {
  it('returns within milliseconds of a publish, with the next cursor', async () => {
    const first = (await (await get('/v1/poll?channel=news:lp&timeout=0')).json()) as { messages: unknown[]; cursor: string };
    expect(first.messages).toEqual([]);
    let answeredAt = 0;
    const held = get(`/v1/poll?channel=news:lp&cursor=${encodeURIComponent(first.cursor)}&timeout=20`).then((r) => {
      answeredAt = Date.now();
      return r;
    });
    await heldPolls(1);
    const publishing = Date.now();
    const [sent] = await pub.publishBatch([{ channel: 'news:lp', data: 'hello' }]);
    const published = Date.now();
    const body = (await (await held).json()) as { messages: { data: unknown; pos: string }[]; cursor: string };
    // Held until the publish, then answered at once.
    expect(answeredAt).toBeGreaterThanOrEqual(publishing);
    expect(answeredAt - published).toBeLessThan(1000);
    expect(body.messages).toMatchObject([{ data: 'hello', pos: sent!.position }]);
    expect(body.cursor).toBe(sent!.position);
  });

  it('answers empty at the timeout, and gives what came after a cursor at once', async () => {
    const t0 = Date.now();
    const empty = (await (await get('/v1/poll?channel=news:quiet&timeout=1')).json()) as { messages: unknown[]; cursor: string };
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(empty.messages).toEqual([]);
    const sent = await pub.publishBatch([1, 2, 3].map((i) => ({ channel: 'news:quiet', data: i })));
    // Poll on with each returned cursor: every message exactly once, in order.
    const seen: number[] = [];
    let cursor = empty.cursor;
    while (seen.length < 3) {
      const got = (await (await get(`/v1/poll?channel=news:quiet&cursor=${encodeURIComponent(cursor)}&timeout=5`)).json()) as {
        messages: { data: number }[];
        cursor: string;
      };
      seen.push(...got.messages.map((m) => m.data));
      cursor = got.cursor;
    }
    expect(seen).toEqual([1, 2, 3]);
    expect(cursor).toBe(sent[2]!.position);
  });

  it('keeps a cursor ahead of this gateway, and answers only with what comes after it', async () => {
    const [first] = await pub.publishBatch([{ channel: 'news:aheadpoll', data: 0 }]);
    // As if another gateway had already given the poller two more offsets of this partition.
    const [e, p, o] = first!.position.split(':');
    const ahead = `${e}:${p}:${Number(o) + 2}`;
    const polling = get(`/v1/poll?channel=news:aheadpoll&cursor=${encodeURIComponent(ahead)}&timeout=10`);
    await heldPolls(1);
    const sent = await pub.publishBatch([1, 2, 3, 4].map((i) => ({ channel: 'news:aheadpoll', data: i })));
    const seen: number[] = [];
    let got = (await (await polling).json()) as { messages: { data: number }[]; cursor: string };
    seen.push(...got.messages.map((m) => m.data));
    while (seen.length < 2) {
      got = (await (await get(`/v1/poll?channel=news:aheadpoll&cursor=${encodeURIComponent(got.cursor)}&timeout=5`)).json()) as typeof got;
      seen.push(...got.messages.map((m) => m.data));
    }
    expect(seen).toEqual([3, 4]);
    expect(got.cursor).toBe(sent[3]!.position);
  });

  it.each([
    ['no channel', '/v1/poll', 400, 'invalid_parameter'],
    ['a bad channel', '/v1/poll?channel=nope', 400, 'invalid_channel'],
    ['a huge timeout', '/v1/poll?channel=news:x&timeout=86400', 400, 'invalid_parameter'],
    ['a negative timeout', '/v1/poll?channel=news:x&timeout=-1', 400, 'invalid_parameter'],
    ['a bad cursor', '/v1/poll?channel=news:x&cursor=abc', 400, 'invalid_position'],
    ['a cursor from another epoch', '/v1/poll?channel=news:x&cursor=zz:0:1', 410, 'cursor_expired'],
    ['a user channel without a token', '/v1/poll?channel=user:42', 401, 'token_required'],
    ['a parameter given twice (found by schemathesis)', '/v1/poll?channel=news:x&limit=&limit=5', 400, 'invalid_parameter'],
    ['a channel given twice', '/v1/history?channel=news:x&channel=news:y', 400, 'invalid_parameter'],
  ])('refuses %s with a documented 4xx', async (_name, path, status, code) => {
    const res = await get(path);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
  });
});

describe('ETag polling', () => {
  it('answers 304 with no body while nothing changed, and 200 with a new ETag after a publish', async () => {
    await pub.publish({ channel: 'news:etag', data: { v: 1 } });
    const first = await waitFor(async () => {
      const r = await get('/v1/latest?channel=news:etag');
      const b = (await r.json()) as { message: { data: unknown } | null };
      return b.message ? { etag: r.headers.get('etag')!, body: b } : undefined;
    }, 'the first value');
    expect(first.body.message!.data).toEqual({ v: 1 });
    const same = await get('/v1/latest?channel=news:etag', { 'if-none-match': first.etag });
    expect(same.status).toBe(304);
    expect(await same.text()).toBe('');
    const histFirst = await get('/v1/history?channel=news:etag');
    expect(histFirst.status).toBe(200);
    const histEtag = histFirst.headers.get('etag')!;
    const hist = await get('/v1/history?channel=news:etag', { 'if-none-match': histEtag });
    expect(hist.status).toBe(304);
    // The same position with other parameters is another representation, with its own ETag.
    expect((await get('/v1/history?channel=news:etag&limit=5', { 'if-none-match': histEtag })).status).toBe(200);
    await pub.publish({ channel: 'news:etag', data: { v: 2 } });
    const changed = await waitFor(async () => {
      const r = await get('/v1/latest?channel=news:etag', { 'if-none-match': first.etag });
      return r.status === 200 ? r : undefined;
    }, 'a changed ETag');
    expect(changed.headers.get('etag')).not.toBe(first.etag);
    expect(((await changed.json()) as { message: { data: unknown } }).message.data).toEqual({ v: 2 });
  });

  it('answers a CORS preflight, and carries allow-origin on answers', async () => {
    const pre = await fetch(gw.url + '/v1/history?channel=news:etag', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-headers': 'if-none-match' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-headers')).toContain('if-none-match');
    expect((await get('/v1/latest?channel=news:etag')).headers.get('access-control-allow-origin')).toBe('*');
  });

  it('gives the history since a position', async () => {
    const sent = await pub.publishBatch([10, 11, 12, 13].map((i) => ({ channel: 'news:hist', data: i })));
    const got = await waitFor(async () => {
      const b = (await (await get(`/v1/history?channel=news:hist&since=${encodeURIComponent(sent[1]!.position)}`)).json()) as {
        messages: { data: number }[];
      };
      return b.messages.length === 2 ? b : undefined;
    }, 'two messages after the second');
    expect(got.messages.map((m) => m.data)).toEqual([12, 13]);
  });
});
