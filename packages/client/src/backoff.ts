/**
 * Reconnect delays: exponential backoff with full jitter (the AWS Architecture Blog's "full jitter").
 *
 *   delay(attempt) = random(0, min(maxMs, baseMs * 2^attempt))       attempt = 0, 1, 2, ...
 *
 * With the defaults (base 500 ms, max 15 s) the ceilings are 0.5, 1, 2, 4, 8, 15, 15, ... s, so a
 * client waits at most 15 s between two attempts, on average half the ceiling, and a fleet of clients
 * that lost the same gateway spreads its reconnects evenly over the window instead of arriving
 * together. The attempt counter goes back to 0 once a connection has stayed up for `stableMs`
 * (default 5 s), so a connection that flaps right after opening keeps backing off.
 */
export interface BackoffOptions {
  /** Ceiling of the first delay, in ms (default 500). */
  baseMs?: number;
  /** Largest ceiling, in ms (default 15 000). No delay is ever longer. */
  maxMs?: number;
  /** A connection that stayed up this long (ms) resets the attempt counter (default 5 000). */
  stableMs?: number;
}

export const BACKOFF_DEFAULTS = { baseMs: 500, maxMs: 15_000, stableMs: 5_000 } as const;

/** Beyond this exponent the ceiling is maxMs anyway; capping it keeps the arithmetic finite. */
const MAX_EXPONENT = 30;

/** The ceiling for `attempt` (0-based): min(maxMs, baseMs * 2^attempt). */
export function backoffCeiling(attempt: number, baseMs: number = BACKOFF_DEFAULTS.baseMs, maxMs: number = BACKOFF_DEFAULTS.maxMs): number {
  const exp = Math.min(Math.max(0, Math.floor(attempt)), MAX_EXPONENT);
  return Math.min(maxMs, baseMs * 2 ** exp);
}

/** One full-jitter delay for `attempt`: an integer in [0, ceiling]. */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const ceiling = backoffCeiling(attempt, opts.baseMs ?? BACKOFF_DEFAULTS.baseMs, opts.maxMs ?? BACKOFF_DEFAULTS.maxMs);
  const r = random();
  const u = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
  return Math.min(ceiling, Math.floor(u * (ceiling + 1)));
}

/** Validated settings; throws a TypeError on nonsense so a typo does not become a reconnect storm. */
export function normalizeBackoff(opts: BackoffOptions = {}): Required<BackoffOptions> {
  const baseMs = opts.baseMs ?? BACKOFF_DEFAULTS.baseMs;
  const maxMs = opts.maxMs ?? Math.max(BACKOFF_DEFAULTS.maxMs, baseMs);
  const stableMs = opts.stableMs ?? BACKOFF_DEFAULTS.stableMs;
  if (!Number.isFinite(baseMs) || baseMs <= 0) throw new TypeError(`backoff.baseMs must be a positive number of ms, not ${String(baseMs)}`);
  if (!Number.isFinite(maxMs) || maxMs < baseMs)
    throw new TypeError(`backoff.maxMs must be a number of ms at least baseMs (${baseMs}), not ${String(maxMs)}`);
  if (!Number.isFinite(stableMs) || stableMs < 0)
    throw new TypeError(`backoff.stableMs must be a non-negative number of ms, not ${String(stableMs)}`);
  return { baseMs, maxMs, stableMs };
}

/** The attempt counter and its delays for one client. */
export class Backoff {
  private readonly opts: Required<BackoffOptions>;
  /** Attempts made since the last reset (the exponent of the next ceiling). */
  attempt = 0;

  constructor(
    opts: BackoffOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.opts = normalizeBackoff(opts);
  }

  get settings(): Readonly<Required<BackoffOptions>> {
    return this.opts;
  }

  /** The delay before the next attempt; counts the attempt. */
  next(): number {
    const d = backoffDelay(this.attempt, this.opts, this.random);
    this.attempt++;
    return d;
  }

  /** Call when a connection ends: if it had been up for `stableMs`, start over. */
  connectionEnded(upForMs: number): void {
    if (upForMs >= this.opts.stableMs) this.reset();
  }

  reset(): void {
    this.attempt = 0;
  }
}
