/**
 * Fan-out benchmark: one gateway, C WebSocket clients on one broadcast channel, messages published
 * through Kafka; compared, in the same run and on the same workload, with a plain `ws` server fed
 * by a kafkajs consumer (bench/baseline-ws-server.ts). See docs/benchmarks.md.
 *
 * For each server (gateway, then baseline), each in its own child process:
 *   1. connect C clients (bounded parallel batches), each subscribes to `bench:ticks`;
 *   2. warm-up: W messages, delivered and not counted;
 *   3. burst: M messages of 100-byte data in one PublisherClient.publishBatch; the server's CPU
 *      (utime+stime from /proc/<pid>/stat) is read before the publish and after the clients have
 *      received every delivery: deliveries_per_cpu_s = deliveries / server CPU-seconds;
 *   4. steady: R messages/s for S seconds; latency of each delivery = client receipt (Date.now())
 *      minus the envelope's `ts` (the publisher's timestamp, ms).
 *
 * Parameters (flag, or env): --c / BENCH_C connections (2000), --m / BENCH_M burst messages (500),
 * --r / BENCH_R steady rate per s (100), --steady-s / BENCH_STEADY_S (10), --warmup / BENCH_WARMUP
 * (50), BENCH_CLIENT_IMPL (raw: minimal RFC 6455 clients on TCP sockets, default; ws: npm ws), --baseline-steady / BENCH_BASELINE_STEADY (1; 0 skips the baseline's steady phase),
 * --only / BENCH_ONLY (gateway|baseline|both), --clients / BENCH_CLIENTS (local: all clients in
 * this process, which also publishes; worker: all in one child process; split: half and half),
 * --connect-parallel / BENCH_CONNECT_PARALLEL (100), --wait-quiet-s / BENCH_WAIT_QUIET_S (0: before
 * each measured phase, wait up to N s for the machine's load to fall under 0.3 cores),
 * --timeout-s / BENCH_TIMEOUT_S (overall bound, 480).
 * BENCH_GATEWAY_NODE_ARGS / BENCH_BASELINE_NODE_ARGS: extra node flags for the child (e.g. --cpu-prof).
 *
 * Kafka: KAFKA_BROKERS if set, else getBroker() starts one (and stops it at the end).
 * Output: a table on stdout, then, as the very last line, one JSON object.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { pino } from 'pino';
import { getBroker, freePort, type BrokerHandle } from '@fanout/kafka';
import { PublisherClient } from '@fanout/publisher';
import { ClientPool, MAX_LAT_MS, type FromWorker, type SideStats, type ToWorker } from './client-pool.js';
import {
  CLK_TCK,
  cpuSeconds,
  cpuTimes,
  deleteTopics,
  log,
  runBench,
  machineJiffies,
  numParam,
  sleep,
  spawnService,
  stopAll,
  stopChild,
  strParam,
  waitReady,
  WorkerRpc,
  waitDeliveries as waitFor,
} from './processes.js';
import { fmt, table } from './report.js';

const CHANNEL = 'bench:ticks';
const PAYLOAD_BYTES = 100;

// ---------------------------------------------------------------- parameters

const P = {
  connections: Math.floor(numParam(['--c', '--connections'], 'BENCH_C', 2000)),
  messages: Math.floor(numParam(['--m', '--messages'], 'BENCH_M', 500)),
  rate: numParam(['--r', '--rate'], 'BENCH_R', 100),
  steadyS: numParam(['--steady-s'], 'BENCH_STEADY_S', 10),
  warmup: Math.floor(numParam(['--warmup'], 'BENCH_WARMUP', 50)),
  baselineSteady: numParam(['--baseline-steady'], 'BENCH_BASELINE_STEADY', 1) !== 0,
  timeoutS: numParam(['--timeout-s'], 'BENCH_TIMEOUT_S', 480),
  connectParallel: Math.max(1, Math.floor(numParam(['--connect-parallel'], 'BENCH_CONNECT_PARALLEL', 100))),
  clients: strParam('--clients', 'BENCH_CLIENTS', 'local') as ClientMode,
  waitQuietS: numParam(['--wait-quiet-s'], 'BENCH_WAIT_QUIET_S', 0),
  only: strParam('--only', 'BENCH_ONLY', 'both'),
};
if (!['both', 'gateway', 'baseline'].includes(P.only)) throw new Error('--only: gateway, baseline or both');
if (!['local', 'worker', 'split'].includes(P.clients)) throw new Error('--clients: local, worker or split');

/** Bound on one phase's wait when deliveries stop progressing. */
const STALL_MS = 15_000;

