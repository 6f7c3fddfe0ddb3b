/**
 * Peers benchmark: fanout's gateway against Centrifugo, in the same run, on the bench:fanout
 * workload and an idle-memory workload. See docs/benchmarks.md ("Peers").
 *
 * For each server (fanout's gateway, then Centrifugo), one at a time, each in its own process:
 *   load: C clients on one channel (in one client worker process); W warm-up messages; a burst of
 *     M messages of 100-byte data written to Kafka in one request: deliveries per CPU-second of
 *     the server process (utime+stime from /proc/<pid>/stat); then R messages/s for S seconds:
 *     latency per delivery = client receipt minus the publisher's timestamp;
 *   idle: a fresh server process; its RSS with 0 connections, then with N subscribed idle
 *     connections (over several client workers and 127.0.0.x source addresses):
 *     bytes per connection = (RSS with N - RSS with 0) / N.
 * Both servers consume the same kind of Kafka records written by the same kind of producer
 * (kafkajs, idempotent, acks=all): fanout's record format for the gateway, Centrifugo's
 * publication data mode for Centrifugo (its own Kafka consumer, `consumers` in its config).
 *
 * Parameters (flag, or env): --c / BENCH_C (2000), --m / BENCH_M (500), --r / BENCH_R (100),
 * --steady-s / BENCH_STEADY_S (10), --warmup / BENCH_WARMUP (50), --idle-c / BENCH_IDLE_C (15000;
 * 0 skips the idle runs), --idle-workers / BENCH_IDLE_WORKERS (3), --idle-settle-s (5),
 * --only / BENCH_ONLY (fanout|centrifugo|both), --centrifugo-gomaxprocs /
 * BENCH_CENTRIFUGO_GOMAXPROCS (empty: Go's default, one per core), --connect-parallel (100),
 * --wait-quiet-s (0), --timeout-s (900).
 *
 * Kafka: KAFKA_BROKERS if set, else getBroker() starts one. Run it under the benchmark lock:
 *   flock /tmp/fanout-bench.lock npm run bench:peers
 * Output: tables on stdout, then, as the very last line, one JSON object.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { pino } from 'pino';
import { getBroker, freePort, type BrokerHandle } from '@fanout/kafka';
import { PublisherClient } from '@fanout/publisher';
import { MAX_LAT_MS, type ClientProtocol, type FromWorker, type PoolOptions, type SideStats, type ToWorker } from './client-pool.js';
import {
  cpuTimes,
  deleteTopics,
  log,
  machineJiffies,
  numParam,
  rssBytes,
  runBench,
  sleep,
  spawnService,
  stopAll,
  stopChild,
  strParam,
  waitReady,
  WorkerPool,
  WorkerRpc,
  waitDeliveries as waitFor,
} from './processes.js';
import {
  CentrifugoProducer,
  CENTRIFUGO_VERSION,
  centrifugoBinary,
  startCentrifugo,
  stopCentrifugo,
  threadCount,
  writeConfig,
} from './peers-centrifugo.js';
import { fmt, table } from './report.js';

const CHANNEL = 'bench:ticks';
const PAYLOAD_BYTES = 100;

const P = {
  connections: Math.floor(numParam(['--c', '--connections'], 'BENCH_C', 2000)),
  messages: Math.floor(numParam(['--m', '--messages'], 'BENCH_M', 500)),
  rate: numParam(['--r', '--rate'], 'BENCH_R', 100),
  steadyS: numParam(['--steady-s'], 'BENCH_STEADY_S', 10),
  warmup: Math.floor(numParam(['--warmup'], 'BENCH_WARMUP', 50)),
  idleConnections: Math.floor(numParam(['--idle-c'], 'BENCH_IDLE_C', 15_000)),
  idleWorkers: Math.max(1, Math.floor(numParam(['--idle-workers'], 'BENCH_IDLE_WORKERS', 3))),
  idleSettleS: numParam(['--idle-settle-s'], 'BENCH_IDLE_SETTLE_S', 5),
  only: strParam('--only', 'BENCH_ONLY', 'both'),
  gomaxprocs: strParam('--centrifugo-gomaxprocs', 'BENCH_CENTRIFUGO_GOMAXPROCS', ''),
  connectParallel: Math.max(1, Math.floor(numParam(['--connect-parallel'], 'BENCH_CONNECT_PARALLEL', 100))),
  waitQuietS: numParam(['--wait-quiet-s'], 'BENCH_WAIT_QUIET_S', 0),
  timeoutS: numParam(['--timeout-s'], 'BENCH_TIMEOUT_S', 900),
};
if (!['both', 'fanout', 'centrifugo'].includes(P.only)) throw new Error('--only: fanout, centrifugo or both');
if (P.gomaxprocs && !/^[1-9]\d*$/.test(P.gomaxprocs)) throw new Error('--centrifugo-gomaxprocs: a positive integer');

/** Bound on a phase's wait when deliveries stop progressing (ms). */
const STALL_MS = 15_000;
/** The first messages may wait for Centrifugo's consumer to join its group (group.initial.rebalance.delay.ms). */
const WARMUP_STALL_MS = 60_000;
const CORES = availableParallelism();

