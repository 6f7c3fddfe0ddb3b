/**
 * Rebalance benchmark (`npm run bench:rebalance`): what a rolling restart of a region costs the
 * clients of user channels. See docs/benchmarks.md.
 *
 * U users spread over the two gateways of one region (`bench`), each user's `FanoutClient`
 * (@fanout/client: router lookups, backoff with full jitter, resume by position) subscribed to
 * `user:<id>`, a steady stream of R events/s published to those channels round-robin; then the
 * region is restarted like a StatefulSet's rolling update: SIGTERM to gw-bench-0, wait for it to
 * exit, start its replacement (same node name and port), wait for `/readyz` 200; at once the same
 * for gw-bench-1. Then the run waits until the region has settled (group Stable with both gateways,
 * every client subscribed again), the stream runs a few seconds more and stops, and a final
 * sentinel event per user proves completeness (events of a channel arrive in partition order, so a
 * client holding its sentinel holds everything it will ever get). Measured:
 *
 * - lost: events Kafka acknowledged that their user never received (sentinels included);
 * - duplicates: events a user's app received more than once (after the SDK's de-duplication);
 * - redirected: client moves, i.e. disruptions after which the client was subscribed on another
 *   gateway instance than before;
 * - reroute time per disruption: from the reconnect frame or the lost connection, whichever came
 *   first, to `subscribed` again (it includes the reconnect delay the gateway asks for); p50/p99/max;
 * - router lookups/s during the restart: `fanout_router_lookups_total` (all outcomes) from the
 *   router's /metrics before the first SIGTERM and once the region has settled after the last
 *   replacement, divided by that time (also per gateway restart).
 * Targets (issue 10): 0 lost, 0 duplicates, reroute p99 <= 5 s with Kafka's default group delay.
 *
 * Processes, all on 127.0.0.1: Kafka (KAFKA_BROKERS, else a local broker started with Kafka's
 * default group.initial.rebalance.delay.ms, 3000 ms; the broker's actual setting is read back and
 * reported), the router (services/router/src/main.ts), two gateways (services/gateway/src/main.ts,
 * default settings apart from topics, group, token secret and router URL: drainJitterMs 2000,
 * drainDelayMs 3000), W client workers (bench/rebalance-worker.ts, fork + IPC) holding the clients,
 * and this process, which publishes with PublisherClient and keeps what Kafka acknowledged per user.
 * Every run uses its own topics and consumer group.
 *
 * Parameters (flag, or env): --users / BENCH_USERS (5000), --rate / BENCH_RATE total events/s
 * (500), --workers / BENCH_WORKERS client processes (4), --warmup-s / BENCH_WARMUP_S least warm-up
 * (5; the warm-up also lasts until every user has received an event, so that every client has a
 * position to resume from), --tail-s / BENCH_TAIL_S stream after the region settled (5),
 * --settle-timeout-s / BENCH_SETTLE_TIMEOUT_S bound on the settling after the restart (60),
 * --final-wait-s / BENCH_FINAL_WAIT_S bound on the sentinels' delivery (60), --connect-parallel /
 * BENCH_CONNECT_PARALLEL clients connecting at once per worker (50), --timeout-s / BENCH_TIMEOUT_S
 * overall bound (300: every child is killed and the exit code is 2). BENCH_CHILD_LOG_LEVEL: the
 * services' log level (info).
 *
 *   npm run bench:rebalance                                  # U=5000, R=500/s, local Kafka
 *   npm run bench:rebalance -- --users 200 --rate 100
 *   KAFKA_BROKERS=127.0.0.1:9092 npm run bench:rebalance     # an existing broker (its group delay is reported)
 *
 * Output: tables on stdout, then, as the very last line, one JSON object:
 *   {"bench":"rebalance","users":U,"events":…,"lost":…,"duplicates":…,"redirected":…,"reroute_p99_ms":…,"router_lookups_per_s":…,"broker_group_delay_ms":3000}
 * Progress and the services' logs go to stderr. Exit code 0 when the run completed (whatever the
 * figures), 1 when it failed, 2 on the overall timeout, 130 on SIGINT/SIGTERM.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { brokerGroupDelayMs, freePort, GROUP_DELAY_KAFKA_DEFAULT_MS, startLocalKafka, waitForBroker } from '@fanout/kafka';
import { PublisherClient } from '@fanout/publisher';
import {
  emptyCounters,
  type Disruption,
  type FromWorker,
  type Progress,
  type ToWorker,
  type UserResult,
  type WorkerCounters,
} from './rebalance-ipc.js';
import { cpuSeconds, deleteTopics, machineJiffies, numParam } from './processes.js';
import { fmt, table } from './report.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const REGION = 'bench';
const GATEWAYS = 2;

// ---------------------------------------------------------------- parameters

const P = {
  users: Math.floor(numParam('--users', 'BENCH_USERS', 5000)),
  rate: numParam('--rate', 'BENCH_RATE', 500),
  workers: Math.max(1, Math.floor(numParam('--workers', 'BENCH_WORKERS', 4))),
  warmupS: numParam('--warmup-s', 'BENCH_WARMUP_S', 5),
  tailS: numParam('--tail-s', 'BENCH_TAIL_S', 5),
  settleTimeoutS: numParam('--settle-timeout-s', 'BENCH_SETTLE_TIMEOUT_S', 60),
  finalWaitS: numParam('--final-wait-s', 'BENCH_FINAL_WAIT_S', 60),
  connectParallel: Math.max(1, Math.floor(numParam('--connect-parallel', 'BENCH_CONNECT_PARALLEL', 50))),
  timeoutS: numParam('--timeout-s', 'BENCH_TIMEOUT_S', 300),
};
if (P.users < 1) throw new Error('--users must be at least 1');
if (P.rate <= 0) throw new Error('--rate must be positive');
const CHILD_LOG_LEVEL = process.env.BENCH_CHILD_LOG_LEVEL || 'info';

const T0 = Date.now();
const since = (t: number) => ((t - T0) / 1000).toFixed(1);
function log(msg: string): void {
  process.stderr.write(`[bench ${since(Date.now())}s] ${msg}\n`);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- children

/** Every process this run started (services and workers), to be stopped on every exit path. */
const children = new Set<ChildProcess>();
/** Set when a service or worker exits on its own: every wait checks it and gives up. */
let childFailure: string | null = null;
/** Children whose exit is expected (being stopped). */
const stopping = new WeakSet<ChildProcess>();