// ---------------------------------------------------------------- CPU of a child process

function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// ---------------------------------------------------------------- children

// ---------------------------------------------------------------- clients

/** One process's share of the clients: in this process, or in a client worker (IPC). */
interface ClientSide {
  readonly received: number;
  connect(url: string, n: number): Promise<void>;
  measure(on: boolean): Promise<void>;
  mark(): Promise<void>;
  stats(expectedSinceMark: number): Promise<SideStats>;
  close(): Promise<void>;
  /** CPU seconds of the process these clients run in. */
  cpuSeconds(): number;
}

class LocalSide implements ClientSide {
  private pool: ClientPool | null = null;
  get received(): number {
    return this.pool?.received ?? 0;
  }
  async connect(url: string, n: number): Promise<void> {
    this.pool = new ClientPool(n, CHANNEL);
    await this.pool.connect(url, P.connectParallel);
  }
  async measure(on: boolean): Promise<void> {
    this.pool?.setMeasuring(on);
  }
  async mark(): Promise<void> {
    this.pool?.mark();
  }
  async stats(expected: number): Promise<SideStats> {
    return this.pool ? this.pool.stats(expected) : { received: 0, short: 0, latency: [], closes: {} };
  }
  async close(): Promise<void> {
    await this.pool?.close();
  }
  cpuSeconds(): number {
    return selfCpuSeconds();
  }
}

class RemoteSide implements ClientSide {
  received = 0;
  private readonly rpc = new WorkerRpc<ToWorker, FromWorker>('clients', 'bench/client-worker.ts', (m) => {
    if (m.op === 'progress') this.received = m.received;
  });

  private request(m: ToWorker): Promise<FromWorker> {
    return this.rpc.request(m);
  }

  async connect(url: string, n: number): Promise<void> {
    await this.request({ op: 'connect', url, n, channel: CHANNEL, parallel: P.connectParallel });
  }
  async measure(on: boolean): Promise<void> {
    await this.request({ op: 'measure', on });
  }
  async mark(): Promise<void> {
    await this.request({ op: 'mark' });
  }
  async stats(expected: number): Promise<SideStats> {
    const m = await this.request({ op: 'stats', expected });
    if (m.op !== 'stats') throw new Error('client worker: unexpected answer');
    this.received = m.stats.received;
    return m.stats;
  }
  async close(): Promise<void> {
    await this.rpc.close({ op: 'close' }, 8000);
  }
  cpuSeconds(): number {
    return cpuSeconds(this.rpc.child.pid!) ?? 0;
  }
}

/**
 * Where the clients run: `local` all in this process (which also publishes), `worker` all in one
 * client worker process, `split` half here and half in one worker.
 */
type ClientMode = 'local' | 'worker' | 'split';

/** All clients of one run, over one or two processes. */
class Clients {
  readonly sides: ClientSide[];
  constructor(mode: ClientMode) {
    this.sides = mode === 'split' ? [new LocalSide(), new RemoteSide()] : mode === 'worker' ? [new RemoteSide()] : [new LocalSide()];
  }
  get received(): number {
    let n = 0;
    for (const s of this.sides) n += s.received;
    return n;
  }
  async connect(url: string, n: number): Promise<void> {
    const k = this.sides.length;
    await Promise.all(this.sides.map((s, i) => s.connect(url, Math.floor(n / k) + (i < n % k ? 1 : 0))));
  }
  async measure(on: boolean): Promise<void> {
    await Promise.all(this.sides.map((s) => s.measure(on)));
  }
  async mark(): Promise<void> {
    await Promise.all(this.sides.map((s) => s.mark()));
  }
  /** Exact received total (asks the worker), clients off their expected count, merged latency. */
  async stats(expectedSinceMark: number): Promise<{ received: number; short: number; hist: Float64Array; closes: Record<string, number> }> {
    const all = await Promise.all(this.sides.map((s) => s.stats(expectedSinceMark)));
    const hist = new Float64Array(MAX_LAT_MS + 1);
    const closes: Record<string, number> = {};
    for (const st of all) {
      for (const [ms, n] of st.latency) hist[ms]! += n;
      for (const [code, n] of Object.entries(st.closes)) closes[code] = (closes[code] ?? 0) + n;
    }
    return { received: all.reduce((a, s) => a + s.received, 0), short: all.reduce((a, s) => a + s.short, 0), hist, closes };
  }
  cpuSeconds(): number {
    return this.sides.reduce((a, s) => a + s.cpuSeconds(), 0);
  }
  async close(): Promise<void> {
    await Promise.all(this.sides.map((s) => s.close().catch(() => {})));
  }
}

