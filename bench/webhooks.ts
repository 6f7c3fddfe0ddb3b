/**
 * Webhook dispatcher benchmark (`npm run bench:webhooks`): E endpoints (real HTTP servers on
 * loopback, in a worker process: bench/webhooks-receivers.ts), events published through Kafka with
 * `PublisherClient`, and the dispatcher (`services/dispatcher/src/main.ts`) as a real child process
 * with a short retry schedule (200ms,500ms,1s). See docs/benchmarks.md.
 *
 * Phases, one after the other, against the same dispatcher topics and endpoints:
 *   0. warm-up: W events (JIT, connections), delivered and counted for lost/duplicates only;
 *   1. healthy burst: every endpoint answers 200; M events in one publishBatch; deliveries/s =
 *      (event, endpoint) pairs delivered / (last first 2xx - the publish call). THIS is the
 *      `deliveries_per_s` of the JSON line (one dispatcher process, healthy endpoints, no kill);
 *   2. healthy steady: R events/s for S s (a load under capacity): first-attempt latency (publish
 *      -> first attempt arrives at the endpoint); its p99 is the JSON's `p99_first_attempt_ms`;
 *   3. fault: every `--flaky-every`-th endpoint answers 500 to a fraction F of first attempts
 *      (the retries succeed), M events at `--fault-rate`/s, and the dispatcher is killed with
 *      SIGKILL `--kills` times (spread over the publishing) and restarted at once (new process,
 *      same groups and topics). Then the run waits until every expected pair was delivered (or
 *      nothing moved for 20 s) and 3 s more for late duplicates.
 *
 * Events go to C channels `ns<k>:c<j>`; endpoint i subscribes to `ns<i mod K>:*` (K = ceil(2E/3))
 * and every 4th also to 4 exact channels of the next namespace, so an event matches 1 to 3
 * endpoints (1.6 on average at E=20). The bench computes the expected (event, endpoint) pairs with
 * the registry's own rule (exact, `ns:*`, `*`).
 *
 * lost = expected pairs never answered 2xx once the run settled; duplicates = 2xx answers beyond
 * the first for one pair. Each duplicate is explained by a kill or not: the kill came after a
 * process attempted the pair and before the duplicate was sent, and at the kill the pair had (one
 * repeat each) a 2xx in flight, its event at or past the partition's committed offset of the event
 * group (re-read from the event topic), or a failed attempt (its retry record re-read from a retry
 * topic). Unexplained duplicates are reported apart (and fail the run). In flight at a kill: the
 * dispatcher's fanout_webhook_requests_in_flight scraped just before it, and the requests the
 * killed process sent (their connection is older than the kill) that the receivers got after the
 * kill, had not answered, or answered < 5 ms before it.
 *
 * Signatures: the receivers verify every request (`--verify-every N`: every N-th) with the
 * `standardwebhooks` library and the endpoint's secret.
 *
 * CPU (utime+stime from /proc/<pid>/stat, cpuSeconds in bench/processes.ts) of the dispatcher,
 * the receivers' worker, this process (the publisher) and the Kafka broker (the process listening
 * on the broker's port, when local), and the whole machine's busy cores, per phase.
 *
 * Parameters (flag or env): --endpoints / BENCH_ENDPOINTS (20), --events / BENCH_EVENTS (events per
 * measured phase, 20000), --fail-fraction / BENCH_FAIL_FRACTION (0.1), --kills / BENCH_KILLS (1),
 * --flaky-every / BENCH_FLAKY_EVERY (4; 0: no flaky endpoint), --warmup / BENCH_WARMUP (1000),
 * --steady-rate / BENCH_STEADY_RATE (events/s, 500), --steady-s / BENCH_STEADY_S (10; 0 skips),
 * --fault-rate / BENCH_FAULT_RATE (events/s, 1000), --retry-schedule / BENCH_RETRY_SCHEDULE
 * (200ms,500ms,1s), --verify-every / BENCH_VERIFY_EVERY (1), --timeout-s / BENCH_TIMEOUT_S (420),
 * --wait-quiet-s / BENCH_WAIT_QUIET_S (0: before each measured phase, wait up to N s for the
 * machine's load beyond this benchmark's processes to fall under 0.3 cores; the machine is shared).
 * BENCH_DISPATCHER_NODE_ARGS: node flags for the dispatcher (e.g. --cpu-prof). Other FANOUT_*
 * variables in the environment reach the dispatcher (e.g. FANOUT_DEFAULT_MAX_CONCURRENCY).
 *
 * Kafka: KAFKA_BROKERS if set, else getBroker() starts one (and stops it at the end). Topics are
 * unique to the run and deleted at the end. Output: tables on stdout, then, as the very last line,
 * one JSON object.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { pino } from 'pino';
import { Kafka, logLevel } from 'kafkajs';
import { freePort, getBroker, kafkajsSecurity, type BrokerHandle } from '@fanout/kafka';
import { PublisherClient, type PublishedEvent } from '@fanout/publisher';
import {
  CLK_TCK,
  cpuSeconds,
  deleteTopics,
  log,
  machineJiffies,
  metricSum,
  numParam,
  runBench,
  sleep,
  spawnService,
  stopAll,
  stopChild,
  strParam,
  waitReady,
  WorkerRpc,
} from './processes.js';
import { fmt, table } from './report.js';
import type { ReceivedRows, ReceiverTotals, ReceiversFromWorker, ReceiversToWorker } from './webhooks-ipc.js';

// ---------------------------------------------------------------- parameters

const P = {
  endpoints: Math.max(1, Math.floor(numParam('--endpoints', 'BENCH_ENDPOINTS', 20))),
  events: Math.max(1, Math.floor(numParam('--events', 'BENCH_EVENTS', 20_000))),
  failFraction: numParam('--fail-fraction', 'BENCH_FAIL_FRACTION', 0.1),
  kills: Math.floor(numParam('--kills', 'BENCH_KILLS', 1)),
  flakyEvery: Math.floor(numParam('--flaky-every', 'BENCH_FLAKY_EVERY', 4)),
  warmup: Math.floor(numParam('--warmup', 'BENCH_WARMUP', 1000)),
  steadyRate: numParam('--steady-rate', 'BENCH_STEADY_RATE', 500),
  steadyS: numParam('--steady-s', 'BENCH_STEADY_S', 10),
  faultRate: Math.max(1, numParam('--fault-rate', 'BENCH_FAULT_RATE', 1000)),
  retrySchedule: strParam('--retry-schedule', 'BENCH_RETRY_SCHEDULE', '200ms,500ms,1s'),
  verifyEvery: Math.max(1, Math.floor(numParam('--verify-every', 'BENCH_VERIFY_EVERY', 1))),
  timeoutS: numParam('--timeout-s', 'BENCH_TIMEOUT_S', 420),
  waitQuietS: numParam('--wait-quiet-s', 'BENCH_WAIT_QUIET_S', 0),
};
if (P.failFraction > 1) throw new Error('--fail-fraction: a fraction from 0 to 1');

const API_KEY = 'bench-webhooks-key-0123';
/** A phase's wait gives up after this long without a new delivery. */
const STALL_MS = 20_000;
/** After the last expected delivery, how long to wait for late duplicates. */
const QUIET_MS = 3000;
/** A request answered less than this before a kill counts as in flight at it (the dispatcher may not have read the answer). */
const IN_FLIGHT_SLACK_MS = 5;
const PAYLOAD_BYTES = 100;
const CHANNELS_PER_NS = 8;

