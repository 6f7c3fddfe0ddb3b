/**
 * `npm run fuzz`: hostile input, reproducible from a seed, against real processes.
 *
 *   npm run fuzz                                   # every surface, 100,000 cases each
 *   npm run fuzz -- --surface ws --cases 2000 --seed 42
 *
 * A real broker (KAFKA_BROKERS, else a local one), one gateway (its main.ts), and a canary: a
 * well-behaved client subscribed to `canary:stream`, which a publisher feeds at 20 messages/s
 * for the whole run. Surfaces:
 *
 * - `ws`: WebSocket frames from fast-check, spread over 16 connections (reopened when the gateway
 *   closes one): well-formed and malformed ops (subscribe/unsubscribe/credit/ping with arbitrary
 *   channels, positions, numbers), arbitrary JSON, arbitrary strings, random bytes as text
 *   (invalid UTF-8) and binary frames, fragmented messages, oversize frames (up to 256 KiB), deep
 *   nesting;
 * - `kafka`: records with arbitrary keys, headers and values (any bytes) produced straight to both
 *   event topics.
 * - `http` (fuzz/http.ts): the publisher, router and dispatcher are started as processes too (this
 *   run's topics, API key, FANOUT_ALLOWED_TARGETS=127.0.0.0/8), and each service's HTTP API
 *   (`http:publisher`, `http:router`, `http:dispatcher`, `http:gateway` = the pull routes) gets
 *   `--cases` requests from fast-check, judged against docs/openapi/*.yaml: no process exits, no 5xx
 *   but a documented 503 (never 500/internal), every error body a registry error, every status one
 *   the contract documents for the route; RSS per service under the bound. Violations print the
 *   request (method, url, headers, body in base64). `--http-services publisher,router` narrows it.
 *   With `--schemathesis` (or FUZZ_SCHEMATHESIS=1) fuzz/schemathesis.sh then runs schemathesis
 *   against the same processes, one verdict per contract. Last line per service:
 *   `{"fuzz":"http:publisher","seed":…,"cases":…,"crashes":0,"violations":0,"statuses":{…},"error_codes":{…},"rss_peak_mb":…}`
 *
 * Properties checked: the gateway process never dies or restarts and `/healthz` stays 200; every
 * error frame carries a code of the registry (packages/protocol/src/errors.ts) and never
 * `internal`; every close code is one the protocol documents; the gateway's RSS stays under
 * FUZZ_RSS_BOUND_MB (default 512); the canary receives every message, with its p99 latency
 * reported. Exit 1 on any violation. Last line per surface:
 * `{"fuzz":"ws","seed":…,"cases":…,"crashes":0,"violations":0,"error_codes":{…},"close_codes":{…},"canary_lost":…,"canary_p99_ms":…,"gateway_rss_peak_mb":…}`
 */
import fc from 'fast-check';
import { Kafka, logLevel } from 'kafkajs';
import { ERRORS } from '@fanout/protocol';
import { createLogger } from '@fanout/observability';
import { freePort, getBroker, kafkajsSecurity, type BrokerHandle } from '@fanout/kafka';
import { PublisherClient } from '@fanout/publisher';
import { spawn } from 'node:child_process';
import { signConnectToken } from '@fanout/auth';
import { RawWs } from '../bench/raw-ws.js';
import { log, numParam, ROOT, rssBytes, runBench, sleep, spawnService, stopAll, strParam, waitReady } from '../bench/processes.js';
import { fuzzHttp, loadContracts, type HttpReport, type HttpSvc, type HttpTarget } from './http.js';

