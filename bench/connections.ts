/**
 * Connections per gateway (`npm run bench:connections`): N idle WebSocket connections on one
 * gateway, each subscribed to one broadcast channel, heartbeats on at the gateway's defaults
 * (FANOUT_IDLE_TIMEOUT_S 32: uWS pings and idle timeout) and clients answering as the SDK does
 * (pongs to WebSocket pings, `{"op":"ping"}` after half a heartbeat of silence; see
 * bench/connections-worker.ts). See docs/benchmarks.md and docs/operations.md.
 *
 * Phases, one gateway in a child process:
 *   1. ready and empty: RSS (/proc/<pid>/status), V8 heap used (its /metrics,
 *      fanout_nodejs_heap_size_used_bytes), open fds (/proc/<pid>/fd) and the fd limit
 *      (/proc/<pid>/limits); idle CPU with 0 connections over --idle0-s;
 *   2. ramp: N clients over --workers processes (each with its own fd limit), handshakes at most
 *      --parallel in flight per worker, retried as the SDK retries (503 Retry-After, backoff);
 *      connect rate = N / (first handshake started .. last `subscribed`); the gateway's
 *      admission rate (FANOUT_ADMISSION_RATE_PER_S, 2000/s by default) applies unless
 *      --admission-rate sets it;
 *   3. idle: after --settle-s, gateway CPU over --idle-s (default 32 s: one idle timeout, so every
 *      connection's heartbeat exchange happens in the window about twice); RSS and heap per
 *      connection = (value with N - value with 0) / N;
 *   4. broadcast: --broadcasts times, one message to the channel published through Kafka; time from
 *      the publish call to the last client's receipt (all clocks are this machine's), and
 *      deliveries per gateway CPU-second over the windows from publish to last receipt.
 *
 * Gateway CPU is read precisely from /proc/<pid>/task/<tid>/schedstat (ns of CPU, all threads),
 * with /proc/<pid>/stat (utime/stime in clock ticks) for the user/system split.
 *
 * Parameters (flag or env): --n / BENCH_N (connections; default 0 = 95% of the gateway's fd limit
 * minus the fds it has open when empty), --workers / BENCH_WORKERS (client processes, 4),
 * --sources / BENCH_SOURCES (loopback source addresses 127.0.0.10+; `auto`: none while N fits in
 * 60% of the ephemeral port range of one address pair, else enough for that), --parallel /
 * BENCH_CONNECT_PARALLEL (handshakes in flight per worker, 64), --admission-rate /
 * BENCH_ADMISSION_RATE (the gateway's FANOUT_ADMISSION_RATE_PER_S; empty: the gateway's default),
 * --idle-s / BENCH_IDLE_S (32), --idle0-s / BENCH_IDLE0_S (15), --settle-s / BENCH_SETTLE_S (5),
 * --broadcasts / BENCH_BROADCASTS (5), --timeout-s / BENCH_TIMEOUT_S (overall bound, 600).
 * Gateway settings pass through FANOUT_*; BENCH_GATEWAY_NODE_ARGS adds node flags to the gateway
 * (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`, then bench/profile-window.ts).
 * Kafka: KAFKA_BROKERS if set, else getBroker() starts one (and stops it at the end).
 *
 * Output: a table on stdout, then, as the very last line, one JSON object.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { pino } from 'pino';
import { freePort, getBroker, type BrokerHandle } from '@fanout/kafka';
import { PublisherClient } from '@fanout/publisher';
import { emptyTotals, type ConnFromWorker, type ConnToWorker, type ConnTotals } from './connections-ipc.js';
import {
  cpuSeconds,
  monoUs,
  cpuTimes,
  deleteTopics,
  log,
  machineJiffies,
  metricSum,
  numParam,
  rssBytes,
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

const CHANNEL = 'bench:conns';

const P = {
  n: Math.floor(numParam('--n', 'BENCH_N', 0)),
  workers: Math.max(1, Math.floor(numParam('--workers', 'BENCH_WORKERS', 4))),
  sources: strParam('--sources', 'BENCH_SOURCES', 'auto'),
  parallel: Math.max(1, Math.floor(numParam('--parallel', 'BENCH_CONNECT_PARALLEL', 64))),
  admissionRate: strParam('--admission-rate', 'BENCH_ADMISSION_RATE', ''),
  idleS: numParam('--idle-s', 'BENCH_IDLE_S', 32),
  idle0S: numParam('--idle0-s', 'BENCH_IDLE0_S', 15),
  settleS: numParam('--settle-s', 'BENCH_SETTLE_S', 5),
  broadcasts: Math.max(1, Math.floor(numParam('--broadcasts', 'BENCH_BROADCASTS', 5))),
  timeoutS: numParam('--timeout-s', 'BENCH_TIMEOUT_S', 600),
};
if (P.sources !== 'auto' && !/^\d+$/.test(P.sources))
  throw new Error(`--sources / BENCH_SOURCES: auto or a number, got ${JSON.stringify(P.sources)}`);
if (P.admissionRate !== '' && !/^\d+$/.test(P.admissionRate))
  throw new Error(`--admission-rate / BENCH_ADMISSION_RATE: a non-negative integer, got ${JSON.stringify(P.admissionRate)}`);

/** Share of the fd limit the default N takes (the rest: Kafka, the listen socket, /metrics scrapes, slack). */
const FD_SHARE = 0.95;
/** Share of one address pair's ephemeral ports used before clients spread over more source addresses. */
const PORT_SHARE = 0.6;
const CONNECT_TIMEOUT_MS = 240_000;
const BROADCAST_TIMEOUT_MS = 10_000;
/** Targets (issue 13): fds held, RSS per connection, idle CPU per 10,000, broadcast to all. */
const TARGET = { fdShare: 0.9, rssBytes: 4096, idlePctPer10k: 2, broadcastMs: 500 };