const now = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------- endpoints and channels

interface EndpointSpec {
  index: number;
  patterns: string[];
  secret: string;
  flaky: boolean;
  id?: string;
}

function layout(e: number): { endpoints: EndpointSpec[]; channels: string[] } {
  const k = Math.max(1, Math.ceil((2 * e) / 3));
  const channels: string[] = [];
  for (let n = 0; n < k; n++) for (let j = 0; j < CHANNELS_PER_NS; j++) channels.push(`ns${n}:c${j}`);
  const endpoints: EndpointSpec[] = [];
  for (let i = 0; i < e; i++) {
    const patterns = [`ns${i % k}:*`];
    if (i % 4 === 3) for (let j = 0; j < 4; j++) patterns.push(`ns${(i + 1) % k}:c${j}`);
    endpoints.push({
      index: i,
      patterns,
      secret: 'whsec_' + randomBytes(32).toString('base64'),
      flaky: P.flakyEvery > 0 && i % P.flakyEvery === 1 % P.flakyEvery,
    });
  }
  return { endpoints, channels };
}

/** The registry's rule: `*`, `<namespace>:*`, or the exact channel. */
function matches(patterns: string[], channel: string): boolean {
  const ns = channel.slice(0, channel.indexOf(':'));
  return patterns.some((p) => p === '*' || p === channel || (p.endsWith(':*') && p.slice(0, -2) === ns));
}

// ---------------------------------------------------------------- receivers (worker process)

class Receivers {
  totals: ReceiverTotals = { pairs2xx: 0, requests: 0, open: 0, lastAt: 0, sigOk: 0, sigFail: 0 };
  private readonly rpc = new WorkerRpc<ReceiversToWorker, ReceiversFromWorker>('receivers', 'bench/webhooks-receivers.ts', (m) => {
    if (m.op === 'progress') this.totals = m.totals;
  });
  readonly child = this.rpc.child;

  request(m: ReceiversToWorker): Promise<ReceiversFromWorker> {
    return this.rpc.request(m);
  }

  async start(secrets: string[]): Promise<number[]> {
    const m = await this.request({ op: 'start', secrets, verifyEvery: P.verifyEvery });
    if (m.op !== 'started') throw new Error('receivers: unexpected answer');
    return m.ports;
  }

  async mode(failFraction: number, flaky: number[]): Promise<void> {
    await this.request({ op: 'mode', failFraction, flaky });
  }

  async dump(): Promise<ReceivedRows> {
    const m = await this.request({ op: 'dump' });
    if (m.op !== 'dump') throw new Error('receivers: unexpected answer');
    this.totals = m.totals;
    return m.rows;
  }

  async close(): Promise<void> {
    await this.rpc.close({ op: 'close' }, 5000);
  }
}

// ---------------------------------------------------------------- the dispatcher (child processes)

interface DispatcherProc {
  proc: ChildProcess;
  url: string;
  name: string;
  /** CPU seconds last seen (kept after the process is gone). */
  cpu: number;
}

const instances: DispatcherProc[] = [];

