/**
 * Admission at a bounded rate: new WebSocket connections, SSE streams and long polls take a token
 * from one bucket (`ratePerS` tokens a second, up to `burst` saved). Over the rate, the transport
 * answers `503 overloaded` with `Retry-After`, and the wait it names spreads the refused clients
 * over the time the current backlog needs at this rate (with jitter), so a reconnect storm is
 * admitted as fast as the gateway can take it instead of knocking it over or coming back in a herd.
 */
import { ERRORS, FanoutError } from '@fanout/protocol';

export interface AdmissionOptions {
  /** Admissions per second; 0 admits everything. */
  ratePerS: number;
  /** Admissions that may happen at once after a quiet period. */
  burst: number;
  random?: () => number;
}

/** How long a refused request should wait, in ms and in whole seconds for Retry-After. */
export interface Refusal {
  retryAfterMs: number;
  retryAfterS: number;
}

export class Admission {
  private tokens: number;
  private last = Date.now();
  /** Refusals in the current one-second slot and the one before (a cheap sliding count). */
  private slot = 0;
  private refusedNow = 0;
  private refusedBefore = 0;
  refused = 0;

  constructor(private readonly o: AdmissionOptions) {
    this.tokens = o.burst;
  }

  /** Takes a token; null when admitted, else how long to wait. */
  admit(now = Date.now()): Refusal | null {
    const { ratePerS, burst } = this.o;
    if (ratePerS <= 0) return null;
    this.tokens = Math.min(burst, this.tokens + ((now - this.last) * ratePerS) / 1000);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return null;
    }
    const slot = Math.floor(now / 1000);
    if (slot !== this.slot) {
      this.refusedBefore = slot === this.slot + 1 ? this.refusedNow : 0;
      this.refusedNow = 0;
      this.slot = slot;
    }
    this.refusedNow++;
    this.refused++;
    // The refused of the last second or so come back spread over the time the rate needs for them.
    const backlog = this.refusedNow + this.refusedBefore * (1 - (now % 1000) / 1000);
    const untilToken = ((1 - this.tokens) * 1000) / ratePerS;
    const spreadMs = Math.max(500, (backlog * 1000) / ratePerS);
    const retryAfterMs = Math.round(untilToken + (this.o.random ?? Math.random)() * spreadMs);
    return { retryAfterMs, retryAfterS: Math.max(1, Math.ceil(retryAfterMs / 1000)) };
  }
}

/** The error a refused request gets (503 overloaded; Reply turns retry_after_ms into Retry-After). */
export function overloaded(r: Refusal): FanoutError {
  return new FanoutError('overloaded', `${ERRORS.overloaded.message} Retry in ${r.retryAfterMs} ms.`, { detail: { retry_after_ms: r.retryAfterMs } });
}

/** Whole seconds for a Retry-After header: from the error's retry_after_ms, else 1. */
export function retryAfterSeconds(err: FanoutError): number {
  const ms = (err.detail as { retry_after_ms?: unknown } | undefined)?.retry_after_ms;
  return typeof ms === 'number' && ms > 0 ? Math.ceil(ms / 1000) : 1;
}
