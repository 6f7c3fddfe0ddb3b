/**
 * The publish API:
 *
 * - `POST /v1/publish`        one event `{"channel", "data", "id"?}` -> `{"id","channel","position","partition","offset"}`
 * - `POST /v1/publish/batch`  `{"events": [...]}` -> `{"results": [...]}`; all are validated before any is written
 * - `POST /v1/inbound/<source>` a signed Standard Webhooks request, published to the source's channel (inbound-webhooks.ts)
 * - `GET /healthz`, `GET /readyz`, `GET /metrics`
 *
 * Errors are `{"error": {"code", "message", "retriable"}}` with the code's HTTP status.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { FanoutError, validateEvent } from '@fanout/protocol';
import { serveOps, type Health, type Logger } from '@fanout/observability';
import { ApiKeys, asFanoutError, KeyedRateLimiter, rateLimited, readJsonBody, refusalHeaders, sendError, sendJson } from '@fanout/http-api';
import { InboundWebhooks, parseInboundSources } from './inbound-webhooks.js';
import type { PublisherClient } from '../producer/publisher-client.js';
import type { PublisherConfig } from '../config.js';
import type { publisherMetrics } from '../metrics.js';

export interface PublishApiDeps {
  config: Readonly<PublisherConfig>;
  client: PublisherClient;
  logger: Logger;
  health: Health;
  registry: Registry;
  metrics: ReturnType<typeof publisherMetrics>;
}

/** Rejects with kafka_unavailable once `ms` have passed without an acknowledgement. */
function withinTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new FanoutError(
            'kafka_unavailable',
            `Kafka did not acknowledge within ${ms} ms; the events may still be written. Retry after the Retry-After delay with the same event ids, so that consumers can recognize repeats by id.`,
          ),
        ),
      ms,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export function createPublishServer(deps: PublishApiDeps): Server {
  const { config, client, logger, health, registry, metrics } = deps;
  const keys = new ApiKeys(config.apiKeys);
  const log = logger.child({ module: 'http' });
  const inbound = new InboundWebhooks({
    sources: parseInboundSources(config.inboundWebhooks),
    toleranceS: config.inboundToleranceS,
    dedupeWindowMs: config.inboundDedupeWindowMs,
    dedupeMaxIds: config.inboundDedupeMaxIds,
    maxBodyBytes: config.maxBodyBytes,
    maxEventBytes: config.maxEventBytes,
    client,
    registry,
    logger,
    ready: () => !health.isDraining && client.isConnected,
    onAnswered: (code) => metrics.requests.inc({ route: '/v1/inbound', code }),
    retryAfterS: config.retryAfterS,
  });

  // Events per second per API key (a 429 with Retry-After over it), counted once the request is valid.
  const perKey = new KeyedRateLimiter({ ratePerS: config.publishRatePerKey, burst: config.publishBurstPerKey });
  const charge = (key: number | null, events: number) => {
    const wait = perKey.take(String(key), events);
    if (wait === null) return;
    metrics.rateLimited.inc();
    throw rateLimited(wait, 'This API key', 'FANOUT_PUBLISH_RATE_PER_KEY');
  };

  async function publishOne(req: IncomingMessage, key: number | null): Promise<unknown> {
    const body = await readJsonBody(req, config.maxBodyBytes);
    const event = validateEvent(body, config.maxEventBytes);
    charge(key, 1);
    const [result] = await client.publishValidated([event]);
    return result;
  }

  async function publishBatch(req: IncomingMessage, key: number | null): Promise<unknown> {
    const body = await readJsonBody(req, config.maxBodyBytes);
    if (typeof body !== 'object' || body === null || !Array.isArray((body as { events?: unknown }).events)) {
      throw new FanoutError('invalid_event', 'A batch is {"events": [<event>, ...]}.');
    }
    const events = (body as { events: unknown[] }).events;
    if (events.length === 0) throw new FanoutError('invalid_event', 'The batch has no events.');
    if (events.length > config.maxBatchEvents) {
      throw new FanoutError('batch_too_large', `The batch has ${events.length} events; the limit is ${config.maxBatchEvents}.`);
    }
    const valid = events.map((e, i) => validateEvent(e, config.maxEventBytes, i));
    charge(key, valid.length);
    return { results: await client.publishValidated(valid) };
  }

  const routes: Record<
    string,
    {
      method: string;
      auth: boolean;
      handle: (req: IncomingMessage, key: number | null) => Promise<unknown>;
      events?: (r: unknown) => number;
    }
  > = {
    '/v1/publish': { method: 'POST', auth: true, handle: publishOne, events: () => 1 },
    '/v1/publish/batch': { method: 'POST', auth: true, handle: publishBatch, events: (r) => (r as { results: unknown[] }).results.length },
  };

  return createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0]!;
    if (serveOps(req, res, url, { health, registry })) return;
    // Inbound webhooks authenticate by their signature, not an API key (inbound-webhooks.ts).
    if (url.startsWith('/v1/inbound/')) return void inbound.handle(req, res, url.slice('/v1/inbound/'.length));
    const route = routes[url];
    const started = process.hrtime.bigint();
    const fail = (err: unknown) => {
      const e = asFanoutError(err);
      if (e.code === 'internal') log.error({ err }, 'unexpected error');
      metrics.requests.inc({ route: route ? url : 'other', code: e.status });
      metrics.events.inc({ outcome: e.code === 'kafka_unavailable' ? 'failed' : 'rejected' });
      // Drain what is left of a refused body so the client reads our answer, not a reset.
      req.resume();
      // A 503 (Kafka unavailable, draining) or 429 is worth retrying: say when. A 405 says which methods the route takes.
      sendError(res, e, refusalHeaders(e, { retryAfterS: config.retryAfterS, ...(route ? { allow: route.method } : {}) }));
    };
    if (!route)
      return fail(
        new FanoutError('not_found', `No route ${req.method} ${url.slice(0, 100)}; publish with POST /v1/publish or /v1/publish/batch.`),
      );
    if (req.method !== route.method) return fail(new FanoutError('method_not_allowed', `Use ${route.method} ${url}.`));
    const key = keys.identify(req);
    if (route.auth && key === null) return fail(new FanoutError('unauthorized'));
    if (health.isDraining || !client.isConnected) return fail(new FanoutError('not_ready'));
    withinTimeout(route.handle(req, key), config.publishTimeoutMs).then((result) => {
      metrics.requests.inc({ route: url, code: 200 });
      metrics.events.inc({ outcome: 'published' }, route.events?.(result) ?? 1);
      metrics.writeSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      sendJson(res, 200, result);
    }, fail);
  });
}
