/**
 * Limits per abuser: token buckets per key (a client address, an API key), holding at most
 * `maxKeys` keys (the least recently seen are forgotten first, so a flood of addresses cannot
 * grow memory), and the client address a limit is keyed by.
 */
import type { IncomingMessage } from 'node:http';
import { FanoutError } from '@fanout/protocol';

export interface KeyedRateLimiterOptions {
  /** Tokens per second per key; 0 turns the limit off. */
  ratePerS: number;
  /** Tokens a key may save up (the burst it may send after a quiet period). */
  burst: number;
  /** Keys remembered at most. */
  maxKeys?: number;
}

export class KeyedRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; last: number }>();

  constructor(private readonly o: KeyedRateLimiterOptions) {}

  get enabled(): boolean {
    return this.o.ratePerS > 0;
  }

  /** Takes `n` tokens for `key`: null when allowed, else how long (ms) until they would be there. */
  take(key: string, n = 1, now = Date.now()): number | null {
    const { ratePerS, burst } = this.o;
    if (ratePerS <= 0) return null;
    let b = this.buckets.get(key);
    if (b) this.buckets.delete(key);
    else b = { tokens: burst, last: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.last) * ratePerS) / 1000);
    b.last = now;
    // Re-inserted: the Map's order is the order keys were last seen, oldest first.
    this.buckets.set(key, b);
    if (this.buckets.size > (this.o.maxKeys ?? 100_000)) this.buckets.delete(this.buckets.keys().next().value!);
    if (b.tokens >= n) {
      b.tokens -= n;
      return null;
    }
    return Math.ceil(((Math.min(n, burst) - b.tokens) * 1000) / ratePerS);
  }

  /** Keys remembered now. */
  get size(): number {
    return this.buckets.size;
  }
}

/** The 429 for a key over its rate; `who` says whose limit it is ("this address", "this API key"). */
export function rateLimited(retryAfterMs: number, who: string, setting: string): FanoutError {
  return new FanoutError('rate_limited', `${who} is over its rate (${setting}); retry after ${Math.ceil(retryAfterMs / 1000)} s.`, {
    detail: { retry_after_ms: retryAfterMs },
  });
}

/** Whole seconds for a Retry-After header, from a FanoutError's retry_after_ms (else 1). */
export function retryAfterOf(err: FanoutError): string {
  const ms = (err.detail as { retry_after_ms?: unknown } | undefined)?.retry_after_ms;
  return String(typeof ms === 'number' && ms > 0 ? Math.ceil(ms / 1000) : 1);
}

/**
 * The client's address: the socket's, or, behind a load balancer, the one a trusted proxy put in
 * `headerName` (the last entry of a comma-separated list such as X-Forwarded-For, the one the
 * nearest proxy added; entries before it are whatever the client claimed). Only configure a
 * header the proxy in front always sets: otherwise any client can pick its own address.
 */
export function clientAddress(socketAddress: string, headerName: string, headerValue: string | undefined | null): string {
  if (!headerName) return socketAddress;
  const last = (headerValue ?? '').split(',').pop()?.trim();
  return last || socketAddress;
}

/** clientAddress for a Node HTTP request: its socket's address, or the trusted header's (lower-case name). */
export function requestAddress(req: IncomingMessage, headerName: string): string {
  const h = headerName ? req.headers[headerName] : undefined;
  return clientAddress(req.socket.remoteAddress ?? '', headerName, Array.isArray(h) ? h.join(',') : h);
}