// ---------------------------------------------------------------- servers

type ServerName = 'fanout' | 'centrifugo';

/** A server under test, and how to publish to it through Kafka. */
interface Server {
  name: ServerName;
  protocol: ClientProtocol;
  child: ChildProcess;
  wsUrl: string;
  /** Publishes `n` messages in one Kafka request. */
  publishBatch(n: number): Promise<void>;
  /** Publishes one message (steady phase). */
  publishOne(): Promise<void>;
}

let seq = 0;

/** fanout's event data: exactly PAYLOAD_BYTES of JSON; the envelope carries the publish ts. */
function fanoutData(): { seq: number; p: string } {
  const s = seq++;
  const fixed = `{"seq":${s},"p":""}`.length;
  return { seq: s, p: 'x'.repeat(Math.max(0, PAYLOAD_BYTES - fixed)) };
}

/** Centrifugo's publication data: exactly PAYLOAD_BYTES of JSON, with the publish ts inside (its publications carry none). */
function centrifugoData(): string {
  const s = seq++;
  const ts = Date.now();
  const fixed = `{"seq":${s},"ts":${ts},"p":""}`.length;
  return JSON.stringify({ seq: s, ts, p: 'x'.repeat(Math.max(0, PAYLOAD_BYTES - fixed)) });
}

// ---------------------------------------------------------------- clients (in worker processes)

/** Clients spread over client worker processes (bench/client-worker.ts). */
class WorkerClients extends WorkerPool<ToWorker, FromWorker> {
  constructor(count: number) {
    super(count, 'bench/client-worker.ts');
  }

  /** n clients over the workers; worker k connects from localAddresses[k] when given. */
  async connect(url: string, n: number, protocol: ClientProtocol, localAddresses: string[] = []): Promise<void> {
    const k = this.workers.length;
    await Promise.all(
      this.workers.map((w, i) => {
        const options: PoolOptions = { protocol, ...(localAddresses[i] ? { localAddresses: [localAddresses[i]!] } : {}) };
        return w.rpc.request({
          op: 'connect',
          url,
          n: Math.floor(n / k) + (i < n % k ? 1 : 0),
          channel: CHANNEL,
          parallel: P.connectParallel,
          options,
        });
      }),
    );
  }

  async all(m: ToWorker): Promise<void> {
    await Promise.all(this.workers.map((w) => w.rpc.request(m)));
  }

  async stats(
    expectedSinceMark: number,
  ): Promise<{ received: number; short: number; hist: Float64Array; closes: Record<string, number>; frames: number; wireBytes: number }> {
    const all = await Promise.all(
      this.workers.map(async (w) => {
        const m = await w.rpc.request({ op: 'stats', expected: expectedSinceMark });
        if (m.op !== 'stats') throw new Error('client worker: unexpected answer');
        w.received = m.stats.received;
        return m.stats;
      }),
    );
    const hist = new Float64Array(MAX_LAT_MS + 1);
    const closes: Record<string, number> = {};
    for (const st of all as SideStats[]) {
      for (const [ms, n] of st.latency) hist[ms]! += n;
      for (const [code, n] of Object.entries(st.closes)) closes[code] = (closes[code] ?? 0) + n;
    }
    const sum = (f: (s: SideStats) => number) => all.reduce((a, s) => a + f(s), 0);
    return {
      received: sum((s) => s.received),
      short: sum((s) => s.short),
      hist,
      closes,
      frames: sum((s) => s.frames ?? 0),
      wireBytes: sum((s) => s.wireBytes ?? 0),
    };
  }

