/**
 * The `http` surface of `npm run fuzz`: requests from fast-check against the services' HTTP APIs,
 * judged against their OpenAPI contracts (docs/openapi/*.yaml).
 *
 * Per service (publisher, router, dispatcher, gateway pull routes), `cases` requests generated
 * from `seed` (in chunks of 1000, chunk k from seed + k, so any case is reproducible): documented
 * routes (with arbitrary path parameters) and unknown ones, valid and invalid methods, arbitrary
 * query strings (repeated keys, out-of-range numbers, huge values, bad percent-encoding), headers
 * (content-type and auth variants, huge values within Node's limits, garbage Last-Event-ID and
 * If-None-Match), bodies (valid events with random fields, fc.jsonValue, deep nesting, random
 * bytes, truncated JSON, bodies near and over the size limits). Sent 32 at a time over a
 * keep-alive agent. Each answer is checked: no 5xx but 503 with a code the contract lists (never
 * 500), every 4xx/5xx JSON body is a registry error, the status is one the contract documents
 * for the route (or what it says of unknown routes and methods).
 */
import { Agent, request as httpRequest } from 'node:http';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import SwaggerParser from '@apidevtools/swagger-parser';
import { ERRORS } from '@fanout/protocol';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type HttpSvc = 'publisher' | 'router' | 'dispatcher' | 'gateway';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface HttpReq {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** The body: bytes, or a recipe for a big one (prefix, `fill` repeated `count` times, suffix). */
  body?: Buffer | { prefix: string; fill: string; count: number; suffix: string };
  /** Resolved at send time (dispatcher: an id of an endpoint created earlier in the run). */
  liveId?: number;
}

export interface HttpReport {
  surface: string;
  cases: number;
  violations: string[];
  statuses: Record<string, number>;
  errorCodes: Record<string, number>;
  /** Statuses the HTTP parser (not the service) answered: a malformed request refused before routing. */
  parserRejects: number;
  held: number;
  /** Violations matching KNOWN_DEFECTS: name -> count, and the first request of each. */
  knownDefects: Record<string, { count: number; first: string }>;
}

export interface HttpTarget {
  svc: HttpSvc;
  base: string;
  /** API keys accepted (publisher, dispatcher). */
  apiKey?: string;
  /** Gateway: valid / expired connect tokens and their users. */
  tokens?: { valid: string[]; expired: string[]; users: string[] };
  /** Publisher: a configured inbound source and its secret. */
  inbound?: { source: string; secret: string };
}

// ---------------------------------------------------------------- contracts

const docs = new Map<HttpSvc, any>();
export async function loadContracts(): Promise<void> {
  for (const svc of ['publisher', 'router', 'dispatcher', 'gateway'] as HttpSvc[])
    docs.set(svc, await SwaggerParser.dereference(`${ROOT}docs/openapi/${svc}.yaml`));
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'];

interface Match {
  template: string | null;
  op: any;
  item: any;
}

/** The router and the dispatcher read the path through WHATWG URL: dot segments (`/..`, `/./`, `%2e`) are resolved first. */
const URL_PARSED: HttpSvc[] = ['router', 'dispatcher'];

function matchRoute(svc: HttpSvc, rawPath: string): Match {
  const doc = docs.get(svc);
  let path = rawPath.split('?')[0]!;
  if (URL_PARSED.includes(svc)) path = new URL(`http://x/${rawPath.replace(/^\//, '')}`).pathname;
  for (const [template, item] of Object.entries<any>(doc.paths)) {
    const re = new RegExp('^' + template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{\w+\\?\}/g, '[^/]+') + '$');
    if (re.test(path)) return { template, item, op: null };
  }
  return { template: null, item: null, op: null };
}

/** The statuses (and, per status, the codes) the contract allows for this request. */
function allowed(svc: HttpSvc, method: string, path: string): { statuses: Map<number, Set<string> | null>; where: string } {
  const doc = docs.get(svc);
  const m = matchRoute(svc, path);
  const out = new Map<number, Set<string> | null>();
  const add = (status: number, codes: string[] | undefined) => {
    const prev = out.get(status);
    if (!codes) return void out.set(status, prev ?? null);
    out.set(status, new Set([...(prev ?? []), ...codes]));
  };
  const unknown = doc['x-unknown-route'];
  const unsupported = doc['x-unsupported-methods'];
  // CORS preflight: the gateway answers OPTIONS on every path.
  if (svc === 'gateway' && method === 'OPTIONS') {
    add(204, undefined);
    return { statuses: out, where: `${method} ${m.template ?? '<unknown>'}` };
  }
  if (!m.template) {
    add(unknown.status, unknown['x-error-codes']);
    if (method !== 'GET' && svc === 'router') add(unsupported.status, unsupported['x-error-codes']);
    // The publisher's /v1/inbound/<anything>: the inbound handler answers (source unknown, 405).
    if (svc === 'publisher' && path.split('?')[0]!.startsWith('/v1/inbound/')) {
      add(404, ['inbound_source_unknown']);
      add(405, ['method_not_allowed']);
      add(503, ['not_ready']);
    }
    return { statuses: out, where: `${method} <unknown>` };
  }
  const key = method === 'HEAD' ? 'head' : method.toLowerCase();
  const op = METHODS.includes(method) ? m.item[key] : undefined;
  if (!op) {
    const u = m.item['x-unsupported-methods'] ?? unsupported;
    add(u.status, u['x-error-codes']);
    // A path served only with a setting (x-only-when on its GET) is unknown without it, whatever the method.
    if (Object.values<any>(m.item).some((o) => o?.['x-only-when'])) add(unknown.status, unknown['x-error-codes']);
  } else {
    for (const [status, resp] of Object.entries<any>(op.responses)) add(Number(status), resp['x-error-codes']);
    // Routes served only with a setting (the gateway's page, FANOUT_SERVE_PAGE=false here) are unknown without it.
    if (op['x-only-when']) add(unknown.status, unknown['x-error-codes']);
  }
  // A path parameter the service does not accept at all (e.g. a dispatcher id over 100
  // characters) reads as an unknown route (documented in the parameter's description).
  if (m.template.includes('{')) add(unknown.status, unknown['x-error-codes']);
  return { statuses: out, where: `${method} ${m.template}` };
}

