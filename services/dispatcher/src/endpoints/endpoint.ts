/**
 * A webhook endpoint: where to POST, which channels, how to sign, and its limits. This is the value
 * of the endpoint's record in the registry topic (JSON, `v: 1`), and what the API validates.
 */
import { randomBytes } from 'node:crypto';
import { FanoutError, isValidChannel, parseNamespacePattern } from '@fanout/protocol';

export interface SigningSecret {
  /** `whsec_` + base64 of 24 to 64 random bytes (Standard Webhooks). */
  secret: string;
  createdAt: number;
  /** Set on a secret replaced by a rotation: it still signs until then (ms since the epoch). */
  expiresAt?: number;
}

export interface Endpoint {
  v: 1;
  id: string;
  url: string;
  /** Exact channels (`prices:AAPL`), namespace wildcards (`prices:*`), or `*` for every channel. */
  channels: string[];
  description: string;
  disabled: boolean;
  /** Requests per second (token bucket, burst of one second); null: the dispatcher default. 0: unlimited. */
  rateLimitPerS: number | null;
  /** Concurrent requests; null: the dispatcher default. */
  maxConcurrency: number | null;
  /** Newest first; the first one is current, the others sign until they expire. */
  secrets: SigningSecret[];
  createdAt: number;
  updatedAt: number;
}

export const ENDPOINT_ID_RE = /^ep_[A-Za-z0-9]{1,64}$/;
const SECRET_PREFIX = 'whsec_';

export function newEndpointId(): string {
  return 'ep_' + randomBytes(10).toString('hex');
}

/** A new signing secret: `whsec_` + base64 of 32 random bytes. */
export function newSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

export function isValidSecret(s: unknown): s is string {
  if (typeof s !== 'string' || !s.startsWith(SECRET_PREFIX) || s.length > 200) return false;
  const b64 = s.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) return false;
  const n = Buffer.from(b64, 'base64').length;
  return n >= 24 && n <= 64;
}

/** Secrets that sign now: the current one and those still inside their overlap window. */
export function activeSecrets(ep: Endpoint, now = Date.now()): string[] {
  return ep.secrets.filter((s) => s.expiresAt === undefined || s.expiresAt > now).map((s) => s.secret);
}

export function isValidChannelPattern(p: unknown): p is string {
  return p === '*' || parseNamespacePattern(p) !== null || isValidChannel(p);
}

export interface EndpointInput {
  url?: string;
  channels?: string[];
  description?: string;
  disabled?: boolean;
  rateLimitPerS?: number | null;
  maxConcurrency?: number | null;
  secret?: string;
}

const FIELDS: Record<string, keyof EndpointInput> = {
  url: 'url',
  channels: 'channels',
  description: 'description',
  disabled: 'disabled',
  rate_limit_per_s: 'rateLimitPerS',
  max_concurrency: 'maxConcurrency',
  secret: 'secret',
};

function bad(message: string): FanoutError {
  return new FanoutError('invalid_endpoint', message);
}

/**
 * Checks the shape of a create (`partial` false: url and channels required) or update body.
 * The URL's target is checked separately (url-policy.ts), since that needs DNS.
 */
export function parseEndpointInput(body: unknown, opts: { partial: boolean; maxChannels: number }): EndpointInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw bad('The body must be a JSON object; see docs/webhooks.md for the fields.');
  const b = body as Record<string, unknown>;
  const out: EndpointInput = {};
  for (const k of Object.keys(b)) {
    if (!(k in FIELDS)) throw bad(`Unknown field ${JSON.stringify(k.slice(0, 40))}; fields are ${Object.keys(FIELDS).join(', ')}.`);
  }
  if (b.url !== undefined) {
    if (typeof b.url !== 'string') throw new FanoutError('invalid_webhook_url', '"url" must be a string.');
    out.url = b.url;
  } else if (!opts.partial) throw new FanoutError('invalid_webhook_url', '"url" is required: the http(s) URL to POST events to.');
  if (b.channels !== undefined) {
    if (!Array.isArray(b.channels) || b.channels.length === 0)
      throw bad('"channels" must be a non-empty array of channels ("prices:AAPL"), namespace wildcards ("prices:*") or "*".');
    if (b.channels.length > opts.maxChannels) throw bad(`"channels" has ${b.channels.length} entries; the limit is ${opts.maxChannels}.`);
    for (const c of b.channels) {
      if (!isValidChannelPattern(c))
        throw bad(`${JSON.stringify(String(c).slice(0, 80))} is not a channel, a namespace wildcard ("prices:*") or "*".`);
    }
    out.channels = [...new Set(b.channels as string[])];
  } else if (!opts.partial) throw bad('"channels" is required: e.g. ["prices:*", "user:42"] or ["*"].');
  if (b.description !== undefined) {
    if (typeof b.description !== 'string' || b.description.length > 256)
      throw bad('"description" must be a string of at most 256 characters.');
    out.description = b.description;
  }
  if (b.disabled !== undefined) {
    if (typeof b.disabled !== 'boolean') throw bad('"disabled" must be true or false.');
    out.disabled = b.disabled;
  }
  if (b.rate_limit_per_s !== undefined) {
    const v = b.rate_limit_per_s;
    if (v !== null && (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 100_000))
      throw bad('"rate_limit_per_s" must be a number from 0 (unlimited) to 100000, or null for the default.');
    out.rateLimitPerS = v as number | null;
  }
  if (b.max_concurrency !== undefined) {
    const v = b.max_concurrency;
    if (v !== null && (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1000))
      throw bad('"max_concurrency" must be an integer from 1 to 1000, or null for the default.');
    out.maxConcurrency = v as number | null;
  }
  if (b.secret !== undefined) {
    if (!isValidSecret(b.secret))
      throw bad('"secret" must be "whsec_" followed by the base64 of 24 to 64 random bytes; omit it to have one generated.');
    out.secret = b.secret;
  }
  return out;
}

/** What the API shows of an endpoint: everything but the secrets. */
export function endpointView(ep: Endpoint): Record<string, unknown> {
  return {
    id: ep.id,
    url: ep.url,
    channels: ep.channels,
    description: ep.description,
    disabled: ep.disabled,
    rate_limit_per_s: ep.rateLimitPerS,
    max_concurrency: ep.maxConcurrency,
    created_at: new Date(ep.createdAt).toISOString(),
    updated_at: new Date(ep.updatedAt).toISOString(),
  };
}

/** The signing secrets as the secret API shows them. */
export function secretsView(ep: Endpoint, now = Date.now()): Record<string, unknown> {
  const [current, ...older] = ep.secrets;
  return {
    secret: current?.secret,
    previous: older
      .filter((s) => s.expiresAt !== undefined && s.expiresAt > now)
      .map((s) => ({ secret: s.secret, expires_at: new Date(s.expiresAt!).toISOString() })),
  };
}

/** Reads a registry record back; null for anything that is not a valid endpoint (skipped and logged by the caller). */
export function decodeEndpoint(value: Buffer): Endpoint | null {
  try {
    const e = JSON.parse(value.toString('utf8')) as Endpoint;
    if (e.v !== 1 || typeof e.id !== 'string' || !ENDPOINT_ID_RE.test(e.id) || typeof e.url !== 'string' || !Array.isArray(e.channels))
      return null;
    if (!Array.isArray(e.secrets) || e.secrets.length === 0 || !e.secrets.every((s) => isValidSecret(s.secret))) return null;
    return e;
  } catch {
    return null;
  }
}
