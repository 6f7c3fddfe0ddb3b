/**
 * The endpoint rate limit's token bucket, on a fake clock: the delivery engine calls it without a
 * time argument, so the tests advance the faked `performance.now()` instead of sleeping.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TokenBucket } from '../src/delivery/token-bucket.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Takes tokens until the bucket refuses; returns how many it gave. */
function drain(b: TokenBucket): number {
  let n = 0;
  while (b.tryTake()) n++;
  return n;
}

describe('token bucket', () => {
  it('starts full with one second of tokens, then refuses and says how long until the next', () => {
    const b = new TokenBucket(10);
    expect(drain(b)).toBe(10);
    expect(b.tryTake()).toBe(false);
    expect(b.waitMs()).toBe(100);
  });

  it('earns tokens at its rate: one every 1/rate seconds, none before', () => {
    const b = new TokenBucket(10);
    drain(b);
    vi.advanceTimersByTime(50);
    expect(b.waitMs()).toBe(50);
    vi.advanceTimersByTime(49);
    expect(b.tryTake()).toBe(false);
    vi.advanceTimersByTime(1);
    expect(b.waitMs()).toBe(0);
    expect(b.tryTake()).toBe(true);
    expect(b.tryTake()).toBe(false);
  });

  it('holds at most one second of tokens however long it was idle', () => {
    const b = new TokenBucket(5);
    drain(b);
    vi.advanceTimersByTime(60_000);
    expect(drain(b)).toBe(5);
  });

  it('lets through at most its rate on average over a long run', () => {
    const b = new TokenBucket(20);
    let taken = drain(b); // the initial burst: one second's worth
    for (let ms = 0; ms < 10_000; ms++) {
      vi.advanceTimersByTime(1);
      taken += drain(b);
    }
    expect(taken).toBe(20 + 20 * 10);
  });

  it('holds one token when the rate is below one a second, and earns it back slowly', () => {
    const b = new TokenBucket(0.5);
    expect(drain(b)).toBe(1);
    expect(b.waitMs()).toBe(2000);
    vi.advanceTimersByTime(1999);
    expect(b.tryTake()).toBe(false);
    vi.advanceTimersByTime(1);
    expect(b.tryTake()).toBe(true);
  });

  it('keeps the tokens earned when the rate changes, capped at the new capacity', () => {
    const b = new TokenBucket(10);
    b.setRate(3);
    expect(b.rate).toBe(3);
    expect(drain(b)).toBe(3);
    b.setRate(100);
    expect(b.tryTake()).toBe(false);
    vi.advanceTimersByTime(50); // 5 tokens at the new rate
    expect(drain(b)).toBe(5);
  });

  it('credits the time before a rate change at the old rate', () => {
    const b = new TokenBucket(10);
    drain(b);
    vi.advanceTimersByTime(500); // 5 tokens at 10/s
    b.setRate(1000);
    expect(drain(b)).toBe(5);
  });

  it('takes the time from its argument when given one', () => {
    const b = new TokenBucket(2, 0);
    expect(b.tryTake(0)).toBe(true);
    expect(b.tryTake(0)).toBe(true);
    expect(b.tryTake(0)).toBe(false);
    expect(b.waitMs(250)).toBe(250);
    expect(b.tryTake(500)).toBe(true);
  });
});