  cpuSeconds(): number {
    return this.workers.reduce((a, w) => {
      const t = cpuTimes(w.rpc.child.pid!);
      return a + (t ? t.user + t.sys : 0);
    }, 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.rpc.close({ op: 'close' }, 8000).catch(() => {})));
  }
}

const waitDeliveries = (clients: WorkerClients, target: number, deadline: number, stallMs = STALL_MS) =>
  waitFor(clients, target, deadline, stallMs);

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

// ---------------------------------------------------------------- CPU

interface PhaseCpu {
  server: number;
  serverSys: number;
  clients: number;
  /** This process: the publisher (and the bench's bookkeeping). */
  publisher: number;
  machineCores: number;
  wallS: number;
}

function cpuMeter(pid: number, clients: WorkerClients): () => PhaseCpu {
  const s0 = cpuTimes(pid)!;
  const c0 = clients.cpuSeconds();
  const p0 = process.cpuUsage();
  const m0 = machineJiffies();
  const w0 = performance.now();
  return () => {
    const m1 = machineJiffies();
    const s1 = cpuTimes(pid)!;
    return {
      server: Math.max(0, s1.user + s1.sys - s0.user - s0.sys),
      serverSys: Math.max(0, s1.sys - s0.sys),
      clients: clients.cpuSeconds() - c0,
      publisher: (() => {
        const d = process.cpuUsage(p0);
        return (d.user + d.system) / 1e6;
      })(),
      machineCores: m1.total > m0.total ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * CORES : 0,
      wallS: (performance.now() - w0) / 1000,
    };
  };
}

/** Cores busy with anything but the server, the clients and the publisher (Kafka, other work on the machine). */
function otherCores(c: PhaseCpu): number {
  return Math.max(0, c.machineCores - (c.server + c.clients + c.publisher) / c.wallS);
}

function cpuNote(c: PhaseCpu): string {
  return `server CPU ${c.server.toFixed(2)} s (${c.serverSys.toFixed(2)} s system, ${(c.server / c.wallS).toFixed(2)} cores), client CPU ${c.clients.toFixed(2)} s, publisher CPU ${c.publisher.toFixed(2)} s, machine ${c.machineCores.toFixed(2)} cores busy (others ${otherCores(c).toFixed(2)}) over ${c.wallS.toFixed(2)} s`;
}

async function machineLoad(ms: number): Promise<number> {
  const a = machineJiffies();
  await sleep(ms);
  const b = machineJiffies();
  return b.total > a.total ? ((b.busy - a.busy) / (b.total - a.total)) * CORES : 0;
}

async function waitQuiet(what: string): Promise<void> {
  let l = await machineLoad(1000);
  const until = Date.now() + P.waitQuietS * 1000;
  while (P.waitQuietS > 0 && Date.now() < until && l >= 0.3) l = await machineLoad(1000);
  log(`${what}: machine load before it ${l.toFixed(2)} cores`);
}

// ---------------------------------------------------------------- load run

interface LoadResult {
  name: ServerName;
  deliveries: number;
  expected: number;
  shortClients: number;
  cpu: PhaseCpu;
  deliveriesPerCpuS: number;
  framesPerMessage: number;
  wireBytesPerDelivery: number;
  threads: number | null;
  steady: null | {
    messages: number;
    deliveries: number;
    expected: number;
    shortClients: number;
    cpu: PhaseCpu;
    p50: number | null;
    p90: number | null;
    p99: number | null;
    max: number | null;
    framesPerMessage: number;
    wireBytesPerDelivery: number;
  };
  closes: Record<string, number>;
}

