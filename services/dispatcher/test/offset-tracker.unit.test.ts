/**
 * Which offset of a partition the dispatcher may commit while deliveries settle out of order.
 */
import { describe, expect, it } from 'vitest';
import { PartitionTracker } from '../src/kafka/offset-tracker.js';

describe('partition offset tracker', () => {
  it('has nothing to commit before the first record', () => {
    const t = new PartitionTracker();
    expect(t.committable).toBe(-1);
    expect(t.size).toBe(0);
  });

  it('holds a record until its guard and every delivery it started have settled', () => {
    const t = new PartitionTracker();
    t.take(10);
    t.add(10);
    t.add(10);
    expect(t.committable).toBe(10);
    t.settle(10); // the guard
    t.settle(10);
    expect(t.committable).toBe(10);
    expect(t.size).toBe(1);
    t.settle(10);
    expect(t.size).toBe(0);
    expect(t.committable).toBe(11);
  });

  it('commits up to the lowest record not done, whatever order deliveries settle in', () => {
    const t = new PartitionTracker();
    for (const o of [5, 6, 7, 8]) t.take(o);
    t.settle(7);
    t.settle(8);
    expect(t.committable).toBe(5);
    t.settle(5);
    expect(t.committable).toBe(6);
    t.settle(6);
    expect(t.committable).toBe(9);
  });

  it('commits one past the last record taken when all are done, across gaps in the offsets', () => {
    const t = new PartitionTracker();
    t.take(3);
    t.take(7); // compacted or transactional offsets in between
    t.settle(3);
    expect(t.committable).toBe(7);
    t.settle(7);
    expect(t.committable).toBe(8);
    expect(t.next).toBe(8);
  });

  it('ignores settles and adds for offsets it is not holding', () => {
    const t = new PartitionTracker();
    t.take(1);
    t.settle(1);
    t.settle(1);
    t.add(1);
    t.settle(99);
    t.add(99);
    expect(t.size).toBe(0);
    expect(t.committable).toBe(2);
  });

  it('counts records, not deliveries, in size (the window it pauses at)', () => {
    const t = new PartitionTracker();
    t.take(0);
    t.add(0);
    t.add(0);
    t.take(1);
    expect(t.size).toBe(2);
  });
});
