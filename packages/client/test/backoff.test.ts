import { describe, expect, it } from 'vitest';
import { Backoff, backoffCeiling, backoffDelay, BACKOFF_DEFAULTS } from '@fanout/client';

describe('backoff with full jitter', () => {
  it('has documented defaults: base 500 ms, max 15 s, reset after 5 s up', () => {
    expect(BACKOFF_DEFAULTS).toEqual({ baseMs: 500, maxMs: 15_000, stableMs: 5_000 });
    expect([0, 1, 2, 3, 4, 5, 6, 10, 60].map((a) => backoffCeiling(a))).toEqual([
      500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000, 15_000,
    ]);
  });

  it('every delay is in [0, min(max, base * 2^attempt)], for any random value', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = backoffCeiling(attempt, 100, 3000);
      for (const r of [0, 1e-9, 0.25, 0.5, 0.999999, 1, -1, 2, Number.NaN]) {
        const d = backoffDelay(attempt, { baseMs: 100, maxMs: 3000 }, () => r);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(ceiling);
        expect(Number.isInteger(d)).toBe(true);
      }
    }
    // Huge attempt counts stay finite and capped.
    expect(backoffDelay(1e9, {}, () => 0.999999)).toBeLessThanOrEqual(15_000);
  });

  it('spreads delays over the whole window (full jitter, not equal jitter)', () => {
    const delays = Array.from({ length: 5000 }, () => backoffDelay(3, { baseMs: 500, maxMs: 15_000 }));
    const ceiling = 4000;
    expect(Math.min(...delays)).toBeLessThan(ceiling * 0.05);
    expect(Math.max(...delays)).toBeGreaterThan(ceiling * 0.95);
    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    expect(mean).toBeGreaterThan(ceiling * 0.45);
    expect(mean).toBeLessThan(ceiling * 0.55);
  });

  it('counts attempts, and starts over only after a connection that stayed up for stableMs', () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000, stableMs: 5000 }, () => 0.999999);
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000]);
    b.connectionEnded(4999); // flapped: keep backing off
    expect(b.next()).toBe(1000);
    b.connectionEnded(5000);
    expect(b.attempt).toBe(0);
    expect(b.next()).toBe(100);
    expect(b.attempt).toBe(1);
  });

  it('refuses settings that would make a reconnect storm', () => {
    expect(() => new Backoff({ baseMs: 0 })).toThrow(TypeError);
    expect(() => new Backoff({ baseMs: 1000, maxMs: 10 })).toThrow(TypeError);
    expect(() => new Backoff({ baseMs: Number.NaN })).toThrow(TypeError);
    expect(new Backoff({ baseMs: 20_000 }).settings.maxMs).toBe(20_000);
  });
});
