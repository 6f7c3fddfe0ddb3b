/**
 * The windows count what their contents cost in the process, and yield to the connection queues
 * inside the memory budget. No Kafka, no sockets: the window and the budget driven directly.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { KafkaMessage } from 'kafkajs';
import { recordEvent, type RecordEvent } from '@fanout/kafka';
import { ChannelWindows, recordBytes, WINDOW_OVERHEAD_BYTES } from '../src/delivery/channel-window.js';
import { MemoryBudget, type BudgetTarget } from '../src/delivery/memory-budget.js';
import { OutgoingFactory, type Outgoing } from '../src/delivery/outgoing.js';
import { QueuePolicies } from '../src/delivery/queue-policy.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const factory = new OutgoingFactory('e1', new QueuePolicies([], 'drop'));
const DATA = JSON.stringify({ price: 101.25, pad: 'x'.repeat(80) });
let seq = 0;
/** A record as kafkajs hands it over (Buffers), decoded as the broadcast consumer decodes it (RecordEvent). */
function record(channel: string, partition = 0): { e: RecordEvent; partition: number; offset: number } {
  const offset = seq++;
  const m = {
    key: Buffer.from(channel),
    value: Buffer.from(DATA),
    headers: {
      'fanout-id': Buffer.from(`01JX${String(offset).padStart(22, '0')}`),
      'fanout-channel': Buffer.from(channel),
      'fanout-ts': Buffer.from(String(Date.now())),
    },
    offset: String(offset),
    timestamp: String(Date.now()),
    attributes: 0,
  } as unknown as KafkaMessage;
  const e = recordEvent(m, partition, offset, false)!;
  void e.publishedAt; // decoded now (the window reads it), so that measuring the windows does not count it
  return { e, partition, offset };
}
const append = (w: ChannelWindows, r: ReturnType<typeof record>) => w.append(r.e, r.partition, r.offset, Date.now());
const unbounded = { maxMessages: 1e9, maxBytes: 1e15, maxAgeMs: 1e12, maxTotalBytes: 1e15 };
const windows = (limits: Partial<typeof unbounded> = {}) => new ChannelWindows({ ...unbounded, ...limits }, factory);

/** Heap and external bytes the windows add, per message, after full collections. */
function measure(n: number, channels: number): { counted: number; real: number } {
  const w = windows();
  // The records are made first (kafkajs makes them; the window copies their bytes).
  const made = Array.from({ length: n }, (_, i) => record(`ticks:c${i % channels}`, i % 12));
  gc();
  gc();
  const before = process.memoryUsage();
  for (const r of made) append(w, r);
  gc();
  gc();
  const after = process.memoryUsage();
  const real = after.heapUsed - before.heapUsed + (after.external - before.external);
  const counted = w.bytes;
  expect(w.messageCount).toBe(n);
  expect(made.length).toBe(n); // still alive: only the windows differ between the two measurements
  return { counted: counted / n, real: real / n };
}

describe('window accounting', () => {
  it('counts at least what the windows really cost (heap and external, after GC), and not far more', () => {
    for (const [n, channels] of [
      [100_000, 1_000],
      [100_000, 50_000],
    ] as const) {
      const { counted, real } = measure(n, channels);
      // Counted bytes bound the real cost, within a small allowance for measurement noise ...
      expect(real, `${channels} channels: real ${real.toFixed(0)} B vs counted ${counted.toFixed(0)} B per message`).toBeLessThanOrEqual(
        counted * 1.05,
      );
      // ... and are not so high that the configured bounds would waste most of their memory.
      expect(real, `${channels} channels`).toBeGreaterThan(counted * 0.6);
    }
  });

  it('counts each window as its Buffer, overhead and key, within 1.5x of what it holds, and gives it all back on eviction', () => {
    const w = windows({ maxMessages: 2 });
    const [a, b, c] = [record('news:a'), record('news:a'), record('news:a')];
    const held = (...r: ReturnType<typeof record>[]) => r.reduce((n, x) => n + recordBytes(x.e.rawId!.length + x.e.rawValue!.length), 0);
    const own = WINDOW_OVERHEAD_BYTES + 2 * 'news:a'.length;
    append(w, a);
    append(w, b);
    expect(w.bytes).toBeGreaterThanOrEqual(held(a, b) + own);
    expect(w.bytes).toBeLessThanOrEqual(Math.max(256, 1.5 * held(a, b)) + 64 + own);
    append(w, c); // evicts a
    expect(w.messageCount).toBe(2);
    expect(w.all('news:a').map((o) => o.offset)).toEqual([b.offset, c.offset]);
    expect(w.bytes).toBeGreaterThanOrEqual(held(b, c) + own);
    w.setRoom(0);
    expect(w.bytes).toBe(0);
    expect(w.messageCount).toBe(0);
    expect(w.channelCount).toBe(0);
  });
});

describe('the memory budget covers queues and windows', () => {
  it('gives the windows what the queues leave, in equal shares, and they evict at once to fit', () => {
    const broadcast = windows({ maxTotalBytes: 1e6 });
    const users = windows({ maxTotalBytes: 1e6 });
    const queues: BudgetTarget[] = [];
    const budget = new MemoryBudget({
      maxBytes: 400_000,
      lowWater: 0.5,
      shedAfterMs: 60_000,
      pause: () => {},
      resume: () => {},
      connections: () => queues,
      caches: [broadcast, users],
    });
    // Each stream may use half of the budget while nothing is queued (its own cap is higher).
    expect(broadcast.capBytes).toBe(200_000);
    for (let i = 0; i < 2_000; i++) append(broadcast, record(`ticks:c${i % 50}`));
    expect(broadcast.bytes).toBeLessThanOrEqual(200_000);
    expect(broadcast.bytes).toBeGreaterThan(190_000);
    // Queues take 300 kB: the windows get 50 kB each after the next flush round.
    budget.add(300_000);
    budget.check();
    expect(broadcast.capBytes).toBe(50_000);
    expect(broadcast.bytes).toBeLessThanOrEqual(50_000);
    expect(budget.totalUsed).toBeLessThanOrEqual(400_000);
    // Queues drained: the room comes back (the windows refill as records arrive).
    budget.add(-300_000);
    budget.check();
    expect(users.capBytes).toBe(200_000);
    budget.stop();
  });

  it('never gives the windows more than their configured total', () => {
    const w = windows({ maxTotalBytes: 10_000 });
    const budget = new MemoryBudget({
      maxBytes: 1e9,
      lowWater: 0.5,
      shedAfterMs: 60_000,
      pause: () => {},
      resume: () => {},
      connections: () => [],
      caches: [w],
    });
    expect(w.capBytes).toBe(10_000);
    for (let i = 0; i < 500; i++) append(w, record('ticks:one'));
    expect(w.bytes).toBeLessThanOrEqual(10_000);
    budget.stop();
  });
});