// ---------------------------------------------------------------- arbitraries

const KNOWN = new Set(Object.keys(ERRORS));
const b64 = (s: string) => Buffer.from(s).toString('base64');
const headerSafe = (s: string) => s.replace(/[^\t\x20-\x7e]/g, '');
/** Percent-encodes what Node refuses in a request path, keeps '%' raw (bad escapes survive). */
const pathSafe = (s: string) => s.replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c)).replace(/#/g, '%23');

const channelArb = fc.oneof(
  fc.constantFrom('news:a', 'prices:AAPL', 'user:1', 'user:u7', 'news:*', '*', '', 'Bad Channel', 'news:', ':x', 'user:' + 'x'.repeat(201)),
  fc.stringMatching(/^[a-z][a-z0-9-]{0,31}:[A-Za-z0-9._=@-]{1,60}$/),
  fc.string({ maxLength: 80 }),
);
const safeChannel = channelArb.filter((c) => !c.startsWith('canary:'));
const numberish = fc.oneof(
  fc.integer({ min: -5, max: 1100 }).map(String),
  fc.constantFrom(
    '0',
    '1',
    '60',
    '61',
    '1000',
    '1001',
    '-1',
    '1e3',
    '0x10',
    '1.5',
    'NaN',
    'Infinity',
    '',
    ' 5',
    '99999999999999999999999',
    '007',
  ),
  fc.double().map(String),
  fc.string({ maxLength: 10 }),
);
const positionArb = fc.oneof(
  fc.constantFrom('', 'garbage', '1:0:0', '1:0:-1', 'zz:0:0', '1:999999:9999999999999999', 'm.', 'm.eyJ9', 'm.' + 'A'.repeat(2000)),
  fc
    .tuple(fc.stringMatching(/^[A-Za-z0-9_-]{1,8}$/), fc.integer({ min: -2, max: 20 }), fc.integer({ min: -2, max: 1e6 }))
    .map(([e, p, o]) => `${e}:${p}:${o}`),
  fc.string({ maxLength: 80 }),
);
const badPct = fc.constantFrom('%', '%zz', '%E0%A4%A', '%00', '%C0%AF', '%%', '%2', '%FF%FE', '%u1234', '%0a%0d');
const qValue = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 30 }).map(encodeURIComponent) },
  { weight: 2, arbitrary: badPct },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 12_000 }).map((n) => 'v'.repeat(n)) },
  { weight: 2, arbitrary: numberish.map(encodeURIComponent) },
);
const junkQuery = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.string({ maxLength: 12 }).map(encodeURIComponent),
        badPct,
        fc.constantFrom('limit', 'after', 'channel', 'channels', 'cursor', 'since', 'timeout', 'token', 'user', 'region', 'credits'),
      ),
      qValue,
    ),
    { maxLength: 6 },
  )
  .map((kv) => kv.map(([k, v]) => `${k}=${v}`));

/** Builds a query string from named parameters (each a value arbitrary), repeated keys and junk. */
function queryArb(params: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<string> {
  const named = Object.entries(params).map(([k, v]) =>
    fc.option(fc.tuple(fc.constant(k), v, fc.boolean(), fc.nat(9)), { nil: null, freq: 3 }),
  );
  return fc.tuple(fc.tuple(...named), junkQuery, fc.nat(9)).map(([n, junk, mode]) => {
    const parts: string[] = [];
    for (const x of n) {
      if (!x) continue;
      const [k, v, encode, rep] = x;
      parts.push(`${k}=${encode ? encodeURIComponent(v) : pathSafe(v)}`);
      if (rep === 0) parts.push(`${k}=${encodeURIComponent(v)}x`); // a repeated key
    }
    if (mode < 3) parts.push(...junk);
    const q = parts.join(mode === 9 ? ';' : '&');
    return q ? '?' + q : mode === 8 ? '?' : '';
  });
}

const methodArb = (documented: string[]) =>
  fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...documented) },
    { weight: 3, arbitrary: fc.constantFrom(...METHODS) },
    { weight: 1, arbitrary: fc.constantFrom('FOO', 'get', 'PROPFIND', 'TRACE', 'CONNECT', 'M-SEARCH', 'PURGE') },
  );

