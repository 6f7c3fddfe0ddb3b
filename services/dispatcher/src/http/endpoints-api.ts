/**
 * The endpoint API's handlers: each takes the parsed request and answers `{status, body}` or
 * throws a FanoutError. Every change is written to the registry topic and answered once this
 * instance has read it back.
 */
import { FanoutError } from '@fanout/protocol';
import type { Logger } from '@fanout/observability';
import type { EndpointRegistry } from '../endpoints/registry.js';
import type { UrlPolicy } from '../endpoints/url-policy.js';
import {
  endpointView,
  ENDPOINT_ID_RE,
  isValidSecret,
  newEndpointId,
  newSecret,
  parseEndpointInput,
  secretsView,
  type Endpoint,
} from '../endpoints/endpoint.js';
import type { DeadLetterStore } from '../retries/dead-letter-store.js';
import type { DeliveryEngine } from '../delivery/delivery-engine.js';
import { deadLetterKey, type DeadLetter } from '../delivery/delivery-job.js';
import type { DispatcherMetrics } from '../metrics.js';

export interface ApiAnswer {
  status: number;
  body: unknown;
}

export interface EndpointsApiDeps {
  registry: EndpointRegistry;
  policy: UrlPolicy;
  deadLetters: DeadLetterStore;
  engine: DeliveryEngine;
  metrics: DispatcherMetrics;
  logger: Logger;
  maxEndpoints: number;
  maxChannelsPerEndpoint: number;
  secretOverlapMs: number;
}

/** Most signing secrets an endpoint keeps (the current one and those still in an overlap). */
const MAX_SECRETS = 5;
/** Most dead letters one redrive call submits. */
const MAX_REDRIVE = 1000;

function intParam(q: URLSearchParams, name: string, def: number, min: number, max: number): number {
  const raw = q.get(name);
  if (raw === null) return def;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max)
    throw new FanoutError('invalid_parameter', `"${name}" must be an integer from ${min} to ${max}.`);
  return n;
}

function deadLetterView(dl: DeadLetter): Record<string, unknown> {
  let data: unknown;
  try {
    data = JSON.parse(dl.event.dataJson);
  } catch {
    data = dl.event.dataJson;
  }
  return {
    event_id: dl.event.id,
    channel: dl.event.channel,
    published_at: new Date(dl.event.publishedAt).toISOString(),
    attempts: dl.attempt,
    reason: dl.reason,
    dead_at: new Date(dl.deadAt).toISOString(),
    last_attempt: dl.last ? { at: new Date(dl.last.at).toISOString(), status: dl.last.status ?? null, error: dl.last.error ?? null } : null,
    data,
  };
}

export class EndpointsApi {
  private readonly log: Logger;

  constructor(private readonly d: EndpointsApiDeps) {
    this.log = d.logger.child({ module: 'api' });
  }

  private find(id: string): Endpoint {
    const ep = ENDPOINT_ID_RE.test(id) ? this.d.registry.get(id) : undefined;
    if (!ep)
      throw new FanoutError('endpoint_not_found', `No endpoint ${JSON.stringify(id.slice(0, 80))}; list them with GET /v1/endpoints.`);
    return ep;
  }

  private view(ep: Endpoint): Record<string, unknown> {
    return { ...endpointView(ep), dead_letters: this.d.deadLetters.countFor(ep.id) };
  }

  async create(body: unknown): Promise<ApiAnswer> {
    const input = parseEndpointInput(body, { partial: false, maxChannels: this.d.maxChannelsPerEndpoint });
    if (this.d.registry.size >= this.d.maxEndpoints)
      throw new FanoutError(
        'too_many_endpoints',
        `The registry holds ${this.d.registry.size} endpoints, the configured maximum; delete unused ones first.`,
      );
    const url = await this.d.policy.check(input.url!);
    const now = Date.now();
    const ep: Endpoint = {
      v: 1,
      id: newEndpointId(),
      url: url.href,
      channels: input.channels!,
      description: input.description ?? '',
      disabled: input.disabled ?? false,
      rateLimitPerS: input.rateLimitPerS ?? null,
      maxConcurrency: input.maxConcurrency ?? null,
      secrets: [{ secret: input.secret ?? newSecret(), createdAt: now }],
      createdAt: now,
      updatedAt: now,
    };
    await this.d.registry.put(ep);
    this.log.info({ endpoint_id: ep.id, channels: ep.channels.length }, 'endpoint created');
    return { status: 201, body: { ...this.view(ep), secret: ep.secrets[0]!.secret } };
  }

