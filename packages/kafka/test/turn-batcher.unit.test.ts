/**
 * The turn batcher behind the publisher's producer and the dispatcher's writer, with a fake
 * `send`: no Kafka. Requests are held open with deferred promises, so "one at a time" is exact.
 */
import { describe, expect, it } from 'vitest';
import { TurnBatcher } from '../src/turn-batcher.js';

interface Request {
  items: string[];
  resolve(results: string[]): void;
  reject(err: unknown): void;
}

/** A batcher over strings (size = length) whose requests stay open until the test answers them. */
function setup(o: { maxBytes?: number; maxCount?: number } = {}) {
  const requests: Request[] = [];
  let waiting: (() => void) | null = null;
  const batcher = new TurnBatcher<string, string>({
    send: (items) =>
      new Promise<string[]>((resolve, reject) => {
        requests.push({ items, resolve, reject });
        waiting?.();
      }),
    sizeOf: (s) => s.length,
    maxBytes: o.maxBytes ?? 1_000_000,
    ...(o.maxCount !== undefined ? { maxCount: o.maxCount } : {}),
  });
  /** Resolves once `n` requests have been sent. */
  const sent = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (requests.length >= n) resolve();
        else waiting = check;
      };
      check();
    });
  /** Answers a request with one result per item (`<item>!`). */
  const answer = (r: Request) => r.resolve(r.items.map((s) => `${s}!`));
  return { batcher, requests, sent, answer };
}

describe('turn batcher', () => {
  it('sends what one turn added in one request, in call order, and settles each item with its own result', async () => {
    const { batcher, requests, sent, answer } = setup();
    const results = Promise.all(['a', 'b', 'c'].map((s) => batcher.add(s)));
    expect(requests).toEqual([]); // not before the turn ends
    expect(batcher.busy).toBe(true);
    await sent(1);
    expect(requests.map((r) => r.items)).toEqual([['a', 'b', 'c']]);
    answer(requests[0]!);
    expect(await results).toEqual(['a!', 'b!', 'c!']);
    expect(batcher.busy).toBe(false);
  });

  it('cuts requests at maxBytes, sending an item larger than the limit alone', async () => {
    const { batcher, requests, sent, answer } = setup({ maxBytes: 10 });
    const all = Promise.all(['aaaa', 'bbbb', 'cccc', 'dd', 'x'.repeat(30), 'e'].map((s) => batcher.add(s)));
    for (let i = 1; i <= 4; i++) {
      await sent(i);
      answer(requests[i - 1]!);
    }
    await all;
    expect(requests.map((r) => r.items)).toEqual([['aaaa', 'bbbb'], ['cccc', 'dd'], ['x'.repeat(30)], ['e']]);
  });

  it('cuts requests at maxCount', async () => {
    const { batcher, requests, sent, answer } = setup({ maxCount: 2 });
    const all = Promise.all(['a', 'b', 'c', 'd', 'e'].map((s) => batcher.add(s)));
    for (let i = 1; i <= 3; i++) {
      await sent(i);
      answer(requests[i - 1]!);
    }
    await all;
    expect(requests.map((r) => r.items)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
  });

  it('sends one request at a time: what is added meanwhile goes in the next one', async () => {
    const { batcher, requests, sent, answer } = setup();
    const first = batcher.add('a');
    await sent(1);
    const later = Promise.all([batcher.add('b'), batcher.add('c')]);
    await new Promise((r) => setImmediate(r)); // a turn passes with the first request still open
    expect(requests).toHaveLength(1);
    answer(requests[0]!);
    expect(await first).toBe('a!');
    await sent(2);
    expect(requests[1]!.items).toEqual(['b', 'c']);
    answer(requests[1]!);
    expect(await later).toEqual(['b!', 'c!']);
  });

  it("rejects every item of a failed request with the request's error, and goes on with the next", async () => {
    const { batcher, requests, sent, answer } = setup({ maxCount: 2 });
    const settled = Promise.allSettled(['a', 'b', 'c'].map((s) => batcher.add(s)));
    await sent(1);
    const boom = new Error('broker says no');
    requests[0]!.reject(boom);
    await sent(2);
    answer(requests[1]!);
    expect(await settled).toEqual([
      { status: 'rejected', reason: boom },
      { status: 'rejected', reason: boom },
      { status: 'fulfilled', value: 'c!' },
    ]);
  });

  it('rejects what is still queued on shutdown, and sends none of it', async () => {
    const { batcher, requests } = setup();
    const settled = Promise.allSettled([batcher.add('a'), batcher.add('b')]);
    const closing = new Error('shutting down');
    batcher.rejectQueued(closing);
    expect((await settled).map((s) => s.status)).toEqual(['rejected', 'rejected']);
    await new Promise((r) => setImmediate(r)); // the turn the flush was scheduled for has ended
    expect(requests).toEqual([]);
    expect(batcher.busy).toBe(false);
  });
});
