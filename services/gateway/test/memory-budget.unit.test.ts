/**
 * The gateway-wide memory budget: pause at the budget, resume under the low-water mark, shed the
 * largest queues after shedAfterMs. Its periodic check runs on fake timers. (How the windows
 * yield room to the queues is in window-cost.test.ts.)
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CLOSE } from '@fanout/protocol';
import { Connection, newCounters } from '../src/delivery/connection.js';
import { MemoryBudget, type BudgetTarget, type MemoryBudgetOptions } from '../src/delivery/memory-budget.js';
import { msg, msgs } from './delivery-messages.js';
import { MemorySink } from './memory-sink.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A budget with counted pause/resume/shed calls and a list of targets the test fills. */
function setup(o: Partial<MemoryBudgetOptions> & { maxBytes: number; lowWater: number; shedAfterMs: number }) {
  const calls = { pause: 0, resume: 0, shed: 0 };
  const targets: BudgetTarget[] = [];
  const budget = new MemoryBudget({
    pause: () => calls.pause++,
    resume: () => calls.resume++,
    onShed: () => calls.shed++,
    connections: () => targets,
    ...o,
  });
  return { budget, calls, targets };
}

/** A queue of `bytes` that frees all of them when shed, and records the order it was shed in. */
function queue(budget: MemoryBudget, bytes: number, shedOrder: number[]): BudgetTarget {
  budget.add(bytes);
  const t = {
    queuedByteCount: bytes,
    shed(): number {
      shedOrder.push(bytes);
      const freed = t.queuedByteCount;
      budget.add(-freed);
      t.queuedByteCount = 0;
      return freed;
    },
  };
  return t;
}

describe('memory budget', () => {
  it('pauses consumption when the queues reach the budget, and only once', () => {
    const { budget, calls } = setup({ maxBytes: 1000, lowWater: 0.8, shedAfterMs: 60_000 });
    budget.add(999);
    budget.check();
    expect(calls.pause).toBe(0);
    expect(budget.paused).toBe(false);
    budget.add(1);
    budget.check();
    budget.check();
    expect(calls.pause).toBe(1);
    expect(budget.paused).toBe(true);
    expect(budget.pauses).toBe(1);
    budget.stop();
  });

  it('resumes at the first 50 ms check that finds the queues at or under the low-water mark', () => {
    const { budget, calls } = setup({ maxBytes: 1000, lowWater: 0.8, shedAfterMs: 60_000 });
    budget.add(1000);
    budget.check();
    budget.add(-150); // 850: still over 800
    vi.advanceTimersByTime(50);
    expect(calls.resume).toBe(0);
    budget.add(-50); // 800
    vi.advanceTimersByTime(49);
    expect(calls.resume).toBe(0);
    vi.advanceTimersByTime(1);
    expect(calls.resume).toBe(1);
    expect(budget.paused).toBe(false);
    vi.advanceTimersByTime(1000);
    expect(calls.resume).toBe(1);
    // A second crossing pauses again.
    budget.add(200);
    budget.check();
    expect(calls.pause).toBe(2);
    expect(budget.pauses).toBe(2);
    budget.stop();
  });

  it('sheds nothing before shedAfterMs, then the largest queues first until under the low-water mark', () => {
    const { budget, calls, targets } = setup({ maxBytes: 1000, lowWater: 0.5, shedAfterMs: 200 });
    const shedOrder: number[] = [];
    targets.push(queue(budget, 0, shedOrder), ...[100, 400, 300, 200].map((b) => queue(budget, b, shedOrder)));
    budget.check();
    vi.advanceTimersByTime(150);
    expect(shedOrder).toEqual([]);
    vi.advanceTimersByTime(50);
    expect(shedOrder).toEqual([400, 300]);
    expect(calls.shed).toBe(2);
    expect(budget.used).toBe(300);
    expect(calls.resume).toBe(1);
  });

  it('stops checking when stopped', () => {
    const { budget, calls } = setup({ maxBytes: 1000, lowWater: 0.5, shedAfterMs: 0 });
    budget.add(1000);
    budget.check();
    budget.stop();
    budget.add(-1000);
    vi.advanceTimersByTime(10_000);
    expect(calls.resume).toBe(0);
    expect(budget.paused).toBe(true);
  });

  it('sheds real connections by their policy: a gap notice for what may be dropped, 4001 for what may not', () => {
    const limits = { socketBufferBytes: 1 << 20, queueMaxMessages: 100, queueMaxBytes: 1 << 20 };
    const counters = newCounters();
    const { budget, calls, targets } = setup({ maxBytes: 1, lowWater: 0.5, shedAfterMs: 100 });
    const dropSink = new MemorySink();
    const keepSink = new MemorySink();
    const drops = new Connection(dropSink, limits, counters, budget, 0);
    const keeps = new Connection(keepSink, limits, counters, budget, 0);
    targets.push(drops, keeps);
    for (const m of msgs('news:a', 1, 3)) drops.enqueue(m);
    for (const m of [msg('orders:a', 1), msg('news:b', 2)]) keeps.enqueue(m);
    budget.check();
    expect(calls.pause).toBe(1);
    vi.advanceTimersByTime(100);
    expect(budget.used).toBe(0);
    expect(calls.resume).toBe(1);
    expect(drops.closed).toBe(false);
    drops.flush();
    expect(dropSink.take()).toEqual(['gap news:a 1..3 x3']);
    expect(keeps.closed).toBe(true);
    expect(keepSink.closedWith?.code).toBe(CLOSE.SLOW_CONSUMER.code);
    expect(counters.slowConsumerCloses).toBe(1);
  });
});