// ---------------------------------------------------------------- the gateway process, read from /proc

/** CPU seconds of every thread of a process, from the scheduler's ns counters (/proc/<pid>/task/<tid>/schedstat). */
function preciseCpuSeconds(pid: number): number {
  let ns = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended between the listing and the read
      }
    }
  } catch {
    return cpuSeconds(pid) ?? 0;
  }
  return ns > 0 ? ns / 1e9 : (cpuSeconds(pid) ?? 0);
}

/** CPU seconds of a process's main thread and of its other threads by name (/proc/<pid>/task/<tid>/comm and schedstat). */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const name =
          tid === String(pid) ? 'main thread' : `${readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()} (other threads)`;
        const s = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e9;
        out.set(name, (out.get(name) ?? 0) + s);
      } catch {
        // the thread ended between the listing and the read
      }
    }
  } catch {
    // the process is gone
  }
  return out;
}

/** Per thread name, the CPU between two threadCpu() readings, in % of one core over `s` seconds, busiest first. */
function threadNote(a: Map<string, number>, b: Map<string, number>, s: number): string {
  return [...b]
    .map(([k, v]) => [k, v - (a.get(k) ?? 0)] as const)
    .filter(([, v]) => v > 0.0005)
    .sort((x, y) => y[1] - x[1])
    .map(([k, v]) => `${k} ${((100 * v) / s).toFixed(2)}%`)
    .join(', ');
}

/** Context switches of a process's main thread so far: how often its event loop slept and woke. */
function mainThreadSwitches(pid: number): number {
  try {
    const st = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
    return Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0) + Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** The soft limit on open files of a process (/proc/<pid>/limits). */
function fdLimit(pid: number): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  if (!m) throw new Error(`no "Max open files" in /proc/${pid}/limits`);
  return Number(m[1]);
}

function ephemeralPorts(): number {
  const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  return hi! - lo! + 1;
}

/**
 * Kernel memory of the socket-related slab caches, machine-wide (both ends of a loopback
 * connection count); null without read access to /proc/slabinfo.
 */
