/**
 * The dispatcher's HTTP API (docs/webhooks.md has the reference with curl examples). Every `/v1`
 * route needs an API key (`Authorization: Bearer <key>` or `x-api-key`):
 *
 * - `POST /v1/endpoints`, `GET /v1/endpoints`, `GET|PATCH|DELETE /v1/endpoints/<id>`
 * - `POST /v1/endpoints/<id>/disable`, `POST /v1/endpoints/<id>/enable`
 * - `GET /v1/endpoints/<id>/secret`, `POST /v1/endpoints/<id>/secret/rotate`
 * - `GET /v1/endpoints/<id>/dead-letters`, `POST /v1/endpoints/<id>/dead-letters/redrive`
 * - `GET /healthz`, `GET /readyz`, `GET /metrics` (no key)
 *
 * Errors are `{"error": {"code", "message", "retriable"}}` with the code's HTTP status.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { FanoutError } from '@fanout/protocol';
import { serveOps, type Health, type Logger } from '@fanout/observability';
import {
  ApiKeys,
  asFanoutError,
  KeyedRateLimiter,
  requestAddress,
  parseJson,
  rateLimited,
  readRawBody,
  requireJsonContentType,
  refusalHeaders,
  sendError,
  sendJson,
} from '@fanout/http-api';
import type { DispatcherMetrics } from '../metrics.js';
import type { ApiAnswer, EndpointsApi } from './endpoints-api.js';

export interface DispatcherServerDeps {
  api: EndpointsApi;
  apiKeys: readonly string[];
  maxBodyBytes: number;
  health: Health;
  registry: Registry;
  metrics: DispatcherMetrics;
  logger: Logger;
  /** Requests per second per client address on the API (0: no limit), and the trusted address header. */
  limits?: { ratePerAddress: number; burst: number; addressHeader: string };
}

type Handler = (ctx: { id: string; query: URLSearchParams; body: () => Promise<unknown> }) => ApiAnswer | Promise<ApiAnswer>;

interface Route {
  /** Label for metrics (no ids). */
  name: string;
  pattern: RegExp;
  methods: Record<string, Handler>;
}

/** A body is optional on the action routes: none (or empty) reads as {}. */
async function optionalJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody) {
    req.resume();
    return {};
  }
  requireJsonContentType(req);
  const raw = await readRawBody(req, limit);
  return raw.length === 0 ? {} : parseJson(raw);
}

export function createDispatcherServer(deps: DispatcherServerDeps): Server {
  const { api, health, registry, metrics } = deps;
  const keys = new ApiKeys(deps.apiKeys);
  const log = deps.logger.child({ module: 'http' });
  const perAddress = new KeyedRateLimiter({ ratePerS: deps.limits?.ratePerAddress ?? 0, burst: deps.limits?.burst ?? 1 });
  const header = (deps.limits?.addressHeader ?? '').toLowerCase();
  const ID = '([^/]{1,100})';

  const routes: Route[] = [
    {
      name: '/v1/endpoints',
      pattern: /^\/v1\/endpoints$/,
      methods: { POST: async ({ body }) => api.create(await body()), GET: ({ query }) => api.list(query) },
    },
    {
      name: '/v1/endpoints/:id',
      pattern: new RegExp(`^/v1/endpoints/${ID}$`),
      methods: {
        GET: ({ id }) => api.get(id),
        PATCH: async ({ id, body }) => api.update(id, await body()),
        DELETE: ({ id }) => api.remove(id),
      },
    },
    {
      name: '/v1/endpoints/:id/disable',
      pattern: new RegExp(`^/v1/endpoints/${ID}/disable$`),
      methods: { POST: ({ id }) => api.setDisabled(id, true) },
    },
    {
      name: '/v1/endpoints/:id/enable',
      pattern: new RegExp(`^/v1/endpoints/${ID}/enable$`),
      methods: { POST: ({ id }) => api.setDisabled(id, false) },
    },
    { name: '/v1/endpoints/:id/secret', pattern: new RegExp(`^/v1/endpoints/${ID}/secret$`), methods: { GET: ({ id }) => api.secret(id) } },
    {
      name: '/v1/endpoints/:id/secret/rotate',
      pattern: new RegExp(`^/v1/endpoints/${ID}/secret/rotate$`),
      methods: { POST: async ({ id, body }) => api.rotate(id, await body()) },
    },
    {
      name: '/v1/endpoints/:id/dead-letters',
      pattern: new RegExp(`^/v1/endpoints/${ID}/dead-letters$`),
      methods: { GET: ({ id, query }) => api.deadLetterList(id, query) },
    },
    {
      name: '/v1/endpoints/:id/dead-letters/redrive',
      pattern: new RegExp(`^/v1/endpoints/${ID}/dead-letters/redrive$`),
      methods: { POST: async ({ id, body }) => api.redrive(id, await body()) },
    },
  ];

  return createServer((req, res) => {
    const url = new URL(`http://dispatcher/${(req.url ?? '/').replace(/^\//, '')}`); // never throws: a path like /\x:|< would read as a host
    const path = url.pathname;
    if (serveOps(req, res, path, { health, registry })) return;
    let match: RegExpExecArray | null = null;
    const route = routes.find((r) => (match = r.pattern.exec(path)) !== null);
    const fail = (err: unknown) => {
      const e = asFanoutError(err);
      if (e.code === 'internal') log.error({ err }, 'unexpected error');
      metrics.requests.inc({ route: route?.name ?? 'other', code: e.status });
      // Drain what is left of a refused body so the client reads our answer, not a reset.
      req.resume();
      // A 503 or 429 says when to retry; a 405 which methods the route takes.
      sendError(res, e, refusalHeaders(e, { retryAfterS: 1, ...(route ? { allow: Object.keys(route.methods).join(', ') } : {}) }));
    };
    // Requests per second per client address, before anything else is looked at (health and metrics are not counted).
    if (perAddress.enabled) {
      const wait = perAddress.take(requestAddress(req, header));
      if (wait !== null) {
        metrics.rateLimited.inc();
        return fail(rateLimited(wait, 'This address', 'FANOUT_RATE_PER_ADDRESS'));
      }
    }
    if (!route)
      return fail(new FanoutError('not_found', `No route ${req.method} ${path.slice(0, 100)}; see docs/webhooks.md for the endpoint API.`));
    const handler = route.methods[req.method ?? ''];
    if (!handler) return fail(new FanoutError('method_not_allowed', `${route.name} accepts ${Object.keys(route.methods).join(', ')}.`));
    if (!keys.accepts(req)) return fail(new FanoutError('unauthorized'));
    if (!health.ready) return fail(new FanoutError('not_ready'));
    let id = '';
    try {
      id = decodeURIComponent((match as RegExpExecArray | null)?.[1] ?? '');
    } catch {
      return fail(new FanoutError('endpoint_not_found', 'The endpoint id in the path is not valid percent-encoding.'));
    }
    Promise.resolve()
      .then(() => handler({ id, query: url.searchParams, body: () => optionalJson(req, deps.maxBodyBytes) }))
      .then((answer) => {
        metrics.requests.inc({ route: route.name, code: answer.status });
        sendJson(res, answer.status, answer.body);
      }, fail);
  });
}