async function spawnDispatcher(env: Record<string, string>, name: string): Promise<DispatcherProc> {
  const port = await freePort();
  const nodeArgs = (process.env.BENCH_DISPATCHER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc = spawnService(
    name,
    'services/dispatcher/src/main.ts',
    { ...env, FANOUT_PORT: String(port), FANOUT_NODE: name },
    [],
    nodeArgs,
  );
  const d: DispatcherProc = { proc, url: `http://127.0.0.1:${port}`, name, cpu: 0 };
  instances.push(d);
  await waitReady(proc, `${d.url}/readyz`, 90_000);
  return d;
}

function sampleDispatcherCpu(): void {
  for (const d of instances) {
    const c = d.proc.pid ? cpuSeconds(d.proc.pid) : null;
    if (c !== null) d.cpu = c;
  }
}

/** CPU seconds of every dispatcher process so far (killed ones: as last sampled, every 200 ms). */
function dispatcherCpu(): number {
  sampleDispatcherCpu();
  return instances.reduce((a, d) => a + d.cpu, 0);
}

async function scrape(url: string): Promise<string> {
  try {
    return await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  } catch {
    return '';
  }
}

/** The dispatcher counters a phase reports: [label, metric, label match]. */
const COUNTERS: [string, string, string | undefined][] = [
  ['attempts success', 'fanout_webhook_attempts_total', 'result="success"'],
  ['http_error', 'fanout_webhook_attempts_total', 'result="http_error"'],
  ['timeout', 'fanout_webhook_attempts_total', 'result="timeout"'],
  ['network_error', 'fanout_webhook_attempts_total', 'result="network_error"'],
  ['deliveries delivered', 'fanout_webhook_deliveries_total', 'outcome="delivered"'],
  ['retry_scheduled', 'fanout_webhook_deliveries_total', 'outcome="retry_scheduled"'],
  ['deferred', 'fanout_webhook_deliveries_total', 'outcome="deferred"'],
  ['dead_lettered', 'fanout_webhook_deliveries_total', 'outcome="dead_lettered"'],
  ['consumer pauses', 'fanout_webhook_consumer_pauses_total', undefined],
];

function counters(text: string): number[] {
  return COUNTERS.map(([, name, match]) => metricSum(text, name, match));
}

/**
 * Counter increments over a phase, across dispatcher restarts: each instance counts from 0, so
 * what an instance counted up to its last scrape (just before its kill) is added up.
 */
class CounterSpan {
  private acc = COUNTERS.map(() => 0);
  private base: number[];
  constructor(startText: string) {
    this.base = counters(startText);
  }
  /** The instance is going away after this scrape; the next one starts from 0. */
  instanceEnded(lastText: string): void {
    this.add(lastText);
    this.base = COUNTERS.map(() => 0);
  }
  end(text: string): string {
    this.add(text);
    return COUNTERS.map(([label], i) => `${label} ${this.acc[i]}`).join(', ');
  }
  private add(text: string): void {
    const c = counters(text);
    c.forEach((v, i) => (this.acc[i]! += v - this.base[i]!));
    this.base = c;
  }
}

// ---------------------------------------------------------------- Kafka broker process (for its CPU)

/** The pid of the local process listening on `port` (/proc/net/tcp*), or null (remote broker, or not ours). */
function pidListeningOn(port: number): number | null {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue;
      if (parseInt(f[1]!.split(':')[1]!, 16) === port) inodes.add(f[9]!);
    }
  }
  if (inodes.size === 0) return null;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return Number(pid);
      } catch {
        /* gone */
      }
    }
  }
  return null;
}

// ---------------------------------------------------------------- events

type PhaseName = 'warm-up' | 'healthy burst' | 'healthy steady' | 'fault';

interface Ev {
  phase: PhaseName;
  channel: string;
  partition: number;
  offset: number;
}

const events = new Map<string, Ev>();

function payload(seq: number): { seq: number; p: string } {
  const fixed = `{"seq":${seq},"p":""}`.length;
  return { seq, p: 'x'.repeat(Math.max(0, PAYLOAD_BYTES - fixed)) };
}

let seq = 0;
function makeEvents(prefix: string, n: number, channels: string[]): { id: string; channel: string; data: unknown }[] {
  const out: { id: string; channel: string; data: unknown }[] = [];
  for (let i = 0; i < n; i++) {
    const s = seq++;
    out.push({ id: `${prefix}-${i}`, channel: channels[(s * 7 + Math.floor(s / channels.length)) % channels.length]!, data: payload(s) });
  }
  return out;
}

// ---------------------------------------------------------------- CPU meter

interface PhaseCpu {
  dispatcher: number;
  receivers: number;
  bench: number;
  broker: number | null;
  machineCores: number;
  wallS: number;
}

/** Cores busy with anything but the dispatcher, the receivers, this process and the broker (other work on the machine). */
function otherCores(c: PhaseCpu): number {
  return Math.max(0, c.machineCores - (c.dispatcher + c.receivers + c.bench + (c.broker ?? 0)) / c.wallS);
}

function cpuMeter(receiversPid: number, brokerPid: number | null): () => PhaseCpu {
  const self = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const d0 = dispatcherCpu();
  const r0 = cpuSeconds(receiversPid) ?? 0;
  const b0 = self();
  const k0 = brokerPid ? cpuSeconds(brokerPid) : null;
  const m0 = machineJiffies();
  const w0 = performance.now();
  return () => {
    const m1 = machineJiffies();
    const k1 = brokerPid ? cpuSeconds(brokerPid) : null;
    return {
      dispatcher: dispatcherCpu() - d0,
      receivers: (cpuSeconds(receiversPid) ?? 0) - r0,
      bench: self() - b0,
      broker: k0 !== null && k1 !== null ? k1 - k0 : null,
      machineCores: m1.total > m0.total ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * availableParallelism() : 0,
      wallS: (performance.now() - w0) / 1000,
    };
  };
}

// ---------------------------------------------------------------- phases

interface Kill {
  /** When SIGKILL was sent (ms since the epoch). */
  at: number;
  /** Seconds into the fault phase. */
  intoS: number;
  /** fanout_webhook_requests_in_flight and _queued_deliveries scraped just before. */
  inFlightGauge: number | null;
  queuedGauge: number | null;
  /** The event group's committed offsets at the kill (partition -> offset; -1 none). */
  committed: Map<number, number>;
  /** From the SIGKILL until the new dispatcher answered /readyz 200, s. */
  restartS: number | null;
}

interface PhaseRun {
  name: PhaseName;
  events: number;
  /** When the first publish call was made (ms since the epoch). */
  startedAt: number;
  publishS: number;
  cpu: PhaseCpu | null;
  complete: boolean;
  metrics: string;
}

interface Ctx {
  publisher: PublisherClient;
  receivers: Receivers;
  brokerPid: number | null;
  channels: string[];
  endpoints: EndpointSpec[];
  /** Expected (event, endpoint) pairs so far. */
  expected: number;
  deadline: number;
  env: Record<string, string>;
  current: DispatcherProc;
  admin: ReturnType<Kafka['admin']>;
  topics: { broadcast: string; users: string };
  groupId: string;
  kills: Kill[];
  rows: ReceivedRows;
  /** The current phase's dispatcher counters. */
  span: CounterSpan | null;
}

function record(ctx: Ctx, phase: PhaseName, published: PublishedEvent[]): void {
  for (const p of published) {
    events.set(p.id, { phase, channel: p.channel, partition: p.partition, offset: p.offset });
    for (const ep of ctx.endpoints) if (matches(ep.patterns, p.channel)) ctx.expected++;
  }
}

function append(into: ReceivedRows, rows: ReceivedRows): void {
  for (const k of Object.keys(into) as (keyof ReceivedRows)[]) {
    const to = into[k] as unknown[];
    for (const v of rows[k] as unknown[]) to.push(v);
  }
}

