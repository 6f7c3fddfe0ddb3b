/**
 * Ingest benchmark (`npm run bench:ingest`): how fast one gateway consumes broadcast records, and
 * what memory it takes doing so, against a bare kafkajs consumer of the same records in the same
 * run (bench/ingest-bare.ts: the gateway's consumer settings, nothing per record but a count).
 * See docs/benchmarks.md.
 *
 * Each scenario (`<channels>:<none|subs>`) runs on topics of its own, with a fresh gateway:
 *   1. the publisher (PublisherClient from @fanout/publisher, in this process) creates the topics
 *      (6 broadcast partitions, the publisher's default); the gateway starts
 *      (services/gateway/src/main.ts, FANOUT_SERVE_PAGE=false) and reports ready; the bare
 *      consumer joins a group of its own; with `subs`, --connections WebSocket clients in
 *      --client-procs processes (bench/ingest-clients.ts) subscribe, one subscriber per channel
 *      (connection i holds channels [i*k, (i+1)*k), k = channels / connections);
 *   2. idle: CPU of both over --idle-s with the sampling below running, so that what they spend
 *      without records (timers, fetch polls, the lag probe, this bench's scrapes) is known;
 *   3. ingest: --records records of 100-byte data, record i on channel `bench:c<i mod channels>`,
 *      produced as fast as the publisher writes them (publishBatch in chunks of --chunk, two chunks
 *      in flight); each consumer's CPU (utime+stime of its process, /proc/<pid>/stat) is read just
 *      before the first publish and again when it has consumed every record (with `subs`: and the
 *      clients have received every message or been told of its loss in a gap frame):
 *      records_per_cpu_s = records consumed / CPU-seconds; us_per_record is its inverse.
 *
 * Fairness: both consumers are live and positioned on the empty topic before the first record is
 * written, and both read the same records at the same time from the same broker, with the same
 * client and fetch settings (maxWaitTimeInMs 250, one partition at a time, no commits). Neither
 * reads a backlog the other reads live: a gateway started on a backlog would load it through its
 * start-up warm-up (windows only, before ready), a different path from live ingest. Both share the
 * machine with the producer and Kafka (and the clients with `subs`); CPU-seconds, not wall time,
 * is what is compared, so the sharing costs wall time, not the figures.
 *
 * Sampling: the gateway's RSS (/proc/<pid>/status) every 250 ms (peak), its /metrics every
 * 500 ms: records consumed (sum of fanout_gateway_kafka_messages_total{stream="broadcast"}), lag
 * (fanout_gateway_kafka_lag_messages{stream="broadcast"}, its own probe, set to every 1 s here),
 * heap (fanout_nodejs_heap_size_used_bytes), the windows (fanout_gateway_window_bytes and
 * fanout_gateway_window_messages, stream="broadcast") and the bound
 * (fanout_gateway_memory_bound_bytes). Window metrics or the bound absent from the gateway: "n/a",
 * and the bound is computed as baseline RSS (just before the first publish) + 2 x
 * FANOUT_WINDOW_TOTAL_BYTES + FANOUT_MEMORY_BUDGET_BYTES. The lag of both is also computed here,
 * the same way for both: records in the topic (its end offsets, read every 500 ms) minus records
 * consumed (the gateway's counter, the bare consumer's report every 250 ms).
 *
 * Gateway settings changed from its defaults (FANOUT_* in this process's environment override
 * the bench's): FANOUT_LAG_PROBE_MS=1000 (lag read each second, not each 5 s),
 * FANOUT_ADMISSION_RATE_PER_S=0 (the clients connect at once), and FANOUT_MAX_SUBSCRIPTIONS raised
 * to channels / connections when that exceeds its default 1000. Windows and budget stay at their
 * defaults: they are what the memory bound is made of.
 *
 * Parameters (flag or env): --records / BENCH_RECORDS (1,000,000), --channels / BENCH_CHANNELS
 * (channel counts, comma-separated: 1000,100000), --scenarios / BENCH_SCENARIOS (default: every
 * channel count with `none` then `subs`, e.g. `1000:none,100000:subs`), --connections /
 * BENCH_CONNECTIONS (1000), --client-procs / BENCH_CLIENT_PROCS (2), --chunk / BENCH_CHUNK
 * (records per publishBatch, 50,000), --idle-s / BENCH_IDLE_S (3), --stall-s / BENCH_STALL_S (give
 * up on a consumer that makes no progress for this long, 30), --timeout-s / BENCH_TIMEOUT_S
 * (overall bound, 900). BENCH_GATEWAY_NODE_ARGS: extra node flags for the gateway (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/ingest-prof`); the consumption window of each scenario is logged
 * in CLOCK_MONOTONIC microseconds, the clock of V8's profiles, for bench/profile-window.ts.
 *
 * Kafka: KAFKA_BROKERS if set, else getBroker() starts one (and stops it at the end).
 * Output: tables on stdout, then one JSON line per scenario, the first `none` scenario's last.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { pino } from 'pino';
import { createKafka, freePort, getBroker, type BrokerHandle } from '@fanout/kafka';
import { GATEWAY_DEFAULTS } from '@fanout/gateway';
import { PublisherClient } from '@fanout/publisher';
import type { BareFromWorker, BareToWorker, ClientsFromWorker, ClientsToWorker } from './ingest-ipc.js';
import {
  cpuSeconds,
  monoUs,
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
  WorkerPool,
  WorkerRpc,
} from './processes.js';
import { fmt, table } from './report.js';

const PAYLOAD_BYTES = 100;

// ---------------------------------------------------------------- parameters

const channelCounts = strParam('--channels', 'BENCH_CHANNELS', '1000,100000')
  .split(',')
  .map((s) => Number(s.trim()));
if (channelCounts.some((n) => !Number.isInteger(n) || n < 1))
  throw new Error('--channels / BENCH_CHANNELS: positive integers, comma-separated');

const P = {
  records: Math.floor(numParam('--records', 'BENCH_RECORDS', 1_000_000)),
  channels: channelCounts,
  scenarios: strParam('--scenarios', 'BENCH_SCENARIOS', channelCounts.flatMap((c) => [`${c}:none`, `${c}:subs`]).join(',')),
  connections: Math.max(1, Math.floor(numParam('--connections', 'BENCH_CONNECTIONS', 1000))),
  clientProcs: Math.max(1, Math.floor(numParam('--client-procs', 'BENCH_CLIENT_PROCS', 2))),
  chunk: Math.max(1, Math.floor(numParam('--chunk', 'BENCH_CHUNK', 50_000))),
  idleS: numParam('--idle-s', 'BENCH_IDLE_S', 3),
  stallS: numParam('--stall-s', 'BENCH_STALL_S', 30),
  timeoutS: numParam('--timeout-s', 'BENCH_TIMEOUT_S', 900),
};

interface Scenario {
  name: string;
  channels: number;
  subscribers: boolean;
}

const SCENARIOS: Scenario[] = P.scenarios.split(',').map((s) => {
  const m = /^\s*(\d+):(none|subs)\s*$/.exec(s);
  if (!m || Number(m[1]) < 1) throw new Error(`--scenarios / BENCH_SCENARIOS: "${s}" is not <channels>:none or <channels>:subs`);
  return { name: s.trim(), channels: Number(m[1]), subscribers: m[2] === 'subs' };
});
if (P.records < 1) throw new Error('--records: at least 1');

/** A gateway setting as the gateway will see it: this process's FANOUT_* variable, else its default. */
function gatewaySetting(env: string, def: number): number {
  const v = process.env[env];
  return v !== undefined && v !== '' ? Number(v) : def;
}
const WINDOW_TOTAL_BYTES = gatewaySetting('FANOUT_WINDOW_TOTAL_BYTES', GATEWAY_DEFAULTS.windowTotalBytes);
const MEMORY_BUDGET_BYTES = gatewaySetting('FANOUT_MEMORY_BUDGET_BYTES', GATEWAY_DEFAULTS.memoryBudgetBytes);

