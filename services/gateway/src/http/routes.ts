/**
 * Plain HTTP on the gateway's port: health, readiness, metrics and the live ticks page.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Registry } from 'prom-client';
import type { Health } from '@fanout/observability';

const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

function json(res: HttpResponse, status: string, body: unknown): void {
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').end(JSON.stringify(body));
  });
}

export function attachHttpRoutes(app: TemplatedApp, deps: { health: Health; registry: Registry; servePage: boolean; info: () => unknown }): void {
  const { health, registry } = deps;
  app.get('/healthz', (res) => json(res, health.alive ? '200 OK' : '503 Service Unavailable', { ok: health.alive, ...(health.broken ? { broken: health.broken } : {}) }));
  app.get('/readyz', (res) => json(res, health.ready ? '200 OK' : '503 Service Unavailable', health.report()));
  app.get('/v1/info', (res) => json(res, '200 OK', deps.info()));
  app.get('/metrics', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    void registry.metrics().then((text) => {
      if (aborted) return;
      res.cork(() => {
        res.writeStatus('200 OK').writeHeader('content-type', registry.contentType).end(text);
      });
    });
  });
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
  app.any('/*', (res, req) => {
    // RFC 9110: an answer to HEAD has no body (uWS routes HEAD here: it has no GET fallback for it);
    // a body would be read as the start of the next answer on a keep-alive connection.
    if (req.getMethod() === 'head') {
      res.cork(() => res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').endWithoutBody());
      return;
    }
    json(res, '404 Not Found', { error: { code: 'not_found', message: `No route ${req.getMethod().toUpperCase()} ${req.getUrl().slice(0, 100)}; WebSocket clients connect to /v1/ws.`, retriable: false } });
  });
}
