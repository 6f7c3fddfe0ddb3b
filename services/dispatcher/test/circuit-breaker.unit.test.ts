/**
 * The per-endpoint circuit breaker, on a fake clock (the delivery engine calls it without a time
 * argument, so the faked `Date.now()` drives it).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker } from '../src/delivery/circuit-breaker.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const breaker = (threshold = 3) => new CircuitBreaker({ threshold, openMs: 1000, maxOpenMs: 5000 });

/** Opens a closed breaker by failing it `threshold` times; returns what each failed() said. */
function failTimes(b: CircuitBreaker, n: number): boolean[] {
  const out: boolean[] = [];
  for (let i = 0; i < n; i++) {
    b.started();
    out.push(b.failed());
  }
  return out;
}

/** Lets the open period pass and fails the single probe. */
function failProbe(b: CircuitBreaker): boolean {
  vi.advanceTimersByTime(b.remainingMs());
  expect(b.state()).toBe('half_open');
  b.started();
  return b.failed();
}

describe('circuit breaker', () => {
  it('starts closed and clean, and lets requests start', () => {
    const b = breaker();
    expect(b.state()).toBe('closed');
    expect(b.clean).toBe(true);
    expect(b.canStart()).toBe(true);
    expect(b.remainingMs()).toBe(0);
  });

  it('opens on the threshold-th consecutive failure, and only that one reports it', () => {
    const b = breaker(3);
    expect(failTimes(b, 2)).toEqual([false, false]);
    expect(b.state()).toBe('closed');
    expect(b.clean).toBe(false);
    expect(failTimes(b, 1)).toEqual([true]);
    expect(b.state()).toBe('open');
    expect(b.canStart()).toBe(false);
    expect(b.remainingMs()).toBe(1000);
  });

  it('counts consecutive failures only: a success in between starts the count again', () => {
    const b = breaker(3);
    failTimes(b, 2);
    b.succeeded();
    expect(b.clean).toBe(true);
    expect(failTimes(b, 2)).toEqual([false, false]);
    expect(b.state()).toBe('closed');
  });

  it('ignores failures of requests that were in flight when it opened', () => {
    const b = breaker(1);
    expect(b.failed()).toBe(true);
    expect(b.failed()).toBe(false);
    expect(b.remainingMs()).toBe(1000);
  });

  it('goes half-open when the open period ends and lets exactly one probe start', () => {
    const b = breaker(1);
    b.failed();
    vi.advanceTimersByTime(999);
    expect(b.state()).toBe('open');
    expect(b.remainingMs()).toBe(1);
    vi.advanceTimersByTime(1);
    expect(b.state()).toBe('half_open');
    expect(b.remainingMs()).toBe(0);
    expect(b.canStart()).toBe(true);
    b.started();
    expect(b.canStart()).toBe(false);
  });

  it('closes when the probe succeeds', () => {
    const b = breaker(1);
    b.failed();
    vi.advanceTimersByTime(1000);
    b.started();
    b.succeeded();
    expect(b.state()).toBe('closed');
    expect(b.clean).toBe(true);
    expect(b.canStart()).toBe(true);
  });

  it('reopens for twice as long each time the probe fails, up to maxOpenMs', () => {
    const b = breaker(1);
    b.failed();
    const openFor: number[] = [b.remainingMs()];
    for (let i = 0; i < 4; i++) {
      expect(failProbe(b)).toBe(true);
      expect(b.state()).toBe('open');
      openFor.push(b.remainingMs());
    }
    expect(openFor).toEqual([1000, 2000, 4000, 5000, 5000]);
  });

  it('starts from openMs again after a successful probe', () => {
    const b = breaker(1);
    b.failed();
    failProbe(b); // open for 2000
    vi.advanceTimersByTime(2000);
    b.started();
    b.succeeded();
    b.started();
    expect(b.failed()).toBe(true);
    expect(b.remainingMs()).toBe(1000);
  });

  it('never opens with a threshold of 0', () => {
    const b = breaker(0);
    expect(failTimes(b, 100).some(Boolean)).toBe(false);
    expect(b.state()).toBe('closed');
    expect(b.canStart()).toBe(true);
  });
});