  list(q: URLSearchParams): ApiAnswer {
    const limit = intParam(q, 'limit', 100, 1, 1000);
    const after = q.get('after');
    const all = this.d.registry.list();
    const start = after === null ? 0 : all.findIndex((e) => e.id > after);
    const page = start < 0 ? [] : all.slice(start, start + limit);
    const more = start >= 0 && start + limit < all.length;
    return { status: 200, body: { endpoints: page.map((e) => this.view(e)), next_after: more ? page[page.length - 1]!.id : null } };
  }

  get(id: string): ApiAnswer {
    return { status: 200, body: this.view(this.find(id)) };
  }

  async update(id: string, body: unknown): Promise<ApiAnswer> {
    const ep = this.find(id);
    const input = parseEndpointInput(body, { partial: true, maxChannels: this.d.maxChannelsPerEndpoint });
    if (input.secret !== undefined)
      throw new FanoutError(
        'invalid_endpoint',
        'Secrets change only through POST /v1/endpoints/<id>/secret/rotate, so that the old one keeps signing for an overlap.',
      );
    const next: Endpoint = { ...ep, updatedAt: Date.now() };
    if (input.url !== undefined) next.url = (await this.d.policy.check(input.url)).href;
    if (input.channels !== undefined) next.channels = input.channels;
    if (input.description !== undefined) next.description = input.description;
    if (input.disabled !== undefined) next.disabled = input.disabled;
    if (input.rateLimitPerS !== undefined) next.rateLimitPerS = input.rateLimitPerS;
    if (input.maxConcurrency !== undefined) next.maxConcurrency = input.maxConcurrency;
    await this.d.registry.put(next);
    return { status: 200, body: this.view(next) };
  }

  async setDisabled(id: string, disabled: boolean): Promise<ApiAnswer> {
    const ep = this.find(id);
    const next: Endpoint = { ...ep, disabled, updatedAt: Date.now() };
    if (ep.disabled !== disabled) await this.d.registry.put(next);
    this.log.info({ endpoint_id: id, disabled }, disabled ? 'endpoint disabled' : 'endpoint enabled');
    return { status: 200, body: this.view(ep.disabled !== disabled ? next : ep) };
  }

  async remove(id: string): Promise<ApiAnswer> {
    this.find(id);
    await this.d.registry.remove(id);
    // Its dead letters go with it (those this instance has indexed; the topic's retention takes the rest).
    const dls = this.d.deadLetters.list(id, Number.MAX_SAFE_INTEGER);
    await Promise.all(dls.map((dl) => this.d.deadLetters.tombstone(id, dl.event.id))).catch((err: unknown) =>
      this.log.warn({ err, endpoint_id: id }, 'removing dead letters of a deleted endpoint failed'),
    );
    this.log.info({ endpoint_id: id }, 'endpoint deleted');
    return { status: 200, body: { id, deleted: true } };
  }

  secret(id: string): ApiAnswer {
    return { status: 200, body: secretsView(this.find(id)) };
  }

