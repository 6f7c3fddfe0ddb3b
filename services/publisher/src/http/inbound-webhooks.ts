/**
 * Inbound webhooks: `POST /v1/inbound/<source>` takes a Standard Webhooks request from another
 * system and publishes its JSON body as one event to the source's channel (docs/webhooks.md).
 *
 * Order, so that nothing is written for a request that is not genuine:
 * 1. the source must be configured (404 inbound_source_unknown);
 * 2. webhook-id, webhook-timestamp and webhook-signature must be there (400 inbound_headers_missing);
 * 3. the timestamp must be within the tolerance of this clock (400 inbound_timestamp_out_of_tolerance);
 * 4. the body (bounded) must carry a signature by one of the source's secrets, checked with the
 *    official `standardwebhooks` library (400 inbound_signature_invalid);
 * 5. only then: JSON, the event, dedupe, and the write to Kafka.
 *
 * The answer comes as soon as Kafka acknowledged the event (a few ms): that is the durable hand-off,
 * and the consumers do the processing later. A webhook-id seen again within the dedupe window is
 * answered 200 with `"duplicate": true` and not published again. The event id is derived from the
 * source and the webhook-id, so a repeat that reaches another publisher instance is still
 * recognisable downstream.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, type Registry } from 'prom-client';
import { Webhook } from 'standardwebhooks';
import { FanoutError, isValidChannel, validateEvent } from '@fanout/protocol';
import type { Logger } from '@fanout/observability';
import { parseJson, readRawBody, refusalHeaders, sendError, sendJson, asFanoutError } from '@fanout/http-api';
import type { PublisherClient, PublishedEvent } from '../producer/publisher-client.js';

export interface InboundSource {
  /** Where the events go. */
  channel: string;
  /** Verifiers for the source's secrets (more than one during a rotation). */
  verifiers: Webhook[];
}

export const INBOUND_SOURCE_RE = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** The library's own timestamp bound (5 minutes); a larger tolerance could not be honoured. */
export const MAX_INBOUND_TOLERANCE_S = 300;

/**
 * Reads FANOUT_INBOUND_WEBHOOKS: `{"<source>": {"channel": "<channel>", "secrets": ["whsec_..."]}}`.
 * Throws an Error saying what is wrong (the caller names the variable).
 */
export function parseInboundSources(json: string): Map<string, InboundSource> {
  const out = new Map<string, InboundSource>();
  if (json.trim() === '') return out;
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new Error('must be JSON: {"<source>": {"channel": "<channel>", "secrets": ["whsec_..."]}}');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('must be a JSON object keyed by source name');
  for (const [name, s] of Object.entries(v as Record<string, unknown>)) {
    if (!INBOUND_SOURCE_RE.test(name))
      throw new Error(`source ${JSON.stringify(name.slice(0, 70))} must be 1 to 64 of [a-z0-9-], starting with a letter or digit`);
    const src = s as { channel?: unknown; secrets?: unknown };
    if (typeof src !== 'object' || src === null || !isValidChannel(src.channel))
      throw new Error(`source ${name}: "channel" must be a channel name such as "billing:stripe"`);
    if (!Array.isArray(src.secrets) || src.secrets.length === 0 || src.secrets.length > 10)
      throw new Error(`source ${name}: "secrets" must list 1 to 10 secrets ("whsec_<base64>")`);
    const verifiers = src.secrets.map((secret, i) => {
      if (typeof secret !== 'string' || !secret.startsWith('whsec_'))
        throw new Error(`source ${name}: secrets[${i}] must be "whsec_<base64>"`);
      try {
        return new Webhook(secret);
      } catch {
        throw new Error(`source ${name}: secrets[${i}] is not valid base64 after "whsec_"`);
      }
    });
    out.set(name, { channel: src.channel, verifiers });
  }
  return out;
}

/** The event id grammar (packages/protocol/src/events.ts): the whole `<source>:<id>` must fit it. */
const EVENT_ID_OK = /^[A-Za-z0-9._:-]{1,128}$/;

/** `<source>:<webhook-id>`, or `<source>:sha-<40 hex of SHA-256>` when the id has other characters or is long. */
export function inboundEventId(source: string, webhookId: string): string {
  const plain = `${source}:${webhookId}`;
  if (EVENT_ID_OK.test(plain)) return plain;
  return `${source}:sha-${createHash('sha256').update(webhookId).digest('hex').slice(0, 40)}`;
}

function header(req: IncomingMessage, name: string, max: number): string | null {
  const v = req.headers[name];
  return typeof v === 'string' && v.length > 0 && v.length <= max ? v : null;
}

export interface InboundWebhooksOptions {
  sources: Map<string, InboundSource>;
  toleranceS: number;
  dedupeWindowMs: number;
  dedupeMaxIds: number;
  maxBodyBytes: number;
  maxEventBytes: number;
  client: PublisherClient;
  registry: Registry;
  logger: Logger;
  /** False while the publisher starts or drains (503 not_ready). */
  ready(): boolean;
  /** Each answer's status, for the request metrics. */
  onAnswered?(status: number): void;
  /** Retry-After of a 503, in seconds (default 1). */
  retryAfterS?: number;
}