function watch(child: ChildProcess, name: string): void {
  children.add(child);
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (!stopping.has(child)) {
      childFailure ??= `${name} exited unexpectedly (code ${code}, signal ${signal})`;
      log(`ERROR: ${childFailure}`);
    }
  });
  // Children's output goes to stderr: stdout holds the tables and the JSON line.
  const relay = (stream: NodeJS.ReadableStream | null) => {
    let buf = '';
    stream?.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim()) process.stderr.write(`[${name}] ${line}\n`);
      }
    });
  };
  relay(child.stdout);
  relay(child.stderr);
}

function spawnService(name: string, role: string, script: string, env: Record<string, string>, args: string[] = []): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...process.env, FANOUT_LOG_LEVEL: CHILD_LOG_LEVEL, KAFKAJS_NO_PARTITIONER_WARNING: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  watch(child, name);
  if (child.pid) roles.set(child.pid, role);
  return child;
}

function check(): void {
  if (childFailure) throw new Error(childFailure);
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
}

/** SIGTERM, then SIGKILL after `graceMs`. */
async function stopChild(
  child: ChildProcess,
  graceMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }> {
  stopping.add(child);
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode, killed: false };
  const done = exited(child);
  child.kill('SIGTERM');
  let killed = false;
  const t = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, graceMs);
  const r = await done;
  clearTimeout(t);
  return { ...r, killed };
}

function killAll(): void {
  for (const c of children) {
    stopping.add(c);
    c.kill('SIGKILL');
  }
}
process.on('exit', killAll);

async function waitReady(child: ChildProcess, url: string, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    check();
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before it was ready`);
    const ok = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${what}: ${url} not 200 within ${timeoutMs} ms`);
}

// ---------------------------------------------------------------- client workers

class ClientWorker {
  progress: Progress = { clients: 0, started: 0, subscribed: 0, disrupted: 0, withMessage: 0, received: 0, sentinels: 0 };
  private readonly child: ChildProcess;
  private readonly waiting: { resolve: (m: FromWorker) => void; reject: (e: Error) => void }[] = [];