// ---------------------------------------------------------------- workload

const DATA_PAD = (() => {
  const fixed = `{"seq":0,"p":""}`.length;
  return (seq: number) => 'x'.repeat(Math.max(0, PAYLOAD_BYTES - fixed - (String(seq).length - 1)));
})();

/** Events [from, to): record i on channel i mod channels, data exactly 100 bytes of JSON. */
function events(names: string[], from: number, to: number): { channel: string; data: unknown }[] {
  const out: { channel: string; data: unknown }[] = new Array(to - from);
  for (let i = from; i < to; i++) out[i - from] = { channel: names[i % names.length]!, data: { seq: i, p: DATA_PAD(i) } };
  return out;
}

// ---------------------------------------------------------------- measurements

interface ConsumerResult {
  consumed: number;
  cpuS: number;
  wallS: number;
  /** CPU-seconds per second while idle (before the ingest), sampling included. */
  idleCpuPerS: number;
  /** Records in the topic minus records consumed: the largest seen (sampled), and at the end. */
  lagMax: number;
  lagEnd: number;
  complete: boolean;
}

interface GatewayMemory {
  baselineRss: number;
  peakRss: number;
  peakHeap: number | null;
  baselineHeap: number | null;
  windowBytesPeak: number | null;
  windowMessagesPeak: number | null;
  windowBytesEnd: number | null;
  boundMetric: number | null;
  bound: number;
  boundSource: 'metric' | 'computed';
}