const bigHeader = fc.integer({ min: 1000, max: 12_000 }).map((n) => 'h'.repeat(n));
const garbageHeader = fc.oneof(
  fc.string({ maxLength: 60 }).map(headerSafe),
  fc.constantFrom('', '*', 'W/"x"', '"', 'W/', '1:0:0', 'm.e30', '\t'),
  bigHeader,
);
const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/json;charset=latin1',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonx',
      'application/merge-patch+json',
      'application/*',
      '',
      ';',
      'application/json, text/plain',
      'application/json ; q=1',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map(headerSafe) },
);
const authArb = (key: string | undefined) =>
  fc.oneof(
    { weight: 10, arbitrary: fc.constant<Record<string, string>>(key ? { authorization: `Bearer ${key}` } : {}) },
    { weight: 3, arbitrary: fc.constant<Record<string, string>>(key ? { 'x-api-key': key } : {}) },
    { weight: 3, arbitrary: fc.constant<Record<string, string>>({}) },
    {
      weight: 3,
      arbitrary: fc
        .oneof(
          fc.constantFrom(
            'Bearer',
            'Bearer ',
            'bearer ' + (key ?? ''),
            'Basic ' + b64('a:b'),
            `Bearer ${key}x`,
            `Bearer  ${key}`,
            `Token ${key}`,
            'Bearer wrong-key-000000',
          ),
          fc.string({ maxLength: 60 }).map(headerSafe),
          bigHeader.map((h) => 'Bearer ' + h),
        )
        .map((v) => ({ authorization: v })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.string({ maxLength: 40 }).map(headerSafe), fc.constant(key ?? ''))
        .map(([a, b]) => ({ authorization: `Bearer ${a}`, 'x-api-key': b })),
    },
  );
const extraHeaders = fc.dictionary(
  fc.oneof(
    fc.constantFrom(
      'last-event-id',
      'if-none-match',
      'accept',
      'accept-encoding',
      'origin',
      'x-forwarded-for',
      'content-encoding',
      'expect',
      'cookie',
      'range',
      'x-request-id',
    ),
    fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
  ),
  garbageHeader,
  { maxKeys: 4 },
);

type Body = HttpReq['body'];
const deepJson = (n: number, open = '[', close = ']') => open.repeat(n) + close.repeat(n);
/** Bodies around a limit: JSON whose size is near `limit` (under and over). */
const nearLimit = (limit: number, wrap: (inner: string) => [string, string]) =>
  fc.integer({ min: -2000, max: 4000 }).map((d): Body => {
    const [prefix, suffix] = wrap('');
    return { prefix, fill: 'x', count: Math.max(0, limit + d - prefix.length - suffix.length), suffix };
  });