async function runLoad(s: Server, deadline: number): Promise<LoadResult> {
  const C = P.connections;
  const pid = s.child.pid!;
  const clients = new WorkerClients(1);
  try {
    const t0 = Date.now();
    await clients.connect(s.wsUrl, C, s.protocol);
    log(`${s.name}: ${C} clients connected and subscribed in ${Date.now() - t0} ms`);

    if (P.warmup > 0) {
      const target = clients.received + C * P.warmup;
      await s.publishBatch(P.warmup);
      const ok = await waitDeliveries(clients, target, deadline, WARMUP_STALL_MS);
      log(`${s.name}: warm-up ${P.warmup} messages ${ok ? 'delivered' : `INCOMPLETE (${clients.received}/${target})`}`);
      if (!ok) throw new Error(`${s.name}: the warm-up messages did not all arrive`);
      await sleep(500);
    }

    await waitQuiet(`${s.name} burst`);
    const M = P.messages;
    await clients.all({ op: 'mark' });
    const b0 = await clients.stats(0);
    const meter = cpuMeter(pid, clients);
    await s.publishBatch(M);
    const complete = await waitDeliveries(clients, b0.received + C * M, deadline);
    const cpu = meter();
    const b1 = await clients.stats(M);
    const deliveries = b1.received - b0.received;
    const result: LoadResult = {
      name: s.name,
      deliveries,
      expected: C * M,
      shortClients: b1.short,
      cpu,
      deliveriesPerCpuS: cpu.server > 0 ? deliveries / cpu.server : 0,
      framesPerMessage: (b1.frames - b0.frames) / (C * M),
      wireBytesPerDelivery: deliveries > 0 ? (b1.wireBytes - b0.wireBytes) / deliveries : 0,
      threads: threadCount(pid),
      steady: null,
      closes: b1.closes,
    };
    log(
      `${s.name}: burst ${M} msgs -> ${deliveries}/${C * M} deliveries${complete ? '' : ' INCOMPLETE'}; ${cpuNote(cpu)}; ${result.framesPerMessage.toFixed(3)} frames/message, ${result.wireBytesPerDelivery.toFixed(1)} wire bytes/delivery`,
    );

    if (P.rate > 0 && P.steadyS > 0) {
      await waitQuiet(`${s.name} steady`);
      const total = Math.max(1, Math.round(P.rate * P.steadyS));
      await clients.all({ op: 'mark' });
      const s0 = await clients.stats(0);
      await clients.all({ op: 'measure', on: true });
      const meter = cpuMeter(pid, clients);
      const start = performance.now();
      let sent = 0;
      const pending: Promise<unknown>[] = [];
      const tickMs = Math.max(1, Math.min(10, Math.floor(1000 / P.rate)));
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * P.rate) + 1);
          while (sent < due) {
            pending.push(s.publishOne());
            sent++;
          }
          if (sent >= total || Date.now() > deadline) {
            clearInterval(t);
            resolve();
          }
        }, tickMs);
      });
      await Promise.all(pending);
      const ok = await waitDeliveries(clients, s0.received + C * sent, Math.min(deadline, Date.now() + 30_000));
      const cpu = meter();
      await clients.all({ op: 'measure', on: false });
      const st = await clients.stats(sent);
      const d = st.received - s0.received;
      result.steady = {
        messages: sent,
        deliveries: d,
        expected: C * sent,
        shortClients: st.short,
        cpu,
        p50: percentile(st.hist, 0.5),
        p90: percentile(st.hist, 0.9),
        p99: percentile(st.hist, 0.99),
        max: percentile(st.hist, 1),
        framesPerMessage: (st.frames - s0.frames) / (C * sent),
        wireBytesPerDelivery: d > 0 ? (st.wireBytes - s0.wireBytes) / d : 0,
      };
      result.closes = st.closes;
      const r = result.steady;
      log(
        `${s.name}: steady ${sent} msgs at ${P.rate}/s -> ${d}/${r.expected}${ok ? '' : ' INCOMPLETE'}, p50 ${r.p50} ms, p90 ${r.p90} ms, p99 ${r.p99} ms, max ${r.max} ms; ${cpuNote(cpu)}; ${r.framesPerMessage.toFixed(3)} frames/message`,
      );
    }
    return result;
  } finally {
    await clients.close();
  }
}

// ---------------------------------------------------------------- idle run

interface IdleResult {
  name: ServerName;
  connections: number;
  rss0: number;
  rss1: number;
  bytesPerConn: number;
  threads: number | null;
}

/** RSS samples taken one second apart; a reading is the median of the last WINDOW. */
const RSS_WINDOW = 5;
/** Settled when the last RSS_WINDOW samples lie within this many bytes of each other (1 MiB). */
const RSS_STABLE_BYTES = 1024 * 1024;