function percentile(hist: Float64Array, p: number): number | null {
  let total = 0;
  for (let i = 0; i < hist.length; i++) total += hist[i]!;
  if (total === 0) return null;
  const want = Math.ceil(total * p);
  let acc = 0;
  for (let i = 0; i < hist.length; i++) {
    acc += hist[i]!;
    if (acc >= want) return i;
  }
  return MAX_LAT_MS;
}

/** Waits until the clients' received total reaches `target`; gives up after STALL_MS without progress or at `deadline`. */
const waitDeliveries = (clients: Clients, target: number, deadline: number) => waitFor(clients, target, deadline, STALL_MS);

// ---------------------------------------------------------------- machine CPU (to see the noise)

// ---------------------------------------------------------------- gateway metrics (diagnostics)

type Buckets = Map<number, number>;

/** Cumulative buckets of fanout_gateway_fanout_latency_seconds (publish -> queued on the gateway). */
async function scrapeFanoutLatency(metricsUrl: string): Promise<Buckets | null> {
  try {
    const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text();
    const out: Buckets = new Map();
    for (const m of text.matchAll(/^fanout_gateway_fanout_latency_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\S+)$/gm)) {
      out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
    }
    return out;
  } catch {
    return null;
  }
}

/** The bucket bound (ms) under which fraction p of the observations between two scrapes fell. */
function bucketPercentile(a: Buckets, b: Buckets, p: number): number | null {
  const les = [...b.keys()].sort((x, y) => x - y);
  const total = (b.get(Infinity) ?? 0) - (a.get(Infinity) ?? 0);
  if (total <= 0) return null;
  for (const le of les) if ((b.get(le) ?? 0) - (a.get(le) ?? 0) >= total * p) return le * 1000;
  return Infinity;
}

// ---------------------------------------------------------------- workload

function payload(seq: number): { seq: number; p: string } {
  // JSON of exactly PAYLOAD_BYTES: {"seq":N,"p":"xxx..."}
  const fixed = `{"seq":${seq},"p":""}`.length;
  return { seq, p: 'x'.repeat(Math.max(0, PAYLOAD_BYTES - fixed)) };
}

let seq = 0;
function events(n: number): { channel: string; data: unknown }[] {
  const out: { channel: string; data: unknown }[] = [];
  for (let i = 0; i < n; i++) out.push({ channel: CHANNEL, data: payload(seq++) });
  return out;
}

interface PhaseCpu {
  /** Server child process CPU seconds (user + system). */
  server: number;
  /** Of which in the kernel (stime): mostly socket writes. */
  serverSys: number;
  /** Client processes (this one, which also publishes, and the client worker if any). */
  clients: number;
  /** Cores busy machine-wide on average over the phase (/proc/stat), everything included. */
  machineCores: number;
  wallS: number;
}

interface ServerResult {
  name: string;
  connections: number;
  messages: number;
  expected: number;
  deliveries: number;
  shortClients: number;
  cpu: PhaseCpu;
  deliveriesPerCpuS: number;
  steady: null | {
    rate: number;
    messages: number;
    expected: number;
    deliveries: number;
    shortClients: number;
    cpu: PhaseCpu;
    p50: number | null;
    p90: number | null;
    p99: number | null;
    max: number | null;
    /** Gateway only: publish -> queued on the gateway (its own histogram; bucket upper bounds, ms). */
    kafkaPathP50: number | null;
    kafkaPathP99: number | null;
  };
  closes: Record<string, number>;
}

