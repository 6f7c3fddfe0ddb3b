/**
 * The ops face every service answers the same way, on `node:http` (`serveOps`: publisher, router,
 * dispatcher, market-data) and on the gateway's uWebSockets.js (`answerOps`):
 *
 * - `/healthz`, liveness: 200 `{"ok":true}` until something broke for good (`Health.break`: a
 *   Kafka consumer that stopped and will not restart), then 503 `{"ok":false,"broken":<reason>}`,
 *   so that the orchestrator restarts the process. Nothing that passes (Kafka unreachable for a
 *   while, draining, starting) fails it: that is readiness.
 * - `/readyz`: 200 once every start-up check passed and the service is not draining, else 503
 *   with what it waits for (`Health.report()`).
 * - `/metrics`: the Prometheus text of the service's registry.
 *
 * GET and HEAD (HEAD: the same status and headers, no body; HEAD /metrics does not collect). Any
 * other method is `405 method_not_allowed` with `Allow: GET, HEAD` (RFC 9110). No API key, no rate
 * limit. Answers are never cached.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { FanoutError } from '@fanout/protocol';
import type { Health } from './health.js';

export const OPS_PATHS = ['/healthz', '/readyz', '/metrics'] as const;

export type OpsPath = (typeof OPS_PATHS)[number];

export function isOpsPath(path: string): path is OpsPath {
  return (OPS_PATHS as readonly string[]).includes(path);
}

export interface OpsDeps {
  health: Health;
  registry: Registry;
}

/** What an ops route answers: status, headers and body (null: none at all, as for HEAD /metrics). */
export interface OpsAnswer {
  status: number;
  headers: Record<string, string>;
  body: string | null;
}

/** `<status> <reason phrase>`, as uWebSockets.js writes it (`writeStatus`), from Node's table of reason phrases. */
export function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Error'}`;
}

/** Status and JSON body of `/healthz` (liveness) and `/readyz` (readiness). */
export function healthAnswer(path: '/healthz' | '/readyz', health: Health): { status: number; body: unknown } {
  if (path === '/healthz')
    return { status: health.alive ? 200 : 503, body: health.alive ? { ok: true } : { ok: false, broken: health.broken } };
  return { status: health.ready ? 200 : 503, body: health.report() };
}

function json(status: number, body: unknown, extra: Record<string, string> = {}): OpsAnswer {
  return { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...extra }, body: JSON.stringify(body) };
}

function error(e: FanoutError, extra: Record<string, string> = {}): OpsAnswer {
  return json(e.status, e.toJSON(), extra);
}

/**
 * The answer of an ops route to `method` (upper case), whatever the server: at once, except for
 * GET /metrics, which collects first (a failed collection is `500 internal`; never rejects).
 */
export function opsAnswer(path: OpsPath, method: string, deps: OpsDeps): OpsAnswer | Promise<OpsAnswer> {
  if (method !== 'GET' && method !== 'HEAD')
    return error(new FanoutError('method_not_allowed', `${path} accepts GET and HEAD.`), { allow: 'GET, HEAD' });
  if (path === '/metrics') {
    const headers = { 'content-type': deps.registry.contentType, 'cache-control': 'no-store' };
    // No body, so nothing to collect.
    if (method === 'HEAD') return { status: 200, headers, body: null };
    return deps.registry.metrics().then(
      (text): OpsAnswer => ({ status: 200, headers, body: text }),
      (err: unknown) => error(new FanoutError('internal', undefined, { cause: err })),
    );
  }
  const { status, body } = healthAnswer(path, deps.health);
  return json(status, body);
}

/** `node:http`: answers `path` if it is an ops route (true), else leaves the request alone (false). */
export function serveOps(req: IncomingMessage, res: ServerResponse, path: string, deps: OpsDeps): boolean {
  if (!isOpsPath(path)) return false;
  const method = req.method ?? 'GET';
  // Drain a body nobody reads, so that the client reads the answer and not a reset.
  if (method !== 'GET' && method !== 'HEAD') req.resume();
  const write = (a: OpsAnswer) => {
    // Node leaves the body out of an answer to HEAD itself (the length is the one GET would have).
    res.writeHead(a.status, a.body === null ? a.headers : { ...a.headers, 'content-length': String(Buffer.byteLength(a.body)) });
    res.end(a.body ?? undefined);
  };
  const answer = opsAnswer(path, method, deps);
  if (answer instanceof Promise) void answer.then(write);
  else write(answer);
  return true;
}

/**
 * The part of a uWebSockets.js `HttpResponse` the ops face writes to (structural, so that this
 * package does not load uWebSockets.js).
 */
export interface UwsOpsResponse {
  onAborted(handler: () => void): unknown;
  cork(cb: () => void): unknown;
  writeStatus(status: string): unknown;
  writeHeader(key: string, value: string): unknown;
  end(body?: string): unknown;
  endWithoutBody(): unknown;
}

/**
 * uWebSockets.js: answers an ops route (the gateway routes GET and every other method of the ops
 * paths here; OPTIONS stays its CORS preflight). `method` in any case.
 */
export function answerOps(res: UwsOpsResponse, path: OpsPath, method: string, deps: OpsDeps): void {
  const m = method.toUpperCase();
  const write = (a: OpsAnswer): void => {
    res.cork(() => {
      res.writeStatus(statusLine(a.status));
      for (const [k, v] of Object.entries(a.headers)) res.writeHeader(k, v);
      // RFC 9110: an answer to HEAD has no body; one would be read as the start of the next answer.
      if (m === 'HEAD' || a.body === null) res.endWithoutBody();
      else res.end(a.body);
    });
  };
  const answer = opsAnswer(path, m, deps);
  if (!(answer instanceof Promise)) {
    write(answer);
    return;
  }
  let aborted = false;
  res.onAborted(() => (aborted = true));
  void answer.then((a) => {
    if (!aborted) write(a);
  });
}
