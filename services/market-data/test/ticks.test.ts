import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SYMBOLS,
  MIN_MID,
  PriceModel,
  defaultSymbols,
  initialState,
  priceIncrement,
  seededRng,
  step,
  type SymbolState,
  type Tick,
} from '../src/ticks.js';
import { isValidChannel } from '@fanout/protocol';

function run(state: SymbolState, n: number, seed = 1): Tick[] {
  const rng = seededRng(seed);
  const ticks: Tick[] = [];
  let s = state;
  for (let i = 0; i < n; i++) {
    const r = step(s, rng);
    s = r.state;
    ticks.push(r.tick);
  }
  return ticks;
}

/** Decimal places of a number as printed in JSON. */
function decimals(n: number): number {
  const s = String(n);
  return s.includes('.') ? s.length - s.indexOf('.') - 1 : 0;
}

describe('price model', () => {
  it('quotes a positive, uncrossed market at least one increment wide, with the trade inside it', () => {
    for (const sym of ['AAPL', 'F', 'COST', 'QZZZ']) {
      const bad = run(initialState(sym), 5000, 7).filter((t) => {
        const inc = priceIncrement(t.bid);
        const places = inc === 0.01 ? 2 : 4;
        return !(
          t.bid > 0 &&
          t.ask - t.bid >= inc - 1e-9 &&
          t.last >= t.bid &&
          t.last <= t.ask &&
          decimals(t.bid) <= places &&
          decimals(t.ask) <= places &&
          decimals(t.last) <= places
        );
      });
      expect(bad, sym).toEqual([]);
    }
  });

  it('keeps spreads realistic: a few basis points for large caps', () => {
    const ticks = run(initialState('AAPL'), 2000, 3);
    const bps = ticks.map((t) => ((t.ask - t.bid) / ((t.ask + t.bid) / 2)) * 10_000);
    const mean = bps.reduce((a, b) => a + b, 0) / bps.length;
    expect(mean).toBeGreaterThan(0.3);
    expect(mean).toBeLessThan(10);
    expect(Math.max(...bps)).toBeLessThan(20);
  });

  it('never goes negative, even from a penny with extreme volatility', () => {
    const ticks = run(initialState('PENNY', { price: 0.02, volatility: 0.2 }), 20_000, 11);
    expect(ticks.filter((t) => !(t.bid > 0 && t.last > 0 && t.ask > t.bid && Number.isFinite(t.ask)))).toEqual([]);
    expect(Math.min(...ticks.map((t) => t.bid))).toBeLessThanOrEqual(0.0101); // it did reach the floor
    let s = initialState('DOWN', { price: 0.02, volatility: 5 });
    const rng = seededRng(5);
    for (let i = 0; i < 1000; i++) s = step(s, rng).state;
    expect(s.mid).toBeGreaterThanOrEqual(MIN_MID);
  });

  it("numbers each symbol's ticks 1, 2, 3, ... independently", () => {
    const model = new PriceModel(['AAPL', 'MSFT'], seededRng(9));
    const seqs: Record<string, number[]> = { AAPL: [], MSFT: [] };
    for (let i = 0; i < 30; i++) {
      const sym = i % 3 === 0 ? 'MSFT' : 'AAPL';
      const t = model.next(sym);
      expect(t.sym).toBe(sym);
      seqs[sym]!.push(t.seq);
    }
    expect(seqs.AAPL).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(seqs.MSFT).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(() => model.next('NOPE')).toThrow(/unknown symbol/);
  });

  it('is pure: step does not modify its input, and a seed reproduces a run', () => {
    const s0 = Object.freeze(initialState('MSFT'));
    const a = step(s0, seededRng(42));
    const b = step(s0, seededRng(42));
    expect(a).toEqual(b);
    expect(s0.seq).toBe(0);
    expect(a.state.seq).toBe(1);
    expect(run(s0, 100, 4)).toEqual(run(s0, 100, 4));
    expect(run(s0, 100, 4)).not.toEqual(run(s0, 100, 5));
  });

  it('starts near the reference price, moves, and stays in a plausible range', () => {
    const ticks = run(initialState('AAPL'), 3000, 2);
    expect(ticks[0]!.last).toBeGreaterThan(180);
    expect(ticks[0]!.last).toBeLessThan(200);
    expect(new Set(ticks.map((t) => t.last)).size).toBeGreaterThan(50);
    const last = ticks.at(-1)!.last;
    expect(last).toBeGreaterThan(100);
    expect(last).toBeLessThan(350);
  });

  it('draws sizes that are mostly round lots', () => {
    const ticks = run(initialState('NVDA'), 5000, 8);
    expect(ticks.filter((t) => !(Number.isInteger(t.size) && t.size >= 1 && t.size <= 5000))).toEqual([]);
    const round = ticks.filter((t) => t.size % 100 === 0).length / ticks.length;
    expect(round).toBeGreaterThan(0.8);
    expect(round).toBeLessThan(0.97);
  });

  it('serializes to small JSON with the documented fields', () => {
    const t = run(initialState('AAPL'), 42, 1).at(-1)!;
    const json = JSON.stringify(t);
    expect(Object.keys(JSON.parse(json))).toEqual(['sym', 'bid', 'ask', 'last', 'size', 'seq']);
    expect(json).toMatch(/^\{"sym":"AAPL","bid":\d+\.\d{1,2},"ask":\d+\.\d{1,2},"last":\d+\.\d{1,2},"size":\d+,"seq":42\}$/);
    expect(json.length).toBeLessThan(100);
  });
});

describe('default symbols', () => {
  it('starts with real tickers and extends with unique made-up ones, all valid channel names', () => {
    expect(defaultSymbols(4)).toEqual(['AAPL', 'MSFT', 'GOOG', 'AMZN']);
    const many = defaultSymbols(500);
    expect(many).toHaveLength(500);
    expect(new Set(many).size).toBe(500);
    expect(many.slice(0, DEFAULT_SYMBOLS.length)).toEqual(DEFAULT_SYMBOLS);
    for (const s of many) expect(isValidChannel(`prices:${s}`)).toBe(true);
  });
});
