/**
 * The price model: a random walk per symbol, producing small JSON ticks such as
 * `{"sym":"AAPL","bid":189.12,"ask":189.14,"last":189.13,"size":100,"seq":42}`.
 *
 * - The mid price follows a geometric random walk (log-normal steps), so it never goes negative;
 *   it is also held above a floor so the quotes always stay at least one price increment above 0.
 * - Quotes sit on the price grid: $0.01 from $1 up, $0.0001 below (US sub-penny rule).
 * - The spread is a few basis points of the price, at least one increment, jittered per tick.
 * - The last trade is at the bid or the ask (mostly) or inside the spread; sizes are mostly round
 *   lots (multiples of 100) with the odd lot now and then.
 * - `seq` counts ticks per symbol from 1.
 *
 * Everything here is pure: `step` returns a new state and never mutates its input; randomness comes
 * from the `Rng` passed in (use `seededRng` for reproducible runs).
 */

export interface Tick {
  sym: string;
  bid: number;
  ask: number;
  last: number;
  size: number;
  seq: number;
}

export interface SymbolState {
  readonly sym: string;
  /** Current mid price (continuous; quotes are rounded onto the price grid). */
  readonly mid: number;
  /** Standard deviation of one tick's log-return (0.0003 = 3 basis points). */
  readonly volatility: number;
  /** Typical spread as a fraction of the price, in basis points. */
  readonly spreadBps: number;
  /** Sequence number of the last tick produced (0 before the first). */
  readonly seq: number;
}

/** A source of uniform numbers in [0, 1). */
export type Rng = () => number;

/** The lowest mid price the walk may reach. */
export const MIN_MID = 0.01;

/** Reference prices for the default symbols (rough recent levels; only the starting point). */
const REFERENCE_PRICES: Record<string, number> = {
  AAPL: 189.5,
  MSFT: 415.2,
  GOOG: 165.3,
  AMZN: 182.1,
  NVDA: 121.4,
  META: 502.8,
  TSLA: 241.6,
  'BRK.B': 412.3,
  JPM: 198.7,
  V: 276.4,
  UNH: 521.9,
  XOM: 114.8,
  JNJ: 154.6,
  WMT: 68.2,
  MA: 461.5,
  PG: 166.1,
  HD: 358.9,
  CVX: 155.2,
  MRK: 126.4,
  ABBV: 171.3,
  KO: 62.9,
  PEP: 169.8,
  AVGO: 161.7,
  COST: 852.4,
  LLY: 801.2,
  ORCL: 139.6,
  ADBE: 521.3,
  CRM: 268.4,
  NFLX: 648.9,
  AMD: 156.3,
  INTC: 30.8,
  CSCO: 47.9,
  TMO: 559.6,
  MCD: 259.7,
  DIS: 94.6,
  BAC: 38.4,
  WFC: 57.8,
  PFE: 28.9,
  NKE: 89.7,
  QCOM: 169.2,
  TXN: 194.8,
  IBM: 184.6,
  GS: 461.9,
  CAT: 338.2,
  BA: 179.5,
  SBUX: 79.8,
  UBER: 70.4,
  PYPL: 62.7,
  SHOP: 74.9,
  F: 11.3,
};

/** Real-looking tickers, largest first; `defaultSymbols(n)` takes the first n. */
export const DEFAULT_SYMBOLS: readonly string[] = Object.freeze(Object.keys(REFERENCE_PRICES));

/**
 * The first `n` default symbols; beyond the built-in list, made-up four-letter tickers that cannot
 * collide with it (`QAAA`, `QAAB`, ...).
 */
export function defaultSymbols(n: number): string[] {
  const out = DEFAULT_SYMBOLS.slice(0, n);
  for (let i = 0; out.length < n; i++) {
    let s = '';
    let k = i;
    for (let d = 0; d < 3; d++) {
      s = String.fromCharCode(65 + (k % 26)) + s;
      k = Math.floor(k / 26);
    }
    out.push('Q' + s);
  }
  return out;
}

/** A small, fast, seedable PRNG (mulberry32). */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a of a string, for stable per-symbol parameters. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Price increment at a price level: $0.01 from $1 up, $0.0001 below. */
export function priceIncrement(price: number): number {
  return price >= 1 ? 0.01 : 0.0001;
}