/**
 * The process's RSS once it has settled: sampled every second for at least `minS` seconds and
 * until the last RSS_WINDOW samples are within RSS_STABLE_BYTES (a process just started is still
 * collecting its start-up garbage: tsx's compilation for the gateway, the Go heap's first cycles),
 * at most `maxS` seconds; the median of the last RSS_WINDOW samples.
 */
async function rssSettled(pid: number, minS: number, maxS = 60): Promise<{ rss: number; settled: boolean; waitedS: number }> {
  const v: number[] = [];
  const t0 = Date.now();
  for (;;) {
    v.push(rssBytes(pid));
    const last = v.slice(-RSS_WINDOW);
    const waitedS = (Date.now() - t0) / 1000;
    const settled = last.length === RSS_WINDOW && Math.max(...last) - Math.min(...last) <= RSS_STABLE_BYTES;
    if ((settled && waitedS >= minS) || waitedS >= maxS) {
      last.sort((a, b) => a - b);
      return { rss: last[Math.floor(last.length / 2)]!, settled, waitedS };
    }
    await sleep(1000);
  }
}

async function runIdle(s: Server): Promise<IdleResult> {
  const N = P.idleConnections;
  const pid = s.child.pid!;
  const r0 = await rssSettled(pid, P.idleSettleS);
  const rss0 = r0.rss;
  log(
    `${s.name} idle: RSS with 0 connections ${(rss0 / 2 ** 20).toFixed(1)} MiB (${r0.settled ? 'settled' : 'NOT settled'} after ${r0.waitedS.toFixed(0)} s)`,
  );
  const k = Math.min(P.idleWorkers, Math.max(1, Math.ceil(N / 1000)));
  const clients = new WorkerClients(k);
  try {
    const t0 = Date.now();
    // One source address per worker (127.0.0.2, .3, ...): ephemeral ports are per address pair.
    await clients.connect(
      s.wsUrl,
      N,
      s.protocol,
      Array.from({ length: k }, (_, i) => `127.0.0.${i + 2}`),
    );
    log(`${s.name} idle: ${N} clients connected and subscribed in ${Date.now() - t0} ms over ${k} workers`);
    const r1 = await rssSettled(pid, P.idleSettleS);
    const rss1 = r1.rss;
    log(`${s.name} idle: RSS ${r1.settled ? 'settled' : 'NOT settled'} after ${r1.waitedS.toFixed(0)} s`);
    const st = await clients.stats(0);
    const closed = Object.values(st.closes).reduce((a, b) => a + b, 0);
    if (closed > 0) log(`${s.name} idle: WARNING ${closed} connections closed: ${JSON.stringify(st.closes)}`);
    const r = { name: s.name, connections: N, rss0, rss1, bytesPerConn: (rss1 - rss0) / N, threads: threadCount(pid) };
    log(`${s.name} idle: RSS with ${N} connections ${(rss1 / 2 ** 20).toFixed(1)} MiB: ${Math.round(r.bytesPerConn)} bytes/connection`);
    return r;
  } finally {
    await clients.close();
  }
}

// ---------------------------------------------------------------- report