function bodyArb(valid: fc.Arbitrary<unknown>, limit: number, wrap: (inner: string) => [string, string]): fc.Arbitrary<Body | undefined> {
  return fc.oneof(
    { weight: 10, arbitrary: valid.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
    { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 5 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
    {
      weight: 2,
      arbitrary: valid.chain((v) => {
        const s = JSON.stringify(v) ?? 'null';
        return fc.nat(Math.max(0, s.length - 1)).map((n) => Buffer.from(s.slice(0, n)));
      }),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }).map((s) => Buffer.from(s)) },
    { weight: 1, arbitrary: fc.integer({ min: 50, max: 100_000 }).map((n) => Buffer.from(deepJson(n))) },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 50, max: 5000 })
        .map((n) => Buffer.from(wrap(deepJson(n, '{"a":', '}').replace(/\}+$/, '1' + '}'.repeat(n))).join(''))),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        Buffer.alloc(0),
        Buffer.from('null'),
        Buffer.from('{}'),
        Buffer.from('[]'),
        Buffer.from('"x"'),
        Buffer.from('{"__proto__":{"x":1}}'),
        Buffer.from('{"constructor":{"prototype":{}}}'),
        Buffer.from('1e999999'),
        Buffer.from('\uFEFF{}'),
      ),
    },
    { weight: 1, arbitrary: nearLimit(limit, wrap) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

const eventArb = fc.record(
  {
    channel: fc.oneof(
      { weight: 5, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,31}:[A-Za-z0-9._=@-]{1,60}$/).filter((c) => !c.startsWith('canary:')) },
      { weight: 1, arbitrary: safeChannel },
    ),
    data: fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.integer({ min: 100, max: 70_000 }).map((n) => 'd'.repeat(n)),
    ),
    id: fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/), fc.string({ maxLength: 140 }), fc.integer()),
    extra: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: ['channel', 'data'] },
);
const endpointArb = fc.record(
  {
    url: fc.oneof(
      fc
        .tuple(
          fc.constantFrom('http', 'https', 'HTTP', 'ftp', 'javascript'),
          fc.constantFrom(
            '127.0.0.1',
            '127.1.2.3',
            'localhost',
            '10.0.0.1',
            '[::1]',
            '169.254.169.254',
            '0.0.0.0',
            'u:p@127.0.0.1',
            '256.1.1.1',
            'fuzz.invalid',
          ),
          fc.integer({ min: 0, max: 70_000 }),
          fc.string({ maxLength: 20 }).map(encodeURIComponent),
        )
        .map(([s, h, p, path]) => `${s}://${h}:${p}/${path}`),
      fc.string({ maxLength: 60 }),
      fc.constant('http://127.0.0.1:9/' + 'p'.repeat(2100)),
    ),
    channels: fc.oneof(
      fc.array(fc.oneof(safeChannel, fc.constantFrom('news:*', '*', 'user:1')), { maxLength: 5 }),
      fc.array(fc.constant('news:a'), { minLength: 101, maxLength: 102 }),
      fc.jsonValue({ maxDepth: 1 }),
    ),
    description: fc.oneof(fc.string({ maxLength: 40 }), fc.constant('d'.repeat(257)), fc.integer()),
    disabled: fc.oneof(fc.boolean(), fc.jsonValue({ maxDepth: 1 })),
    rate_limit_per_s: fc.oneof(fc.constant(null), fc.double(), fc.integer({ min: -1, max: 200_000 })),
    max_concurrency: fc.oneof(fc.constant(null), fc.integer({ min: -1, max: 1001 }), fc.double()),
    secret: fc.oneof(
      fc.constant('whsec_' + b64('0123456789abcdef01234567')),
      fc.string({ maxLength: 40 }),
      fc.constant('whsec_' + b64('short')),
    ),
    overlap_s: fc.oneof(fc.integer({ min: -1, max: 3_000_000 }), fc.double()),
    event_ids: fc.oneof(fc.array(fc.string({ maxLength: 20 }), { maxLength: 5 }), fc.constant([]), fc.jsonValue({ maxDepth: 1 })),
    bogus: fc.jsonValue({ maxDepth: 1 }),
  },
  { requiredKeys: [] },
);

/** Paths not in the contract: near misses of the real ones and junk. */
function unknownPathArb(real: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    fc
      .constantFrom(...real)
      .chain((p) =>
        fc.constantFrom(
          p + '/',
          '/' + p,
          p.toUpperCase(),
          p + '/x',
          p.replace('/v1/', '/v2/'),
          p + '%2F',
          p + '/..',
          p.replace(/\//g, '//'),
          p + '%00',
          p.replace('v1', 'v%31'),
          p + '.json',
          p + ';x',
        ),
      ),
    fc.constantFrom('/', '*', '/..', '/../../etc/passwd', '/%2e%2e/', '/v1', '/v1/', '/favicon.ico', '/%', '/%zz', '/' + 'a'.repeat(8000)),
    fc.array(fc.string({ maxLength: 12 }), { minLength: 1, maxLength: 5 }).map((segs) => '/' + segs.map(pathSafe).join('/')),
  );
}

function fillTemplate(template: string, param: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const n = (template.match(/\{\w+\}/g) ?? []).length;
  if (n === 0) return fc.constant(template);
  return fc.array(param, { minLength: n, maxLength: n }).map((vals) => {
    let i = 0;
    return template.replace(/\{\w+\}/g, () => vals[i++]!);
  });
}

/**
 * Keeps the request line and headers under Node's 16 KiB header limit (--max-http-header-size):
 * the biggest headers are dropped until they fit (over it is the parser's 431, not the service's).
 */