  async rotate(id: string, body: unknown): Promise<ApiAnswer> {
    const ep = this.find(id);
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof b !== 'object' || Array.isArray(b))
      throw new FanoutError('invalid_endpoint', 'The body is {"overlap_s"?: <seconds>, "secret"?: "whsec_..."}.');
    for (const k of Object.keys(b))
      if (k !== 'overlap_s' && k !== 'secret')
        throw new FanoutError(
          'invalid_endpoint',
          `Unknown field ${JSON.stringify(k.slice(0, 40))}; a rotation takes overlap_s and secret.`,
        );
    let overlapMs = this.d.secretOverlapMs;
    if (b.overlap_s !== undefined) {
      if (typeof b.overlap_s !== 'number' || !Number.isFinite(b.overlap_s) || b.overlap_s < 0 || b.overlap_s > 30 * 86_400)
        throw new FanoutError('invalid_endpoint', '"overlap_s" must be a number of seconds from 0 to 2592000 (30 days).');
      overlapMs = Math.round(b.overlap_s * 1000);
    }
    if (b.secret !== undefined && !isValidSecret(b.secret))
      throw new FanoutError(
        'invalid_endpoint',
        '"secret" must be "whsec_" followed by the base64 of 24 to 64 random bytes; omit it to have one generated.',
      );
    const now = Date.now();
    const secret = (b.secret as string | undefined) ?? newSecret();
    // Every older secret stops signing at the end of this overlap at the latest (overlap 0: at once, e.g. after a leak).
    const older = ep.secrets
      .map((s) => ({ ...s, expiresAt: Math.min(s.expiresAt ?? Infinity, now + overlapMs) }))
      .filter((s) => s.expiresAt > now);
    const next: Endpoint = { ...ep, secrets: [{ secret, createdAt: now }, ...older].slice(0, MAX_SECRETS), updatedAt: now };
    await this.d.registry.put(next);
    this.log.info({ endpoint_id: id, overlap_ms: overlapMs }, 'endpoint secret rotated');
    return { status: 200, body: secretsView(next, now) };
  }

  deadLetterList(id: string, q: URLSearchParams): ApiAnswer {
    this.find(id);
    const limit = intParam(q, 'limit', 100, 1, 1000);
    const page = this.d.deadLetters.list(id, limit, q.get('after') ?? undefined);
    const total = this.d.deadLetters.countFor(id);
    return {
      status: 200,
      body: { dead_letters: page.map(deadLetterView), total, next_after: page.length === limit ? page[page.length - 1]!.event.id : null },
    };
  }

  /**
   * Submits dead letters again from the first attempt (all of the endpoint's, up to 1000 a call,
   * or those named). Each dead letter is removed once its new delivery settled (delivered, or
   * durably scheduled for retry); one that fails for good again is dead-lettered anew.
   */
  redrive(id: string, body: unknown): ApiAnswer {
    const ep = this.find(id);
    if (ep.disabled) throw new FanoutError('endpoint_disabled');
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof b !== 'object' || Array.isArray(b) || Object.keys(b).some((k) => k !== 'event_ids'))
      throw new FanoutError('invalid_endpoint', 'The body is {} (every dead letter) or {"event_ids": ["<event id>", ...]}.');
    let chosen: DeadLetter[];
    const notFound: string[] = [];
    if (b.event_ids !== undefined) {
      if (
        !Array.isArray(b.event_ids) ||
        b.event_ids.length === 0 ||
        b.event_ids.length > MAX_REDRIVE ||
        !b.event_ids.every((x) => typeof x === 'string')
      ) {
        throw new FanoutError('invalid_endpoint', `"event_ids" must be an array of 1 to ${MAX_REDRIVE} event ids.`);
      }
      chosen = [];
      for (const eventId of new Set(b.event_ids as string[])) {
        const dl = this.d.deadLetters.get(id, eventId);
        if (dl) chosen.push(dl);
        else notFound.push(eventId);
      }
    } else chosen = this.d.deadLetters.list(id, Number.MAX_SAFE_INTEGER);
    const store = this.d.deadLetters;
    let submitted = 0;
    const now = Date.now();
    for (const dl of chosen) {
      if (submitted >= MAX_REDRIVE) break;
      const key = deadLetterKey(id, dl.event.id);
      if (store.redriving.has(key)) continue;
      store.redriving.add(key);
      submitted++;
      this.d.engine.submit({ endpointId: id, event: dl.event, attempt: 0, createdAt: now }, (outcome) => {
        // Dead-lettered again: the new dead letter replaced this one under the same key; keep it.
        if (outcome === 'dead_lettered') return void store.redriving.delete(key);
        store
          .tombstone(id, dl.event.id)
          .catch((err: unknown) =>
            this.log.warn(
              { err, endpoint_id: id, event_id: dl.event.id },
              'removing a redriven dead letter failed; it may be redriven twice',
            ),
          )
          .finally(() => store.redriving.delete(key));
      });
    }
    this.d.metrics.redriven.inc(submitted);
    this.log.info({ endpoint_id: id, redriven: submitted }, 'dead letters redriven');
    return { status: 202, body: { redriven: submitted, not_found: notFound } };
  }
}