  constructor(readonly index: number) {
    this.child = fork(fileURLToPath(new URL('./rebalance-worker.ts', import.meta.url)), [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    watch(this.child, `clients-${index}`);
    if (this.child.pid) roles.set(this.child.pid, 'client workers');
    this.child.on('message', (m: FromWorker) => {
      if (m.op === 'progress') {
        this.progress = m.progress;
        return;
      }
      const w = this.waiting.shift();
      if (!w) return;
      if (m.op === 'error') w.reject(new Error(`client worker ${index}: ${m.message}`));
      else w.resolve(m);
    });
    this.child.on('exit', (code) => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`client worker ${index} exited (${code})`));
    });
  }

  request(m: ToWorker, timeoutMs: number): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      if (!this.child.connected) return reject(new Error(`client worker ${this.index} is gone`));
      const t = setTimeout(() => reject(new Error(`client worker ${this.index}: no answer to ${m.op} within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push({
        resolve: (v) => {
          clearTimeout(t);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.child.send(m);
    });
  }

  async close(): Promise<void> {
    if (this.child.connected) await this.request({ op: 'close' }, 10_000).catch(() => {});
    await stopChild(this.child, 3000);
  }
}

function totalProgress(workers: ClientWorker[]): Progress {
  const t: Progress = { clients: 0, started: 0, subscribed: 0, disrupted: 0, withMessage: 0, received: 0, sentinels: 0 };
  for (const w of workers) for (const k of Object.keys(t) as (keyof Progress)[]) t[k] += w.progress[k];
  return t;
}

// ---------------------------------------------------------------- router

interface RegionStatus {
  state: string;
  unowned: number;
  gateways: number;
  generation: string;
}

async function regionStatus(routerUrl: string): Promise<RegionStatus | null> {
  try {
    const s = (await (await fetch(`${routerUrl}/v1/status`, { signal: AbortSignal.timeout(2000) })).json()) as {
      regions: { region: string; state: string; unowned_partitions: number; generation: string; gateways: unknown[] }[];
    };
    const r = s.regions.find((x) => x.region === REGION);
    return r ? { state: r.state, unowned: r.unowned_partitions, gateways: r.gateways.length, generation: String(r.generation) } : null;
  } catch {
    return null;
  }
}

/** fanout_router_lookups_total by outcome. */
async function routerLookups(routerUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${routerUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^fanout_router_lookups_total\{([^}]*)\} (\S+)$/gm)) {
    const outcome = /outcome="([^"]*)"/.exec(m[1]!)?.[1] ?? '?';
    out[outcome] = (out[outcome] ?? 0) + Number(m[2]);
  }
  return out;
}

function lookupDelta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = (b[k] ?? 0) - (a[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}
const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

// ---------------------------------------------------------------- CPU and event-loop lag (to see the noise)

/** The role of each process whose CPU is counted (this process is `bench`). */
const roles = new Map<number, string>([[process.pid, 'bench (publisher)']]);

const CORES = (() => {
  try {
    return Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || 1;
  } catch {
    return 1;
  }
})();

/** The JVM under the local broker's watchdog shell, if there is one. */
function kafkaJvmPid(shellPid: number): number | null {
  try {
    const kids = readFileSync(`/proc/${shellPid}/task/${shellPid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    return kids.find((k) => /java/.test(readFileSync(`/proc/${k}/comm`, 'utf8'))) ?? null;
  } catch {
    return null;
  }
}

/**
 * Every second between start() and stop(): CPU per role (summed over that role's processes,
 * including ones that start or end meanwhile), the machine's busy cores, and each gateway's largest
 * event-loop delay (prom-client's fanout_nodejs_eventloop_lag_max_seconds, reset at every scrape).
 */
class Sampler {
  readonly cpu: Record<string, number> = {};
  readonly lagMaxS: Record<string, number> = {};
  busyCores = 0;
  wallS = 0;
  private last = new Map<number, number>();
  private m0 = machineJiffies();
  private t0 = 0;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly gateways: () => { name: string; port: number }[]) {}

  start(): void {
    this.t0 = Date.now();
    this.m0 = machineJiffies();
    for (const pid of roles.keys()) {
      const c = cpuSeconds(pid);
      if (c !== null) this.last.set(pid, c);
    }
    this.timer = setInterval(() => void this.sample(), 1000);
  }

  private async sample(): Promise<void> {
    for (const [pid, role] of roles) {
      const c = cpuSeconds(pid);
      if (c === null) continue;
      this.cpu[role] = (this.cpu[role] ?? 0) + c - (this.last.get(pid) ?? c);
      this.last.set(pid, c);
    }
    await Promise.all(
      this.gateways().map(async (g) => {
        try {
          const text = await (await fetch(`http://127.0.0.1:${g.port}/metrics`, { signal: AbortSignal.timeout(900) })).text();
          const v = Number(/^\w*nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1]);
          if (Number.isFinite(v)) this.lagMaxS[g.name] = Math.max(this.lagMaxS[g.name] ?? 0, v);
        } catch {
          // starting, draining or gone
        }
      }),
    );
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.sample();
    const m1 = machineJiffies();
    this.wallS = (Date.now() - this.t0) / 1000;
    this.busyCores = m1.total > this.m0.total ? ((m1.busy - this.m0.busy) / (m1.total - this.m0.total)) * CORES : 0;
  }
}

// ---------------------------------------------------------------- the stream

/** Publishes to `user:<id>` round-robin at a steady rate; keeps what Kafka acknowledged per user. */
class Stream {
  /** Per user: acknowledged sequence numbers, and their positions and acknowledgement times. */
  readonly acked: number[][];
  readonly ackedPos: string[][];
  readonly ackedAt: number[][];
  private readonly nextSeq: number[];
  published = 0;
  ackedCount = 0;
  failed = 0;
  lastError = '';
  inFlight = 0;
  sentinelsAcked = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private rr = 0;

  constructor(
    private readonly publisher: PublisherClient,
    private readonly users: string[],
  ) {
    this.acked = users.map(() => []);
    this.ackedPos = users.map(() => []);
    this.ackedAt = users.map(() => []);
    this.nextSeq = users.map(() => 0);
  }

  private publishOne(u: number, end: boolean): Promise<void> {
    const seq = this.nextSeq[u]!++;
    this.published++;
    this.inFlight++;
    return this.publisher.publish({ channel: `user:${this.users[u]}`, data: end ? { s: seq, end: 1 } : { s: seq } }).then(
      (ack) => {
        this.inFlight--;
        this.acked[u]!.push(seq);
        this.ackedPos[u]!.push(ack.position);
        this.ackedAt[u]!.push(Date.now());
        this.ackedCount++;
        if (end) this.sentinelsAcked++;
      },
      (err: unknown) => {
        this.inFlight--;
        this.failed++;
        this.lastError = err instanceof Error ? err.message : String(err);
      },
    );
  }

  start(rate: number): void {
    const t0 = performance.now();
    let sent = 0;
    this.timer = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate);
      for (; sent < due; sent++) void this.publishOne(this.rr++ % this.users.length, false);
    }, 10);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async settled(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await sleep(20);
    return this.inFlight === 0;
  }

  /** One final event per user, after everything else of the stream was acknowledged. */
  async sentinels(): Promise<void> {
    await Promise.all(this.users.map((_, u) => this.publishOne(u, true)));
  }
}

// ---------------------------------------------------------------- results