interface Seen {
  at: number;
  result: PublishedEvent;
}

export class InboundWebhooks {
  /** Published webhook ids (by source), oldest first, for the dedupe window. */
  private readonly seen = new Map<string, Seen>();
  /** Publishes under way, so that a repeat arriving meanwhile waits for the first instead of publishing. */
  private readonly inFlight = new Map<string, Promise<PublishedEvent>>();
  private readonly outcomes: Counter<'source' | 'outcome'>;
  private readonly log: Logger;

  constructor(private readonly o: InboundWebhooksOptions) {
    this.log = o.logger.child({ module: 'inbound' });
    this.outcomes = new Counter({
      name: 'fanout_publisher_inbound_webhooks_total',
      help: 'Inbound webhooks by source (as configured) and outcome: published, duplicate, rejected, failed.',
      labelNames: ['source', 'outcome'],
      registers: [o.registry],
    });
  }

  async handle(req: IncomingMessage, res: ServerResponse, sourceName: string): Promise<void> {
    const source = this.o.sources.get(sourceName);
    res.once('finish', () => this.o.onAnswered?.(res.statusCode));
    try {
      if (req.method !== 'POST') throw new FanoutError('method_not_allowed', 'Use POST /v1/inbound/<source>.');
      if (!this.o.ready()) throw new FanoutError('not_ready');
      if (!source)
        throw new FanoutError('inbound_source_unknown', `No inbound source ${JSON.stringify(sourceName.slice(0, 64))} is configured.`);
      const id = header(req, 'webhook-id', 256);
      const ts = header(req, 'webhook-timestamp', 20);
      const sig = header(req, 'webhook-signature', 8192);
      if (!id || !ts || !sig) throw new FanoutError('inbound_headers_missing');
      const t = /^\d{1,12}$/.test(ts) ? Number(ts) : NaN;
      const skew = Math.abs(Date.now() / 1000 - t);
      if (!(skew <= this.o.toleranceS)) {
        throw new FanoutError(
          'inbound_timestamp_out_of_tolerance',
          `webhook-timestamp ${JSON.stringify(ts)} is ${Number.isFinite(skew) ? `${Math.round(skew)} s` : 'not a time'} away from this server's clock; the tolerance is ${this.o.toleranceS} s. Nothing was published.`,
        );
      }
      const raw = await readRawBody(req, this.o.maxBodyBytes);
      const headers = { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': sig };
      if (!source.verifiers.some((v) => verifies(v, raw, headers))) throw new FanoutError('inbound_signature_invalid');

      // Genuine: from here on the request may cause a write.
      const event = validateEvent(
        { channel: source.channel, data: parseJson(raw), id: inboundEventId(sourceName, id) },
        this.o.maxEventBytes,
      );
      const key = `${sourceName}\u0000${id}`;
      this.expire();
      const earlier = this.seen.get(key);
      const pending = this.inFlight.get(key);
      if (earlier || pending) {
        const result = earlier?.result ?? (await pending!);
        this.outcomes.inc({ source: sourceName, outcome: 'duplicate' });
        return sendJson(res, 200, { ...result, duplicate: true });
      }
      const publishing = this.o.client.publishValidated([event]).then(([r]) => r!);
      this.inFlight.set(key, publishing);
      let result: PublishedEvent;
      try {
        result = await publishing;
      } finally {
        this.inFlight.delete(key);
      }
      this.seen.set(key, { at: Date.now(), result });
      this.expire();
      this.outcomes.inc({ source: sourceName, outcome: 'published' });
      sendJson(res, 200, { ...result, duplicate: false });
    } catch (err) {
      const e = asFanoutError(err);
      if (e.code === 'internal') this.log.error({ err, source: sourceName }, 'unexpected error');
      else if (e.status === 400) this.log.info({ source: sourceName, code: e.code }, 'inbound webhook refused');
      this.outcomes.inc({
        source: source ? sourceName : 'unknown',
        outcome: e.code === 'kafka_unavailable' || e.code === 'not_ready' ? 'failed' : 'rejected',
      });
      req.resume();
      // A 503 says when to retry; a 405 (RFC 9110) which methods the route takes.
      sendError(res, e, refusalHeaders(e, { retryAfterS: this.o.retryAfterS ?? 1, allow: 'POST' }));
    }
  }

  /** Forgets ids past the window, and the oldest beyond the bound. */
  private expire(): void {
    const oldest = Date.now() - this.o.dedupeWindowMs;
    for (const [k, s] of this.seen) {
      if (s.at >= oldest && this.seen.size <= this.o.dedupeMaxIds) break;
      this.seen.delete(k);
    }
  }
}

function verifies(v: Webhook, raw: Buffer, headers: Record<string, string>): boolean {
  try {
    v.verify(raw, headers, { jsonParse: false });
    return true;
  } catch {
    return false;
  }
}