const SURFACE = strParam('--surface', 'FUZZ_SURFACE', 'all');
const CASES = Math.floor(numParam('--cases', 'FUZZ_CASES', 100_000));
const SEED = Math.floor(numParam('--seed', 'FUZZ_SEED', Date.now() % 1_000_000));
const RSS_BOUND = numParam('--rss-bound-mb', 'FUZZ_RSS_BOUND_MB', 512) * 1048576;
const CONNECTIONS = 16;
const SCHEMATHESIS = process.argv.includes('--schemathesis') || process.env.FUZZ_SCHEMATHESIS === '1';
const HTTP_SERVICES = strParam('--http-services', 'FUZZ_HTTP_SERVICES', 'publisher,router,dispatcher,gateway').split(',') as HttpSvc[];
/** Close codes the protocol documents (docs/protocol.md): RFC 6455's and fanout's 4xxx. */
const DOCUMENTED_CLOSES = new Set([1000, 1001, 1002, 1003, 1006, 1007, 1008, 1009, 1011, 4000, 4001, 4002, 4003, 4500, 4501]);

// ---------------------------------------------------------------- arbitraries

const channel = fc.oneof(
  fc.constantFrom('news:a', 'prices:AAPL', 'user:1', 'canary:stream', '*', 'news:*', ''),
  fc.string({ maxLength: 300 }),
  fc.stringMatching(/^[a-z][a-z0-9-]{0,40}:[A-Za-z0-9._=@-]{0,250}$/),
);
const position = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.tuple(fc.string({ maxLength: 8 }), fc.integer(), fc.integer()).map(([e, p, o]) => `${e}:${p}:${o}`),
);
const anyId = fc.oneof(fc.integer(), fc.string({ maxLength: 40 }), fc.constant(null), fc.double());
const op = fc.oneof(
  fc.record(
    {
      op: fc.constant('subscribe'),
      channels: fc.array(channel, { maxLength: 20 }),
      positions: fc.option(fc.dictionary(fc.string({ maxLength: 40 }), position, { maxKeys: 5 }), { nil: undefined }),
      id: fc.option(anyId, { nil: undefined }),
    },
    { requiredKeys: ['op'] },
  ),
  fc.record(
    {
      op: fc.constant('unsubscribe'),
      channels: fc.oneof(fc.array(channel, { maxLength: 20 }), fc.anything()),
      id: fc.option(anyId, { nil: undefined }),
    },
    { requiredKeys: ['op'] },
  ),
  fc.record(
    {
      op: fc.constant('credit'),
      n: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)),
      unlimited: fc.option(fc.anything(), { nil: undefined }),
    },
    { requiredKeys: ['op'] },
  ),
  fc.record({ op: fc.constantFrom('ping', 'pong', 'publish', '', 'SUBSCRIBE'), id: fc.option(anyId, { nil: undefined }) }),
  fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }),
);
type Frame = { opcode: number; payload: Buffer; fragments?: number };
const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 6, arbitrary: op.map((o) => ({ opcode: 1, payload: Buffer.from(JSON.stringify(o)) })) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 6 }).map((v) => ({ opcode: 1, payload: Buffer.from(JSON.stringify(v) ?? 'null') })) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 500 }).map((s) => ({ opcode: 1, payload: Buffer.from(s) })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 500 }).map((b) => ({ opcode: 1, payload: Buffer.from(b) })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 500 }).map((b) => ({ opcode: 2, payload: Buffer.from(b) })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(op, fc.integer({ min: 2, max: 5 }))
      .map(([o, n]) => ({ opcode: 1, payload: Buffer.from(JSON.stringify(o)), fragments: n })),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 4 * 1024, max: 256 * 1024 })
      .map((n) => ({ opcode: 1, payload: Buffer.from(JSON.stringify({ op: 'subscribe', channels: ['news:' + 'x'.repeat(n)] })) })),
  },
  { weight: 1, arbitrary: fc.integer({ min: 10, max: 5000 }).map((n) => ({ opcode: 1, payload: Buffer.from(deep(n)) })) },
);

// ---------------------------------------------------------------- the run

interface Report {
  surface: string;
  cases: number;
  violations: string[];
  errorCodes: Record<string, number>;
  closeCodes: Record<string, number>;
}