/** Waits until the receivers have `ctx.expected` distinct pairs answered 2xx, or STALL_MS without progress, or the deadline. */
async function waitDelivered(ctx: Ctx, what: string): Promise<boolean> {
  let last = ctx.receivers.totals.pairs2xx;
  let lastProgress = Date.now();
  for (;;) {
    const got = ctx.receivers.totals.pairs2xx;
    if (got >= ctx.expected) return true;
    if (got !== last) {
      last = got;
      lastProgress = Date.now();
    }
    if (Date.now() - lastProgress > STALL_MS || Date.now() > ctx.deadline) {
      log(
        `${what}: INCOMPLETE, ${got}/${ctx.expected} pairs delivered, nothing new for ${((Date.now() - lastProgress) / 1000).toFixed(0)} s`,
      );
      return false;
    }
    await sleep(10);
  }
}

/** Waits until no request arrived for QUIET_MS (late duplicates, retries). */
async function waitQuietReceivers(ctx: Ctx): Promise<void> {
  const until = Math.min(ctx.deadline, Date.now() + 30_000);
  while (Date.now() < until) {
    const idle = now() - ctx.receivers.totals.lastAt;
    if (idle >= QUIET_MS && ctx.receivers.totals.open === 0) return;
    await sleep(100);
  }
}

/** Publishes `list` at `rate` events/s (one publish per event; the client batches per turn). */
async function paced(ctx: Ctx, list: { id: string; channel: string; data: unknown }[], rate: number, phase: PhaseName): Promise<void> {
  const start = performance.now();
  let sent = 0;
  const pending: Promise<void>[] = [];
  await new Promise<void>((resolve) => {
    const t = setInterval(() => {
      const due = Math.min(list.length, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
      const batch = list.slice(sent, due);
      sent = due;
      if (batch.length > 0) pending.push(ctx.publisher.publishBatch(batch).then((r) => record(ctx, phase, r)));
      if (sent >= list.length || Date.now() > ctx.deadline) {
        clearInterval(t);
        resolve();
      }
    }, 5);
  });
  await Promise.all(pending);
}

/** Cores busy machine-wide over `ms`, less what this benchmark's processes used. */
async function otherLoad(ctx: Ctx, ms: number): Promise<number> {
  const meter = cpuMeter(ctx.receivers.child.pid!, ctx.brokerPid);
  await sleep(ms);
  return otherCores(meter());
}

/** With --wait-quiet-s N: waits (at most N s) until other work on the machine uses under 0.3 cores. */
async function waitQuietMachine(ctx: Ctx, what: string): Promise<void> {
  let l = await otherLoad(ctx, 1000);
  const until = Date.now() + P.waitQuietS * 1000;
  while (P.waitQuietS > 0 && l >= 0.3 && Date.now() < until) l = await otherLoad(ctx, 1000);
  log(
    `${what}: other load before it ${l.toFixed(2)} cores${l >= 0.3 && P.waitQuietS > 0 ? ` (still busy after waiting ${P.waitQuietS} s)` : ''}`,
  );
}

async function runPhase(
  ctx: Ctx,
  name: PhaseName,
  n: number,
  publish: (list: { id: string; channel: string; data: unknown }[]) => Promise<void>,
  prefix: string,
): Promise<PhaseRun> {
  const list = makeEvents(prefix, n, ctx.channels);
  if (name !== 'warm-up') await waitQuietMachine(ctx, name);
  ctx.span = new CounterSpan(await scrape(ctx.current.url));
  const meter = cpuMeter(ctx.receivers.child.pid!, ctx.brokerPid);
  const startedAt = now();
  await publish(list);
  const publishS = (now() - startedAt) / 1000;
  const complete = await waitDelivered(ctx, name);
  const cpu = meter();
  await waitQuietReceivers(ctx);
  append(ctx.rows, await ctx.receivers.dump());
  const metrics = ctx.span.end(await scrape(ctx.current.url));
  log(
    `${name}: ${n} events published in ${publishS.toFixed(2)} s; ${complete ? 'all' : 'NOT all'} expected pairs delivered (${ctx.receivers.totals.pairs2xx}/${ctx.expected}); dispatcher CPU ${cpu.dispatcher.toFixed(2)} s, receivers ${cpu.receivers.toFixed(2)} s, bench ${cpu.bench.toFixed(2)} s, broker ${cpu.broker?.toFixed(2) ?? '?'} s, machine ${cpu.machineCores.toFixed(2)} cores over ${cpu.wallS.toFixed(2)} s; dispatcher metrics: ${metrics}`,
  );
  return { name, events: n, startedAt, publishS, cpu, complete, metrics };
}

async function committedOffsets(ctx: Ctx): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  try {
    const r = await ctx.admin.fetchOffsets({ groupId: ctx.groupId, topics: [ctx.topics.broadcast] });
    for (const t of r) for (const p of t.partitions) out.set(p.partition, Number(p.offset));
  } catch (err) {
    log(`could not read the committed offsets: ${String(err)}`);
  }
  return out;
}

/** Kills the dispatcher (SIGKILL), records what the kill interrupted, starts a new one. */
async function killAndRestart(ctx: Ctx, phaseStart: number, k: number): Promise<void> {
  const text = await scrape(ctx.current.url);
  ctx.span?.instanceEnded(text);
  const gauge = (name: string) => (text ? metricSum(text, name) : null);
  sampleDispatcherCpu();
  const old = ctx.current;
  const exited = new Promise<void>((r) =>
    old.proc.exitCode !== null || old.proc.signalCode !== null ? r() : old.proc.once('exit', () => r()),
  );
  const at = now();
  old.proc.kill('SIGKILL');
  await exited;
  const kill: Kill = {
    at,
    intoS: (at - phaseStart) / 1000,
    inFlightGauge: gauge('fanout_webhook_requests_in_flight'),
    queuedGauge: gauge('fanout_webhook_queued_deliveries'),
    committed: new Map(),
    restartS: null,
  };
  ctx.kills.push(kill);
  kill.committed = await committedOffsets(ctx);
  log(
    `kill ${k}: SIGKILL ${old.name} (pid ${old.proc.pid}) ${kill.intoS.toFixed(1)} s into the fault phase; in flight ${kill.inFlightGauge}, queued ${kill.queuedGauge}; restarting`,
  );
  ctx.current = await spawnDispatcher(ctx.env, `${old.name.replace(/-r\d+$/, '')}-r${k}`);
  kill.restartS = (now() - at) / 1000;
  log(`kill ${k}: ${ctx.current.name} ready ${kill.restartS.toFixed(1)} s after the kill`);
}

