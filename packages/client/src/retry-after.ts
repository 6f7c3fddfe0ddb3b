/**
 * A gateway under a reconnect storm refuses the excess with `503` + `Retry-After` (error code
 * `overloaded`, or `not_ready` while it starts or drains), and says how long to stay away. This
 * module reads that answer and turns it into the client's wait.
 *
 *   HTTP/1.1 503 Service Unavailable
 *   Retry-After: 2
 *   {"error":{"code":"overloaded","message":"...","retriable":true,"detail":{"retry_after_ms":1730}}}
 *
 * The body's `detail.retry_after_ms` is preferred: it is finer than the header's whole seconds and
 * already carries the gateway's own jitter. In a browser it is also the part that can be read
 * cross-origin, where `Retry-After` stays hidden unless the gateway lists it in
 * `Access-Control-Expose-Headers`.
 */

/** Statuses whose Retry-After asks for a later attempt at the same URL (RFC 9110 §10.2.3). */
const RETRY_AFTER_STATUSES = new Set([429, 503]);

/**
 * Most jitter the client adds on top of the server's wait, as a fraction of it. The header is whole
 * seconds, so a herd told "1" would otherwise come back in the same millisecond.
 */
export const RETRY_AFTER_JITTER = 0.1;

/**
 * `Retry-After` in ms: delta-seconds (`"2"`) or an HTTP-date (a date in the past is 0). Undefined
 * when missing or unreadable.
 */
export function parseRetryAfter(value: string | string[] | null | undefined, now: number = Date.now()): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // An HTTP-date always names a weekday and a month; a bare number that Date.parse would take is not one.
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** The `detail.retry_after_ms` of a gateway error body, in ms; undefined when absent or malformed. */
export function retryAfterFromBody(body: unknown): number | undefined {
  const ms = (body as { error?: { detail?: { retry_after_ms?: unknown } } } | null)?.error?.detail?.retry_after_ms;
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? Math.round(ms) : undefined;
}

/**
 * How long a refused handshake asks the client to wait, in ms: only for 503 and 429, the body's
 * `retry_after_ms` when there is one, else the `Retry-After` header. Undefined: no such request
 * (the client's own backoff applies).
 */
export function serverRetryAfterMs(
  status: number,
  header: string | string[] | null | undefined,
  body: unknown,
  now: number = Date.now(),
): number | undefined {
  if (!RETRY_AFTER_STATUSES.has(status)) return undefined;
  return retryAfterFromBody(body) ?? parseRetryAfter(header, now);
}

/**
 * The wait before the next attempt when the server asked for `askedMs`: never shorter than asked,
 * capped at `capMs`, plus up to RETRY_AFTER_JITTER of it so that a herd given the same number spreads.
 */
export function retryAfterDelay(askedMs: number, capMs: number, random: () => number = Math.random): number {
  const base = Math.min(Math.max(0, Math.round(askedMs)), capMs);
  const r = random();
  const u = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
  return Math.min(capMs, base + Math.floor(u * RETRY_AFTER_JITTER * base));
}
