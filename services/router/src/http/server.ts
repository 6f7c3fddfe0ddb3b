/**
 * The router's HTTP API:
 *
 * - `GET /v1/route?user=<id>&region=<r>` -> `{user, region, partition, node, url, ws_url, generation}`
 *   (404 unknown_region, 503 no_owner, 400 invalid_parameter).
 * - `GET /v1/status` -> every region: group state, generation, gateways with their partitions
 *   and connections. `GET /` draws it.
 * - `GET /healthz`, `/readyz`, `/metrics`.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Registry } from 'prom-client';
import { FanoutError } from '@fanout/protocol';
import { asFanoutError, KeyedRateLimiter, rateLimited, requestAddress, retryAfterOf } from '@fanout/http-api';
import { serveOps, type Health } from '@fanout/observability';
import type { RouteTable } from '../routing/route-table.js';
import type { GatewayInfoPoller } from '../routing/gateway-info.js';
import type { routerMetrics } from '../metrics.js';

const STATUS_PAGE = readFileSync(fileURLToPath(new URL('../../public/status.html', import.meta.url)));

/** Least wait named to a client when a partition has no owner, in ms; the wait is 1 to 2 times it. */
const NO_OWNER_RETRY_MS = 500;

function send(res: ServerResponse, status: number, body: string, type = 'application/json', extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'access-control-allow-origin': '*',
    'access-control-expose-headers': 'retry-after',
    ...extra,
  });
  res.end(body);
}

/** An error answer: its code's status and `{"error": ...}` body (the registry's, packages/protocol/src/errors.ts). */
function sendError(res: ServerResponse, e: FanoutError, extra: Record<string, string> = {}): void {
  send(res, e.status, JSON.stringify(e.toJSON()), 'application/json', extra);
}

export function createRouterServer(deps: {
  table: RouteTable;
  info: GatewayInfoPoller;
  health: Health;
  registry: Registry;
  metrics: ReturnType<typeof routerMetrics>;
  regions: readonly string[];
  limits?: { ratePerAddress: number; burst: number; addressHeader: string };
}): Server {
  const { table, info, health, registry, metrics } = deps;
  // Requests per second per client address on the API (not on health and metrics).
  const perAddress = new KeyedRateLimiter({ ratePerS: deps.limits?.ratePerAddress ?? 0, burst: deps.limits?.burst ?? 1 });
  const header = (deps.limits?.addressHeader ?? '').toLowerCase();
  const status = () => ({
    partitions: table.partitions,
    regions: deps.regions.map((region) => {
      const s = table.snapshot(region)!;
      return {
        region,
        group: s.groupId,
        state: s.state,
        generation: s.generation,
        unowned_partitions: Math.max(0, table.partitions - s.owners.size),
        gateways: s.members.map((m) => ({
          node: m.node,
          url: m.url,
          partitions: m.partitions,
          ...(info.info.get(m.url) ?? { reachable: null, ready: null, connections: null }),
        })),
      };
    }),
  });

  return createServer((req, res) => {
    const started = process.hrtime.bigint();
    const url = new URL(`http://router/${(req.url ?? '/').replace(/^\//, '')}`); // never throws: a path like /\x:|< would read as a host
    if (serveOps(req, res, url.pathname, { health, registry })) return;
    if (req.method !== 'GET')
      return sendError(res, new FanoutError('method_not_allowed', 'The router answers GET only.'), { allow: 'GET' });
    if (perAddress.enabled && (url.pathname === '/v1/route' || url.pathname === '/v1/status' || url.pathname === '/')) {
      const wait = perAddress.take(requestAddress(req, header));
      if (wait !== null) {
        metrics.rateLimited.inc();
        const e = rateLimited(wait, 'This address', 'FANOUT_RATE_PER_ADDRESS');
        return sendError(res, e, { 'retry-after': retryAfterOf(e) });
      }
    }
    switch (url.pathname) {
      case '/v1/route': {
        try {
          const route = table.lookup(url.searchParams.get('user'), url.searchParams.get('region'));
          send(res, 200, JSON.stringify(route));
          metrics.lookups.inc({ outcome: 'ok' });
        } catch (err) {
          let e = asFanoutError(err);
          if (e.code === 'no_owner') {
            // A rebalance in progress usually settles within a second or two: say when to ask again
            // (spread, so that the clients of a moved partition do not all come back at once).
            e = new FanoutError('no_owner', e.message, {
              detail: { retry_after_ms: NO_OWNER_RETRY_MS + Math.round(Math.random() * NO_OWNER_RETRY_MS) },
            });
            sendError(res, e, { 'retry-after': String(Math.ceil((2 * NO_OWNER_RETRY_MS) / 1000)) });
          } else {
            sendError(res, e);
          }
          metrics.lookups.inc({ outcome: e.code === 'invalid_parameter' ? 'bad_request' : e.code });
        }
        metrics.lookupSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
        return;
      }
      case '/v1/status':
        return send(res, 200, JSON.stringify(status()));
      case '/':
        return send(res, 200, STATUS_PAGE.toString(), 'text/html; charset=utf-8');
      default:
        return sendError(res, new FanoutError('not_found', 'Routes: GET /v1/route?user=<id>&region=<region>, GET /v1/status, GET /.'));
    }
  });
}