function cpuMeter(pid: number, clients: Clients): () => PhaseCpu {
  const s0 = cpuTimes(pid)!;
  const c0 = clients.cpuSeconds();
  const m0 = machineJiffies();
  const w0 = performance.now();
  return () => {
    const m1 = machineJiffies();
    const wallS = (performance.now() - w0) / 1000;
    const cores = navigatorCores() || 1;
    const s1 = cpuTimes(pid)!;
    return {
      server: Math.max(0, s1.user + s1.sys - s0.user - s0.sys),
      serverSys: Math.max(0, s1.sys - s0.sys),
      clients: clients.cpuSeconds() - c0,
      machineCores: m1.total > m0.total ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * cores : 0,
      wallS,
    };
  };
}

/** Cores busy with anything but the server and the clients (the Kafka broker, other work on the machine). */
function otherCores(c: PhaseCpu): number {
  return Math.max(0, c.machineCores - (c.server + c.clients) / c.wallS);
}

function cpuNote(c: PhaseCpu): string {
  return `server CPU ${c.server.toFixed(2)} s (${c.serverSys.toFixed(2)} s system), client CPU ${c.clients.toFixed(2)} s, machine ${c.machineCores.toFixed(2)} cores busy (others ${otherCores(c).toFixed(2)}) over ${c.wallS.toFixed(2)} s`;
}

/** Cores busy machine-wide over `ms`. */
async function machineLoad(ms: number): Promise<number> {
  const a = machineJiffies();
  await sleep(ms);
  const b = machineJiffies();
  return b.total > a.total ? ((b.busy - a.busy) / (b.total - a.total)) * navigatorCores() : 0;
}

/** With --wait-quiet-s N: waits (at most N s) until the machine's other load is under 0.3 cores. */
async function waitQuiet(what: string): Promise<void> {
  const load = await machineLoad(1000);
  if (P.waitQuietS <= 0 || load < 0.3) {
    log(`${what}: machine load before it ${load.toFixed(2)} cores`);
    return;
  }
  const until = Date.now() + P.waitQuietS * 1000;
  let l = load;
  while (Date.now() < until && l >= 0.3) l = await machineLoad(1000);
  log(`${what}: machine load before it ${l.toFixed(2)} cores${l >= 0.3 ? ` (still busy after waiting ${P.waitQuietS} s)` : ''}`);
}