interface ScenarioResult {
  scenario: Scenario;
  connections: number;
  perConnection: number;
  publishS: number;
  gateway: ConsumerResult & {
    lagMetricMax: number | null;
    lagMetricEnd: number | null;
    deliveries: number | null;
    gapped: number | null;
    closes: Record<string, number>;
  };
  bare: ConsumerResult & { peakRss: number };
  memory: GatewayMemory;
  otherCores: number;
}

interface Scrape {
  consumed: number;
  lag: number | null;
  heap: number | null;
  windowBytes: number | null;
  windowMessages: number | null;
  bound: number | null;
  budgetUsed: number | null;
  queued: number | null;
}

const has = (text: string, name: string) => new RegExp(`^${name}[{ ]`, 'm').test(text);

async function scrape(url: string): Promise<Scrape | null> {
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
    const opt = (name: string, match?: string) => (has(text, name) ? metricSum(text, name, match) : null);
    return {
      consumed: metricSum(text, 'fanout_gateway_kafka_messages_total', 'stream="broadcast"'),
      lag: opt('fanout_gateway_kafka_lag_messages', 'stream="broadcast"'),
      heap: opt('fanout_nodejs_heap_size_used_bytes'),
      windowBytes: opt('fanout_gateway_window_bytes', 'stream="broadcast"'),
      windowMessages: opt('fanout_gateway_window_messages', 'stream="broadcast"'),
      bound: opt('fanout_gateway_memory_bound_bytes'),
      budgetUsed: opt('fanout_gateway_memory_budget_used_bytes'),
      queued: opt('fanout_gateway_queued_messages'),
    };
  } catch {
    return null;
  }
}

const maxOf = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));

/** The subscribers of a `subs` scenario, over several client processes. */
class Subscribers extends WorkerPool<ClientsToWorker, ClientsFromWorker> {
  constructor(procs: number) {
    super(procs, 'bench/ingest-clients.ts');
  }

  async connect(url: string, lists: string[][]): Promise<void> {
    const k = this.workers.length;
    await Promise.all(
      this.workers.map(async (w, i) => {
        const mine = lists.filter((_, j) => j % k === i);
        const r = await w.rpc.request({ op: 'connect', url, channels: mine, parallel: 100 });
        if (r.op !== 'connected') throw new Error('client worker: unexpected answer');
      }),
    );
  }

  async count(): Promise<{ received: number; gapped: number; closes: Record<string, number> }> {
    const all = await Promise.all(this.workers.map((w) => w.rpc.request({ op: 'count' })));
    const out = { received: 0, gapped: 0, closes: {} as Record<string, number> };
    for (const m of all) {
      if (m.op !== 'count') continue;
      out.received += m.received;
      out.gapped += m.gapped;
      for (const [c, n] of Object.entries(m.closes)) out.closes[c] = (out.closes[c] ?? 0) + n;
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.rpc.close({ op: 'close' }, 3000).catch(() => {})));
  }
}

// ---------------------------------------------------------------- one scenario

