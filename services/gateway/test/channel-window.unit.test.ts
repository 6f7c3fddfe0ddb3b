/**
 * The channel windows on their own (no Kafka, no sockets): what goes in comes back out the same
 * (a record kept as the bytes it came in is read back exactly as fromRecord decodes it), each
 * bound evicts oldest first, coverage says when Kafka must be read, and the byte layout (messages
 * packed in one Buffer per channel, moved and regrown as it fills) agrees with a plain model of
 * per-channel arrays under any sequence of appends (fast-check).
 */
import fc from 'fast-check';
import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { fromRecord, recordEvent, type IncomingEvent } from '@fanout/kafka';
import { ChannelWindows, recordBytes, type WindowLimits } from '../src/delivery/channel-window.js';
import { OutgoingFactory, type Outgoing } from '../src/delivery/outgoing.js';
import { QueuePolicies } from '../src/delivery/queue-policy.js';

const factory = new OutgoingFactory('e7', new QueuePolicies(['prices=conflate:sym'], 'drop'));
const unbounded: WindowLimits = { maxMessages: 1e9, maxBytes: 1e15, maxAgeMs: 1e12, maxTotalBytes: 1e15 };
const windows = (limits: Partial<WindowLimits> = {}) => new ChannelWindows({ ...unbounded, ...limits }, factory);

let seq = 0;
/** Appends an event to `w` (text) and returns the Outgoing the live path builds for it. */
function put(
  w: ChannelWindows,
  channel: string,
  opts: { partition?: number; offset?: number; at?: number; data?: unknown; id?: string } = {},
): Outgoing {
  const offset = opts.offset ?? seq++;
  const partition = opts.partition ?? 0;
  const at = opts.at ?? 1_000;
  const e: IncomingEvent = {
    channel,
    id: opts.id ?? `id-${offset}`,
    publishedAt: 1_700_000_000_000,
    dataJson: JSON.stringify(opts.data ?? { n: offset }),
  };
  w.append(e, partition, offset, at);
  return factory.make(e, partition, offset, at);
}
const offsets = (m: Outgoing[]) => m.map((o) => o.offset);
const same = (o: Outgoing, want: Outgoing) =>
  expect([o.json, o.channel, o.partition, o.offset, o.at, o.position, o.policy, o.conflateKey, o.bytes]).toEqual([
    want.json,
    want.channel,
    want.partition,
    want.offset,
    want.at,
    want.position,
    want.policy,
    want.conflateKey,
    want.bytes,
  ]);