async function runServer(
  name: string,
  pid: number,
  wsUrl: string,
  publisher: PublisherClient,
  withSteady: boolean,
  deadline: number,
  metricsUrl: string | null,
): Promise<ServerResult> {
  const C = P.connections;
  const clients = new Clients(P.clients);
  try {
    const t0 = Date.now();
    await clients.connect(wsUrl, C);
    log(`${name}: ${C} clients connected and subscribed in ${Date.now() - t0} ms (clients: ${P.clients})`);

    // Warm-up (JIT, buffers): delivered, not counted.
    if (P.warmup > 0) {
      const target = clients.received + C * P.warmup;
      await publisher.publishBatch(events(P.warmup));
      const ok = await waitDeliveries(clients, target, deadline);
      log(`${name}: warm-up ${P.warmup} messages ${ok ? 'delivered' : `INCOMPLETE (${clients.received}/${target})`}`);
      await sleep(500);
    }

    // Burst: CPU from just before the publish to the last delivery.
    await waitQuiet(`${name} burst`);
    const M = P.messages;
    await clients.mark();
    const before = (await clients.stats(0)).received;
    const batch = events(M);
    const meter = cpuMeter(pid, clients);
    const w0 = performance.now();
    await publisher.publishBatch(batch);
    const acked = performance.now() - w0;
    const complete = await waitDeliveries(clients, before + C * M, deadline);
    const cpu = meter();
    const burst = await clients.stats(M);
    const deliveries = burst.received - before;
    log(
      `${name}: burst ${M} msgs -> ${deliveries}/${C * M} deliveries${complete ? '' : ' INCOMPLETE'} (publish acked after ${acked.toFixed(0)} ms); ${cpuNote(cpu)}`,
    );

    const result: ServerResult = {
      name,
      connections: C,
      messages: M,
      expected: C * M,
      deliveries,
      shortClients: burst.short,
      cpu,
      deliveriesPerCpuS: cpu.server > 0 ? deliveries / cpu.server : 0,
      steady: null,
      closes: {},
    };

    if (withSteady && P.rate > 0 && P.steadyS > 0) {
      await waitQuiet(`${name} steady`);
      const total = Math.max(1, Math.round(P.rate * P.steadyS));
      await clients.mark();
      const sBefore = (await clients.stats(0)).received;
      const h0 = metricsUrl ? await scrapeFanoutLatency(metricsUrl) : null;
      await clients.measure(true);
      const meter = cpuMeter(pid, clients);
      const start = performance.now();
      let sent = 0;
      const pending: Promise<unknown>[] = [];
      const tickMs = Math.max(1, Math.min(10, Math.floor(1000 / P.rate)));
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * P.rate) + 1);
          while (sent < due) {
            pending.push(publisher.publish({ channel: CHANNEL, data: payload(seq++) }));
            sent++;
          }
          if (sent >= total || Date.now() > deadline) {
            clearInterval(t);
            resolve();
          }
        }, tickMs);
      });
      await Promise.all(pending);
      const ok = await waitDeliveries(clients, sBefore + C * sent, Math.min(deadline, Date.now() + 30_000));
      const cpu = meter();
      await clients.measure(false);
      const st = await clients.stats(sent);
      const h1 = metricsUrl ? await scrapeFanoutLatency(metricsUrl) : null;
      result.steady = {
        rate: P.rate,
        messages: sent,
        expected: C * sent,
        deliveries: st.received - sBefore,
        shortClients: st.short,
        cpu,
        p50: percentile(st.hist, 0.5),
        p90: percentile(st.hist, 0.9),
        p99: percentile(st.hist, 0.99),
        max: percentile(st.hist, 1),
        kafkaPathP50: h0 && h1 ? bucketPercentile(h0, h1, 0.5) : null,
        kafkaPathP99: h0 && h1 ? bucketPercentile(h0, h1, 0.99) : null,
      };
      const r = result.steady;
      log(
        `${name}: steady ${sent} msgs at ${P.rate}/s -> ${r.deliveries}/${r.expected} deliveries${ok ? '' : ' INCOMPLETE'}, p50 ${r.p50} ms, p90 ${r.p90} ms, p99 ${r.p99} ms, max ${r.max} ms` +
          (r.kafkaPathP50 !== null
            ? `; publish->gateway (histogram buckets) p50 <= ${r.kafkaPathP50} ms, p99 <= ${r.kafkaPathP99} ms`
            : '') +
          `; ${cpuNote(cpu)}`,
      );
      result.closes = st.closes;
    } else {
      result.closes = burst.closes;
    }
    return result;
  } finally {
    await clients.close();
  }
}

// ---------------------------------------------------------------- report