function decimalsOf(increment: number): number {
  return increment >= 0.01 ? 2 : 4;
}

/** Standard normal variate (Box-Muller), from two uniforms. */
function gaussian(rng: Rng): number {
  const u = 1 - rng(); // (0, 1]: log stays finite
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * The starting state of a symbol. Known tickers start near their reference price; others at a
 * stable made-up price between $10 and $500. Volatility and spread are stable per symbol.
 */
export function initialState(sym: string, opts: { price?: number; volatility?: number; spreadBps?: number } = {}): SymbolState {
  const h = hash(sym);
  const price = opts.price ?? REFERENCE_PRICES[sym] ?? 10 + (h % 49_000) / 100;
  return {
    sym,
    mid: Math.max(MIN_MID, price),
    // 1 to 3 basis points per tick: visible moves on a board, a percent or two over an hour at
    // a few ticks per second.
    volatility: opts.volatility ?? 0.0001 + ((h >>> 8) % 200) / 1_000_000,
    // Large caps trade 1 to 3 basis points wide; cheaper names are wider relative to price.
    spreadBps: opts.spreadBps ?? (price < 20 ? 6 : 1 + ((h >>> 16) % 200) / 100),
    seq: 0,
  };
}

/**
 * One tick: moves the mid, quotes around it, draws a trade. Returns the new state and the tick;
 * `state` is not modified.
 */
export function step(state: SymbolState, rng: Rng): { state: SymbolState; tick: Tick } {
  const sigma = state.volatility;
  // Log-normal step with the drift term removed, so the expected price stays put.
  let mid = state.mid * Math.exp(sigma * gaussian(rng) - (sigma * sigma) / 2);
  if (!(mid >= MIN_MID)) mid = MIN_MID; // also catches NaN

  const inc = priceIncrement(mid);
  const dec = decimalsOf(inc);
  const midUnits = mid / inc;
  // Spread: the symbol's typical width, jittered 0.6x to 1.4x, never under one increment.
  const spreadUnits = Math.max(1, Math.round((midUnits * state.spreadBps * (0.6 + 0.8 * rng())) / 10_000));
  const bidUnits = Math.max(1, Math.round(midUnits - spreadUnits / 2));
  const askUnits = bidUnits + spreadUnits;

  // Trade: at the bid or the ask 90% of the time, else at a price strictly inside the spread.
  const r = rng();
  let lastUnits: number;
  if (r < 0.45) lastUnits = bidUnits;
  else if (r < 0.9 || spreadUnits < 2) lastUnits = askUnits;
  else lastUnits = bidUnits + 1 + Math.floor(rng() * (spreadUnits - 1));

  // Size: round lots, geometric-ish (mostly 100 to 500), capped at 5,000; 10% odd lots (1 to 99).
  const s = rng();
  const size = s < 0.1 ? 1 + Math.floor((s / 0.1) * 99) : 100 * Math.min(50, 1 + Math.floor(-Math.log(1 - rng()) * 2));

  const price = (units: number) => Number((units * inc).toFixed(dec));
  const seq = state.seq + 1;
  return {
    state: { ...state, mid, seq },
    tick: { sym: state.sym, bid: price(bidUnits), ask: price(askUnits), last: price(lastUnits), size, seq },
  };
}

/**
 * The model for a set of symbols: holds one state per symbol and steps them. (The only stateful
 * part; the producer uses it.)
 */
export class PriceModel {
  private readonly states = new Map<string, SymbolState>();

  constructor(
    symbols: readonly string[],
    private readonly rng: Rng = Math.random,
  ) {
    for (const sym of symbols) this.states.set(sym, initialState(sym));
  }

  get symbols(): string[] {
    return [...this.states.keys()];
  }

  /** The next tick of `sym`. */
  next(sym: string): Tick {
    const current = this.states.get(sym);
    if (!current) throw new Error(`unknown symbol ${sym}`);
    const { state, tick } = step(current, this.rng);
    this.states.set(sym, state);
    return tick;
  }

  state(sym: string): SymbolState | undefined {
    return this.states.get(sym);
  }
}