function socketSlabBytes(): number | null {
  const caches = new Set([
    'TCP',
    'sock_inode_cache',
    'filp',
    'dentry',
    'eventpoll_epi',
    'eventpoll_pwq',
    'tcp_bind_bucket',
    'tcp_bind2_bucket',
  ]);
  try {
    let bytes = 0;
    for (const line of readFileSync('/proc/slabinfo', 'utf8').split('\n')) {
      const f = line.split(/\s+/);
      if (caches.has(f[0]!)) bytes += Number(f[1]) * Number(f[3]);
    }
    return bytes;
  } catch {
    return null;
  }
}

/** Median of a few samples of resident memory, `gapMs` apart (RSS moves with GC). */
async function rssSample(pid: number, samples = 5, gapMs = 200): Promise<number> {
  const v: number[] = [];
  for (let i = 0; i < samples; i++) {
    v.push(rssBytes(pid));
    if (i + 1 < samples) await sleep(gapMs);
  }
  return median(v)!;
}

function median(v: number[]): number | null {
  if (v.length === 0) return null;
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const metricsText = (url: string) => fetch(url, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text());

/** V8 heap used, the smallest of a few scrapes (closest to the live size between collections). */
async function heapUsed(url: string, samples = 3): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < samples; i++) {
    min = Math.min(min, metricSum(await metricsText(url), 'fanout_nodejs_heap_size_used_bytes'));
    if (i + 1 < samples) await sleep(500);
  }
  return min;
}

/** Cores busy machine-wide over a phase (/proc/stat), to see what else ran. */
function machineMeter(): () => number {
  const a = machineJiffies();
  return () => {
    const b = machineJiffies();
    return b.total > a.total ? ((b.busy - a.busy) / (b.total - a.total)) * availableParallelism() : 0;
  };
}

// ---------------------------------------------------------------- client workers

class Workers {
  readonly rpcs: WorkerRpc<ConnToWorker, ConnFromWorker>[] = [];
  readonly subscribed: number[];

  constructor(n: number) {
    this.subscribed = new Array<number>(n).fill(0);
    for (let w = 0; w < n; w++) {
      this.rpcs.push(
        new WorkerRpc<ConnToWorker, ConnFromWorker>(`clients-${w}`, 'bench/connections-worker.ts', (m) => {
          if (m.op === 'progress') this.subscribed[w] = m.subscribed;
        }),
      );
    }
  }

  get totalSubscribed(): number {
    return this.subscribed.reduce((a, b) => a + b, 0);
  }

  all(make: (w: number) => ConnToWorker): Promise<ConnFromWorker[]> {
    return Promise.all(this.rpcs.map((r, w) => r.request(make(w))));
  }

  cpuSeconds(): number {
    return this.rpcs.reduce((a, r) => a + (cpuSeconds(r.child.pid!) ?? 0), 0);
  }

  async totals(): Promise<ConnTotals> {
    const sum: ConnTotals = emptyTotals();
    for (const a of await this.all(() => ({ op: 'totals' }))) {
      if (a.op !== 'totals') continue;
      const t = a.totals;
      for (const k of ['clients', 'open', 'refused503', 'refusedOther', 'gaveUp', 'appPings', 'pongs', 'wsPings', 'silent'] as const)
        sum[k] += t[k];
      for (const [k, v] of Object.entries(t.netFailures)) sum.netFailures[k] = (sum.netFailures[k] ?? 0) + v;
      for (const [k, v] of Object.entries(t.closes)) sum.closes[k] = (sum.closes[k] ?? 0) + v;
    }
    return sum;
  }

  async close(): Promise<void> {
    await Promise.all(this.rpcs.map((r) => r.close({ op: 'close' }, 5000)));
  }
}

// ---------------------------------------------------------------- result

interface Broadcast {
  received: number;
  expected: number;
  firstMs: number | null;
  allMs: number | null;
  cpuS: number;
}

interface Result {
  n: number;
  fdLimit: number;
  fds0: number;
  fdsN: number;
  held: number;
  sources: string[];
  ramp: {
    s: number;
    rate: number;
    refused503: number;
    gatewayRefusedOverloaded: number;
    netFailures: Record<string, number>;
    gaveUp: number;
    gatewayCpuS: number;
    clientCpuS: number;
    machineCores: number;
  };
  rss0: number;
  rssN: number;
  heap0: number;
  heapN: number;
  slabPerConn: number | null;
  idle0: { s: number; cpuS: number };
  idle: { s: number; cpuS: number; userS: number; sysS: number; appPings: number; pongs: number; wsPings: number; machineCores: number };
  broadcasts: Broadcast[];
  closes: Record<string, number>;
  silent: number;
  admissionRate: string;
}