class Canary {
  received = new Set<number>();
  lat: number[] = [];
  ws: RawWs;
  constructor(url: URL) {
    this.ws = new RawWs(url, {
      open: () => this.ws.send(JSON.stringify({ op: 'subscribe', channels: ['canary:stream'] })),
      text: (p) => {
        const m = /"seq":(\d+),"t":(\d+)/.exec(p.toString());
        if (m) {
          this.received.add(Number(m[1]));
          this.lat.push(Date.now() - Number(m[2]));
        }
      },
      close: (code) => log(`canary closed ${code}`),
      refused: (s) => log(`canary refused ${s}`),
    });
  }
}

async function fuzzWs(url: URL, healthy: () => Promise<string | null>): Promise<Report> {
  const r: Report = { surface: 'ws', cases: 0, violations: [], errorCodes: {}, closeCodes: {} };
  const known = new Set(Object.keys(ERRORS));
  const conns: (RawWs | null)[] = Array.from({ length: CONNECTIONS }, () => null);
  const openConn = (i: number) =>
    new Promise<RawWs | null>((resolve) => {
      const ws: RawWs = new RawWs(url, {
        open: () => resolve(ws),
        text: (p) => {
          const s = p.toString();
          const m = /"t":"error","code":"([^"]*)"/.exec(s);
          if (!m) return;
          r.errorCodes[m[1]!] = (r.errorCodes[m[1]!] ?? 0) + 1;
          if (!known.has(m[1]!) || m[1] === 'internal') r.violations.push(`error frame with code ${m[1]}: ${s.slice(0, 200)}`);
        },
        close: (code) => {
          r.closeCodes[code] = (r.closeCodes[code] ?? 0) + 1;
          if (!DOCUMENTED_CLOSES.has(code)) r.violations.push(`close code ${code} is not documented`);
          conns[i] = null;
        },
        refused: (status, retryAfterMs) => {
          if (status >= 500 && status !== 503) r.violations.push(`upgrade refused with ${status}`);
          setTimeout(() => resolve(null), retryAfterMs ?? 200);
        },
      });
    });
  const samples = fc.sample(frameArb, { numRuns: CASES, seed: SEED });
  let next = 0;
  await Promise.all(
    conns.map(async (_, i) => {
      while (next < samples.length) {
        if (!conns[i]) {
          conns[i] = await openConn(i);
          if (!conns[i]) continue;
        }
        // Another connection's loop may have taken the last case while this one waited.
        if (next >= samples.length) break;
        const f = samples[next++]!;
        const ws = conns[i]!;
        if (f.fragments && f.payload.length > f.fragments) {
          const step = Math.ceil(f.payload.length / f.fragments);
          for (let k = 0, first = true; k < f.payload.length; k += step, first = false)
            ws.sendFrame(first ? f.opcode : 0, f.payload.subarray(k, k + step), k + step >= f.payload.length);
        } else ws.sendFrame(f.opcode, f.payload);
        r.cases++;
        // Let the gateway answer now and then (and keep the socket's buffers small).
        if (r.cases % 50 === 0) await sleep(5);
        if (r.cases % 5000 === 0) {
          const problem = await healthy();
          if (problem) r.violations.push(problem);
          log(`ws: ${r.cases} cases, ${r.violations.length} violations`);
        }
      }
    }),
  );
  for (const c of conns) c?.destroy();
  return r;
}