function report(load: LoadResult[], idle: IdleResult[], brokerSource: string, centrifugoProcs: string): void {
  const out: string[] = [''];
  out.push(
    `peers benchmark: fanout gateway vs Centrifugo ${CENTRIFUGO_VERSION}; C=${P.connections}, burst M=${P.messages} x ${PAYLOAD_BYTES}-byte data (after ${P.warmup} warm-up), steady R=${P.rate}/s for ${P.steadyS} s, idle N=${P.idleConnections}; ` +
      `clients: raw RFC 6455 clients in worker processes; Kafka: ${brokerSource}; node ${process.version}, ${CORES} cores; Centrifugo GOMAXPROCS ${centrifugoProcs}`,
  );
  if (load.length > 0) {
    out.push('', 'Burst (server CPU = utime+stime of the server process, /proc/<pid>/stat; cores = server CPU s / wall s):');
    out.push(
      table([
        [
          'server',
          'deliveries',
          'expected',
          'server CPU s',
          'deliveries/CPU-s',
          'wall s',
          'server cores',
          'threads',
          'frames/message',
          'wire bytes/delivery',
          'client CPU s',
          'publisher CPU s',
          'other load (cores)',
        ],
        ...load.map((r) => [
          r.name,
          fmt(r.deliveries),
          fmt(r.expected),
          fmt(r.cpu.server, 2),
          fmt(r.deliveriesPerCpuS),
          fmt(r.cpu.wallS, 2),
          fmt(r.cpu.server / r.cpu.wallS, 2),
          fmt(r.threads),
          fmt(r.framesPerMessage, 3),
          fmt(r.wireBytesPerDelivery, 1),
          fmt(r.cpu.clients, 2),
          fmt(r.cpu.publisher, 2),
          fmt(otherCores(r.cpu), 2),
        ]),
      ]),
    );
    const st = load.filter((r) => r.steady);
    if (st.length > 0) {
      out.push(
        '',
        `Steady (latency = client receipt - publisher timestamp, per delivery, 1 ms resolution; wall s = first publish to last delivery, ${P.steadyS} s when the server keeps up; server CPU s / deliveries = CPU per delivery):`,
      );
      out.push(
        table([
          [
            'server',
            'messages',
            'deliveries',
            'expected',
            'p50 ms',
            'p90 ms',
            'p99 ms',
            'max ms',
            'wall s',
            'server CPU %',
            'server µs/delivery',
            'frames/message',
            'wire bytes/delivery',
            'client CPU %',
            'publisher CPU %',
            'other load (cores)',
          ],
          ...st.map((r) => {
            const s = r.steady!;
            const pct = (x: number) => fmt((100 * x) / s.cpu.wallS);
            return [
              r.name,
              fmt(s.messages),
              fmt(s.deliveries),
              fmt(s.expected),
              fmt(s.p50),
              fmt(s.p90),
              fmt(s.p99),
              fmt(s.max),
              fmt(s.cpu.wallS, 2),
              pct(s.cpu.server),
              fmt(s.deliveries > 0 ? (1e6 * s.cpu.server) / s.deliveries : null, 2),
              fmt(s.framesPerMessage, 3),
              fmt(s.wireBytesPerDelivery, 1),
              pct(s.cpu.clients),
              pct(s.cpu.publisher),
              fmt(otherCores(s.cpu), 2),
            ];
          }),
        ]),
      );
    }
  }
  if (idle.length > 0) {
    out.push(
      '',
      `Idle (RSS of a fresh server process once settled, median of ${RSS_WINDOW} samples 1 s apart; bytes/connection = (RSS with N - RSS with 0) / N):`,
    );
    out.push(
      table([
        ['server', 'connections', 'RSS 0 conns MiB', 'RSS N conns MiB', 'bytes/connection', 'threads'],
        ...idle.map((r) => [
          r.name,
          fmt(r.connections),
          fmt(r.rss0 / 2 ** 20, 1),
          fmt(r.rss1 / 2 ** 20, 1),
          fmt(r.bytesPerConn),
          fmt(r.threads),
        ]),
      ]),
    );
  }
  const f = load.find((r) => r.name === 'fanout');
  const c = load.find((r) => r.name === 'centrifugo');
  const fi = idle.find((r) => r.name === 'fanout');
  const ci = idle.find((r) => r.name === 'centrifugo');
  const targets: Record<string, boolean | null> = {
    cpu_3x: f && c && c.deliveriesPerCpuS > 0 ? f.deliveriesPerCpuS >= 3 * c.deliveriesPerCpuS : null,
    idle_tenth: fi && ci && ci.bytesPerConn > 0 ? fi.bytesPerConn <= ci.bytesPerConn / 10 : null,
    p99_no_worse: f?.steady?.p99 != null && c?.steady?.p99 != null ? f.steady.p99 <= c.steady.p99 : null,
  };
  out.push('');
  if (f && c && c.deliveriesPerCpuS > 0)
    out.push(
      `deliveries per CPU-s, fanout / Centrifugo: ${(f.deliveriesPerCpuS / c.deliveriesPerCpuS).toFixed(2)}x (target >= 3x: ${targets.cpu_3x ? 'met' : 'NOT met'})`,
    );
  if (fi && ci && ci.bytesPerConn > 0)
    out.push(
      `idle bytes per connection, fanout / Centrifugo: ${(fi.bytesPerConn / ci.bytesPerConn).toFixed(3)} (target <= 0.1: ${targets.idle_tenth ? 'met' : 'NOT met'})`,
    );
  if (targets.p99_no_worse !== null)
    out.push(
      `steady p99, fanout ${f!.steady!.p99} ms vs Centrifugo ${c!.steady!.p99} ms (target: no worse: ${targets.p99_no_worse ? 'met' : 'NOT met'})`,
    );
  for (const r of load) {
    const notes: string[] = [];
    if (r.deliveries !== r.expected) notes.push(`${r.expected - r.deliveries} burst deliveries missing`);
    if (r.shortClients > 0) notes.push(`${r.shortClients} clients did not get exactly ${P.messages} burst messages`);
    if (r.steady && r.steady.deliveries !== r.steady.expected)
      notes.push(`${r.steady.expected - r.steady.deliveries} steady deliveries missing`);
    if (Object.keys(r.closes).length > 0) notes.push(`clients closed by the server: ${JSON.stringify(r.closes)}`);
    if (otherCores(r.cpu) > 0.3) notes.push(`burst shared the machine with ${otherCores(r.cpu).toFixed(2)} cores of other load`);
    if (r.steady && otherCores(r.steady.cpu) > 0.3)
      notes.push(`steady phase shared the machine with ${otherCores(r.steady.cpu).toFixed(2)} cores of other load`);
    if (notes.length > 0) out.push(`WARNING ${r.name}: ${notes.join('; ')}`);
  }
  out.push('');
  const round = (n: number | null | undefined) => (n === null || n === undefined || !Number.isFinite(n) ? null : Math.round(n));
  const json = {
    bench: 'peers',
    connections: P.connections,
    fanout_deliveries_per_cpu_s: round(f?.deliveriesPerCpuS),
    centrifugo_deliveries_per_cpu_s: round(c?.deliveriesPerCpuS),
    fanout_p99_ms: f?.steady?.p99 ?? null,
    centrifugo_p99_ms: c?.steady?.p99 ?? null,
    fanout_idle_bytes_per_conn: round(fi?.bytesPerConn),
    centrifugo_idle_bytes_per_conn: round(ci?.bytesPerConn),
    fanout_p50_ms: f?.steady?.p50 ?? null,
    centrifugo_p50_ms: c?.steady?.p50 ?? null,
    idle_connections: P.idleConnections,
    centrifugo_gomaxprocs: centrifugoProcs,
    targets,
  };
  process.stdout.write(out.join('\n') + '\n' + JSON.stringify(json) + '\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const started = Date.now();
  const deadline = started + P.timeoutS * 1000;
  log(`params ${JSON.stringify(P)}`);
  const bin = P.only !== 'fanout' ? centrifugoBinary() : '';
  const centrifugoProcs = P.gomaxprocs || `${CORES} (Go's default: one per core)`;

  let broker: BrokerHandle | null = null;
  let publisher: PublisherClient | null = null;
  let cProducer: CentrifugoProducer | null = null;
  const runTopics: string[] = [];
  const load: LoadResult[] = [];
  const idle: IdleResult[] = [];
  const cfgPath = join(tmpdir(), `fanout-bench-centrifugo-${process.pid}.json`);
  let failed: unknown = null;
  try {
    broker = await getBroker({ log: (m) => log(`kafka: ${m}`) });
    Object.assign(process.env, broker.env);
    log(`kafka ${broker.source} ${broker.brokers.join(',')}`);
    const id = randomBytes(4).toString('hex');
    const logger = pino({ name: 'bench', level: process.env.FANOUT_LOG_LEVEL ?? 'warn' }, process.stderr);

    if (P.only !== 'centrifugo') {
      const topics = { broadcast: `bench.${id}.broadcast`, users: `bench.${id}.users` };
      publisher = new PublisherClient({ brokers: broker.brokers, logger, clientId: 'fanout-bench', topics });
      runTopics.push(topics.broadcast, topics.users);
      await publisher.connect();
      const pub = publisher;
      // As bench:fanout: per-connection queues hold a whole burst, the gateway-wide budget never pauses Kafka.
      const queueMax = Math.max(10_000, 2 * (P.messages + P.warmup) + Math.ceil(P.rate * P.steadyS));
      const env = (port: number): Record<string, string> => ({
        FANOUT_BROKERS: broker!.brokers.join(','),
        FANOUT_PORT: String(port),
        FANOUT_REGION: 'bench',
        FANOUT_NODE: `gw-peers-${id}-${port}`,
        FANOUT_LOG_LEVEL: 'warn',
        FANOUT_TOPIC_BROADCAST: topics.broadcast,
        FANOUT_TOPIC_USERS: topics.users,
        FANOUT_QUEUE_MAX_MESSAGES: String(queueMax),
        FANOUT_QUEUE_MAX_BYTES: String(Math.max(4 * 1024 * 1024, queueMax * 1024)),
        FANOUT_MEMORY_BUDGET_BYTES: String(Math.max(256 * 1024 * 1024, 2 * P.connections * queueMax * 512)),
        FANOUT_SERVE_PAGE: 'false',
        FANOUT_DRAIN_JITTER_MS: '0',
        FANOUT_DRAIN_DELAY_MS: '100',
        FANOUT_SHUTDOWN_GRACE_MS: '10000',
      });
      const startGateway = async (): Promise<Server> => {
        const port = await freePort();
        const child = spawnService('gateway', 'services/gateway/src/main.ts', env(port));
        await waitReady(child, `http://127.0.0.1:${port}/readyz`, 60_000);
        log(`gateway pid ${child.pid} ready on ${port}`);
        return {
          name: 'fanout',
          protocol: 'fanout',
          child,
          wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
          publishBatch: async (n) => {
            await pub.publishBatch(Array.from({ length: n }, () => ({ channel: CHANNEL, data: fanoutData() })));
          },
          publishOne: async () => {
            await pub.publish({ channel: CHANNEL, data: fanoutData() });
          },
        };
      };
      let gw = await startGateway();
      try {
        load.push(await runLoad(gw, deadline));
      } finally {
        await stopChild(gw.child);
      }
      if (P.idleConnections > 0) {
        gw = await startGateway();
        try {
          idle.push(await runIdle(gw));
        } finally {
          await stopChild(gw.child);
        }
      }
    }

    if (P.only !== 'fanout') {
      const topic = `bench.${id}.centrifugo`;
      cProducer = new CentrifugoProducer(broker.brokers, topic, logger);
      runTopics.push(topic);
      await cProducer.connect();
      const prod = cProducer;
      let run = 0;
      const start = async (): Promise<Server> => {
        const port = await freePort();
        // A new consumer group per process: each starts at the beginning of the run's topic (franz-go's default reset), which is empty or already delivered.
        writeConfig({ port, brokers: broker!.brokers, topic, group: `centrifugo-bench-${id}-${run++}` }, cfgPath);
        const child = startCentrifugo(bin, cfgPath, P.gomaxprocs);
        await waitReady(child, `http://127.0.0.1:${port}/health`, 30_000);
        log(`centrifugo pid ${child.pid} ready on ${port} (GOMAXPROCS ${centrifugoProcs})`);
        return {
          name: 'centrifugo',
          protocol: 'centrifugo',
          child,
          wsUrl: `ws://127.0.0.1:${port}/connection/websocket`,
          publishBatch: (n) =>
            prod.publish(
              CHANNEL,
              Array.from({ length: n }, () => centrifugoData()),
            ),
          publishOne: () => prod.publish(CHANNEL, [centrifugoData()]),
        };
      };
      let cs = await start();
      try {
        load.push(await runLoad(cs, deadline));
      } finally {
        await stopCentrifugo(cs.child);
      }
      if (P.idleConnections > 0) {
        cs = await start();
        try {
          idle.push(await runIdle(cs));
        } finally {
          await stopCentrifugo(cs.child);
        }
      }
    }
  } catch (err) {
    failed = err;
    log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    await publisher?.disconnect().catch(() => {});
    await cProducer?.disconnect();
    await stopAll(3000);
    rmSync(cfgPath, { force: true });
    if (broker && runTopics.length > 0) await deleteTopics(broker.brokers, runTopics);
    await broker?.stop().catch(() => {});
  }
  if (load.length > 0 || idle.length > 0)
    report(load, idle, broker ? `${broker.source} ${broker.brokers.join(',')}` : '?', centrifugoProcs);
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return failed ? 1 : 0;
}

runBench(main, P.timeoutS + 30);
