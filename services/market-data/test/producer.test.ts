/**
 * The producer's pacing and bounds, against a stand-in publisher (no Kafka). The producer takes its
 * time from performance.now and its slices from setInterval, so a fake clock drives it: the rates
 * are exact whatever the machine's load.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import type { EventInput } from '@fanout/protocol';
import { TickProducer } from '../src/producer.js';
import type { Tick } from '../src/ticks.js';

const logger = pino({ level: 'silent' });

describe('TickProducer pacing', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('publishes at the set total rate, round robin over the symbols, to prices:<SYMBOL>', async () => {
    const got: EventInput[] = [];
    const producer = new TickProducer({
      publisher: { publish: async (e) => void got.push(e) },
      logger,
      symbols: ['AAPL', 'MSFT', 'GOOG', 'AMZN'],
      rate: 400,
      logIntervalMs: 0,
    });
    const t0 = performance.now();
    producer.start();
    await vi.advanceTimersByTimeAsync(1000);
    await producer.stop();
    const seconds = (performance.now() - t0) / 1000;
    const expected = 400 * seconds;
    expect(got.length).toBeGreaterThan(expected * 0.85);
    expect(got.length).toBeLessThanOrEqual(expected + 1);
    expect(producer.stats).toMatchObject({ published: got.length, acknowledged: got.length, failed: 0, skipped: 0, inFlight: 0 });
    const perChannel = new Map<string, number>();
    for (const e of got) perChannel.set(e.channel, (perChannel.get(e.channel) ?? 0) + 1);
    expect([...perChannel.keys()].sort()).toEqual(['prices:AAPL', 'prices:AMZN', 'prices:GOOG', 'prices:MSFT']);
    const counts = [...perChannel.values()];
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    for (const e of got) {
      const t = e.data as Tick;
      expect(e.channel).toBe(`prices:${t.sym}`);
      expect(e.id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
    }
  });

  it('keeps at most maxInFlight publishes waiting and skips the ticks beyond', async () => {
    const pending: (() => void)[] = [];
    const producer = new TickProducer({
      publisher: { publish: () => new Promise<void>((r) => pending.push(r)) },
      logger,
      symbols: ['AAPL'],
      rate: 1000,
      maxInFlight: 50,
      logIntervalMs: 0,
    });
    producer.start();
    await vi.advanceTimersByTimeAsync(300);
    expect(producer.stats.published).toBe(50);
    expect(producer.stats.inFlight).toBe(50);
    expect(producer.stats.skipped).toBeGreaterThan(100);
    // Bounded stop: gives up waiting for acknowledgements that never come.
    const stopping = producer.stop(100);
    await vi.advanceTimersByTimeAsync(100);
    expect(await stopping).toBe(false);
    for (const r of pending) r();
    await vi.waitFor(() => expect(producer.stats).toMatchObject({ inFlight: 0, acknowledged: 50 }));
  });

  it('counts failed publishes and keeps going', async () => {
    let n = 0;
    const producer = new TickProducer({
      publisher: {
        publish: async () => {
          if (n++ % 2 === 0) throw new Error('kafka down');
        },
      },
      logger,
      symbols: ['AAPL', 'MSFT'],
      rate: 200,
      logIntervalMs: 0,
    });
    producer.start();
    await vi.advanceTimersByTimeAsync(300);
    expect(await producer.stop()).toBe(true);
    expect(producer.stats.failed).toBeGreaterThan(10);
    expect(producer.stats.acknowledged).toBeGreaterThan(10);
    expect(producer.stats.failed + producer.stats.acknowledged).toBe(producer.stats.published);
  });
});