const HEADER_BUDGET = 14_000;
function withinLimits(r: HttpReq): HttpReq {
  const size = () => r.method.length + r.path.length + Object.entries(r.headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
  while (size() > HEADER_BUDGET) {
    const [k, v] = Object.entries(r.headers).sort((a, b) => b[1].length - a[1].length)[0] ?? [];
    if (k === undefined || v!.length < 50) {
      r.path = r.path.slice(0, HEADER_BUDGET - 2000);
      break;
    }
    delete r.headers[k];
  }
  return r;
}

/** The request arbitrary of one service. */
export function requestArb(t: HttpTarget): fc.Arbitrary<HttpReq> {
  return requestArbRaw(t).map(withinLimits);
}

function requestArbRaw(t: HttpTarget): fc.Arbitrary<HttpReq> {
  const doc = docs.get(t.svc);
  const routes: { template: string; methods: string[] }[] = [];
  for (const [template, item] of Object.entries<any>(doc.paths)) {
    const methods = METHODS.filter((m) => item[m.toLowerCase()]);
    if (t.svc === 'gateway' && template === '/v1/ws') continue; // the upgrade is the ws surface's
    routes.push({ template, methods });
  }
  const real = routes.map((r) => r.template.replace(/\{\w+\}/g, 'x'));
  const auth = authArb(t.apiKey);
  const common = fc.record({ auth, extra: extraHeaders, ct: fc.option(contentType, { freq: 8, nil: undefined }) });
  const headersOf = (
    c: { auth: Record<string, string>; extra: Record<string, string>; ct?: string },
    withCt: boolean,
  ): Record<string, string> => ({ ...c.extra, ...c.auth, ...(withCt && c.ct !== undefined ? { 'content-type': c.ct } : {}) });

  if (t.svc === 'publisher') {
    const wrapOne = (inner: string): [string, string] => [`{"channel":"news:big","data":"`, `"}${inner}`];
    const wrapBatch = (inner: string): [string, string] => [`{"events":[{"channel":"news:big","data":"`, `"}]}${inner}`];
    const publish = fc.tuple(
      methodArb(['POST']),
      bodyArb(eventArb, 1024 * 1024, wrapOne),
      common,
      fc.constantFrom('/v1/publish'),
      queryArb({}),
    );
    const batch = fc.tuple(
      methodArb(['POST']),
      bodyArb(
        fc.oneof(
          fc.record({ events: fc.array(eventArb, { maxLength: 8 }) }),
          fc.record({ events: fc.array(fc.constant({ channel: 'news:many', data: 1 }), { minLength: 499, maxLength: 502 }) }),
          fc.record({ events: fc.jsonValue() }),
        ),
        1024 * 1024,
        wrapBatch,
      ),
      common,
      fc.constant('/v1/publish/batch'),
      queryArb({}),
    );
    const pubReq = fc.oneof(publish, batch).map(([method, body, c, path, q]): HttpReq => ({
      method,
      path: path + q,
      headers: headersOf(c, true),
      body: method === 'GET' || method === 'HEAD' ? undefined : body,
    }));
    const inbound = fc
      .tuple(
        methodArb(['POST']),
        fc.oneof(
          { weight: 4, arbitrary: fc.constant(t.inbound?.source ?? 'billing') },
          { weight: 1, arbitrary: fc.string({ maxLength: 70 }).map(pathSafe) },
        ),
        bodyArb(fc.jsonValue({ maxDepth: 4 }), 1024 * 1024, (inner) => ['{"x":"', '"}' + inner]),
        fc.record({
          id: fc.oneof(fc.string({ minLength: 1, maxLength: 40 }).map(headerSafe), fc.constant('x'.repeat(300))),
          skew: fc.oneof(fc.constant(0), fc.integer({ min: -4000, max: 4000 })),
          sign: fc.nat(9),
          drop: fc.nat(9),
          ts: fc.oneof(fc.constantFrom('', 'abc', '-1', '1e10', '99999999999999999999'), fc.string({ maxLength: 20 }).map(headerSafe)),
        }),
        common,
      )
      .map(([method, source, body, h, c]): HttpReq => {
        const ts = String(Math.floor(Date.now() / 1000) + h.skew);
        const req: HttpReq = {
          method,
          path: `/v1/inbound/${source}`,
          headers: headersOf(c, true),
          body: method === 'HEAD' ? undefined : body,
        };
        // Signed here only for small bodies (the big ones are built at send time).
        const raw = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
        const sig =
          h.sign < 6 && t.inbound
            ? 'v1,' +
              createHmac('sha256', Buffer.from(t.inbound.secret.slice(6), 'base64'))
                .update(`${h.id}.${ts}.`)
                .update(raw)
                .digest('base64')
            : h.sign < 8
              ? 'v1,' + b64('nope')
              : 'garbage sig';
        if (h.drop !== 0) req.headers['webhook-id'] = h.id;
        if (h.drop !== 1) req.headers['webhook-timestamp'] = h.drop === 2 ? h.ts : ts;
        if (h.drop !== 3) req.headers['webhook-signature'] = sig;
        return req;
      });
    const other = otherRoutes(t, routes, real, common, headersOf);
    return fc.oneof({ weight: 10, arbitrary: pubReq }, { weight: 3, arbitrary: inbound }, { weight: 3, arbitrary: other });
  }

  if (t.svc === 'router') {
    const route = fc
      .tuple(
        methodArb(['GET']),
        queryArb({
          user: fc.oneof(fc.stringMatching(/^[A-Za-z0-9._=@-]{1,20}$/), fc.string({ maxLength: 30 }), fc.constant('u'.repeat(201))),
          region: fc.oneof(fc.constantFrom('fuzz', 'other', 'mars', '', 'FUZZ'), fc.string({ maxLength: 40 })),
        }),
        common,
      )
      .map(([method, q, c]): HttpReq => ({ method, path: '/v1/route' + q, headers: headersOf(c, false) }));
    return fc.oneof({ weight: 10, arbitrary: route }, { weight: 4, arbitrary: otherRoutes(t, routes, real, common, headersOf) });
  }

  if (t.svc === 'dispatcher') {
    const idArb = fc.oneof(
      { weight: 6, arbitrary: fc.constant('{live}') },
      { weight: 2, arbitrary: fc.stringMatching(/^ep_[A-Za-z0-9]{1,64}$/) },
      {
        weight: 2,
        arbitrary: fc
          .string({ maxLength: 30 })
          .filter((s) => s.length > 0)
          .map((s) => encodeURIComponent(s)),
      },
      { weight: 1, arbitrary: fc.constantFrom('%zz', '%', '..', '.', 'ep_' + 'a'.repeat(65), 'x'.repeat(101), '%2F', 'ep_%00') },
    );
    const wrap = (inner: string): [string, string] => ['{"description":"', '"}' + inner];
    const api = fc
      .tuple(
        fc.constantFrom(...routes.filter((r) => r.template.startsWith('/v1/'))),
        fc.nat(1000),
        bodyArb(endpointArb, 64 * 1024, wrap),
        common,
        queryArb({ limit: numberish, after: fc.oneof(fc.string({ maxLength: 20 }), fc.constant('ep_')) }),
      )
      .chain(([r, live, body, c, q]) =>
        fc.tuple(methodArb(r.methods), fillTemplate(r.template, idArb)).map(([method, path]): HttpReq => ({
          method,
          path: path + q,
          headers: headersOf(c, true),
          body: method === 'GET' || method === 'HEAD' ? undefined : body,
          liveId: live,
        })),
      );
    return fc.oneof({ weight: 10, arbitrary: api }, { weight: 2, arbitrary: otherRoutes(t, routes, real, common, headersOf) });
  }

  // gateway pull routes
  const tok = t.tokens!;
  const tokenArb = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...tok.valid) },
    { weight: 1, arbitrary: fc.constantFrom(...tok.expired) },
    {
      weight: 2,
      arbitrary: fc.oneof(
        fc.constantFrom('', 'not-a-jwt', 'a.b.c', 'eyJhbGciOiJub25lIn0.e30.', tok.valid[0]!.slice(0, -3) + 'AAA'),
        fc.string({ maxLength: 60 }),
      ),
    },
  );
  const gwChannel = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('news:a', 'prices:AAPL', 'canary:stream', ...tok.users.map((u) => `user:${u}`)) },
    { weight: 2, arbitrary: safeChannel },
  );
  const pull = fc
    .tuple(
      fc.constantFrom('/v1/sse', '/v1/poll', '/v1/history', '/v1/latest'),
      common,
      fc.option(
        fc.oneof(
          tokenArb.map((x) => `Bearer ${x}`),
          fc.constant('Bearer'),
        ),
        { freq: 3, nil: undefined },
      ),
      fc.array(gwChannel, { minLength: 1, maxLength: 4 }),
      fc.integer({ min: 101, max: 120 }),
      fc.nat(19),
    )
    .chain(([path, c, bearer, chans, many, shape]) => {
      const params: Record<string, fc.Arbitrary<string>> = { token: tokenArb, limit: numberish };
      if (path === '/v1/sse') {
        params.channels =
          shape === 0
            ? fc.constant(Array.from({ length: many }, (_, i) => `news:c${i}`).join(','))
            : fc.constant(chans.join(shape === 1 ? ', ' : ','));
        params.cursor = positionArb;
      } else params.channel = fc.constant(chans[0]!);
      if (path === '/v1/poll') {
        params.cursor = positionArb;
        // Mostly short holds: a held poll takes a slot for its whole timeout.
        params.timeout = fc.oneof({ weight: 6, arbitrary: fc.constant('0') }, { weight: 1, arbitrary: numberish });
      }
      if (path === '/v1/history') params.since = positionArb;
      return fc.tuple(methodArb(['GET', 'OPTIONS']), queryArb(params)).map(([method, q]): HttpReq => {
        const headers = headersOf(c, false);
        if (bearer !== undefined && !c.auth.authorization) headers.authorization = bearer;
        else if (!bearer) delete headers.authorization;
        delete headers['x-api-key'];
        return { method, path: path + q, headers };
      });
    });
  return fc.oneof({ weight: 10, arbitrary: pull }, { weight: 2, arbitrary: otherRoutes(t, routes, real, common, headersOf) });
}