async function fuzzKafka(brokers: string[], topics: string[], healthy: () => Promise<string | null>): Promise<Report> {
  const r: Report = { surface: 'kafka', cases: 0, violations: [], errorCodes: {}, closeCodes: {} };
  const kafka = new Kafka({ brokers, clientId: 'fanout-fuzz', logLevel: logLevel.NOTHING, ...kafkajsSecurity() });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const bytes = (max: number) =>
    fc.oneof(
      fc.uint8Array({ maxLength: max }).map((b) => Buffer.from(b)),
      fc.string({ maxLength: max }).map((s) => Buffer.from(s)),
      fc.constant(null),
    );
  const headerName = fc.oneof(
    fc.constantFrom('fanout-channel', 'fanout-id', 'fanout-ts', 'content-type', 'fanout-forwarded-from', 'fanout-forwarded-region'),
    fc.string({ maxLength: 30 }),
  );
  const record = fc.record({
    topic: fc.constantFrom(...topics),
    key: bytes(200),
    value: bytes(2000),
    headers: fc.dictionary(
      headerName,
      fc.oneof(
        bytes(300).map((b) => b ?? Buffer.alloc(0)),
        fc.constantFrom('news:a', 'user:1', 'canary:stream', '1:0:5', 'not-a-number'),
      ),
    ),
  });
  const samples = fc.sample(record, { numRuns: CASES, seed: SEED });
  for (let i = 0; i < samples.length; i += 500) {
    const batch = samples.slice(i, i + 500);
    const byTopic = new Map<string, typeof batch>();
    for (const s of batch) byTopic.set(s.topic, [...(byTopic.get(s.topic) ?? []), s]);
    await producer.sendBatch({
      topicMessages: [...byTopic].map(([topic, msgs]) => ({
        topic,
        messages: msgs.map((m) => ({ key: m.key, value: m.value, headers: m.headers as Record<string, Buffer | string> })),
      })),
    });
    r.cases += batch.length;
    if (r.cases % 10_000 === 0 || i + 500 >= samples.length) {
      const problem = await healthy();
      if (problem) r.violations.push(problem);
      log(`kafka: ${r.cases} records, ${r.violations.length} violations`);
    }
  }
  await producer.disconnect();
  return r;
}

const TOKEN_SECRET = 'fuzz-secret-0123456789abcdef0123';
const API_KEY = 'fuzz-api-key-0123456789';
const INBOUND_SECRET = 'whsec_' + Buffer.from('fuzz-inbound-secret-0123456789ab').toString('base64');

interface Others {
  targets: HttpTarget[];
  pids: Record<string, number>;
  exited: () => string | null;
}

/** The publisher, router and dispatcher as processes, on this run's topics, keys and groups. */
async function startOthers(run: string, topics: Record<string, string>, gatewayUrl: string): Promise<Others> {
  const ports = { publisher: await freePort(), router: await freePort(), dispatcher: await freePort() };
  const logLevel = process.env.FUZZ_SERVICE_LOG_LEVEL ?? 'error';
  const base = { ...topics, FANOUT_LOG_LEVEL: logLevel };
  const procs = {
    publisher: spawnService('publisher', 'services/publisher/src/main.ts', {
      ...base,
      FANOUT_PORT: String(ports.publisher),
      FANOUT_API_KEYS: API_KEY,
      FANOUT_INBOUND_WEBHOOKS: JSON.stringify({ billing: { channel: 'billing:inbound', secrets: [INBOUND_SECRET] } }),
    }),
    router: spawnService('router', 'services/router/src/main.ts', {
      ...base,
      FANOUT_PORT: String(ports.router),
      FANOUT_REGIONS: 'fuzz,other',
      FANOUT_GROUP_ID_TEMPLATE: `fuzz.${run}.gw-{region}`,
    }),
    dispatcher: spawnService('dispatcher', 'services/dispatcher/src/main.ts', {
      ...base,
      FANOUT_PORT: String(ports.dispatcher),
      FANOUT_API_KEYS: API_KEY,
      FANOUT_ALLOWED_TARGETS: '127.0.0.0/8',
      FANOUT_TOPIC_ENDPOINTS: `fuzz.${run}.endpoints`,
      FANOUT_TOPIC_RETRY_PREFIX: `fuzz.${run}.retry`,
      FANOUT_TOPIC_DEAD_LETTERS: `fuzz.${run}.dead-letters`,
      FANOUT_GROUP_ID: `fuzz.${run}.dispatcher`,
      FANOUT_RETRY_SCHEDULE: '1s,2s',
      FANOUT_REQUEST_TIMEOUT_MS: '1000',
      // Bounded: every endpoint the fuzzer creates receives deliveries (to closed loopback ports).
      FANOUT_MAX_ENDPOINTS: process.env.FUZZ_MAX_ENDPOINTS ?? '200',
    }),
  };
  const gone: string[] = [];
  for (const [name, p] of Object.entries(procs)) p.once('exit', (code, signal) => gone.push(`the ${name} exited (${code ?? signal})`));
  await Promise.all(
    Object.entries(procs).map(([name, p]) => waitReady(p, `http://127.0.0.1:${ports[name as keyof typeof ports]}/readyz`, 120_000)),
  );
  const users = ['u1', 'u2', 'u3', 'u7'];
  const tokens = {
    valid: await Promise.all(users.map((u) => signConnectToken(TOKEN_SECRET, { sub: u, channels: ['secret:*'] }))),
    expired: [await signConnectToken(TOKEN_SECRET, { sub: 'u1', ttlS: -60 })],
    users,
  };
  const targets: HttpTarget[] = [
    {
      svc: 'publisher',
      base: `http://127.0.0.1:${ports.publisher}`,
      apiKey: API_KEY,
      inbound: { source: 'billing', secret: INBOUND_SECRET },
    },
    { svc: 'router', base: `http://127.0.0.1:${ports.router}` },
    { svc: 'dispatcher', base: `http://127.0.0.1:${ports.dispatcher}`, apiKey: API_KEY },
    { svc: 'gateway', base: gatewayUrl, tokens },
  ];
  return { targets, pids: Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, p.pid!])), exited: () => gone[0] ?? null };
}

