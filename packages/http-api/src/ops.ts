/**
 * The ops face every `node:http` service answers the same way: `/healthz` (liveness: 200 until
 * something broke for good, then 503 with the reason, so that the orchestrator restarts the
 * process), `/readyz` (200 once every start-up check passed and the service is not draining, else
 * 503 with what it waits for) and `/metrics` (Prometheus text). GET and HEAD (no body); any other
 * method is `405 method_not_allowed` with `Allow: GET, HEAD` (RFC 9110). No API key, no rate limit.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { FanoutError } from '@fanout/protocol';
import type { Health } from '@fanout/observability';
import { sendJson } from './respond.js';

export const OPS_PATHS: readonly string[] = ['/healthz', '/readyz', '/metrics'];

/** Status and JSON body of `/healthz` and `/readyz` (also used by the gateway's uWS routes). */
export function healthAnswer(path: '/healthz' | '/readyz', health: Health): { status: number; body: unknown } {
  if (path === '/healthz')
    return { status: health.alive ? 200 : 503, body: health.alive ? { ok: true } : { ok: false, broken: health.broken } };
  return { status: health.ready ? 200 : 503, body: health.report() };
}

/** Answers `path` if it is an ops route (true), else leaves the request alone (false). */
export function serveOps(req: IncomingMessage, res: ServerResponse, path: string, deps: { health: Health; registry: Registry }): boolean {
  if (!OPS_PATHS.includes(path)) return false;
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    req.resume();
    sendJson(res, 405, new FanoutError('method_not_allowed', `${path} accepts GET and HEAD.`).toJSON(), { allow: 'GET, HEAD' });
    return true;
  }
  if (path === '/metrics') {
    if (method === 'HEAD') {
      // No body, so nothing to collect.
      res.writeHead(200, { 'content-type': deps.registry.contentType, 'cache-control': 'no-store' });
      res.end();
      return true;
    }
    void deps.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': deps.registry.contentType, 'cache-control': 'no-store' });
        res.end(text);
      },
      (err: unknown) => sendJson(res, 500, new FanoutError('internal', undefined, { cause: err }).toJSON()),
    );
    return true;
  }
  const { status, body } = healthAnswer(path as '/healthz' | '/readyz', deps.health);
  sendJson(res, status, body);
  return true;
}