function pct(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

interface Step {
  node: string;
  port: number;
  sigterm: number;
  exited: number;
  exit: string;
  spawned: number;
  ready: number;
  /** End of this step's window: the next step's SIGTERM, or when the region settled after the last one. */
  end: number;
  lookupsAtStart: Record<string, number>;
  /** Router lookups (by outcome) between this step's SIGTERM and its end. */
  lookups: Record<string, number>;
}

interface Phase {
  name: string;
  start: number;
  end: number;
  note: string;
}

function rerouteRow(label: string, ds: Disruption[], endOfRun: number): string[] {
  const times = ds.map((d) => (d.end ?? endOfRun) - d.start).sort((a, b) => a - b);
  const moved = ds.filter((d) => d.end !== null && d.to !== d.from).length;
  const open = ds.filter((d) => d.end === null).length;
  return [
    label,
    fmt(ds.length),
    fmt(moved),
    fmt(open),
    fmt(pct(times, 0.5)),
    fmt(pct(times, 0.99)),
    fmt(times.length ? times[times.length - 1]! : null),
  ];
}

// ---------------------------------------------------------------- main

let currentPhase = 'start';
let cleanupKafka: (() => Promise<void>) | null = null;

async function main(): Promise<number> {
  log(`params ${JSON.stringify(P)}`);
  const phases: Phase[] = [];
  const phase = async <T>(name: string, fn: () => Promise<{ value: T; note?: string }>): Promise<T> => {
    currentPhase = name;
    const start = Date.now();
    log(`phase: ${name}`);
    const { value, note } = await fn();
    phases.push({ name, start, end: Date.now(), note: note ?? '' });
    return value;
  };

  const id = randomBytes(4).toString('hex');
  const topics = { broadcast: `bench.rebalance.${id}.broadcast`, users: `bench.rebalance.${id}.users` };
  const groupTemplate = `bench-rebalance-${id}-{region}`;
  const tokenSecret = randomBytes(24).toString('hex');
  const users = Array.from({ length: P.users }, (_, i) => `u${i}`);
  const logger = pino({ name: 'bench', level: process.env.FANOUT_LOG_LEVEL ?? 'warn' }, process.stderr);

  let brokers: string[] = [];
  let brokerSource = '';
  let publisher: PublisherClient | null = null;
  let routerProc: ChildProcess | null = null;
  const gateways: { node: string; port: number; proc: ChildProcess; instance: number }[] = [];
  let workers: ClientWorker[] = [];
  let failed: unknown = null;
  let report: (() => string) | null = null;
  let running: Stream | null = null;
  let progressLog: ReturnType<typeof setInterval> | undefined;

  try {
    // Kafka, with production group settings when this run starts it.
    const groupDelay = await phase('kafka', async () => {
      const env = process.env.KAFKA_BROKERS?.split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (env && env.length > 0) {
        brokers = env;
        brokerSource = `KAFKA_BROKERS ${brokers.join(',')}`;
        await waitForBroker(brokers);
      } else {
        const k = await startLocalKafka({ groupInitialRebalanceDelayMs: GROUP_DELAY_KAFKA_DEFAULT_MS, log: (m) => log(`kafka: ${m}`) });
        cleanupKafka = k.stop;
        brokers = k.brokers;
        Object.assign(process.env, k.clientEnv);
        const jvm = kafkaJvmPid(k.pid);
        if (jvm) roles.set(jvm, 'kafka');
        brokerSource = `local broker ${brokers.join(',')} (started with group.initial.rebalance.delay.ms=${GROUP_DELAY_KAFKA_DEFAULT_MS})`;
        await waitForBroker(brokers);
      }
      const d = await brokerGroupDelayMs(brokers);
      log(`kafka at ${brokers.join(',')}; group.initial.rebalance.delay.ms = ${d}`);
      return { value: d, note: `${brokerSource}; broker group.initial.rebalance.delay.ms = ${d ?? 'unreadable'}` };
    });

    publisher = await phase('topics and publisher', async () => {
      const p = new PublisherClient({ brokers, logger, clientId: 'fanout-bench-rebalance', topics });
      await p.connect();
      return { value: p, note: `${topics.users} (12 partitions), ${topics.broadcast}` };
    });

    const routerPort = await freePort();
    const routerUrl = `http://127.0.0.1:${routerPort}`;
    await phase('router', async () => {
      routerProc = spawnService('router', 'router', 'services/router/src/main.ts', {
        FANOUT_BROKERS: brokers.join(','),
        FANOUT_PORT: String(routerPort),
        FANOUT_REGIONS: REGION,
        FANOUT_GROUP_ID_TEMPLATE: groupTemplate,
        FANOUT_TOPIC_USERS: topics.users,
      });
      await waitReady(routerProc, `${routerUrl}/readyz`, 60_000, 'router');
      return { value: undefined, note: routerUrl };
    });

    const gatewayEnv = (port: number): Record<string, string> => ({
      FANOUT_BROKERS: brokers.join(','),
      FANOUT_PORT: String(port),
      FANOUT_TOKEN_SECRET: tokenSecret,
      FANOUT_ROUTER_URL: routerUrl,
      FANOUT_TOPIC_BROADCAST: topics.broadcast,
      FANOUT_TOPIC_USERS: topics.users,
      FANOUT_USER_GROUP_ID: groupTemplate.replace('{region}', REGION),
      FANOUT_SERVE_PAGE: 'false',
    });
    const startGateway = (node: string, port: number, instance: number) =>
      spawnService(`${node}#${instance}`, 'gateways', 'services/gateway/src/main.ts', gatewayEnv(port), [
        '--region',
        REGION,
        '--node',
        node,
      ]);

    /**
     * Waits until the router sees `want` gateways owning every partition of a Stable group and (once
     * there are clients) every client is subscribed and out of any disruption, all of it for 1 s on
     * end; returns when that began, or null after `timeoutMs`.
     */
    const settle = async (want: number, timeoutMs: number): Promise<number | null> => {
      const deadline = Date.now() + timeoutMs;
      let okSince: number | null = null;
      while (Date.now() < deadline) {
        check();
        const s = await regionStatus(routerUrl);
        const p = totalProgress(workers);
        const clientsOk = workers.length === 0 || (p.subscribed === P.users && p.disrupted === 0);
        const ok = s !== null && s.state === 'Stable' && s.unowned === 0 && s.gateways === want && clientsOk;
        if (ok) {
          okSince ??= Date.now();
          if (Date.now() - okSince >= 1000) return okSince;
        } else {
          okSince = null;
        }
        await sleep(100);
      }
      return null;
    };

    await phase('gateways', async () => {
      for (let i = 0; i < GATEWAYS; i++) {
        const node = `gw-bench-${i}`;
        const port = await freePort();
        gateways.push({ node, port, proc: startGateway(node, port, 1), instance: 1 });
      }
      await Promise.all(gateways.map((g) => waitReady(g.proc, `http://127.0.0.1:${g.port}/readyz`, 90_000, g.node)));
      // No clients yet: "settled" is the region's group alone.
      if ((await settle(GATEWAYS, 60_000)) === null)
        throw new Error('the region group did not become Stable with both gateways within 60 s');
      const s = await regionStatus(routerUrl);
      return {
        value: undefined,
        note: `${gateways.map((g) => `${g.node} :${g.port}`).join(', ')}; group ${s?.state}, generation ${s?.generation}`,
      };
    });

    await phase('clients connect', async () => {
      const instances = Object.fromEntries(gateways.map((g) => [g.node, String(g.instance)]));
      workers = Array.from({ length: Math.min(P.workers, P.users) }, (_, i) => new ClientWorker(i));
      const connectMs = 60_000 + P.users * 10;
      const deadline = Date.now() + connectMs;
      const answers = await Promise.all(
        workers.map((w, i) =>
          w.request(
            {
              op: 'start',
              users: users.filter((_, u) => u % workers.length === i),
              routerUrl,
              region: REGION,
              tokenSecret,
              parallel: P.connectParallel,
              deadline,
              instances,
            },
            connectMs + 30_000,
          ),
        ),
      );
      check();
      const started = answers.reduce((n, a) => n + (a.op === 'started' ? a.started : 0), 0);
      if (started < P.users) throw new Error(`only ${started} of ${P.users} clients were subscribed within ${connectMs} ms`);
      return { value: undefined, note: `${P.users} clients in ${workers.length} workers subscribed` };
    });

    const stream = new Stream(publisher, users);
    running = stream;
    const acked0 = () => stream.ackedCount;
    progressLog = setInterval(() => {
      const p = totalProgress(workers);
      log(
        `progress: ${p.subscribed}/${P.users} clients subscribed, ${p.disrupted} disrupted, ${p.received} events received; ${stream.ackedCount} acknowledged, ${stream.failed} failed`,
      );
    }, 5000);
    progressLog.unref();

    await phase('warm-up', async () => {
      stream.start(P.rate);
      const least = Date.now() + P.warmupS * 1000;
      // One round of the round-robin reaches every user; allow three, and 20 s of slack.
      const bound = Date.now() + (3 * (P.users / P.rate) + 20) * 1000;
      let note = '';
      for (;;) {
        check();
        const p = totalProgress(workers);
        if (Date.now() >= least && p.withMessage >= P.users) break;
        if (Date.now() > bound) {
          note = `WARNING: only ${p.withMessage} of ${P.users} users received an event`;
          log(note);
          break;
        }
        await sleep(100);
      }
      return { value: undefined, note: `${P.rate} events/s; ${note || 'every user received an event'}; ${acked0()} acknowledged` };
    });

    // ------------------------------------------------------------ the rolling restart
    // Like a StatefulSet's rolling update: the next gateway is stopped as soon as the previous
    // one's replacement is ready, whether or not its clients have settled yet.
    const steps: Step[] = [];
    const sampler = new Sampler(() => [
      ...gateways
        .filter((g) => g.proc.exitCode === null && g.proc.signalCode === null)
        .map((g) => ({ name: `${g.node}#${g.instance}`, port: g.port })),
      { name: 'router', port: routerPort },
    ]);
    sampler.start();
    const restartStart = Date.now();
    for (const g of gateways) {
      const step: Step = {
        node: g.node,
        port: g.port,
        sigterm: 0,
        exited: 0,
        exit: '',
        spawned: 0,
        ready: 0,
        end: 0,
        lookups: {},
        lookupsAtStart: await routerLookups(routerUrl),
      };
      await phase(`restart ${g.node}: drain`, async () => {
        step.sigterm = Date.now();
        stopping.add(g.proc);
        g.proc.kill('SIGTERM');
        // The gateway's own bound is shutdownGraceMs (20 s) + 5 s; beyond that it is stuck.
        const t = setTimeout(() => g.proc.kill('SIGKILL'), 35_000);
        const r = await exited(g.proc);
        clearTimeout(t);
        step.exited = Date.now();
        step.exit = r.signal ? `signal ${r.signal}` : `code ${r.code}`;
        return { value: undefined, note: `SIGTERM -> exit (${step.exit})` };
      });
      await phase(`restart ${g.node}: replacement ready`, async () => {
        g.instance++;
        await Promise.all(workers.map((w) => w.request({ op: 'instance', node: g.node, instance: String(g.instance) }, 10_000)));
        step.spawned = Date.now();
        g.proc = startGateway(g.node, g.port, g.instance);
        await waitReady(g.proc, `http://127.0.0.1:${g.port}/readyz`, 90_000, `${g.node} replacement`);
        step.ready = Date.now();
        return { value: undefined, note: `same node name and port :${g.port}; /readyz 200` };
      });
      steps.push(step);
    }
    const settledAt = await phase('settle', async () => {
      const at = await settle(GATEWAYS, P.settleTimeoutS * 1000);
      const p = totalProgress(workers);
      const note =
        at === null
          ? `WARNING: not settled within ${P.settleTimeoutS} s (${p.subscribed}/${P.users} subscribed, ${p.disrupted} disrupted)`
          : `group Stable with ${GATEWAYS} gateways and all ${P.users} clients subscribed (held 1 s) ${((at - steps[steps.length - 1]!.ready) / 1000).toFixed(1)} s after the last replacement was ready`;
      if (at === null) log(note);
      return { value: at, note };
    });
    const restartEnd = settledAt ?? Date.now();
    await sampler.stop();
    const lookupsAfter = await routerLookups(routerUrl);
    steps.forEach((s, i) => {
      s.end = steps[i + 1]?.sigterm ?? restartEnd;
      s.lookups = lookupDelta(s.lookupsAtStart, steps[i + 1]?.lookupsAtStart ?? lookupsAfter);
    });
    const restartLookups = lookupDelta(steps[0]!.lookupsAtStart, lookupsAfter);
    const restartS = (restartEnd - restartStart) / 1000;

    await phase('tail', async () => {
      await sleep(P.tailS * 1000);
      check();
      return { value: undefined, note: `${P.tailS} s more of the stream` };
    });

    await phase('stop the stream', async () => {
      stream.stop();
      const ok = await stream.settled(30_000);
      if (!ok) throw new Error(`${stream.inFlight} publishes still unacknowledged after 30 s`);
      return {
        value: undefined,
        note: `${stream.published} published, ${stream.ackedCount} acknowledged, ${stream.failed} failed${stream.failed ? ` (${stream.lastError})` : ''}`,
      };
    });

    await phase('sentinels', async () => {
      await stream.sentinels();
      const deadline = Date.now() + P.finalWaitS * 1000;
      let p = totalProgress(workers);
      while (Date.now() < deadline) {
        check();
        p = totalProgress(workers);
        if (p.sentinels >= P.users) break;
        await sleep(100);
      }
      await sleep(300); // one more progress report
      p = totalProgress(workers);
      return {
        value: undefined,
        note: `${stream.sentinelsAcked} acknowledged; ${p.sentinels} of ${P.users} users received theirs${p.sentinels < P.users ? ` (WARNING: gave up after ${P.finalWaitS} s)` : ''}`,
      };
    });

    // ------------------------------------------------------------ results
    clearInterval(progressLog);
    const endOfRun = Date.now();
    const answers = await Promise.all(workers.map((w) => w.request({ op: 'results' }, 60_000)));
    const results: UserResult[] = [];
    const disruptions: Disruption[] = [];
    const counters: WorkerCounters = emptyCounters();
    const merge = (into: Record<string, number>, from: Record<string, number>) => {
      for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
    };
    for (const a of answers) {
      if (a.op !== 'results') continue;
      results.push(...a.users);
      disruptions.push(...a.disruptions);
      merge(counters.errors, a.counters.errors);
      merge(counters.closeCodes, a.counters.closeCodes);
      merge(counters.reconnects, a.counters.reconnects);
      merge(counters.resets, a.counters.resets);
      merge(counters.welcomes, a.counters.welcomes);
      merge(counters.finalTransports, a.counters.finalTransports);
      counters.gaps += a.counters.gaps;
      counters.attempts += a.counters.attempts;
      counters.sdkDuplicates += a.counters.sdkDuplicates;
      counters.stopped += a.counters.stopped;
    }
    const byUser = new Map(results.map((r) => [r.user, r]));
    const disruptionsByUser = new Map<string, Disruption[]>();
    for (const d of disruptions) disruptionsByUser.set(d.user, [...(disruptionsByUser.get(d.user) ?? []), d]);

    let lost = 0;
    let duplicates = 0;
    let extraDeliveries = 0;
    let unacknowledgedReceived = 0;
    let outOfOrder = 0;
    let delivered = 0;
    const lostExamples: string[] = [];
    const lostUsers = new Set<string>();
    users.forEach((u, i) => {
      const r = byUser.get(u);
      const counts = r?.counts ?? [];
      const acked = new Set(stream.acked[i]);
      outOfOrder += r?.outOfOrder ?? 0;
      stream.acked[i]!.forEach((seq, k) => {
        if ((counts[seq] ?? 0) === 0) {
          lost++;
          lostUsers.add(u);
          if (lostExamples.length < 12) {
            const ds = (disruptionsByUser.get(u) ?? []).map(
              (d) => `${d.cause} ${d.from}->${d.to ?? 'none'} at ${since(d.start)}s..${d.end === null ? 'open' : `${since(d.end)}s`}`,
            );
            lostExamples.push(
              `user ${u} seq ${seq} position ${stream.ackedPos[i]![k]} acknowledged at ${since(stream.ackedAt[i]![k]!)}s; disruptions: ${ds.join('; ') || 'none'}`,
            );
          }
        }
      });
      counts.forEach((n, seq) => {
        delivered += n;
        if (n > 1) {
          duplicates++;
          extraDeliveries += n - 1;
        }
        if (n > 0 && !acked.has(seq)) unacknowledgedReceived++;
      });
    });

    const moves = disruptions.filter((d) => d.end !== null && d.to !== d.from).length;
    const times = disruptions.map((d) => (d.end ?? endOfRun) - d.start).sort((a, b) => a - b);
    const rerouteP99 = pct(times, 0.99);
    const lookupsPerS = restartS > 0 ? sum(restartLookups) / restartS : null;

    report = () => {
      const out: string[] = [];
      out.push('');
      out.push(
        `rebalance benchmark: U=${P.users} users (user:<id>, one FanoutClient each, ${workers.length} worker processes), R=${P.rate} events/s round-robin, ` +
          `region ${REGION} with ${GATEWAYS} gateways restarted one after the other (SIGTERM, exit, replacement with the same node name and port, /readyz 200, next); Kafka: ${brokerSource}`,
      );
      out.push('');
      out.push('Phases (s since the start of the run):');
      out.push(
        table([
          ['phase', 'start s', 'duration s', 'note'],
          ...phases.map((p) => [p.name, since(p.start), ((p.end - p.start) / 1000).toFixed(1), p.note]),
        ]),
      );
      out.push('');
      out.push(
        'Per gateway restart (window: its SIGTERM to the next SIGTERM, or to the region settled after the last one; disruptions that began in it; reroute = reconnect frame or lost connection -> subscribed again):',
      );
      const stepRows = steps.map((s, i) => {
        const until = steps[i + 1]?.sigterm ?? endOfRun;
        const ds = disruptions.filter((d) => d.start >= s.sigterm && d.start < until);
        const r = rerouteRow(s.node, ds, endOfRun);
        const stepS = (s.end - s.sigterm) / 1000;
        return [
          r[0]!,
          ((s.exited - s.sigterm) / 1000).toFixed(1),
          s.exit,
          ((s.ready - s.spawned) / 1000).toFixed(1),
          stepS.toFixed(1),
          ...r.slice(1),
          `${fmt(sum(s.lookups))} (${Object.entries(s.lookups)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')})`,
          fmt(stepS > 0 ? sum(s.lookups) / stepS : null, 1),
        ];
      });
      out.push(
        table([
          [
            'gateway',
            'SIGTERM->exit s',
            'exit',
            'start->ready s',
            'window s',
            'disruptions',
            'moved',
            'unfinished',
            'reroute p50 ms',
            'p99 ms',
            'max ms',
            'router lookups',
            'lookups/s',
          ],
          ...stepRows,
        ]),
      );
      const outside = disruptions.filter((d) => steps.length === 0 || d.start < steps[0]!.sigterm);
      if (outside.length > 0)
        out.push(
          `WARNING: ${outside.length} disruptions began before the restart (not caused by it): ${[...new Set(outside.map((d) => d.cause))].join(', ')}`,
        );
      out.push('');
      out.push('Disruptions by what started them:');
      const causes = [...new Set(disruptions.map((d) => d.cause))].sort();
      out.push(
        table([
          ['cause', 'disruptions', 'moved', 'unfinished', 'reroute p50 ms', 'p99 ms', 'max ms'],
          ...causes.map((c) =>
            rerouteRow(
              c,
              disruptions.filter((d) => d.cause === c),
              endOfRun,
            ),
          ),
          rerouteRow('all', disruptions, endOfRun),
        ]),
      );
      out.push('');
      out.push('Completeness (per user, against what Kafka acknowledged):');
      out.push(
        table([
          ['measure', 'value'],
          ['events published', fmt(stream.published)],
          [
            'events acknowledged (stream + sentinels)',
            `${fmt(stream.ackedCount)} (${fmt(stream.ackedCount - stream.sentinelsAcked)} + ${fmt(stream.sentinelsAcked)})`,
          ],
          ['publishes failed', `${fmt(stream.failed)}${stream.failed ? ` (${stream.lastError})` : ''}`],
          ['deliveries to the apps', fmt(delivered)],
          ['lost (acknowledged, never received)', `${fmt(lost)}${lost ? ` (${lostUsers.size} users)` : ''}`],
          [
            'duplicates (events received more than once)',
            `${fmt(duplicates)}${duplicates ? ` (${fmt(extraDeliveries)} extra deliveries)` : ''}`,
          ],
          ['received but not acknowledged', fmt(unacknowledgedReceived)],
          ['received out of order', fmt(outOfOrder)],
          ['repeats dropped by the SDK (resume overlap)', fmt(counters.sdkDuplicates)],
          [
            'resets (gateway could not resume)',
            `${fmt(sum(counters.resets))}${sum(counters.resets) ? ` ${JSON.stringify(counters.resets)}` : ''}`,
          ],
          ['gaps', fmt(counters.gaps)],
          ['clients stopped for good', fmt(counters.stopped)],
          ['redirected (client moves)', fmt(moves)],
          ['connection attempts (initial included)', fmt(counters.attempts)],
          ['welcomes by transport (initial included)', JSON.stringify(counters.welcomes)],
          ['clients by transport at the end', JSON.stringify(counters.finalTransports)],
          ['reconnect frames by reason', JSON.stringify(counters.reconnects)],
          ['disconnects by close code', JSON.stringify(counters.closeCodes)],
          ['SDK errors by code', JSON.stringify(counters.errors)],
          ['rolling restart (first SIGTERM -> settled after the last replacement)', `${restartS.toFixed(1)} s`],
          ['router lookups during it', `${fmt(sum(restartLookups))} ${JSON.stringify(restartLookups)} = ${fmt(lookupsPerS, 1)}/s`],
          ['broker group.initial.rebalance.delay.ms', String(groupDelay)],
        ]),
      );
      out.push('');
      const ours = sum(sampler.cpu);
      out.push(
        `The machine during the rolling restart (${sampler.wallS.toFixed(1)} s; ${CORES} cores; CPU from /proc, in cores busy on average; event-loop delay = largest per 1 s scrape):`,
      );
      out.push(
        table([
          ['process', 'cores', 'note'],
          ...Object.entries(sampler.cpu)
            .sort((a, b) => b[1] - a[1])
            .map(([role, c]) => [
              role,
              (c / sampler.wallS).toFixed(2),
              role === 'gateways' || role === 'router'
                ? `event-loop delay max: ${Object.entries(sampler.lagMaxS)
                    .filter(([g]) => (g === 'router') === (role === 'router'))
                    .map(([g, v]) => `${g} ${Math.round(v * 1000)} ms`)
                    .join(', ')}`
                : '',
            ]),
          [
            'everything else on the machine',
            Math.max(0, sampler.busyCores - ours / sampler.wallS).toFixed(2),
            `work that is not this run's${Object.keys(sampler.cpu).includes('kafka') ? '' : ', and Kafka (not started by this run)'}`,
          ],
          ['machine total', sampler.busyCores.toFixed(2), `of ${CORES}`],
        ]),
      );
      const slowest = [...disruptions].sort((a, b) => (b.end ?? endOfRun) - b.start - ((a.end ?? endOfRun) - a.start)).slice(0, 5);
      if (slowest.length > 0) {
        out.push('');
        out.push(
          `Slowest disruptions (what the SDK reported, ms since the disruption began; gateways: ${gateways.map((g) => `${g.node} :${g.port}`).join(', ')}):`,
        );
        for (const d of slowest) {
          out.push(
            `  user ${d.user}: ${d.cause} at ${since(d.start)}s, ${d.end === null ? 'never subscribed again' : `subscribed again after ${d.end - d.start} ms`}, ${d.from} -> ${d.to ?? 'none'}, ${d.attempts} attempts`,
          );
          out.push(`    ${d.trail.join(' | ')}`);
        }
      }
      if (lostExamples.length > 0) {
        out.push('');
        out.push(`Lost events (first ${lostExamples.length}):`);
        for (const e of lostExamples) out.push(`  ${e}`);
      }
      out.push('');
      const target = (name: string, ok: boolean, v: string) => `  ${ok ? 'met    ' : 'MISSED '} ${name}: ${v}`;
      out.push('Targets (issue 10):');
      out.push(target('0 lost', lost === 0, String(lost)));
      out.push(target('0 duplicates', duplicates === 0, String(duplicates)));
      out.push(
        target(`reroute p99 <= 5000 ms (group delay ${groupDelay} ms)`, rerouteP99 !== null && rerouteP99 <= 5000, `${rerouteP99} ms`),
      );
      out.push('');
      const json = {
        bench: 'rebalance',
        users: P.users,
        events: stream.ackedCount,
        lost,
        duplicates,
        redirected: moves,
        reroute_p99_ms: rerouteP99,
        router_lookups_per_s: lookupsPerS === null ? null : Math.round(lookupsPerS * 10) / 10,
        broker_group_delay_ms: groupDelay,
      };
      return out.join('\n') + '\n' + JSON.stringify(json) + '\n';
    };
  } catch (err) {
    failed = err;
    log(`FAILED during "${currentPhase}": ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    currentPhase = 'cleanup';
    clearInterval(progressLog);
    running?.stop();
    log('cleanup: closing clients, stopping services');
    await Promise.all(workers.map((w) => w.close().catch(() => {})));
    await Promise.all(gateways.map((g) => stopChild(g.proc, 30_000)));
    if (routerProc) await stopChild(routerProc, 10_000);
    await publisher?.disconnect().catch(() => {});
    for (const c of [...children]) await stopChild(c, 5000);
    if (cleanupKafka) {
      await cleanupKafka().catch(() => {});
    } else if (brokers.length > 0) {
      await deleteTopics(brokers, [topics.broadcast, topics.users]);
    }
  }
  if (report) process.stdout.write(report());
  log(`done in ${((Date.now() - T0) / 1000).toFixed(1)} s`);
  return failed ? 1 : 0;
}

/** Kills every child and the broker this run started, then exits with `code`. */
async function abort(why: string, code: number): Promise<never> {
  log(why);
  killAll();
  if (cleanupKafka) await Promise.race([cleanupKafka().catch(() => {}), sleep(20_000)]);
  process.exit(code);
}

const overall = setTimeout(
  () => void abort(`FAILED: overall timeout of ${P.timeoutS} s exceeded during "${currentPhase}"; killing every child`, 2),
  P.timeoutS * 1000,
);
overall.unref();
process.once('SIGINT', () => void abort(`interrupted (SIGINT) during "${currentPhase}"; killing every child`, 130));
process.once('SIGTERM', () => void abort(`terminated (SIGTERM) during "${currentPhase}"; killing every child`, 130));

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    killAll();
    process.exit(1);
  },
);