async function runScenario(s: Scenario, broker: BrokerHandle, deadline: number): Promise<ScenarioResult> {
  const id = randomBytes(4).toString('hex');
  const topics = { broadcast: `bench.${id}.broadcast`, users: `bench.${id}.users` };
  const logger = pino({ name: 'bench', level: process.env.FANOUT_LOG_LEVEL ?? 'warn' }, process.stderr);
  const publisher = new PublisherClient({ brokers: broker.brokers, logger, clientId: 'fanout-bench-ingest', topics, maxBatch: 2000 });
  const names = Array.from({ length: s.channels }, (_, i) => `bench:c${i}`);
  const connections = s.subscribers ? Math.min(P.connections, s.channels) : 0;
  const perConnection = connections > 0 ? Math.ceil(s.channels / connections) : 0;
  const admin = createKafka({ brokers: broker.brokers, clientId: 'fanout-bench-ingest-admin', logger }).admin();
  let bare: WorkerRpc<BareToWorker, BareFromWorker> | null = null;
  let subscribers: Subscribers | null = null;
  let gw: ReturnType<typeof spawnService> | null = null;
  try {
    await publisher.connect();
    await admin.connect();
    log(`${s.name}: topics ${topics.broadcast}, ${topics.users}`);

    const port = await freePort();
    const env: Record<string, string> = {
      FANOUT_BROKERS: broker.brokers.join(','),
      FANOUT_PORT: String(port),
      FANOUT_REGION: 'bench',
      FANOUT_NODE: `gw-ingest-${id}`,
      FANOUT_LOG_LEVEL: 'warn',
      FANOUT_TOPIC_BROADCAST: topics.broadcast,
      FANOUT_TOPIC_USERS: topics.users,
      FANOUT_SERVE_PAGE: 'false',
      FANOUT_DRAIN_JITTER_MS: '0',
      FANOUT_DRAIN_DELAY_MS: '100',
      FANOUT_SHUTDOWN_GRACE_MS: '10000',
      FANOUT_LAG_PROBE_MS: '1000',
      FANOUT_ADMISSION_RATE_PER_S: '0',
    };
    if (perConnection > GATEWAY_DEFAULTS.maxSubscriptions) env.FANOUT_MAX_SUBSCRIPTIONS = String(perConnection);
    // FANOUT_* set for this process win (e.g. another window or budget size).
    for (const [k, v] of Object.entries(process.env))
      if (
        k.startsWith('FANOUT_') &&
        v !== undefined &&
        !['FANOUT_BROKERS', 'FANOUT_PORT', 'FANOUT_NODE', 'FANOUT_TOPIC_BROADCAST', 'FANOUT_TOPIC_USERS'].includes(k)
      )
        env[k] = v;
    const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
    gw = spawnService('gateway', 'services/gateway/src/main.ts', env, [], nodeArgs);
    await waitReady(gw, `http://127.0.0.1:${port}/readyz`, 60_000);
    const gwPid = gw.pid!;
    const metricsUrl = `http://127.0.0.1:${port}/metrics`;
    log(`${s.name}: gateway pid ${gwPid} ready on ${port}`);

    let bareCount = 0;
    let bareDoneCpu = null as number | null;
    let bareDoneAt = 0;
    let target = Infinity;
    let t0 = 0;
    bare = new WorkerRpc<BareToWorker, BareFromWorker>('bare', 'bench/ingest-bare.ts', (m) => {
      if (m.op !== 'progress') return;
      bareCount = m.records;
      // Read at once: the CPU of the bare consumer when it reached the last record.
      if (bareDoneCpu === null && bareCount >= target) {
        bareDoneCpu = cpuSeconds(barePid) ?? 0;
        bareDoneAt = performance.now();
      }
    });
    const barePid = bare.child.pid!;
    const joined = await bare.request({ op: 'start', brokers: broker.brokers, topic: topics.broadcast });
    log(`${s.name}: bare consumer pid ${barePid} joined (${joined.op === 'joined' ? joined.partitions : '?'} partitions)`);

    if (s.subscribers) {
      subscribers = new Subscribers(Math.min(P.clientProcs, connections));
      const lists: string[][] = [];
      for (let i = 0; i < connections; i++) lists.push(names.slice(i * perConnection, Math.min(s.channels, (i + 1) * perConnection)));
      const c0 = Date.now();
      await subscribers.connect(
        `ws://127.0.0.1:${port}/v1/ws`,
        lists.filter((l) => l.length > 0),
      );
      log(`${s.name}: ${connections} connections subscribed to ${s.channels} channels (${perConnection} each) in ${Date.now() - c0} ms`);
    }

    // ---- sampling: RSS every 250 ms, /metrics every 500 ms
    let peakRss = rssBytes(gwPid);
    let bareRss = rssBytes(barePid);
    let last = null as Scrape | null;
    let lagMetricMax: number | null = null;
    let heapPeak: number | null = null;
    let windowBytesPeak: number | null = null;
    let windowMessagesPeak: number | null = null;
    let gwDoneCpu = null as number | null;
    let gwDoneAt = 0;
    let acked = 0;
    /** Records in the topic (the sum of its partitions' end offsets), read with an admin client every 500 ms. */
    let written = 0;
    const writtenNow = async (): Promise<number | null> => {
      try {
        const ends = await Promise.race([admin.fetchTopicOffsets(topics.broadcast), sleep(2000).then(() => null)]);
        return ends === null ? null : ends.reduce((n, e) => n + Number(e.high), 0);
      } catch {
        return null;
      }
    };
    let gwLagMax = 0;
    let bareLagMax = 0;
    let sampling = true;
    let measuring = false;
    let tick = 0;
    const sampler = (async () => {
      for (let n = 0; sampling && n < 40_000; n++) {
        try {
          peakRss = Math.max(peakRss, rssBytes(gwPid));
          bareRss = Math.max(bareRss, rssBytes(barePid));
        } catch {
          /* gone */
        }
        if (tick++ % 2 === 0) {
          const cpuBefore = cpuSeconds(gwPid);
          const [sc, w] = await Promise.all([scrape(metricsUrl), measuring ? writtenNow() : Promise.resolve(null)]);
          if (w !== null) written = Math.max(written, w);
          if (sc) {
            last = sc;
            heapPeak = maxOf(heapPeak, sc.heap);
            windowBytesPeak = maxOf(windowBytesPeak, sc.windowBytes);
            windowMessagesPeak = maxOf(windowMessagesPeak, sc.windowMessages);
            if (measuring) {
              lagMetricMax = maxOf(lagMetricMax, sc.lag);
              gwLagMax = Math.max(gwLagMax, written - sc.consumed);
              // With subscribers, also every message written to its socket (or dropped): nothing queued.
              if (gwDoneCpu === null && sc.consumed >= target && (!s.subscribers || sc.queued === 0)) {
                gwDoneCpu = cpuBefore ?? 0;
                gwDoneAt = performance.now();
              }
            }
          }
        }
        if (measuring) bareLagMax = Math.max(bareLagMax, written - bareCount);
        await sleep(250);
      }
    })();

    // ---- idle
    await sleep(1000);
    const idleGw0 = cpuSeconds(gwPid) ?? 0;
    const idleBare0 = cpuSeconds(barePid) ?? 0;
    const idleStart = performance.now();
    await sleep(P.idleS * 1000);
    const idleWall = (performance.now() - idleStart) / 1000;
    const gwIdle = ((cpuSeconds(gwPid) ?? 0) - idleGw0) / idleWall;
    const bareIdle = ((cpuSeconds(barePid) ?? 0) - idleBare0) / idleWall;
    log(
      `${s.name}: idle CPU over ${idleWall.toFixed(1)} s: gateway ${(gwIdle * 100).toFixed(1)}% of a core, bare consumer ${(bareIdle * 100).toFixed(1)}%`,
    );

    // ---- ingest
    const baselineRss = rssBytes(gwPid);
    const baselineHeap = last?.heap ?? null;
    peakRss = baselineRss;
    const machine0 = machineJiffies();
    const gwCpu0 = cpuSeconds(gwPid) ?? 0;
    const bareCpu0 = cpuSeconds(barePid) ?? 0;
    const mono0 = monoUs();
    target = P.records;
    measuring = true;
    t0 = performance.now();
    const inFlight: Promise<unknown>[] = [];
    for (let from = 0; from < P.records && Date.now() < deadline; from += P.chunk) {
      const to = Math.min(P.records, from + P.chunk);
      inFlight.push(publisher.publishBatch(events(names, from, to)).then(() => (acked += to - from)));
      // Two chunks in flight: the producer never waits for this loop.
      if (inFlight.length >= 2) await inFlight.shift();
    }
    await Promise.all(inFlight);
    const publishS = (performance.now() - t0) / 1000;
    log(`${s.name}: ${acked} records acknowledged by Kafka in ${publishS.toFixed(1)} s (${fmt(acked / publishS)}/s)`);

    // ---- wait for both (bounded: no progress for --stall-s, or the overall deadline)
    let lastProgress = performance.now();
    let seen = -1;
    for (let n = 0; n < 1_000_000; n++) {
      if (gwDoneCpu !== null && bareDoneCpu !== null) break;
      const progress = (last?.consumed ?? 0) + bareCount + (subscribers?.received ?? 0);
      if (progress !== seen) {
        seen = progress;
        lastProgress = performance.now();
      }
      if (performance.now() - lastProgress > P.stallS * 1000 || Date.now() > deadline) break;
      await sleep(100);
    }
    const mono1 = monoUs();
    const now = performance.now();
    const gwComplete = gwDoneCpu !== null;
    const bareComplete = bareDoneCpu !== null;
    const gwCpu = (gwDoneCpu ?? cpuSeconds(gwPid) ?? 0) - gwCpu0;
    const bareCpu = (bareDoneCpu ?? cpuSeconds(barePid) ?? 0) - bareCpu0;
    const gwWall = ((gwComplete ? gwDoneAt : now) - t0) / 1000;
    const bareWall = ((bareComplete ? bareDoneAt : now) - t0) / 1000;
    const machine1 = machineJiffies();
    log(`${s.name}: gateway consumption window (CLOCK_MONOTONIC us, for bench/profile-window.ts): ${mono0} ${mono1}`);

    // Lag at the end: one more probe of the gateway's own (every 1 s) after it finished.
    await sleep(1500);
    measuring = false;
    const endScrape = await scrape(metricsUrl);
    const final = endScrape ?? last;
    const gwConsumed = final?.consumed ?? 0;
    const subCount = subscribers ? await subscribers.count() : null;
    const bareFinal = await bare.request({ op: 'count' });
    const bareConsumed = bareFinal.op === 'count' ? bareFinal.records : bareCount;
    sampling = false;
    await sampler;

    const machineCores =
      machine1.total > machine0.total ? ((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * availableParallelism() : 0;
    const span = Math.max(gwWall, bareWall);
    const otherCores = Math.max(0, machineCores - (gwCpu + bareCpu) / Math.max(0.001, span));
    const boundMetric = final?.bound ?? null;
    const memory: GatewayMemory = {
      baselineRss,
      peakRss,
      baselineHeap,
      peakHeap: heapPeak,
      windowBytesPeak,
      windowMessagesPeak,
      windowBytesEnd: final?.windowBytes ?? null,
      boundMetric,
      bound: boundMetric ?? baselineRss + 2 * WINDOW_TOTAL_BYTES + MEMORY_BUDGET_BYTES,
      boundSource: boundMetric !== null ? 'metric' : 'computed',
    };
    const result: ScenarioResult = {
      scenario: s,
      connections,
      perConnection,
      publishS,
      gateway: {
        consumed: gwConsumed,
        cpuS: gwCpu,
        wallS: gwWall,
        idleCpuPerS: gwIdle,
        lagMax: gwLagMax,
        lagEnd: Math.max(0, acked - gwConsumed),
        complete: gwComplete,
        lagMetricMax,
        lagMetricEnd: final?.lag ?? null,
        deliveries: subCount?.received ?? null,
        gapped: subCount?.gapped ?? null,
        closes: subCount?.closes ?? {},
      },
      bare: {
        consumed: bareConsumed,
        cpuS: bareCpu,
        wallS: bareWall,
        idleCpuPerS: bareIdle,
        lagMax: bareLagMax,
        lagEnd: Math.max(0, acked - bareConsumed),
        complete: bareComplete,
        peakRss: bareRss,
      },
      memory,
      otherCores,
    };
    log(
      `${s.name}: gateway ${fmt(gwConsumed)} records${gwComplete ? '' : ' INCOMPLETE'} in ${gwCpu.toFixed(2)} CPU-s (${fmt(gwConsumed / gwCpu)}/CPU-s, wall ${gwWall.toFixed(1)} s); ` +
        `bare ${fmt(bareConsumed)}${bareComplete ? '' : ' INCOMPLETE'} in ${bareCpu.toFixed(2)} CPU-s (${fmt(bareConsumed / bareCpu)}/CPU-s, wall ${bareWall.toFixed(1)} s); ` +
        `gateway RSS ${fmt(baselineRss / 2 ** 20)} -> peak ${fmt(peakRss / 2 ** 20)} MiB (bound ${fmt(memory.bound / 2 ** 20)} MiB, ${memory.boundSource}); machine ${machineCores.toFixed(2)} cores busy`,
    );
    return result;
  } finally {
    await subscribers?.close();
    await bare?.close({ op: 'close' }, 6000);
    if (gw) await stopChild(gw, 12_000);
    await publisher.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    await deleteTopics(broker.brokers, [topics.broadcast, topics.users]);
  }
}

// ---------------------------------------------------------------- report

const MiB = (n: number | null | undefined) => (n === null || n === undefined ? 'n/a' : fmt(n / 2 ** 20, 1));
const perCpu = (r: ConsumerResult) => (r.cpuS > 0 ? r.consumed / r.cpuS : 0);
const usPer = (r: ConsumerResult) => (r.consumed > 0 ? (r.cpuS * 1e6) / r.consumed : null);
/** Records per CPU-second with the idle spend (timers, polls, scrapes) over the same wall time taken out. */
const perCpuLessIdle = (r: ConsumerResult) => {
  const busy = r.cpuS - r.idleCpuPerS * r.wallS;
  return busy > 0 ? r.consumed / busy : 0;
};

function report(results: ScenarioResult[], brokerSource: string): void {
  const out: string[] = [''];
  out.push(
    `ingest benchmark: ${fmt(P.records)} records of ${PAYLOAD_BYTES}-byte data per scenario, produced by PublisherClient.publishBatch (chunks of ${fmt(P.chunk)}); ` +
      `gateway vs a bare kafkajs consumer, both live before the first record; Kafka: ${brokerSource}; ${process.platform}/${process.arch}, node ${process.version}, ${availableParallelism()} cores`,
  );
  out.push('');
  out.push(
    'Consumption (CPU = utime+stime of the process from just before the first publish to its last record; lag = records in the topic - consumed, sampled every 500 ms; "less idle": CPU less the idle rate x wall time):',
  );
  const rows: string[][] = [
    [
      'scenario',
      'consumer',
      'subscribers',
      'consumed',
      'CPU s',
      'records/CPU-s',
      'us/record',
      'records/CPU-s less idle',
      'idle CPU %',
      'wall s',
      'max lag',
      'end lag',
      'gateway lag metric max / end',
    ],
  ];
  for (const r of results) {
    for (const [name, c] of [
      ['gateway', r.gateway],
      ['bare kafkajs', r.bare],
    ] as const) {
      rows.push([
        r.scenario.name,
        name + (c.complete ? '' : ' (INCOMPLETE)'),
        name === 'gateway' ? (r.connections > 0 ? `${fmt(r.scenario.channels)} on ${fmt(r.connections)} conns` : '0') : '-',
        fmt(c.consumed),
        fmt(c.cpuS, 2),
        fmt(perCpu(c)),
        fmt(usPer(c), 2),
        fmt(perCpuLessIdle(c)),
        fmt(c.idleCpuPerS * 100, 1),
        fmt(c.wallS, 1),
        fmt(c.lagMax),
        fmt(c.lagEnd),
        name === 'gateway'
          ? `${r.gateway.lagMetricMax === null ? 'n/a' : fmt(r.gateway.lagMetricMax)} / ${r.gateway.lagMetricEnd === null ? 'n/a' : fmt(r.gateway.lagMetricEnd)}`
          : '-',
      ]);
    }
    rows.push([
      r.scenario.name,
      'gateway / bare',
      '',
      '',
      '',
      `${((100 * perCpu(r.gateway)) / Math.max(1e-9, perCpu(r.bare))).toFixed(0)}%`,
      '',
      `${((100 * perCpuLessIdle(r.gateway)) / Math.max(1e-9, perCpuLessIdle(r.bare))).toFixed(0)}%`,
      '',
      '',
      '',
      '',
      '',
    ]);
  }
  out.push(table(rows));
  out.push('');
  out.push(
    `Gateway memory (MiB; RSS sampled every 250 ms; bound: fanout_gateway_memory_bound_bytes, else baseline RSS + 2 x FANOUT_WINDOW_TOTAL_BYTES (${MiB(WINDOW_TOTAL_BYTES)}) + FANOUT_MEMORY_BUDGET_BYTES (${MiB(MEMORY_BUDGET_BYTES)})):`,
  );
  out.push(
    table([
      [
        'scenario',
        'baseline RSS',
        'peak RSS',
        'bound',
        'bound from',
        'peak <= bound',
        'heap before',
        'peak heap',
        'window bytes peak',
        'window msgs peak',
        'bare consumer peak RSS',
      ],
      ...results.map((r) => [
        r.scenario.name,
        MiB(r.memory.baselineRss),
        MiB(r.memory.peakRss),
        MiB(r.memory.bound),
        r.memory.boundSource,
        r.memory.peakRss <= r.memory.bound ? 'yes' : 'NO',
        MiB(r.memory.baselineHeap),
        MiB(r.memory.peakHeap),
        MiB(r.memory.windowBytesPeak),
        r.memory.windowMessagesPeak === null ? 'n/a' : fmt(r.memory.windowMessagesPeak),
        MiB(r.bare.peakRss),
      ]),
    ]),
  );
  for (const r of results) {
    const notes: string[] = [];
    if (!r.gateway.complete) notes.push(`the gateway did not finish (${fmt(r.gateway.consumed)} of ${fmt(P.records)} records)`);
    if (!r.bare.complete) notes.push(`the bare consumer did not finish (${fmt(r.bare.consumed)} of ${fmt(P.records)})`);
    if (r.gateway.deliveries !== null && r.gateway.deliveries !== P.records)
      notes.push(
        `subscribers received ${fmt(r.gateway.deliveries)} of ${fmt(P.records)} messages (${fmt(r.gateway.gapped)} announced lost in gap frames)`,
      );
    if (Object.keys(r.gateway.closes).length > 0) notes.push(`connections closed by the gateway: ${JSON.stringify(r.gateway.closes)}`);
    if (r.otherCores > 0.5)
      notes.push(
        `the ingest shared the machine with ${r.otherCores.toFixed(2)} cores of other load (Kafka, the producer, clients, other work)`,
      );
    if (r.memory.windowBytesPeak === null) notes.push('window metrics absent from the gateway: n/a');
    if (r.memory.boundSource === 'computed')
      notes.push('fanout_gateway_memory_bound_bytes absent: bound computed as baseline RSS + 2 x window total + memory budget');
    if (notes.length > 0) out.push(`NOTE ${r.scenario.name}: ${notes.join('; ')}`);
  }
  out.push('');
  const main = results.find((r) => !r.scenario.subscribers) ?? results[0]!;
  const json = (r: ScenarioResult) =>
    JSON.stringify({
      bench: 'ingest',
      records: P.records,
      channels: r.scenario.channels,
      records_per_cpu_s: Math.round(perCpu(r.gateway)),
      bare_consumer_records_per_cpu_s: Math.round(perCpu(r.bare)),
      peak_rss_bytes: r.memory.peakRss,
      rss_bound_bytes: r.memory.bound,
      subscribers: r.connections > 0 ? r.scenario.channels : 0,
      connections: r.connections,
      ratio: Number((perCpu(r.gateway) / Math.max(1e-9, perCpu(r.bare))).toFixed(3)),
      gateway_us_per_record: Number((usPer(r.gateway) ?? 0).toFixed(3)),
      bare_us_per_record: Number((usPer(r.bare) ?? 0).toFixed(3)),
      records_per_cpu_s_less_idle: Math.round(perCpuLessIdle(r.gateway)),
      bare_consumer_records_per_cpu_s_less_idle: Math.round(perCpuLessIdle(r.bare)),
      gateway_records: r.gateway.consumed,
      bare_records: r.bare.consumed,
      gateway_lag_max: r.gateway.lagMax,
      gateway_lag_end: r.gateway.lagEnd,
      gateway_lag_metric_end: r.gateway.lagMetricEnd,
      rss_bound_source: r.memory.boundSource,
      baseline_rss_bytes: r.memory.baselineRss,
      peak_heap_bytes: r.memory.peakHeap,
      window_bytes_peak: r.memory.windowBytesPeak,
      deliveries: r.gateway.deliveries,
    });
  for (const r of results) if (r !== main) out.push(json(r));
  out.push(json(main));
  process.stdout.write(out.join('\n') + '\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const started = Date.now();
  const deadline = started + P.timeoutS * 1000;
  log(`params ${JSON.stringify(P)}; window total ${WINDOW_TOTAL_BYTES} B, memory budget ${MEMORY_BUDGET_BYTES} B`);
  let broker: BrokerHandle | null = null;
  const results: ScenarioResult[] = [];
  let failed: unknown = null;
  try {
    broker = await getBroker({ log: (m) => log(`kafka: ${m}`) });
    Object.assign(process.env, broker.env);
    log(`kafka ${broker.source} ${broker.brokers.join(',')}`);
    for (const s of SCENARIOS) {
      if (Date.now() > deadline) {
        log(`${s.name}: skipped (overall time bound)`);
        continue;
      }
      results.push(await runScenario(s, broker, deadline));
    }
  } catch (err) {
    failed = err;
    log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    await stopAll(3000);
    await broker?.stop().catch(() => {});
  }
  if (results.length > 0) report(results, broker ? `${broker.source} ${broker.brokers.join(',')}` : '?');
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return failed ? 1 : 0;
}

runBench(main, P.timeoutS + 60);