function otherRoutes(
  t: HttpTarget,
  routes: { template: string; methods: string[] }[],
  real: string[],
  common: fc.Arbitrary<any>,
  headersOf: (c: any, ct: boolean) => Record<string, string>,
): fc.Arbitrary<HttpReq> {
  const documentedOther = routes.filter((r) => !r.template.startsWith('/v1/'));
  const known = fc
    .constantFrom(...(documentedOther.length ? documentedOther : routes))
    .chain((r) => fc.tuple(methodArb(r.methods), fc.constant(r.template.replace(/\{\w+\}/g, 'x'))));
  const unknown = fc.tuple(methodArb(['GET', 'POST']), unknownPathArb(real));
  return fc
    .tuple(fc.oneof(known, unknown), queryArb({}), common, fc.option(fc.uint8Array({ maxLength: 200 }), { freq: 3, nil: undefined }))
    .map(([[method, path], q, c, body]): HttpReq => ({
      method,
      path: path + q,
      headers: headersOf(c, body !== undefined),
      body: body && method !== 'GET' && method !== 'HEAD' ? Buffer.from(body) : undefined,
    }));
}

// ---------------------------------------------------------------- sending and judging

function materialize(body: Body): Buffer | undefined {
  if (body === undefined || Buffer.isBuffer(body)) return body;
  return Buffer.concat([Buffer.from(body.prefix), Buffer.alloc(body.count, body.fill), Buffer.from(body.suffix)]);
}