async function faultPhase(ctx: Ctx): Promise<PhaseRun> {
  const flaky = ctx.endpoints.filter((e) => e.flaky).map((e) => e.index);
  await ctx.receivers.mode(P.failFraction, flaky);
  const n = P.events;
  const spanMs = (n / P.faultRate) * 1000;
  let phaseStart = 0;
  const killer = async () => {
    let readyAt = now();
    for (let k = 1; k <= P.kills; k++) {
      const planned = phaseStart + (k * spanMs) / (P.kills + 1);
      // Not before the previous restart has been delivering for 2 s.
      const at = Math.max(planned, readyAt + 2000);
      while (now() < at) await sleep(5);
      if (Date.now() > ctx.deadline) return;
      await killAndRestart(ctx, phaseStart, k);
      readyAt = now();
    }
  };
  let killing: Promise<void> = Promise.resolve();
  const run = await runPhase(
    ctx,
    'fault',
    n,
    async (list) => {
      phaseStart = now();
      killing = killer();
      await paced(ctx, list, P.faultRate, 'fault');
      await killing;
    },
    'f',
  );
  return run;
}

// ---------------------------------------------------------------- analysis

interface Arrival {
  /** When its connection was accepted. */
  conn: number;
  start: number;
  end: number;
  status: number;
  attempt: number;
  pub: number;
}

interface Row {
  label: string;
  endpoints: number;
  events: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  unexplained: number;
  failed: number;
  retries: number;
  lat: number[];
  deliveriesPerS: number | null;
  sigNote?: string;
}

function pct(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))]!;
}

interface Analysis {
  rows: Row[];
  byPhase: Map<PhaseName, Row>;
  unexpectedPairs: number;
  perKill: { dups: number; reRead: number; retryRecord: number; inFlight: number; inFlightAtKill: number; uncommittedDelivered: number }[];
  totals: { expected: number; delivered: number; lost: number; duplicates: number; unexplained: number };
  lostSample: string[];
  /** Duplicates no kill explains: the pair's requests, times in s from the first kill. */
  unexplainedSample: string[];
}