// ---------------------------------------------------------------- main

async function run(
  broker: BrokerHandle,
  publisher: PublisherClient,
  topics: { broadcast: string; users: string },
  id: string,
): Promise<Result> {
  const port = await freePort();
  const env: Record<string, string> = {
    FANOUT_BROKERS: broker.brokers.join(','),
    FANOUT_PORT: String(port),
    FANOUT_REGION: 'bench',
    FANOUT_NODE: `gw-conns-${id}`,
    FANOUT_LOG_LEVEL: process.env.FANOUT_LOG_LEVEL ?? 'warn',
    FANOUT_TOPIC_BROADCAST: topics.broadcast,
    FANOUT_TOPIC_USERS: topics.users,
    FANOUT_SERVE_PAGE: 'false',
    FANOUT_DRAIN_JITTER_MS: '0',
    FANOUT_DRAIN_DELAY_MS: '100',
    FANOUT_SHUTDOWN_GRACE_MS: '10000',
    ...(P.admissionRate !== '' ? { FANOUT_ADMISSION_RATE_PER_S: P.admissionRate } : {}),
  };
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const gw = spawnService('gateway', 'services/gateway/src/main.ts', env, [], nodeArgs);
  const pid = gw.pid!;
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  let workers: Workers | null = null;
  try {
    await waitReady(gw, `http://127.0.0.1:${port}/readyz`, 90_000);
    log(`gateway pid ${pid} ready on ${port}`);
    // One delivery path warm-up with nobody listening, then let start-up garbage go.
    await publisher.publish({ channel: CHANNEL, data: { warmup: true } });
    await sleep(3000);

    // 1. Empty.
    const limit = fdLimit(pid);
    const fds0 = openFds(pid);
    const c00 = preciseCpuSeconds(pid);
    const w00 = performance.now();
    const mono00 = monoUs();
    const th00 = threadCpu(pid);
    const sw00 = mainThreadSwitches(pid);
    await sleep(P.idle0S * 1000);
    const idle0 = { s: (performance.now() - w00) / 1000, cpuS: preciseCpuSeconds(pid) - c00 };
    log(
      `idle window, 0 connections: monotonic ${mono00}..${monoUs()} us; gateway threads: ${threadNote(th00, threadCpu(pid), idle0.s)}; main thread woke ${((mainThreadSwitches(pid) - sw00) / idle0.s).toFixed(0)} times/s`,
    );
    // Memory after the empty idle window, as the loaded figures are after theirs.
    const rss0 = await rssSample(pid);
    const heap0 = await heapUsed(metricsUrl);
    const slab0 = socketSlabBytes();
    const n = P.n > 0 ? P.n : Math.floor(FD_SHARE * limit) - fds0;
    log(
      `empty: fd limit ${limit}, ${fds0} fds open, RSS ${(rss0 / 1048576).toFixed(1)} MiB, heap used ${(heap0 / 1048576).toFixed(1)} MiB, idle CPU ${((100 * idle0.cpuS) / idle0.s).toFixed(2)}% of a core; N = ${n}`,
    );
    if (n + fds0 > limit)
      log(`WARNING: ${n} connections + ${fds0} fds open exceed the gateway's fd limit ${limit}: expect refused accepts`);

    const k =
      P.sources === 'auto' ? (n <= PORT_SHARE * ephemeralPorts() ? 0 : Math.ceil(n / (PORT_SHARE * ephemeralPorts()))) : Number(P.sources);
    const sources = Array.from({ length: k }, (_, i) => `127.0.0.${10 + i}`);

    // 2. Ramp.
    workers = new Workers(P.workers);
    const share = (w: number) => Math.floor(n / P.workers) + (w < n % P.workers ? 1 : 0);
    const gCpu0 = preciseCpuSeconds(pid);
    const cCpu0 = workers.cpuSeconds();
    const machine = machineMeter();
    const rampStart = Date.now();
    const progress = setInterval(
      () => log(`ramp: ${workers!.totalSubscribed} subscribed after ${((Date.now() - rampStart) / 1000).toFixed(0)} s`),
      3000,
    );
    let answers: ConnFromWorker[];
    try {
      answers = await workers.all((w) => ({
        op: 'connect',
        url: `ws://127.0.0.1:${port}/v1/ws`,
        channel: CHANNEL,
        n: share(w),
        sources,
        parallel: P.parallel,
        timeoutMs: CONNECT_TIMEOUT_MS,
      }));
    } finally {
      clearInterval(progress);
    }
    const connected = answers.filter((a): a is Extract<ConnFromWorker, { op: 'connected' }> => a.op === 'connected');
    const firstAt = Math.min(...connected.map((a) => a.firstAt));
    const lastAt = Math.max(...connected.map((a) => a.lastAt ?? a.firstAt));
    const rampS = (lastAt - firstAt) / 1000;
    const rampCores = machine();
    const rampGwCpu = preciseCpuSeconds(pid) - gCpu0;
    const rampClientCpu = workers.cpuSeconds() - cCpu0;
    const afterRamp = await workers.totals();
    const m1 = await metricsText(metricsUrl);
    const ramp = {
      s: rampS,
      rate: rampS > 0 ? afterRamp.open / rampS : 0,
      refused503: afterRamp.refused503,
      gatewayRefusedOverloaded: metricSum(m1, 'fanout_gateway_admission_refused_total', 'reason="overloaded"'),
      netFailures: afterRamp.netFailures,
      gaveUp: afterRamp.gaveUp,
      gatewayCpuS: rampGwCpu,
      clientCpuS: rampClientCpu,
      machineCores: rampCores,
    };
    log(
      `ramp: ${afterRamp.open}/${n} subscribed in ${rampS.toFixed(2)} s (${ramp.rate.toFixed(0)}/s); 503 refusals ${ramp.refused503} (gateway: ${ramp.gatewayRefusedOverloaded} overloaded); ` +
        `no HTTP answer ${JSON.stringify(ramp.netFailures)}; gave up ${ramp.gaveUp}; gateway CPU ${rampGwCpu.toFixed(2)} s, clients ${rampClientCpu.toFixed(2)} s, machine ${rampCores.toFixed(2)} cores; sources ${sources.length > 0 ? sources.join(',') : 'unbound'}`,
    );

    // 3. Idle.
    await sleep(P.settleS * 1000);
    const t0 = await workers.totals();
    const i0 = { cpu: preciseCpuSeconds(pid), ticks: cpuTimes(pid)!, at: performance.now() };
    const idleMachine = machineMeter();
    const mono0 = monoUs();
    const th0 = threadCpu(pid);
    const sw0 = mainThreadSwitches(pid);
    await sleep(P.idleS * 1000);
    const i1 = { cpu: preciseCpuSeconds(pid), ticks: cpuTimes(pid)!, at: performance.now() };
    log(
      `idle window, N connections: monotonic ${mono0}..${monoUs()} us; gateway threads: ${threadNote(th0, threadCpu(pid), (i1.at - i0.at) / 1000)}; main thread woke ${((mainThreadSwitches(pid) - sw0) / ((i1.at - i0.at) / 1000)).toFixed(0)} times/s`,
    );
    const idleCores = idleMachine();
    const t1 = await workers.totals();
    const idle = {
      s: (i1.at - i0.at) / 1000,
      cpuS: i1.cpu - i0.cpu,
      userS: i1.ticks.user - i0.ticks.user,
      sysS: i1.ticks.sys - i0.ticks.sys,
      appPings: t1.appPings - t0.appPings,
      pongs: t1.pongs - t0.pongs,
      wsPings: t1.wsPings - t0.wsPings,
      machineCores: idleCores,
    };
    const rssN = await rssSample(pid);
    const fdsN = openFds(pid);
    const slabN = socketSlabBytes();
    const m2 = await metricsText(metricsUrl);
    const held = metricSum(m2, 'fanout_gateway_connections', 'transport="websocket"');
    const heapN = await heapUsed(metricsUrl);
    log(
      `idle: gateway CPU ${idle.cpuS.toFixed(3)} s over ${idle.s.toFixed(1)} s (${((100 * idle.cpuS) / idle.s).toFixed(2)}% of a core; ticks: user ${idle.userS.toFixed(2)} s, system ${idle.sysS.toFixed(2)} s); ` +
        `client {"op":"ping"} ${idle.appPings}, pongs ${idle.pongs}, WebSocket pings from the gateway ${idle.wsPings}; machine ${idleCores.toFixed(2)} cores; ` +
        `gateway holds ${held} WebSockets, ${fdsN} fds; RSS ${(rssN / 1048576).toFixed(1)} MiB, heap ${(heapN / 1048576).toFixed(1)} MiB`,
    );

    // 4. Broadcasts.
    const broadcasts: Broadcast[] = [];
    const bTicks0 = cpuTimes(pid)!;
    let bTicks = { user: 0, sys: 0 };
    const bMono0 = monoUs();
    for (let b = 0; b < P.broadcasts; b++) {
      await sleep(2000);
      await workers.all(() => ({ op: 'arm' }));
      const waits = workers.all(() => ({ op: 'await-broadcast', timeoutMs: BROADCAST_TIMEOUT_MS }));
      const k0 = cpuTimes(pid)!;
      const c0 = preciseCpuSeconds(pid);
      const at = performance.timeOrigin + performance.now();
      await publisher.publish({ channel: CHANNEL, data: { b, at: Math.round(at) } });
      const got = (await waits).filter((a): a is Extract<ConnFromWorker, { op: 'broadcast' }> => a.op === 'broadcast');
      const cpuS = preciseCpuSeconds(pid) - c0;
      const k1 = cpuTimes(pid)!;
      bTicks = { user: bTicks.user + k1.user - k0.user, sys: bTicks.sys + k1.sys - k0.sys };
      const lasts = got.map((g) => g.lastAt).filter((x): x is number => x !== null);
      const firsts = got.map((g) => g.firstAt).filter((x): x is number => x !== null);
      const r: Broadcast = {
        received: got.reduce((a, g) => a + g.received, 0),
        expected: got.reduce((a, g) => a + g.expected, 0),
        firstMs: firsts.length ? Math.min(...firsts) - at : null,
        allMs: lasts.length ? Math.max(...lasts) - at : null,
        cpuS,
      };
      broadcasts.push(r);
      log(
        `broadcast ${b + 1}: ${r.received}/${r.expected} received; first after ${r.firstMs?.toFixed(1)} ms, all after ${r.allMs?.toFixed(1)} ms; gateway CPU ${(cpuS * 1000).toFixed(1)} ms`,
      );
    }

    log(
      `broadcasts: monotonic ${bMono0}..${monoUs()} us; gateway CPU in the windows (ticks): user ${bTicks.user.toFixed(2)} s, system ${bTicks.sys.toFixed(2)} s (all of the phase: ${(cpuTimes(pid)!.user - bTicks0.user).toFixed(2)} / ${(cpuTimes(pid)!.sys - bTicks0.sys).toFixed(2)} s)`,
    );
    const fin = await workers.totals();
    return {
      n,
      fdLimit: limit,
      fds0,
      fdsN,
      held,
      sources,
      ramp,
      rss0,
      rssN,
      heap0,
      heapN,
      slabPerConn: slab0 !== null && slabN !== null && afterRamp.open > 0 ? (slabN - slab0) / afterRamp.open : null,
      idle0,
      idle,
      broadcasts,
      closes: fin.closes,
      silent: fin.silent,
      admissionRate: P.admissionRate || '2000 (gateway default)',
    };
  } finally {
    await workers?.close();
    await stopChild(gw, 15_000);
  }
}