interface SchemathesisResult {
  contract: string;
  result: string;
  failures: string[];
}

/** fuzz/schemathesis.sh against the running services; its per-contract verdicts and failure summaries. */
async function runSchemathesis(targets: HttpTarget[]): Promise<SchemathesisResult[]> {
  const url = (svc: HttpSvc) => targets.find((t) => t.svc === svc)?.base ?? '';
  const env = {
    ...process.env,
    PUBLISHER_URL: url('publisher'),
    ROUTER_URL: url('router'),
    DISPATCHER_URL: url('dispatcher'),
    GATEWAY_URL: url('gateway'),
    API_KEY,
  };
  const out = await new Promise<string>((resolve) => {
    const child = spawn('bash', [`${ROOT}fuzz/schemathesis.sh`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => {
      text += c.toString();
      process.stderr.write(c);
    });
    child.stderr.on('data', (c: Buffer) => process.stderr.write(c));
    child.on('close', (code) => resolve(code === 2 ? text + '\nSCHEMATHESIS install failed\n' : text));
  });
  const results: SchemathesisResult[] = [];
  // Each contract's section starts with "== schemathesis <svc>:" and ends with "SCHEMATHESIS <svc> <verdict>".
  for (const m of out.matchAll(/== schemathesis (\w[\w-]*):[^\n]*\n([\s\S]*?)SCHEMATHESIS \1 (\w+)/g)) {
    const section = m[2]!;
    // Each failing operation: "____ METHOD /path ____", then "- STnnn <title>" lines and "[status] ...".
    const failures: string[] = [];
    let op = '';
    for (const line of section.split('\n')) {
      const head = /^_{3,} (.+?) _{3,}$/.exec(line);
      if (head) op = head[1]!;
      const check = /^- (ST\d+ .+)$/.exec(line);
      if (check && op) failures.push(`${op}: ${check[1]}`);
      const status = /^\[(\d{3})\] /.exec(line);
      if (status && failures.length && !/\[\d{3}\]$/.test(failures[failures.length - 1]!))
        failures[failures.length - 1] += ` [${status[1]}]`;
    }
    results.push({ contract: m[1]!, result: m[3]!, failures: [...new Set(failures)].slice(0, 30) });
  }
  if (/SCHEMATHESIS install failed/.test(out)) results.push({ contract: '*', result: 'install_failed', failures: [] });
  return results;
}

async function main(): Promise<number> {
  const broker: BrokerHandle = await getBroker({ log: (m) => log(`kafka: ${m}`) });
  Object.assign(process.env, broker.env);
  const run = Math.random().toString(36).slice(2, 8);
  const topics = { FANOUT_TOPIC_BROADCAST: `fuzz.${run}.broadcast`, FANOUT_TOPIC_USERS: `fuzz.${run}.users` };
  const port = await freePort();
  const gateway = spawnService('gateway', 'services/gateway/src/main.ts', {
    ...topics,
    FANOUT_PORT: String(port),
    FANOUT_REGION: 'fuzz',
    FANOUT_SERVE_PAGE: 'false',
    FANOUT_LOG_LEVEL: process.env.FUZZ_GATEWAY_LOG_LEVEL ?? 'error',
    FANOUT_TOKEN_SECRET: TOKEN_SECRET,
    FANOUT_USER_GROUP_ID: `fuzz.${run}.gw-fuzz`,
    FANOUT_RATE_PER_ADDRESS: process.env.FUZZ_GATEWAY_RATE_PER_ADDRESS ?? '0',
  });
  let exited: string | null = null;
  gateway.once('exit', (code, signal) => (exited = `the gateway exited (${code ?? signal})`));
  let publisher: PublisherClient | null = null;
  let stopCanary = false;
  try {
    await waitReady(gateway, `http://127.0.0.1:${port}/readyz`, 90_000);
    publisher = new PublisherClient({
      brokers: broker.brokers,
      logger: createLogger('fuzz').child({}, { level: 'fatal' }),
      topics: { broadcast: topics.FANOUT_TOPIC_BROADCAST, users: topics.FANOUT_TOPIC_USERS },
      createTopics: false,
    });
    await publisher.connect();
    const url = new URL(`ws://127.0.0.1:${port}/v1/ws`);
    const canary = new Canary(url);
    await sleep(1000);
    let seq = 0;
    const canaryLoop = (async () => {
      while (!stopCanary) {
        void publisher!.publish({ channel: 'canary:stream', data: { seq: seq++, t: Date.now() } }).catch(() => {});
        await sleep(50);
      }
    })();
    let rssPeak = 0;
    const healthy = async (): Promise<string | null> => {
      if (exited) return exited;
      const rss = rssBytes(gateway.pid!);
      rssPeak = Math.max(rssPeak, rss);
      if (rss > RSS_BOUND) return `gateway RSS ${Math.round(rss / 1048576)} MiB over the bound`;
      const status = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5000) }).then(
        (res) => res.status,
        () => 0,
      );
      return status === 200 ? null : `/healthz answered ${status}`;
    };
    const reports: Report[] = [];
    const httpReports: (HttpReport & { rssPeakMb: number; crashed: boolean })[] = [];
    let httpCrash: string | null = null;
    let schemathesis: SchemathesisResult[] | null = null;
    log(`seed ${SEED}, ${CASES} cases per surface`);
    if (SURFACE === 'all' || SURFACE === 'ws') reports.push(await fuzzWs(url, healthy));
    if (SURFACE === 'all' || SURFACE === 'kafka') reports.push(await fuzzKafka(broker.brokers, Object.values(topics), healthy));
    if (SURFACE === 'all' || SURFACE === 'http') {
      await loadContracts();
      const others = await startOthers(run, topics, `http://127.0.0.1:${port}`);
      const pids: Record<string, number> = { ...others.pids, gateway: gateway.pid! };
      for (const target of others.targets.filter((t) => HTTP_SERVICES.includes(t.svc))) {
        let peak = 0;
        const pid = pids[target.svc]!;
        const svcHealthy = async (): Promise<string | null> => {
          let rss = 0;
          try {
            rss = rssBytes(pid);
          } catch {
            /* gone: told below */
          }
          peak = Math.max(peak, rss);
          const crash = others.exited() ?? (await healthy());
          if (crash) return crash;
          return rss > RSS_BOUND ? `${target.svc} RSS ${Math.round(rss / 1048576)} MiB over the bound` : null;
        };
        const before = others.exited() ?? exited;
        const r = await fuzzHttp(target, { cases: CASES, seed: SEED, healthy: svcHealthy, log });
        httpReports.push({ ...r, rssPeakMb: Math.round(peak / 1048576), crashed: !before && !!(others.exited() ?? exited) });
      }
      httpCrash = others.exited();
      if (SCHEMATHESIS) schemathesis = await runSchemathesis(others.targets);
    }
    // The gateway works through what was sent; the canary keeps streaming meanwhile.
    await sleep(5000);
    stopCanary = true;
    await canaryLoop;
    await sleep(2000);
    const final = await healthy();
    if (final) reports[reports.length - 1]?.violations.push(final);
    let lost = 0;
    for (let s = 0; s < seq - 1; s++) if (!canary.received.has(s)) lost++;
    const p99 = [...canary.lat].sort((a, b) => a - b)[Math.floor(canary.lat.length * 0.99)] ?? NaN;
    let bad = false;
    for (const r of reports) {
      console.log(
        `${r.surface}: ${r.cases} cases, ${r.violations.length} violations; error frames ${JSON.stringify(r.errorCodes)}; closes ${JSON.stringify(r.closeCodes)}`,
      );
      for (const v of r.violations.slice(0, 10)) console.log(`  violation: ${v}`);
      bad ||= r.violations.length > 0;
    }
    for (const r of httpReports) {
      console.log(
        `${r.surface}: ${r.cases} cases, ${r.violations.length} violations; statuses ${JSON.stringify(r.statuses)}; error codes ${JSON.stringify(r.errorCodes)}; parser rejects ${r.parserRejects}; RSS peak ${r.rssPeakMb} MiB`,
      );
      for (const v of r.violations.slice(0, 10)) console.log(`  violation: ${v}`);
      for (const [name, k] of Object.entries(r.knownDefects))
        console.log(`  known defect (${k.count}x, not counted; FUZZ_STRICT=1 counts it): ${name}\n    first: ${k.first}`);
      bad ||= r.violations.length > 0;
    }
    if (httpCrash) console.log(`http: ${httpCrash}`);
    for (const s of schemathesis ?? []) {
      console.log(`schemathesis ${s.contract}: ${s.result}${s.failures.length ? '\n  ' + s.failures.join('\n  ') : ''}`);
      bad ||= s.result !== 'passed' && s.result !== 'skipped';
    }
    console.log(
      `canary: ${seq} published, ${lost} lost, p99 ${p99} ms; gateway RSS peak ${Math.round(rssPeak / 1048576)} MiB; gateway ${exited ?? 'alive'}`,
    );
    for (const r of reports) {
      console.log(
        JSON.stringify({
          fuzz: r.surface,
          seed: SEED,
          cases: r.cases,
          crashes: exited ? 1 : 0,
          violations: r.violations.length,
          error_codes: r.errorCodes,
          close_codes: r.closeCodes,
          canary_lost: lost,
          canary_p99_ms: p99,
          gateway_rss_peak_mb: Math.round(rssPeak / 1048576),
        }),
      );
    }
    for (const r of httpReports) {
      console.log(
        JSON.stringify({
          fuzz: r.surface,
          seed: SEED,
          cases: r.cases,
          crashes: r.crashed ? 1 : 0,
          violations: r.violations.length,
          statuses: r.statuses,
          error_codes: r.errorCodes,
          parser_rejects: r.parserRejects,
          held_polls: r.held,
          known_defects: Object.fromEntries(Object.entries(r.knownDefects).map(([n, k]) => [n.split(':')[0], k.count])),
          rss_peak_mb: r.rssPeakMb,
          canary_lost: lost,
          canary_p99_ms: p99,
        }),
      );
    }
    if (schemathesis)
      console.log(
        JSON.stringify({
          fuzz: 'http:schemathesis',
          seed: SEED,
          contracts: Object.fromEntries(schemathesis.map((s) => [s.contract, { result: s.result, failures: s.failures }])),
        }),
      );
    canary.ws.destroy();
    return bad || exited || httpCrash || lost > 0 ? 1 : 0;
  } finally {
    stopCanary = true;
    await publisher?.disconnect().catch(() => {});
    await stopAll();
    await broker.stop();
  }
}

runBench(main, 3600);