function report(results: ServerResult[], brokerSource: string): void {
  const out: string[] = [];
  out.push('');
  out.push(
    `fan-out benchmark: C=${P.connections} connections, burst M=${P.messages} x ${PAYLOAD_BYTES}-byte payloads (after ${P.warmup} warm-up), steady R=${P.rate}/s for ${P.steadyS} s; ` +
      `clients: ${P.clients === 'local' ? 'in the bench process (with the publisher)' : P.clients === 'worker' ? 'in one worker process (publisher in the bench process)' : 'split between the bench process and one worker'} (${process.env.BENCH_CLIENT_IMPL === 'ws' ? 'npm ws clients' : 'raw RFC 6455 clients'}); Kafka: ${brokerSource}; ${process.platform}/${process.arch}, node ${process.version}, ${navigatorCores()} cores`,
  );
  out.push('');
  out.push('Burst (server CPU = the server child process, utime+stime from /proc/<pid>/stat; machine = all cores busy, /proc/stat):');
  out.push(
    table([
      [
        'server',
        'connections',
        'messages',
        'deliveries',
        'expected',
        'server CPU s',
        'deliveries/CPU-s',
        'wall s',
        'deliveries/wall-s',
        'client CPU s',
        'other load (cores)',
      ],
      ...results.map((r) => [
        r.name,
        fmt(r.connections),
        fmt(r.messages),
        fmt(r.deliveries),
        fmt(r.expected),
        fmt(r.cpu.server, 2),
        fmt(r.deliveriesPerCpuS),
        fmt(r.cpu.wallS, 2),
        fmt(r.deliveries / r.cpu.wallS),
        fmt(r.cpu.clients, 2),
        fmt(otherCores(r.cpu), 2),
      ]),
    ]),
  );
  const steady = results.filter((r) => r.steady);
  if (steady.length > 0) {
    out.push('');
    out.push('Steady (latency = client receipt - envelope ts, per delivery, 1 ms resolution; CPU as % of one core):');
    out.push(
      table([
        [
          'server',
          'rate/s',
          'messages',
          'deliveries',
          'expected',
          'p50 ms',
          'p90 ms',
          'p99 ms',
          'max ms',
          'server CPU %',
          'client CPU %',
          'other load (cores)',
          'publish->gateway p50/p99 ms',
        ],
        ...steady.map((r) => {
          const s = r.steady!;
          return [
            r.name,
            fmt(s.rate),
            fmt(s.messages),
            fmt(s.deliveries),
            fmt(s.expected),
            fmt(s.p50),
            fmt(s.p90),
            fmt(s.p99),
            fmt(s.max),
            fmt((100 * s.cpu.server) / s.cpu.wallS),
            fmt((100 * s.cpu.clients) / s.cpu.wallS),
            fmt(otherCores(s.cpu), 2),
            s.kafkaPathP50 === null ? '-' : `<=${s.kafkaPathP50} / <=${s.kafkaPathP99}`,
          ];
        }),
      ]),
    );
  }
  const gw = results.find((r) => r.name === 'gateway');
  const bl = results.find((r) => r.name === 'baseline');
  if (gw && bl && bl.deliveriesPerCpuS > 0)
    out.push('', `gateway / baseline deliveries per CPU-s: ${(gw.deliveriesPerCpuS / bl.deliveriesPerCpuS).toFixed(1)}x`);
  for (const r of results) {
    const notes: string[] = [];
    if (r.deliveries !== r.expected) notes.push(`${r.expected - r.deliveries} burst deliveries missing`);
    if (r.shortClients > 0) notes.push(`${r.shortClients} clients did not get exactly ${r.messages} burst messages`);
    if (r.steady && r.steady.deliveries !== r.steady.expected)
      notes.push(`${r.steady.expected - r.steady.deliveries} steady deliveries missing`);
    if (r.steady && r.steady.shortClients > 0)
      notes.push(`${r.steady.shortClients} clients did not get exactly ${r.steady.messages} steady messages`);
    if (Object.keys(r.closes).length > 0) notes.push(`clients closed by the server: ${JSON.stringify(r.closes)}`);
    if (otherCores(r.cpu) > 0.3) notes.push(`burst shared the machine with ${otherCores(r.cpu).toFixed(2)} cores of other load`);
    if (r.steady && otherCores(r.steady.cpu) > 0.3)
      notes.push(`steady phase shared the machine with ${otherCores(r.steady.cpu).toFixed(2)} cores of other load (latency is inflated)`);
    if (notes.length > 0) out.push(`WARNING ${r.name}: ${notes.join('; ')}`);
  }
  out.push('');
  const round = (n: number | null | undefined) => (n === null || n === undefined || !Number.isFinite(n) ? null : Math.round(n));
  const json = {
    bench: 'fanout',
    connections: P.connections,
    messages: P.messages,
    payload_bytes: PAYLOAD_BYTES,
    deliveries_per_cpu_s: round(gw?.deliveriesPerCpuS),
    baseline_deliveries_per_cpu_s: round(bl?.deliveriesPerCpuS),
    p50_ms: gw?.steady?.p50 ?? null,
    p99_ms: gw?.steady?.p99 ?? null,
  };
  process.stdout.write(out.join('\n') + '\n' + JSON.stringify(json) + '\n');
}

