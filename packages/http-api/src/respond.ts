import type { ServerResponse } from 'node:http';
import { FanoutError } from '@fanout/protocol';
import { retryAfterOf } from './rate-limit.js';

/** Answers with a JSON body, never cached. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** Any error as `{"error": {"code", "message", "retriable"}}` with its code's status; unknown errors are `internal`. */
export function asFanoutError(err: unknown): FanoutError {
  return err instanceof FanoutError ? err : new FanoutError('internal', undefined, { cause: err });
}

/**
 * The headers a refusal carries besides its body: `Retry-After` on a 503 (`retryAfterS`) and on a
 * 429 (the wait the error names), and, RFC 9110, `Allow` on a 405 (`allow`: the route's methods,
 * when the route is known).
 */
export function refusalHeaders(e: FanoutError, o: { retryAfterS: number; allow?: string }): Record<string, string> {
  if (e.status === 503) return { 'retry-after': String(o.retryAfterS) };
  if (e.status === 429) return { 'retry-after': retryAfterOf(e) };
  if (e.status === 405 && o.allow) return { allow: o.allow };
  return {};
}

/**
 * Answers with an error: the status of its code in the registry (packages/protocol/src/errors.ts)
 * and its `{"error": ...}` body; `headers` adds to them (Retry-After, Allow).
 */
export function sendError(res: ServerResponse, err: unknown, headers: Record<string, string> = {}): FanoutError {
  const e = asFanoutError(err);
  sendJson(res, e.status, e.toJSON(), headers);
  return e;
}