function report(r: Result, brokerSource: string): void {
  const perConn = (a: number, b: number) => (r.held > 0 ? (b - a) / r.held : NaN);
  const rssPer = perConn(r.rss0, r.rssN);
  const heapPer = perConn(r.heap0, r.heapN);
  const idlePct = (100 * r.idle.cpuS) / r.idle.s;
  const idle0Pct = (100 * r.idle0.cpuS) / r.idle0.s;
  const per10k = r.held > 0 ? (idlePct * 10_000) / r.held : NaN;
  const complete = r.broadcasts.filter((b) => b.received === b.expected && b.allMs !== null);
  const allMs = median(complete.map((b) => b.allMs!));
  const firstMs = median(complete.map((b) => b.firstMs!));
  const deliveries = r.broadcasts.reduce((a, b) => a + b.received, 0);
  const bcpu = r.broadcasts.reduce((a, b) => a + b.cpuS, 0);
  const perCpuS = bcpu > 0 ? deliveries / bcpu : NaN;
  const fdShare = r.held / r.fdLimit;
  const met = {
    fds: fdShare >= TARGET.fdShare,
    rss: rssPer <= TARGET.rssBytes,
    idle: per10k <= TARGET.idlePctPer10k,
    broadcast: allMs !== null && allMs <= TARGET.broadcastMs && complete.length === r.broadcasts.length,
  };
  const yes = (b: boolean) => (b ? 'met' : 'NOT met');
  const out: string[] = [];
  out.push('');
  out.push(
    `connections benchmark: N=${fmt(r.n)} WebSocket connections on one gateway, one broadcast channel, heartbeats at the gateway's defaults (idle timeout ${process.env.FANOUT_IDLE_TIMEOUT_S ?? '32'} s) answered as the SDK does; ` +
      `${P.workers} client processes, source addresses ${r.sources.length > 0 ? r.sources.join(', ') : 'unbound (127.0.0.1)'}; admission rate ${r.admissionRate}; Kafka: ${brokerSource}; node ${process.version}`,
  );
  out.push('');
  out.push(
    table([
      ['measure', 'value', 'target', ''],
      [
        'connections held (gateway gauge) / fd limit',
        `${fmt(r.held)} / ${fmt(r.fdLimit)} (${(100 * fdShare).toFixed(1)}%)`,
        `>= ${fmt(TARGET.fdShare * r.fdLimit)} (90%)`,
        yes(met.fds),
      ],
      ['gateway fds open: empty / with N', `${fmt(r.fds0)} / ${fmt(r.fdsN)}`, '', ''],
      ['connect rate (ramp, connections/s)', `${fmt(r.ramp.rate)} (${fmt(r.ramp.s, 2)} s)`, '', ''],
      [
        'ramp: 503 refusals / no HTTP answer / gave up',
        `${fmt(r.ramp.refused503)} / ${fmt(Object.values(r.ramp.netFailures).reduce((a, b) => a + b, 0))} / ${fmt(r.ramp.gaveUp)}`,
        '',
        '',
      ],
      ['ramp: gateway CPU per connection (us)', fmt((1e6 * r.ramp.gatewayCpuS) / Math.max(1, r.held), 0), '', ''],
      ['gateway RSS: empty / with N (MiB)', `${fmt(r.rss0 / 1048576, 1)} / ${fmt(r.rssN / 1048576, 1)}`, '', ''],
      ['RSS per connection (bytes)', fmt(rssPer), `<= ${fmt(TARGET.rssBytes)}`, yes(met.rss)],
      ['V8 heap used: empty / with N (MiB)', `${fmt(r.heap0 / 1048576, 1)} / ${fmt(r.heapN / 1048576, 1)}`, '', ''],
      ['V8 heap per connection (bytes)', fmt(heapPer), '', ''],
      ['kernel socket slabs per connection, both ends (bytes)', fmt(r.slabPerConn), '', ''],
      ['idle CPU, 0 connections (% of a core)', fmt(idle0Pct, 2), '', ''],
      [`idle CPU, N connections, ${fmt(r.idle.s, 0)} s (% of a core)`, fmt(idlePct, 2), '', ''],
      ['idle CPU per 10,000 connections (% of a core)', fmt(per10k, 2), `<= ${TARGET.idlePctPer10k}`, yes(met.idle)],
      [
        'idle: client pings / pongs / gateway WebSocket pings per s',
        `${fmt(r.idle.appPings / r.idle.s)} / ${fmt(r.idle.pongs / r.idle.s)} / ${fmt(r.idle.wsPings / r.idle.s)}`,
        '',
        '',
      ],
      [`broadcast to all, median of ${complete.length} (ms)`, fmt(allMs, 1), `<= ${TARGET.broadcastMs}`, yes(met.broadcast)],
      ['broadcast: first receipt, median (ms)', fmt(firstMs, 1), '', ''],
      ['broadcast: deliveries per gateway CPU-s', fmt(perCpuS), '', ''],
    ]),
  );
  out.push('');
  out.push(
    table([
      ['broadcast', 'received', 'expected', 'first ms', 'all ms', 'gateway CPU ms'],
      ...r.broadcasts.map((b, i) => [
        String(i + 1),
        fmt(b.received),
        fmt(b.expected),
        fmt(b.firstMs, 1),
        fmt(b.allMs, 1),
        fmt(b.cpuS * 1000, 1),
      ]),
    ]),
  );
  const notes: string[] = [];
  if (Object.keys(r.closes).length > 0) notes.push(`connections closed by the gateway after subscribing: ${JSON.stringify(r.closes)}`);
  if (r.silent > 0) notes.push(`${r.silent} clients heard nothing for 1.5 heartbeats`);
  if (r.held < r.n) notes.push(`${r.n - r.held} of ${r.n} connections not held`);
  if (r.idle.machineCores > 1.5)
    notes.push(
      `the idle window shared the machine with other work (${r.idle.machineCores.toFixed(2)} of ${availableParallelism()} cores busy)`,
    );
  for (const n of notes) out.push(`WARNING: ${n}`);
  out.push('');
  const round = (v: number | null, d = 0) => (v === null || !Number.isFinite(v) ? null : Math.round(v * 10 ** d) / 10 ** d);
  const json = {
    bench: 'connections',
    connections: r.held,
    fd_limit: r.fdLimit,
    rss_bytes_per_conn: round(rssPer),
    idle_cpu_pct: round(idlePct, 2),
    broadcast_all_received_ms: round(allMs, 1),
    deliveries_per_cpu_s: round(perCpuS),
    idle_cpu_pct_per_10k: round(per10k, 2),
    idle_cpu_pct_empty: round(idle0Pct, 2),
    heap_bytes_per_conn: round(heapPer),
    connect_rate_per_s: round(r.ramp.rate),
    admission_refusals: r.ramp.refused503,
    kernel_slab_bytes_per_conn_both_ends: round(r.slabPerConn),
    broadcast_first_received_ms: round(firstMs, 1),
    targets_met: met,
  };
  process.stdout.write(out.join('\n') + '\n' + JSON.stringify(json) + '\n');
}