/** A replayable description of a request: method, path, headers, body in base64 (big ones as a recipe). */
export function describeReq(base: string, r: HttpReq): string {
  const body =
    r.body === undefined
      ? undefined
      : Buffer.isBuffer(r.body)
        ? { body_b64: r.body.toString('base64') }
        : { body_recipe: { prefix_b64: b64(r.body.prefix), fill: r.body.fill, count: r.body.count, suffix_b64: b64(r.body.suffix) } };
  const headers = Object.fromEntries(
    Object.entries(r.headers).map(([k, v]) => [k, v.length > 200 ? `<${v[0]} x ${v.length}>${v.length === new Set(v).size ? '' : ''}` : v]),
  );
  return JSON.stringify({
    method: r.method,
    url: base + (r.path.length > 300 ? r.path.slice(0, 300) + `…(${r.path.length} chars)` : r.path),
    headers,
    ...body,
  });
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  held?: boolean;
  error?: string;
}

function send(agent: Agent, base: URL, r: HttpReq, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve) => {
    const body = materialize(r.body);
    let done = false;
    const finish = (a: Answer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(a);
    };
    let req: ReturnType<typeof httpRequest>;
    try {
      req = httpRequest({
        host: base.hostname,
        port: base.port,
        method: r.method,
        path: r.path,
        headers: { ...r.headers, ...(body !== undefined ? { 'content-length': String(body.length) } : {}) },
        agent,
      });
    } catch (err) {
      return resolve({ status: -1, headers: {}, body: Buffer.alloc(0), error: `unsendable: ${(err as Error).message}` });
    }
    const timer = setTimeout(() => {
      req.destroy();
      finish({ status: 0, headers: {}, body: Buffer.alloc(0), held: true });
    }, timeoutMs);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const stream = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (stream || size > 256 * 1024) {
          res.destroy();
          req.destroy();
          finish({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) });
        }
      });
      res.on('end', () => finish({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', () => finish({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('close', () => finish({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', (err) => finish({ status: 0, headers: {}, body: Buffer.alloc(0), error: (err as Error).message }));
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/**
 * Defects found by this fuzzer and reported, not fixed yet: a violation they match is counted
 * under `known_defects` (and printed) but fails the run only with FUZZ_STRICT=1.
 */
export const KNOWN_DEFECTS: { svc: HttpSvc; name: string; test: (r: HttpReq, a: Answer) => boolean }[] = [];

/** What is wrong with this answer, or null. */
function judge(t: HttpTarget, r: HttpReq, a: Answer, rep: HttpReport): string | null {
  const status = a.status;
  rep.statuses[String(status)] = (rep.statuses[String(status)] ?? 0) + 1;
  const malformedMethod = !METHODS.includes(r.method);
  // A method the HTTP parser does not take: Node answers a bare 400 and closes (the client may see
  // the reset first while it still writes the body); uWS closes the connection.
  // The asterisk-form request target (`*`) with a method other than OPTIONS is invalid HTTP: uWS
  // closes the connection without an answer.
  if (status === 0 && (malformedMethod || (r.path.startsWith('*') && t.svc === 'gateway'))) {
    rep.parserRejects++;
    return null;
  }
  if (status === 0) return `no answer (${a.error})`;
  const text = a.body.toString();
  let parsed: any;
  const ct = String(a.headers['content-type'] ?? '');
  if (ct.startsWith('application/json') && text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      return `${status} with a body that is not JSON: ${text.slice(0, 120)}`;
    }
  }
  const code: unknown = parsed?.error?.code;
  if (typeof code === 'string') rep.errorCodes[code] = (rep.errorCodes[code] ?? 0) + 1;
  // The HTTP server's own refusals come before any service code, without a body: a bare 400
  // (Node: a method or header it does not parse), 417 (Node: an Expect other than 100-continue).
  if (
    ((status === 400 && (malformedMethod || a.headers.connection === 'close')) || (status === 417 && r.headers.expect !== undefined)) &&
    !text
  ) {
    rep.parserRejects++;
    return null;
  }
  if (status === 431)
    return `431 from the HTTP parser: request line and headers of ${r.path.length + Object.entries(r.headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 0)} bytes (under ${HEADER_BUDGET})`;
  if (status >= 400 && r.method !== 'HEAD') {
    const e = parsed?.error;
    if (!e || typeof e !== 'object') return `${status} without an error body: ${JSON.stringify(text.slice(0, 120))} (content-type ${ct})`;
    if (!KNOWN.has(e.code)) return `${status} with an unknown error code ${JSON.stringify(e.code)}`;
    if (typeof e.message !== 'string' || !e.message) return `${status} ${e.code} without a message`;
    if (typeof e.retriable !== 'boolean') return `${status} ${e.code} without a boolean retriable`;
    if (Object.keys(parsed).length !== 1) return `${status} ${e.code}: extra top-level fields ${Object.keys(parsed).join(',')}`;
    if (e.code === 'internal' || status === 500) return `${status} ${e.code}: ${e.message}`;
    if ((ERRORS as Record<string, { status: number }>)[e.code]!.status !== status)
      return `${status} with code ${e.code}, whose status is ${(ERRORS as Record<string, { status: number }>)[e.code]!.status}`;
  }
  if (status >= 500 && status !== 503) return `${status}`;
  if (malformedMethod) return null; // the service answered an unknown method: judged as any other above
  const { statuses, where } = allowed(t.svc, r.method, r.path);
  if (!statuses.has(status))
    return `${status}${code ? ' ' + String(code) : ''} is not documented for ${where} (documented: ${[...statuses.keys()].join(', ')})`;
  const codes = statuses.get(status);
  if (codes && typeof code === 'string' && !codes.has(code))
    return `${status} ${code} is not listed in x-error-codes of ${where} ${status} (${[...codes].join(', ')})`;
  if (status === 503 && !a.headers['retry-after'] && t.svc !== 'router') return `503 ${String(code)} without Retry-After`;
  return null;
}

/**
 * Fuzzes one service: `cases` requests, `concurrency` in flight. `healthy` is called every 2000
 * cases (process alive, RSS) and its problem, if any, is a violation.
 */
export async function fuzzHttp(
  t: HttpTarget,
  opts: {
    cases: number;
    seed: number;
    concurrency?: number;
    healthy: () => Promise<string | null>;
    log: (m: string) => void;
    liveIds?: string[];
  },
): Promise<HttpReport> {
  const rep: HttpReport = {
    surface: `http:${t.svc}`,
    cases: 0,
    violations: [],
    statuses: {},
    errorCodes: {},
    parserRejects: 0,
    held: 0,
    knownDefects: {},
  };
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency ?? 32 });
  const base = new URL(t.base);
  const arb = requestArb(t);
  const liveIds = opts.liveIds ?? [];
  const CHUNK = 1000;
  let chunk: HttpReq[] = [];
  let chunkNo = -1;
  let next = 0;
  const take = (): HttpReq | null => {
    if (next >= opts.cases) return null;
    const k = Math.floor(next / CHUNK);
    if (k !== chunkNo) {
      chunkNo = k;
      chunk = fc.sample(arb, { numRuns: Math.min(CHUNK, opts.cases - k * CHUNK), seed: opts.seed + k });
    }
    return chunk[next++ % CHUNK]!;
  };
  const started = Date.now();
  // In an object: TypeScript does not see the callbacks' assignments to a local and would narrow it to null below.
  const check: { running: Promise<void> | null } = { running: null };
  await Promise.all(
    Array.from({ length: opts.concurrency ?? 32 }, async () => {
      for (let r = take(); r; r = take()) {
        if (r.path.includes('{live}'))
          r = { ...r, path: r.path.replace('{live}', liveIds.length ? liveIds[r.liveId! % liveIds.length]! : 'ep_none') };
        const poll = r.path.startsWith('/v1/poll') || r.path.startsWith('/v1/sse');
        const a = await send(agent, base, r, poll ? 3000 : 15_000);
        rep.cases++;
        if (a.held && poll) {
          rep.held++;
          rep.statuses.held = (rep.statuses.held ?? 0) + 1;
        } else {
          const v = judge(t, r, a, rep);
          const known = v && !process.env.FUZZ_STRICT ? KNOWN_DEFECTS.find((d) => d.svc === t.svc && d.test(r, a)) : undefined;
          if (known) (rep.knownDefects[known.name] ??= { count: 0, first: `${v}\n    request: ${describeReq(t.base, r)}` }).count++;
          else if (v) rep.violations.push(`${v}\n    request: ${describeReq(t.base, r)}`);
        }
        if (a.status === 201 && t.svc === 'dispatcher') {
          try {
            const id = JSON.parse(a.body.toString()).id;
            if (typeof id === 'string') liveIds.push(id);
          } catch {
            /* judged above */
          }
        }
        if (rep.cases % 500 === 0 && !check.running) {
          check.running = (async () => {
            const problem = await opts.healthy();
            if (problem) rep.violations.push(problem);
            opts.log(
              `${rep.surface}: ${rep.cases} cases (${Math.round(rep.cases / ((Date.now() - started) / 1000))}/s), ${rep.violations.length} violations`,
            );
            check.running = null;
          })();
        }
      }
    }),
  );
  if (check.running) await check.running;
  const problem = await opts.healthy();
  if (problem) rep.violations.push(problem);
  agent.destroy();
  return rep;
}