let coresCache = 0;
function navigatorCores(): number {
  if (coresCache) return coresCache;
  coresCache = availableParallelism();
  return coresCache;
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const started = Date.now();
  const deadline = started + P.timeoutS * 1000;
  log(`params ${JSON.stringify(P)}; CLK_TCK=${CLK_TCK}`);

  let broker: BrokerHandle | null = null;
  let publisher: PublisherClient | null = null;
  let runTopics: string[] = [];
  const results: ServerResult[] = [];
  let failed: unknown = null;
  try {
    broker = await getBroker({ log: (m) => log(`kafka: ${m}`) });
    // The gateway and the in-process publisher reach it with what it says (one replica for a local broker).
    Object.assign(process.env, broker.env);
    log(`kafka ${broker.source} ${broker.brokers.join(',')}`);

    const id = randomBytes(4).toString('hex');
    const topics = { broadcast: `bench.${id}.broadcast`, users: `bench.${id}.users` };
    const logger = pino({ name: 'bench', level: process.env.FANOUT_LOG_LEVEL ?? 'warn' }, process.stderr);
    publisher = new PublisherClient({ brokers: broker.brokers, logger, clientId: 'fanout-bench', topics });
    runTopics = [topics.broadcast, topics.users];
    await publisher.connect();
    log(`topics ${topics.broadcast}, ${topics.users}`);

    // Per-connection queues must hold a whole burst: the limits are a slow-consumer guard, not
    // part of what is measured.
    const queueMax = Math.max(10_000, 2 * (P.messages + P.warmup) + Math.ceil(P.rate * P.steadyS));
    const queueBytes = Math.max(4 * 1024 * 1024, queueMax * 1024);
    // The gateway-wide memory budget counts a shared frame once per queue holding it; a burst
    // queues C x M frames at once. Raised so that it neither pauses Kafka nor sheds queues here.
    const budgetBytes = Math.max(256 * 1024 * 1024, 2 * P.connections * queueMax * 512);

    if (P.only !== 'baseline') {
      const port = await freePort();
      const env = {
        FANOUT_BROKERS: broker.brokers.join(','),
        FANOUT_PORT: String(port),
        FANOUT_REGION: 'bench',
        FANOUT_NODE: `gw-bench-${id}`,
        FANOUT_LOG_LEVEL: 'warn',
        FANOUT_TOPIC_BROADCAST: topics.broadcast,
        FANOUT_TOPIC_USERS: topics.users,
        FANOUT_QUEUE_MAX_MESSAGES: String(queueMax),
        FANOUT_QUEUE_MAX_BYTES: String(queueBytes),
        FANOUT_MEMORY_BUDGET_BYTES: String(budgetBytes),
        FANOUT_SERVE_PAGE: 'false',
        FANOUT_DRAIN_JITTER_MS: '0',
        FANOUT_DRAIN_DELAY_MS: '100',
        FANOUT_SHUTDOWN_GRACE_MS: '10000',
      };
      const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
      const gw = spawnService('gateway', 'services/gateway/src/main.ts', env, [], nodeArgs);
      try {
        await waitReady(gw, `http://127.0.0.1:${port}/readyz`, 60_000);
        log(`gateway pid ${gw.pid} ready on ${port}`);
        results.push(
          await runServer(
            'gateway',
            gw.pid!,
            `ws://127.0.0.1:${port}/v1/ws`,
            publisher,
            true,
            deadline,
            `http://127.0.0.1:${port}/metrics`,
          ),
        );
      } finally {
        await stopChild(gw);
      }
    }

    if (P.only !== 'gateway') {
      const port = await freePort();
      const nodeArgs = (process.env.BENCH_BASELINE_NODE_ARGS ?? '').split(' ').filter(Boolean);
      const bl = spawnService(
        'baseline',
        'bench/baseline-ws-server.ts',
        { BASELINE_BROKERS: broker.brokers.join(','), BASELINE_TOPIC: topics.broadcast, BASELINE_PORT: String(port) },
        [],
        nodeArgs,
      );
      try {
        await waitReady(bl, `http://127.0.0.1:${port}/readyz`, 60_000);
        log(`baseline pid ${bl.pid} ready on ${port}`);
        results.push(await runServer('baseline', bl.pid!, `ws://127.0.0.1:${port}/v1/ws`, publisher, P.baselineSteady, deadline, null));
      } finally {
        await stopChild(bl);
      }
    }
  } catch (err) {
    failed = err;
    log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    await publisher?.disconnect().catch(() => {});
    await stopAll(3000);
    if (broker && runTopics.length > 0) await deleteTopics(broker.brokers, runTopics);
    await broker?.stop().catch(() => {});
  }
  if (results.length > 0) report(results, broker ? `${broker.source} ${broker.brokers.join(',')}` : '?');
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return failed ? 1 : 0;
}

runBench(main, P.timeoutS + 30);