async function main(): Promise<number> {
  const started = Date.now();
  log(`params ${JSON.stringify(P)}`);
  let broker: BrokerHandle | null = null;
  let publisher: PublisherClient | null = null;
  let runTopics: string[] = [];
  let result: Result | null = null;
  try {
    broker = await getBroker({ log: (m) => log(`kafka: ${m}`) });
    Object.assign(process.env, broker.env);
    const id = randomBytes(4).toString('hex');
    const topics = { broadcast: `bench.${id}.broadcast`, users: `bench.${id}.users` };
    publisher = new PublisherClient({
      brokers: broker.brokers,
      logger: pino({ name: 'bench', level: 'warn' }, process.stderr),
      clientId: 'fanout-bench-conns',
      topics,
    });
    runTopics = [topics.broadcast, topics.users];
    await publisher.connect();
    result = await run(broker, publisher, topics, id);
  } catch (err) {
    log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    await publisher?.disconnect().catch(() => {});
    await stopAll(3000);
    if (broker && runTopics.length > 0) await deleteTopics(broker.brokers, runTopics);
    await broker?.stop().catch(() => {});
  }
  if (result) report(result, broker ? `${broker.source} ${broker.brokers.join(',')}` : '?');
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result ? 0 : 1;
}

runBench(main, P.timeoutS);