function analyse(ctx: Ctx, phases: PhaseRun[]): Analysis {
  const r = ctx.rows;
  const pairs = new Map<string, Arrival[]>();
  for (let i = 0; i < r.ep.length; i++) {
    const key = `${r.ep[i]}|${r.id[i]}`;
    let list = pairs.get(key);
    if (!list) pairs.set(key, (list = []));
    list.push({ conn: r.conn[i]!, start: r.start[i]!, end: r.end[i]!, status: r.status[i]!, attempt: r.attempt[i]!, pub: r.pub[i]! });
  }
  for (const list of pairs.values()) list.sort((a, b) => a.start - b.start);

  // A request was in flight at a kill when the killed process sent it (its connection is older
  // than the kill) and the receivers got it after the kill, had not answered it, or answered it
  // less than IN_FLIGHT_SLACK_MS before (the dispatcher may not have read the answer).
  const inFlightAt = (k: Kill, x: { conn: number; start: number; end: number }) =>
    x.conn < k.at && (x.start > k.at || x.end < 0 || x.end > k.at - IN_FLIGHT_SLACK_MS);
  const perKill = ctx.kills.map((k) => {
    let inFlightAtKill = 0;
    for (let i = 0; i < r.ep.length; i++) if (inFlightAt(k, { conn: r.conn[i]!, start: r.start[i]!, end: r.end[i]! })) inFlightAtKill++;
    return { dups: 0, reRead: 0, retryRecord: 0, inFlight: 0, inFlightAtKill, uncommittedDelivered: 0 };
  });

  const mk = (label: string, endpoints: number): Row => ({
    label,
    endpoints,
    events: 0,
    expected: 0,
    delivered: 0,
    lost: 0,
    duplicates: 0,
    unexplained: 0,
    failed: 0,
    retries: 0,
    lat: [],
    deliveriesPerS: null,
  });
  const byKey = new Map<string, Row>();
  const row = (label: string, endpoints: number) => {
    let x = byKey.get(label);
    if (!x) byKey.set(label, (x = mk(label, endpoints)));
    return x;
  };
  const lastOk = new Map<PhaseName, number>();
  const seenPairs = new Set<string>();
  const lostSample: string[] = [];
  const unexplainedSample: string[] = [];
  const flakyCount = ctx.endpoints.filter((e) => e.flaky).length;
  const phaseEvents = new Map<PhaseName, number>();

  for (const [id, ev] of events) {
    phaseEvents.set(ev.phase, (phaseEvents.get(ev.phase) ?? 0) + 1);
    for (const ep of ctx.endpoints) {
      if (!matches(ep.patterns, ev.channel)) continue;
      const key = `${ep.index}|${id}`;
      seenPairs.add(key);
      const rowsFor: Row[] = [row(ev.phase, ctx.endpoints.length)];
      if (ev.phase === 'fault' && flakyCount > 0)
        rowsFor.push(
          row(ep.flaky ? 'fault: flaky endpoints' : 'fault: healthy endpoints', ep.flaky ? flakyCount : ctx.endpoints.length - flakyCount),
        );
      const a = pairs.get(key) ?? [];
      const okIdx = a.findIndex((x) => x.status < 300);
      const failed = a.filter((x) => x.status >= 300).length;
      const retries = okIdx >= 0 ? okIdx : Math.max(0, a.length - 1);
      const firstLat = a.length > 0 ? a[0]!.start - a[0]!.pub : NaN;
      let dups = 0;
      let unexplained = 0;
      if (okIdx >= 0) {
        const firstOk = a[okIdx]!;
        lastOk.set(ev.phase, Math.max(lastOk.get(ev.phase) ?? 0, firstOk.start));
        // Would a kill re-read this pair? (delivered by a process killed later, its event at or past the commit)
        ctx.kills.forEach((k, i) => {
          if (firstOk.conn < k.at && !inFlightAt(k, firstOk) && ev.offset >= (k.committed.get(ev.partition) ?? -1))
            perKill[i]!.uncommittedDelivered++;
        });
        // What each kill may have repeated for this pair, one delivery each (the kill must come
        // after a process attempted the pair): its 2xx in flight at the kill, its event at or past
        // the committed offset (re-read from the event topic), a failed attempt before it (its
        // retry record re-read from a retry topic, besides the event's own redelivery).
        const allowance = ctx.kills.map((k) => ({
          inFlight: a.some((y) => y.status < 300 && inFlightAt(k, y)) ? 1 : 0,
          reRead: a[0]!.conn < k.at && ev.offset >= (k.committed.get(ev.partition) ?? -1) ? 1 : 0,
          retryRecord: a.some((y) => y.conn < k.at && y.status >= 300) ? 1 : 0,
        }));
        for (const x of a.slice(okIdx + 1)) {
          if (x.status >= 300) continue;
          dups++;
          let explained = false;
          for (let i = ctx.kills.length - 1; i >= 0 && !explained; i--) {
            const k = ctx.kills[i]!;
            if (!(a[0]!.conn < k.at && k.at < x.conn)) continue;
            const al = allowance[i]!;
            const pk = perKill[i]!;
            for (const why of ['inFlight', 'reRead', 'retryRecord'] as const) {
              if (al[why] > 0) {
                al[why]--;
                pk[why]++;
                pk.dups++;
                explained = true;
                break;
              }
            }
          }
          if (!explained) {
            unexplained++;
            if (unexplainedSample.length < 12) {
              const rel = (t: number) => (t < 0 ? '-' : ((t - (ctx.kills[0]?.at ?? 0)) / 1000).toFixed(3));
              unexplainedSample.push(
                `${id} (${ev.channel}, partition ${ev.partition} offset ${ev.offset}; committed at the kills ${ctx.kills.map((k) => k.committed.get(ev.partition)).join(', ')}) -> endpoint ${ep.index}: ` +
                  a
                    .map((y) => `[attempt ${y.attempt} status ${y.status} conn ${rel(y.conn)} start ${rel(y.start)} end ${rel(y.end)}]`)
                    .join(' '),
              );
            }
          }
        }
      } else if (lostSample.length < 10) {
        lostSample.push(
          `${id} (${ev.channel}) -> endpoint ${ep.index}: ${a.length} attempts${a.length ? `, last status ${a[a.length - 1]!.status}` : ''}`,
        );
      }
      for (const x of rowsFor) {
        x.expected++;
        if (okIdx >= 0) x.delivered++;
        else x.lost++;
        x.duplicates += dups;
        x.unexplained += unexplained;
        x.failed += failed;
        x.retries += retries;
        if (Number.isFinite(firstLat)) x.lat.push(firstLat);
      }
    }
  }
  let unexpectedPairs = 0;
  for (const key of pairs.keys()) if (!seenPairs.has(key)) unexpectedPairs++;

  for (const [label, x] of byKey) {
    const phase = (label.startsWith('fault') ? 'fault' : label) as PhaseName;
    x.events = phaseEvents.get(phase) ?? 0;
    x.lat.sort((p, q) => p - q);
  }
  for (const ph of phases) {
    const x = byKey.get(ph.name);
    const end = lastOk.get(ph.name);
    if (x && end) x.deliveriesPerS = x.delivered / ((end - ph.startedAt) / 1000);
  }
  const order: string[] = ['warm-up', 'healthy burst', 'healthy steady', 'fault: healthy endpoints', 'fault: flaky endpoints', 'fault'];
  const rows = order.map((l) => byKey.get(l)).filter((x): x is Row => x !== undefined);
  const phaseRows = rows.filter((x) => !x.label.startsWith('fault:'));
  const sum = (f: (x: Row) => number) => phaseRows.reduce((a, x) => a + f(x), 0);
  return {
    rows,
    byPhase: new Map(phaseRows.map((x) => [x.label as PhaseName, x])),
    unexpectedPairs,
    perKill,
    totals: {
      expected: sum((x) => x.expected),
      delivered: sum((x) => x.delivered),
      lost: sum((x) => x.lost),
      duplicates: sum((x) => x.duplicates),
      unexplained: sum((x) => x.unexplained),
    },
    lostSample,
    unexplainedSample,
  };
}

// ---------------------------------------------------------------- report

