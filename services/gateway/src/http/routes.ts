/**
 * Plain HTTP on the gateway's port: the ops face (`/healthz`, `/readyz`, `/metrics`, answered by
 * @fanout/observability's `answerOps` as on every service), `/v1/info`, the live ticks page, the
 * CORS preflight, and 404/405 for the rest.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Registry } from 'prom-client';
import { answerOps, isOpsPath, OPS_PATHS, statusLine, type Health } from '@fanout/observability';
import { FanoutError } from '@fanout/protocol';

const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

/** The routes this port answers with GET (the transports add theirs elsewhere); any other method on them is 405. */
const GET_PATHS = ['/v1/info', '/v1/ws', '/v1/sse', '/v1/poll', '/v1/history', '/v1/latest'];
const PAGE_PATHS = ['/', '/board.js', '/fanout-client.js'];

function json(res: HttpResponse, status: string, body: unknown): void {
  res.cork(() => {
    res
      .writeStatus(status)
      .writeHeader('content-type', 'application/json')
      .writeHeader('cache-control', 'no-store')
      .end(JSON.stringify(body));
  });
}

export function attachHttpRoutes(
  app: TemplatedApp,
  deps: { health: Health; registry: Registry; servePage: boolean; info: () => unknown },
): void {
  const ops = { health: deps.health, registry: deps.registry };
  // GET here, HEAD and the other methods in the catch-all below (uWS has no GET fallback for HEAD).
  for (const path of OPS_PATHS) app.get(path, (res) => answerOps(res, path, 'GET', ops));
  app.get('/v1/info', (res) => json(res, '200 OK', deps.info()));
  if (deps.servePage) {
    void import('./client-bundle.js').then((m) => m.attachClientBundle(app)); // GET /fanout-client.js: the client SDK for browsers
    const files: Record<string, [string, Buffer]> = {
      '/': ['text/html; charset=utf-8', readFileSync(PUBLIC_DIR + 'index.html')],
      '/board.js': ['text/javascript; charset=utf-8', readFileSync(PUBLIC_DIR + 'board.js')],
    };
    for (const [path, [type, body]] of Object.entries(files)) {
      app.get(path, (res) => {
        res.cork(() => {
          res.writeStatus('200 OK').writeHeader('content-type', type).writeHeader('cache-control', 'no-cache').end(body);
        });
      });
    }
  }
  // CORS preflight for the pull endpoints (a browser app on another origin sends Authorization or
  // If-None-Match); the answers themselves carry access-control-allow-origin.
  app.options('/*', (res) => {
    res.cork(() => {
      res
        .writeStatus('204 No Content')
        .writeHeader('access-control-allow-origin', '*')
        .writeHeader('access-control-allow-methods', 'GET, OPTIONS')
        .writeHeader('access-control-allow-headers', 'authorization, if-none-match, last-event-id, content-type')
        .writeHeader('access-control-max-age', '600')
        .endWithoutBody();
    });
  });
  const getPaths = new Set([...GET_PATHS, ...(deps.servePage ? PAGE_PATHS : [])]);
  app.any('/*', (res, req) => {
    const method = req.getMethod();
    const url = req.getUrl();
    // HEAD on the ops routes (load balancers probe with it) answers as GET without a body; other methods are 405.
    if (isOpsPath(url)) return answerOps(res, url, method, ops);
    // RFC 9110: a known route with another method is 405 and says which methods it takes. (A GET
    // that lands here is no route: /v1/ws without the upgrade headers.)
    const known = method !== 'get' && getPaths.has(url);
    const e = known
      ? new FanoutError('method_not_allowed', `${url.slice(0, 100)} accepts GET (and OPTIONS, the CORS preflight).`)
      : new FanoutError('not_found', `No route ${method.toUpperCase()} ${url.slice(0, 100)}; WebSocket clients connect to /v1/ws.`);
    res.cork(() => {
      res.writeStatus(statusLine(e.status)).writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store');
      if (known) res.writeHeader('allow', 'GET, OPTIONS');
      // RFC 9110: an answer to HEAD has no body (uWS routes HEAD here: it has no GET fallback for
      // it); a body would be read as the start of the next answer on a keep-alive connection.
      if (method === 'head') res.endWithoutBody();
      else res.end(JSON.stringify(e.toJSON()));
    });
  });
}
