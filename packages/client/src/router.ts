/**
 * The router, for user channels: `GET <routerUrl>/v1/route?user=<id>&region=<r>` answers
 * `{"url":"http://host:port","ws_url":"ws://host:port/v1/ws","node":"...","partition":n,"generation":g}`,
 * the gateway that owns the user's partition now. The client asks before connecting, and again after
 * a `wrong_gateway` error frame, a rebalance (close 4002 or a reconnect frame with reason
 * `rebalance`), a drain (reconnect frame `shutdown`), a `503 not_ready` from the node it was given
 * (starting or draining), or a failed attempt to reach that node.
 */
import type { FetchLike } from './transports.js';

export interface Route {
  /** HTTP base URL of the gateway (SSE and the pull endpoints live under it). */
  url: string;
  /** WebSocket URL, `/v1/ws` included. */
  ws_url: string;
  node: string;
  partition: number;
  /** The consumer group generation the answer was based on (opaque). */
  generation: string | number | null;
}

import { serverRetryAfterMs } from './retry-after.js';

export class RouterError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
    /** The wait the router asked for (503 no_owner during a rebalance), in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'RouterError';
  }
}

export function routeUrl(routerUrl: string, user: string, region: string | undefined): string {
  const q = new URLSearchParams({ user });
  if (region) q.set('region', region);
  return `${routerUrl.replace(/\/+$/, '')}/v1/route?${q.toString()}`;
}

export async function lookupRoute(
  fetchFn: FetchLike,
  routerUrl: string,
  user: string,
  region: string | undefined,
  timeoutMs = 10_000,
): Promise<Route> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    let res: Awaited<ReturnType<FetchLike>>;
    try {
      res = await fetchFn(routeUrl(routerUrl, user, region), {
        headers: { accept: 'application/json' },
        signal: abort.signal,
        cache: 'no-store',
      });
    } catch (err) {
      throw new RouterError(`the router at ${routerUrl} did not answer: ${(err as Error)?.message ?? String(err)}`);
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      throw new RouterError(`the router answered ${res.status} without JSON`, res.status);
    }
    if (!res.ok) {
      const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      const retryAfterMs = serverRetryAfterMs(res.status, res.headers.get('retry-after'), body);
      throw new RouterError(
        `the router answered ${res.status}${e?.message ? `: ${String(e.message)}` : ''}`,
        res.status,
        typeof e?.code === 'string' ? e.code : undefined,
        retryAfterMs,
      );
    }
    const r = body as Partial<Route> | null;
    if (!r || typeof r.ws_url !== 'string' || !/^wss?:\/\//.test(r.ws_url) || typeof r.url !== 'string' || !/^https?:\/\//.test(r.url)) {
      throw new RouterError('the router\'s answer has no usable "url" and "ws_url"', res.status);
    }
    return {
      url: r.url,
      ws_url: r.ws_url,
      node: String(r.node ?? ''),
      partition: Number(r.partition ?? -1),
      generation: r.generation ?? null,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The `sub` claim of a JWT, read without verifying (the gateway verifies); null if absent. */
export function tokenSubject(token: string): string | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(
      Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''),
    );
    const sub = (JSON.parse(json) as { sub?: unknown }).sub;
    return typeof sub === 'string' && sub.length > 0 ? sub : null;
  } catch {
    return null;
  }
}