function report(ctx: Ctx, phases: PhaseRun[], a: Analysis, brokerSource: string): void {
  const out: string[] = [''];
  const flaky = ctx.endpoints.filter((e) => e.flaky).length;
  out.push(
    `webhooks benchmark: E=${P.endpoints} endpoints (${flaky} flaky in the fault phase: 500 to ${(P.failFraction * 100).toFixed(0)}% of first attempts), M=${P.events} events per measured phase (+${P.warmup} warm-up, ${Math.round(P.steadyRate * P.steadyS)} steady), ` +
      `${ctx.channels.length} channels, retry schedule ${P.retrySchedule}, ${P.kills} SIGKILL(s) in the fault phase; Kafka: ${brokerSource}; ${process.platform}/${process.arch}, node ${process.version}, ${availableParallelism()} cores`,
  );
  out.push('');
  out.push(
    'Deliveries per phase (a delivery = one event to one endpoint whose pattern matches; first-attempt latency = arrival of the first attempt at the endpoint - the publish call, ms):',
  );
  out.push(
    table([
      [
        'phase',
        'endpoints',
        'events',
        'expected',
        'delivered',
        'lost',
        'duplicates',
        'failed attempts',
        'retries',
        'p50 first ms',
        'p99 first ms',
        'deliveries/s',
      ],
      ...a.rows.map((x) => [
        x.label === 'healthy burst' ? 'healthy burst (deliveries/s = healthy rate)' : x.label,
        fmt(x.endpoints),
        fmt(x.events),
        fmt(x.expected),
        fmt(x.delivered),
        fmt(x.lost),
        fmt(x.duplicates),
        fmt(x.failed),
        fmt(x.retries),
        fmt(pct(x.lat, 0.5)),
        fmt(pct(x.lat, 0.99)),
        fmt(x.deliveriesPerS),
      ]),
    ]),
  );
  out.push('');
  out.push(
    'CPU per phase (seconds of utime+stime, /proc/<pid>/stat; machine = cores busy on average, /proc/stat; publish->last first 2xx wall time):',
  );
  out.push(
    table([
      [
        'phase',
        'wall s',
        'publish s',
        'dispatcher CPU s',
        'dispatcher cores',
        'deliveries/dispatcher-CPU-s',
        'receivers CPU s',
        'bench (publisher) CPU s',
        'broker CPU s',
        'machine cores busy',
        'other load (cores)',
      ],
      ...phases
        .filter((p) => p.cpu)
        .map((p) => {
          const c = p.cpu!;
          const x = a.byPhase.get(p.name);
          return [
            p.name,
            fmt(c.wallS, 2),
            fmt(p.publishS, 2),
            fmt(c.dispatcher, 2),
            fmt(c.dispatcher / c.wallS, 2),
            fmt(x && c.dispatcher > 0 ? x.delivered / c.dispatcher : null),
            fmt(c.receivers, 2),
            fmt(c.bench, 2),
            fmt(c.broker, 2),
            fmt(c.machineCores, 2),
            fmt(otherCores(c), 2),
          ];
        }),
    ]),
  );
  if (ctx.kills.length > 0) {
    out.push('');
    out.push(
      "Kills (fault phase): in flight = the dispatcher's fanout_webhook_requests_in_flight scraped just before the kill / requests the killed process sent that the receivers got after the kill, had not answered, or answered < 5 ms before it; " +
        "delivered-uncommitted = pairs the killed process delivered whose event was at or past its partition's committed offset at the kill (the next process re-reads them):",
    );
    out.push(
      table([
        [
          'kill',
          'at s',
          'in flight (dispatcher gauge / receivers)',
          'queued',
          'delivered-uncommitted',
          'duplicates explained',
          'of which re-read event / retry record / in flight',
          'kill -> ready s',
        ],
        ...ctx.kills.map((k, i) => {
          const pk = a.perKill[i]!;
          return [
            String(i + 1),
            fmt(k.intoS, 1),
            `${fmt(k.inFlightGauge)} / ${fmt(pk.inFlightAtKill)}`,
            fmt(k.queuedGauge),
            fmt(pk.uncommittedDelivered),
            fmt(pk.dups),
            `${fmt(pk.reRead)} / ${fmt(pk.retryRecord)} / ${fmt(pk.inFlight)}`,
            fmt(k.restartS, 1),
          ];
        }),
      ]),
    );
  }
  out.push('');
  const t = ctx.receivers.totals;
  out.push(
    `signatures verified (standardwebhooks, every ${P.verifyEvery === 1 ? '' : `${P.verifyEvery}th `}request): ${fmt(t.sigOk)} ok, ${fmt(t.sigFail)} failed; requests ${fmt(t.requests)}`,
  );
  for (const p of phases)
    out.push(`dispatcher metrics, ${p.name}${p.name === 'fault' ? ' (every instance, each up to its last scrape)' : ''}: ${p.metrics}`);
  const warnings: string[] = [];
  if (a.totals.lost > 0) warnings.push(`${a.totals.lost} pairs lost, e.g. ${a.lostSample.join('; ')}`);
  if (a.totals.unexplained > 0) {
    warnings.push(`${a.totals.unexplained} duplicates with no kill to explain them (details on stderr)`);
    for (const u of a.unexplainedSample) log(`unexplained duplicate: ${u}`);
  }
  if (a.unexpectedPairs > 0) warnings.push(`${a.unexpectedPairs} (event, endpoint) pairs delivered that no pattern matches`);
  if (t.sigFail > 0) warnings.push(`${t.sigFail} signatures did not verify`);
  for (const p of phases) if (!p.complete) warnings.push(`${p.name} did not complete`);
  for (const p of phases)
    if (p.cpu && p.name !== 'warm-up' && otherCores(p.cpu) > 0.3)
      warnings.push(`${p.name} shared the machine with ${otherCores(p.cpu).toFixed(2)} cores of other load`);
  for (const w of warnings) out.push(`WARNING: ${w}`);
  out.push('');
  const burst = a.byPhase.get('healthy burst');
  const steady = a.byPhase.get('healthy steady');
  const latRow = steady && steady.lat.length > 0 ? steady : burst;
  const json = {
    bench: 'webhooks',
    endpoints: P.endpoints,
    events: P.events,
    delivered: a.totals.delivered,
    lost: a.totals.lost,
    duplicates: a.totals.duplicates,
    deliveries_per_s: burst?.deliveriesPerS ? Math.round(burst.deliveriesPerS) : null,
    p99_first_attempt_ms: latRow && latRow.lat.length > 0 ? Math.round(pct(latRow.lat, 0.99)!) : null,
    dispatcher_restarts: ctx.kills.length,
  };
  out.push(
    `JSON: delivered/lost/duplicates over every phase; deliveries_per_s = healthy burst; p99_first_attempt_ms = ${latRow === steady ? 'healthy steady' : 'healthy burst'} phase.`,
  );
  process.stdout.write(out.join('\n') + '\n' + JSON.stringify(json) + '\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const started = Date.now();
  const deadline = started + P.timeoutS * 1000;
  log(`params ${JSON.stringify(P)}; CLK_TCK=${CLK_TCK}`);

  let broker: BrokerHandle | null = null;
  let publisher: PublisherClient | null = null;
  let receivers: Receivers | null = null;
  let admin: ReturnType<Kafka['admin']> | null = null;
  let runTopics: string[] = [];
  let failed = false;
  let cpuTimer: NodeJS.Timeout | null = null;
  try {
    broker = await getBroker({ log: (m) => log(`kafka: ${m}`) });
    // KAFKA_BROKERS and, for a local broker, topic replication 1 / min.insync 1 for the children and this process.
    Object.assign(process.env, broker.env);
    log(`kafka ${broker.source} ${broker.brokers.join(',')}`);
    const port = Number(broker.brokers[0]!.split(':').pop());
    const host = broker.brokers[0]!.split(':')[0]!;
    const brokerPid = ['127.0.0.1', 'localhost'].includes(host) ? pidListeningOn(port) : null;
    log(`broker pid ${brokerPid ?? 'unknown (not a local process)'}`);

    const id = randomBytes(4).toString('hex');
    const base = `bench.${id}`;
    const topics = { broadcast: `${base}.broadcast`, users: `${base}.users` };
    const retrySteps = P.retrySchedule.split(',').filter(Boolean).length;
    const dispatcherTopics = {
      FANOUT_TOPIC_BROADCAST: topics.broadcast,
      FANOUT_TOPIC_USERS: topics.users,
      FANOUT_TOPIC_ENDPOINTS: `${base}.wh-endpoints`,
      FANOUT_TOPIC_RETRY_PREFIX: `${base}.wh-retry`,
      FANOUT_TOPIC_DEAD_LETTERS: `${base}.wh-dead-letters`,
    };
    runTopics = [
      topics.broadcast,
      topics.users,
      dispatcherTopics.FANOUT_TOPIC_ENDPOINTS,
      dispatcherTopics.FANOUT_TOPIC_DEAD_LETTERS,
      ...Array.from({ length: retrySteps }, (_, i) => `${dispatcherTopics.FANOUT_TOPIC_RETRY_PREFIX}.${i}`),
    ];
    const groupId = `${base}.dispatcher`;
    const logger = pino({ name: 'bench', level: process.env.FANOUT_LOG_LEVEL ?? 'warn' }, process.stderr);
    publisher = new PublisherClient({ brokers: broker.brokers, logger, clientId: 'fanout-bench-webhooks', topics });
    await publisher.connect();
    admin = new Kafka({
      brokers: broker.brokers,
      clientId: 'fanout-bench-webhooks-admin',
      logLevel: logLevel.NOTHING,
      ...kafkajsSecurity(),
    }).admin();
    await admin.connect();

    const { endpoints, channels } = layout(P.endpoints);
    receivers = new Receivers();
    const ports = await receivers.start(endpoints.map((e) => e.secret));
    log(`${ports.length} receivers listening (pid ${receivers.child.pid})`);

    const env: Record<string, string> = {
      FANOUT_BROKERS: broker.brokers.join(','),
      FANOUT_API_KEYS: API_KEY,
      FANOUT_LOG_LEVEL: process.env.FANOUT_LOG_LEVEL ?? 'warn',
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
      ...dispatcherTopics,
      FANOUT_GROUP_ID: groupId,
      FANOUT_START_FROM: 'earliest',
      FANOUT_RETRY_SCHEDULE: P.retrySchedule,
      FANOUT_ALLOWED_TARGETS: '127.0.0.0/8',
      FANOUT_REQUEST_TIMEOUT_MS: '5000',
      // The broker's minimum: a killed dispatcher's partitions move to its replacement sooner.
      FANOUT_SESSION_TIMEOUT_MS: '6000',
      FANOUT_SHUTDOWN_GRACE_MS: '3000',
    };
    const t0 = Date.now();
    const first = await spawnDispatcher(env, `dispatcher-${id}`);
    log(`dispatcher pid ${first.proc.pid} ready in ${Date.now() - t0} ms`);
    cpuTimer = setInterval(sampleDispatcherCpu, 200);

    for (const ep of endpoints) {
      const res = await fetch(`${first.url}/v1/endpoints`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          url: `http://127.0.0.1:${ports[ep.index]}/hook`,
          channels: ep.patterns,
          secret: ep.secret,
          description: `bench endpoint ${ep.index}${ep.flaky ? ' (flaky)' : ''}`,
        }),
      });
      const body = (await res.json()) as { id?: string };
      if (res.status !== 201 || !body.id) throw new Error(`creating endpoint ${ep.index}: ${res.status} ${JSON.stringify(body)}`);
      ep.id = body.id;
    }
    log(`${endpoints.length} endpoints created`);

    const ctx: Ctx = {
      publisher,
      receivers,
      brokerPid,
      channels,
      endpoints,
      expected: 0,
      deadline,
      env,
      current: first,
      admin,
      topics,
      groupId,
      kills: [],
      rows: { ep: [], id: [], start: [], end: [], status: [], attempt: [], conn: [], pub: [] },
      span: null,
    };
    const phases: PhaseRun[] = [];
    const burst = (phase: PhaseName) => async (list: { id: string; channel: string; data: unknown }[]) =>
      record(ctx, phase, await ctx.publisher.publishBatch(list));

    await receivers.mode(0, []);
    if (P.warmup > 0) phases.push(await runPhase(ctx, 'warm-up', P.warmup, burst('warm-up'), 'w'));
    phases.push(await runPhase(ctx, 'healthy burst', P.events, burst('healthy burst'), 'h'));
    const steadyN = Math.round(P.steadyRate * P.steadyS);
    if (steadyN > 0)
      phases.push(await runPhase(ctx, 'healthy steady', steadyN, (list) => paced(ctx, list, P.steadyRate, 'healthy steady'), 's'));
    phases.push(await faultPhase(ctx));

    const analysis = analyse(ctx, phases);
    report(ctx, phases, analysis, `${broker.source} ${broker.brokers.join(',')}`);
    failed = analysis.totals.lost > 0 || analysis.totals.unexplained > 0 || receivers.totals.sigFail > 0 || phases.some((p) => !p.complete);
  } catch (err) {
    failed = true;
    log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    if (cpuTimer) clearInterval(cpuTimer);
    for (const d of instances) await stopChild(d.proc, 5000).catch(() => {});
    await receivers?.close().catch(() => {});
    await publisher?.disconnect().catch(() => {});
    await admin?.disconnect().catch(() => {});
    await stopAll(3000);
    if (broker && runTopics.length > 0) await deleteTopics(broker.brokers, runTopics);
    await broker?.stop().catch(() => {});
  }
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return failed ? 1 : 0;
}

runBench(main, P.timeoutS + 30);