describe('channel windows', () => {
  it('gives back what was appended: frame, position, partition, offset, time, policy and conflation key', () => {
    const w = windows();
    const live = [
      put(w, 'prices:eu', { partition: 3, offset: 10, at: 5, data: { sym: 'ABC', p: 1.5 } }),
      put(w, 'prices:eu', {
        partition: 3,
        offset: 12,
        at: 6,
        data: { sym: 'XYZ', p: '\u00e9\u{1F600}' },
        id: 'tricky ,"pos":" \u2028 \u00e9',
      }),
    ];
    const back = w.all('prices:eu', Infinity, 10);
    expect(back).toHaveLength(2);
    back.forEach((o, i) => same(o, live[i]!));
    expect(back[1]!.conflateKey).toBe('prices:eu/XYZ');
    expect(w.latest('prices:eu', 10)?.offset).toBe(12);
    expect(w.latestPosition('prices:eu', 10)).toEqual({ partition: 3, offset: 12 });
    expect(w.latestPosition('news:none')).toBeUndefined();
    expect(w.all('prices:eu', 1, 10).map((o) => o.offset)).toEqual([12]);
    expect(w.latest('news:none')).toBeUndefined();
  });

  it('reads a record kept as the bytes it came in exactly as fromRecord decodes it, whatever the bytes', () => {
    const bytes = fc.oneof(
      fc.string({ unit: 'grapheme' }).map((t) => Buffer.from(t)),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v))),
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    );
    fc.assert(
      fc.property(
        fc.option(bytes, { nil: undefined }),
        fc.option(bytes, { nil: null }),
        fc.option(fc.oneof(fc.nat().map(String), fc.string()), { nil: undefined }),
        fc.nat({ max: 1e9 }),
        (id, value, ts, offset) => {
          const headers: Record<string, Buffer> = { 'fanout-channel': Buffer.from('news:x') };
          if (id !== undefined) headers['fanout-id'] = id;
          if (ts !== undefined) headers['fanout-ts'] = Buffer.from(ts);
          const m = {
            key: null,
            value,
            headers,
            offset: String(offset),
            timestamp: '1700000000000',
            attributes: 0,
          } as unknown as KafkaMessage;
          const w = windows();
          w.append(recordEvent(m, 2, offset, false)!, 2, offset, 5);
          const want = fromRecord(m, 2, false)!;
          const got = w.all('news:x', Infinity, 5)[0]!;
          // A missing or unreadable publish time is "now" in both, so compare everything else exactly.
          if (Number.isFinite(Number(ts ?? '1700000000000'))) same(got, factory.make(want, 2, offset, 5));
          else expect(JSON.parse(got.json).data).toEqual(JSON.parse(want.dataJson));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('evicts oldest first by count, by bytes and by age, and then does not cover what it evicted', () => {
    const byCount = windows({ maxMessages: 3 });
    for (let i = 0; i < 5; i++) put(byCount, 'news:a', { offset: i });
    expect(offsets(byCount.all('news:a', Infinity, 0))).toEqual([2, 3, 4]);
    expect(byCount.since('news:a', 0, 0, 0)).toEqual({ kind: 'kafka', partition: 0, after: 0, upTo: 0 });
    byCount.setStart(0, 0);
    byCount.noteOffset(0, 4);
    expect(byCount.since('news:a', 0, 0, 0)).toEqual({ kind: 'kafka', partition: 0, after: 0, upTo: 4 });
    const covered = byCount.since('news:a', 0, 1, 0);
    expect(covered.kind === 'window' && offsets(covered.messages)).toEqual([2, 3, 4]);

    const one = Buffer.byteLength('id-100') + Buffer.byteLength(JSON.stringify({ n: 100 }));
    const byBytes = windows({ maxBytes: 2 * recordBytes(one) });
    for (let i = 0; i < 4; i++) put(byBytes, 'news:b', { offset: 100 + i });
    expect(offsets(byBytes.all('news:b', Infinity, 0))).toEqual([102, 103]);

    const byAge = windows({ maxAgeMs: 100 });
    put(byAge, 'news:c', { offset: 1, at: 1_000 });
    put(byAge, 'news:c', { offset: 2, at: 1_050 });
    put(byAge, 'news:c', { offset: 3, at: 1_120 }); // 1 is older than 1_020
    expect(offsets(byAge.all('news:c', Infinity, 1_120))).toEqual([2, 3]);
    byAge.expireAll(1_200); // 2 is older than 1_100; 3 is not
    expect(offsets(byAge.all('news:c', Infinity, 1_200))).toEqual([3]);
    byAge.expireAll(10_000);
    expect(byAge.channelCount).toBe(0);
    expect(byAge.bytes).toBe(0);
  });

  it('over the total, empties the least recently appended channels first, and remembers where it cut', () => {
    const sizes = new ChannelWindows(unbounded, factory);
    for (const ch of ['news:old', 'news:mid', 'news:new']) for (let i = 0; i < 5; i++) put(sizes, ch);
    const total = sizes.bytes;
    const w = windows({ maxTotalBytes: Math.floor(total * 0.7) });
    let firstOld = -1;
    for (const ch of ['news:old', 'news:mid', 'news:new'])
      for (let i = 0; i < 5; i++) {
        const o = put(w, ch);
        if (ch === 'news:old' && i === 0) firstOld = o.offset;
      }
    expect(w.bytes).toBeLessThanOrEqual(Math.floor(total * 0.7));
    expect(w.all('news:old', Infinity, 0)).toEqual([]);
    expect(w.all('news:new', Infinity, 0)).toHaveLength(5);
    // The dropped channel's messages are known to be missing: a resume from before them reads Kafka.
    w.setStart(0, 0);
    expect(w.since('news:old', 0, firstOld, 0).kind).toBe('kafka');
  });

  it('forgets a partition that moved away, and its bytes', () => {
    const w = windows();
    put(w, 'user:a', { partition: 1 });
    put(w, 'user:b', { partition: 2 });
    const before = w.bytes;
    w.dropPartition(1);
    expect(w.channelCount).toBe(1);
    expect(w.messageCount).toBe(1);
    expect(w.bytes).toBeLessThan(before);
    expect(w.lastOffset(1)).toBeUndefined();
    w.dropPartition(2);
    expect(w.bytes).toBe(0);
  });

  it('agrees with a model of per-channel arrays under any sequence of appends and room changes', () => {
    type Step = { kind: 'append'; ch: number; size: number } | { kind: 'room'; fraction: number };
    const step = fc.oneof(
      { weight: 9, arbitrary: fc.record({ kind: fc.constant('append' as const), ch: fc.nat(5), size: fc.nat(600) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('room' as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 300 }), fc.integer({ min: 1, max: 8 }), (steps: Step[], maxMessages) => {
        const w = windows({ maxMessages, maxBytes: 2_000, maxTotalBytes: 20_000 });
        const model = new Map<string, number[]>();
        let offset = 0;
        for (const s of steps) {
          if (s.kind === 'room') {
            w.setRoom(Math.floor(20_000 * s.fraction));
          } else {
            const ch = `news:c${s.ch}`;
            put(w, ch, { offset: offset++, data: 'x'.repeat(s.size) });
            const m = model.get(ch) ?? [];
            m.push(offset - 1);
            model.set(ch, m);
          }
          expect(w.bytes).toBeLessThanOrEqual(w.capBytes);
          let held = 0;
          for (const [ch, m] of model) {
            const got = offsets(w.all(ch, Infinity, 0));
            // What a window holds is always the newest of its channel's messages, in order, within count.
            expect(got).toEqual(m.slice(m.length - got.length));
            expect(got.length).toBeLessThanOrEqual(maxMessages);
            held += got.length;
          }
          expect(w.messageCount).toBe(held);
        }
      }),
      { numRuns: 200 },
    );
  });
});
