/**
 * Reconnect-storm benchmark (`npm run bench:reconnect-storm`): N clients (default 10,000) on 100
 * broadcast channels, one gateway, messages flowing throughout, against a broker with Kafka's
 * default group settings (group.initial.rebalance.delay.ms = 3000). Three scenarios, each with its
 * own gateways and clients:
 *
 * - `kill`:  the gateway is killed with SIGKILL and a new one started on the same address; the
 *            clients reconnect (backoff, then the new gateway's 503 not_ready/overloaded with
 *            Retry-After) and resume from their last positions. Measured from the new gateway
 *            being ready to accept connections (its broadcast windows warm; /readyz also waits
 *            for its user partitions) until every client has a new connection and every message
 *            it missed.
 * - `drain`: the gateway is drained with SIGTERM and the clients move to a second gateway of the
 *            region that has been running; measured from the SIGTERM.
 * - `floor`: the clients drop and reconnect to the same running gateway, subscribing without
 *            positions (what reconnecting costs with no resume work); measured from the drop until
 *            every client is subscribed again.
 *
 * Clients (bench/storm-worker.ts) are raw WebSockets that behave as the SDK does (positions,
 * full-jitter backoff, reconnect frames, Retry-After), spread over worker processes (and, with
 * --bind-sources 1, over loopback source addresses 127.0.0.10+). Lost = acknowledged messages of its channel a client never got;
 * duplicates = messages a client got twice; resets = `reset` frames; Kafka reads = the serving
 * gateway's fanout_gateway_replay_reads_total. The floor scenario also measures the memory of
 * idle long polls (RSS of the gateway before and after opening them).
 *
 * Parameters (flag or env): --clients / BENCH_CLIENTS (10000), --channels / BENCH_CHANNELS (100),
 * --rate / BENCH_RATE (messages/s over all channels, 200), --workers / BENCH_WORKERS (4),
 * --scenarios / BENCH_SCENARIOS (kill,drain,floor), --long-polls / BENCH_LONG_POLLS (2000),
 * --timeout-s / BENCH_TIMEOUT_S (overall bound, 900), --bind-sources / BENCH_BIND_SOURCES (0). Gateway settings pass through FANOUT_*;
 * BENCH_GATEWAY_NODE_ARGS adds node flags to the gateways (e.g. --cpu-prof).
 * Kafka: KAFKA_BROKERS if set (its group delay is read back and reported), else a local broker
 * with Kafka's default group delay is started and stopped.
 *
 * Output: a table on stdout, then, as the very last line, one JSON object.
 */
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { pino } from 'pino';
import { brokerGroupDelayMs, freePort, GROUP_DELAY_KAFKA_DEFAULT_MS, startLocalKafka, waitForBroker } from '@fanout/kafka';
import { PublisherClient } from '@fanout/publisher';
import {
  cpuSeconds,
  forkWorker,
  listenOverflows,
  log,
  runBench,
  machineJiffies,
  numParam,
  strParam,
  metricSum,
  rssBytes,
  sleep,
  spawnService,
  stopAll,
  stopChild,
  waitReady,
} from './processes.js';
import type { StormFromWorker, StormToWorker, WorkerTotals } from './storm-ipc.js';

// ---------------------------------------------------------------- parameters

const P = {
  clients: Math.floor(numParam('--clients', 'BENCH_CLIENTS', 10_000)),
  channels: Math.max(1, Math.floor(numParam('--channels', 'BENCH_CHANNELS', 100))),
  rate: numParam('--rate', 'BENCH_RATE', 200),
  workers: Math.max(1, Math.floor(numParam('--workers', 'BENCH_WORKERS', 4))),
  scenarios: strParam('--scenarios', 'BENCH_SCENARIOS', 'kill,drain,floor')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean) as Scenario[],
  longPolls: Math.floor(numParam('--long-polls', 'BENCH_LONG_POLLS', 2000)),
  timeoutS: numParam('--timeout-s', 'BENCH_TIMEOUT_S', 900),
  /**
   * Bind each worker's clients to its own source address 127.0.0.10+ (for runs that need more than
   * ~28,000 ports to one gateway). Off by default: binding before connecting makes the kernel look
   * for a free port without knowing the destination, which here cost the clients 19 of 48 CPU
   * seconds in a 10,000-client storm; an unbound connect reuses loopback TIME_WAIT ports cheaply.
   */
  bindSources: numParam('--bind-sources', 'BENCH_BIND_SOURCES', 0) > 0,
};
type Scenario = 'kill' | 'drain' | 'floor';
for (const s of P.scenarios) if (!['kill', 'drain', 'floor'].includes(s)) throw new Error(`unknown scenario ${s}; use kill, drain, floor`);

const CHANNELS = Array.from({ length: P.channels }, (_, i) => `storm:c${String(i).padStart(3, '0')}`);
/** Per-scenario waits: connecting everyone, everyone resumed, everyone caught up at the end. */
const CONNECT_TIMEOUT_MS = 180_000;
const RESUME_TIMEOUT_MS = 180_000;
const FINAL_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------- publishing

/** Publishes round-robin over the channels at the rate, and keeps what Kafka acknowledged. */
class Feed {
  readonly lastAcked: Record<string, number> = {};
  readonly acked: Record<string, number> = {};
  total = 0;
  private running = false;
  private loop: Promise<void> | null = null;
  private next = 0;

  constructor(private readonly pub: PublisherClient) {}

  start(): void {
    for (const ch of CHANNELS) this.acked[ch] = 0;
    this.running = true;
    const tickMs = 50;
    this.loop = (async () => {
      let due = Date.now();
      let owed = 0;
      while (this.running) {
        owed += (P.rate * tickMs) / 1000;
        const n = Math.floor(owed);
        owed -= n;
        if (n > 0) {
          const batch = Array.from({ length: n }, () => ({
            channel: CHANNELS[this.next++ % CHANNELS.length]!,
            data: { n: this.next, pad: 'x'.repeat(60) },
          }));
          const sent = await this.pub.publishBatch(batch);
          for (const e of sent) {
            const offset = Number(e.position.slice(e.position.lastIndexOf(':') + 1));
            this.lastAcked[e.channel] = Math.max(this.lastAcked[e.channel] ?? -1, offset);
            this.acked[e.channel]!++;
            this.total++;
          }
        }
        due += tickMs;
        await sleep(Math.max(0, due - Date.now()));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  snapshot(): Record<string, number> {
    return { ...this.lastAcked };
  }
}

// ---------------------------------------------------------------- workers

class Workers {
  readonly procs: ChildProcess[] = [];
  private readonly waiting = new Map<ChildProcess, ((m: StormFromWorker) => void)[]>();

  constructor(n: number) {
    for (let w = 0; w < n; w++) {
      const p = forkWorker(`clients-${w}`, 'bench/storm-worker.ts');
      this.waiting.set(p, []);
      p.on('message', (m: StormFromWorker) => {
        if (m.op === 'error') log(`worker ${w}: ${m.message}`);
        this.waiting.get(p)!.shift()?.(m);
      });
      this.procs.push(p);
    }
  }

  /** Sends each worker its message and waits for every answer (answers come in order). */
  all(make: (w: number) => StormToWorker): Promise<StormFromWorker[]> {
    return Promise.all(
      this.procs.map(
        (p, w) =>
          new Promise<StormFromWorker>((resolve) => {
            this.waiting.get(p)!.push(resolve);
            p.send(make(w));
          }),
      ),
    );
  }

  async close(): Promise<void> {
    await Promise.race([this.all(() => ({ op: 'close' })), sleep(5000)]);
    for (const p of this.procs) await stopChild(p, 2000);
  }
}

const share = (w: number) => Math.floor(P.clients / P.workers) + (w < P.clients % P.workers ? 1 : 0);
const baseOf = (w: number) => Array.from({ length: w }, (_, k) => share(k)).reduce((a, b) => a + b, 0);

function sumTotals(answers: StormFromWorker[]): WorkerTotals & { lastAt: number | null; pending: number } {
  const t = {
    clients: 0,
    unique: 0,
    dups: 0,
    resets: 0,
    refusals: 0,
    perChannelUnique: {} as Record<string, number>,
    netFailures: {} as Record<string, number>,
    lastAt: 0 as number | null,
    pending: 0,
  };
  for (const a of answers) {
    if (a.op !== 'resumed' && a.op !== 'final') continue;
    t.clients += a.totals.clients;
    t.unique += a.totals.unique;
    t.dups += a.totals.dups;
    t.resets += a.totals.resets;
    t.refusals += a.totals.refusals;
    for (const [ch, n] of Object.entries(a.totals.perChannelUnique)) t.perChannelUnique[ch] = (t.perChannelUnique[ch] ?? 0) + n;
    for (const [why, n] of Object.entries(a.totals.netFailures)) t.netFailures[why] = (t.netFailures[why] ?? 0) + n;
    t.pending += a.pending;
    if (a.op === 'resumed') t.lastAt = a.lastAt === null || t.lastAt === null ? null : Math.max(t.lastAt, a.lastAt);
  }
  return t;
}

// ---------------------------------------------------------------- gateways

interface Ctx {
  brokers: string[];
  topics: { broadcast: string; users: string };
  runId: string;
}

function startGateway(ctx: Ctx, node: string, port: number): ChildProcess {
  return spawnService(
    node,
    'services/gateway/src/main.ts',
    {
      FANOUT_BROKERS: ctx.brokers.join(','),
      FANOUT_PORT: String(port),
      FANOUT_REGION: 'storm',
      FANOUT_NODE: node,
      FANOUT_USER_GROUP_ID: `bench-storm-${ctx.runId}`,
      FANOUT_TOPIC_BROADCAST: ctx.topics.broadcast,
      FANOUT_TOPIC_USERS: ctx.topics.users,
      FANOUT_SERVE_PAGE: 'false',
      FANOUT_LOG_LEVEL: process.env.FANOUT_LOG_LEVEL ?? 'warn',
    },
    [],
    (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean),
  );
}

/**
 * Waits until the gateway accepts connections: /readyz 200, or waiting only for `users` (it serves
 * broadcast channels before it has joined the region's group for user channels).
 */
async function waitAccepting(child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`the gateway on ${port} exited before it accepted connections`);
    const r = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) }).then(
      async (res) => ({ status: res.status, body: (await res.json().catch(() => ({}))) as { waiting_for?: string[] } }),
      () => null,
    );
    if (r && (r.status === 200 || (r.body.waiting_for?.length === 1 && r.body.waiting_for[0] === 'users'))) return;
    await sleep(20);
  }
  throw new Error(`the gateway on ${port} did not accept connections within ${timeoutMs} ms`);
}

const metricsOf = (port: number) => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());

/** Opens idle long polls and returns the gateway's resident memory per poll. */
async function longPollBytes(pid: number, port: number, n: number): Promise<number | null> {
  if (n === 0) return null;
  const before = rssBytes(pid);
  const socks: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = netConnect({ host: '127.0.0.1', port, localAddress: '127.0.0.9' });
    s.on('error', () => {});
    s.write(`GET /v1/poll?channel=storm:idle&timeout=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    socks.push(s);
    if (i % 200 === 199) await sleep(20);
  }
  await sleep(3000);
  const polls = metricSum(await metricsOf(port), 'fanout_gateway_long_polls');
  const after = rssBytes(pid);
  for (const s of socks) s.destroy();
  log(`long polls: ${n} opened, gateway counts ${polls}; RSS ${(before / 1048576).toFixed(1)} -> ${(after / 1048576).toFixed(1)} MiB`);
  return Math.round((after - before) / n);
}

// ---------------------------------------------------------------- scenarios

interface Result {
  scenario: Scenario;
  /** Seconds from ready (kill), SIGTERM (drain) or the drop (floor) until every client is done. */
  allS: number | null;
  /** Median client, same origin, in s. */
  p50S: number | null;
  pending: number;
  messages: number;
  lost: number | null;
  dups: number;
  resets: number;
  kafkaReads: number;
  resumedWindow: number;
  resumedKafka: number;
  refusedOverloaded: number;
  refusedNotReady: number;
  refusals: number;
  /** TCP listen-queue overflows on the machine from the disruption until everyone was done. */
  overflows: number;
  /** kill: the new gateway's start (spawn to ready), in s. */
  startS?: number;
  longPollBytes?: number | null;
}

async function runScenario(ctx: Ctx, pub: PublisherClient, scenario: Scenario): Promise<Result> {
  log(`--- ${scenario}: ${P.clients} clients on ${P.channels} channels, ${P.rate} msg/s`);
  const ports = [await freePort(), await freePort()];
  const gw: ChildProcess[] = [startGateway(ctx, `gw-storm-${scenario}-a`, ports[0]!)];
  if (scenario === 'drain') gw.push(startGateway(ctx, `gw-storm-${scenario}-b`, ports[1]!));
  await Promise.all(gw.map((g, i) => waitReady(g, `http://127.0.0.1:${ports[i]}/readyz`, 120_000)));
  const urls =
    scenario === 'drain' ? [`ws://127.0.0.1:${ports[0]}/v1/ws`, `ws://127.0.0.1:${ports[1]}/v1/ws`] : [`ws://127.0.0.1:${ports[0]}/v1/ws`];

  const workers = new Workers(P.workers);
  const feed = new Feed(pub);
  try {
    const t0 = Date.now();
    const connected = await workers.all((w) => ({
      op: 'connect',
      urls,
      n: share(w),
      base: baseOf(w),
      channels: CHANNELS,
      localAddress: P.bindSources ? `127.0.0.${10 + w}` : '',
      spreadMs: 2000,
      timeoutMs: CONNECT_TIMEOUT_MS,
    }));
    const pendingConnect = connected.reduce((n, a) => n + (a.op === 'connected' ? a.pending : 0), 0);
    if (pendingConnect > 0) throw new Error(`${pendingConnect} clients did not connect within ${CONNECT_TIMEOUT_MS} ms`);
    log(`${P.clients} clients subscribed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    feed.start();
    await sleep(3000);
    await workers.all(() => ({ op: 'mark' }));
    const overflowsBefore = listenOverflows();
    const cpu0 = {
      workers: workers.procs.reduce((n, p) => n + (cpuSeconds(p.pid!) ?? 0), 0),
      self: process.cpuUsage(),
      machine: machineJiffies(),
      at: Date.now(),
    };
    const gatewayCpu0 = new Map(gw.map((g) => [g.pid!, cpuSeconds(g.pid!) ?? 0]));

    let from: number;
    let answers: StormFromWorker[];
    let serving: number;
    let startS: number | undefined;
    if (scenario === 'kill') {
      gw[0]!.kill('SIGKILL');
      await new Promise<void>((r) => (gw[0]!.exitCode !== null || gw[0]!.signalCode !== null ? r() : gw[0]!.once('exit', () => r())));
      const spawned = Date.now();
      gw[0] = startGateway(ctx, `gw-storm-${scenario}-a`, ports[0]!);
      await waitAccepting(gw[0], ports[0]!, 120_000);
      from = Date.now();
      startS = (from - spawned) / 1000;
      log(`killed; the new gateway accepted connections ${startS.toFixed(1)} s after its spawn`);
      answers = await workers.all(() => ({ op: 'await-resumed', targets: feed.snapshot(), timeoutMs: RESUME_TIMEOUT_MS }));
      serving = ports[0]!;
    } else if (scenario === 'drain') {
      from = Date.now();
      const targets = feed.snapshot();
      const draining = stopChild(gw[0]!, 30_000);
      answers = await workers.all(() => ({ op: 'await-resumed', targets, timeoutMs: RESUME_TIMEOUT_MS }));
      await draining;
      serving = ports[1]!;
    } else {
      from = Date.now();
      await workers.all(() => ({ op: 'drop', positionless: true }));
      answers = await workers.all(() => ({ op: 'await-resubscribed', timeoutMs: RESUME_TIMEOUT_MS }));
      serving = ports[0]!;
    }
    const overflows = listenOverflows() - overflowsBefore;
    {
      const secs = (Date.now() - cpu0.at) / 1000;
      const m1 = machineJiffies();
      const self = process.cpuUsage(cpu0.self);
      const gwCpu = gw
        .filter((g) => g.exitCode === null && g.signalCode === null)
        .reduce((n, g) => n + (cpuSeconds(g.pid!) ?? 0) - (gatewayCpu0.get(g.pid!) ?? 0), 0);
      const workersCpu = workers.procs.reduce((n, p) => n + (cpuSeconds(p.pid!) ?? 0), 0) - cpu0.workers;
      const cores = (v: number) => (v / secs).toFixed(2);
      log(
        `${scenario}: cores busy over the ${secs.toFixed(1)} s from the disruption: machine ${((2 * (m1.busy - cpu0.machine.busy)) / (m1.total - cpu0.machine.total)).toFixed(2)} of 2, client workers ${cores(workersCpu)}, gateways now running ${cores(gwCpu)}, bench ${cores((self.user + self.system) / 1e6)}`,
      );
    }
    const slow = answers.find((a) => a.op === 'resumed' && a.trail.length > 0);
    if (slow?.op === 'resumed')
      log(`${scenario}: a slowest client's story (ms clock mod 100 s; from ${from % 100_000}): ${slow.trail.join(' | ')}`);
    const resumed = sumTotals(answers);
    const allS = resumed.lastAt === null ? null : Math.max(0, resumed.lastAt - from) / 1000;
    const times = answers.flatMap((a) => (a.op === 'resumed' ? a.times : [])).sort((a, b) => a - b);
    const p50S = times.length > 0 ? Math.max(0, times[Math.floor(times.length / 2)]! - from) / 1000 : null;
    log(
      `${scenario}: done-time deciles (s): ${[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99].map((q) => ((times[Math.floor(q * (times.length - 1))]! - from) / 1000).toFixed(1)).join(' ')}`,
    );
    log(
      `${scenario}: all ${resumed.pending === 0 ? 'done' : `but ${resumed.pending} done`} after ${allS ?? '-'} s; attempts without an HTTP answer: ${JSON.stringify(resumed.netFailures)}; accept-queue overflows ${overflows}`,
    );

    await sleep(2000);
    await feed.stop();
    const fin = sumTotals(await workers.all(() => ({ op: 'final', targets: feed.snapshot(), timeoutMs: FINAL_TIMEOUT_MS })));
    // Every client subscribed before the feed started, so it is owed every acknowledged message of its channel.
    let owed = 0;
    for (let i = 0; i < P.clients; i++) owed += feed.acked[CHANNELS[i % CHANNELS.length]!]!;
    const m = await metricsOf(serving);
    const longPoll = scenario === 'floor' ? await longPollBytes(gw[0]!.pid!, serving, P.longPolls) : undefined;
    return {
      scenario,
      allS,
      p50S,
      pending: resumed.pending,
      messages: feed.total,
      // Without positions the floor's clients skip what was published while they were away, by design.
      lost: scenario === 'floor' ? null : owed - fin.unique,
      dups: fin.dups,
      resets: fin.resets,
      kafkaReads: metricSum(m, 'fanout_gateway_replay_reads_total'),
      resumedWindow: metricSum(m, 'fanout_gateway_resumes_total', 'source="window"'),
      resumedKafka: metricSum(m, 'fanout_gateway_resumes_total', 'source="kafka"'),
      refusedOverloaded: metricSum(m, 'fanout_gateway_admission_refused_total', 'reason="overloaded"'),
      refusedNotReady: metricSum(m, 'fanout_gateway_admission_refused_total', 'reason="not_ready"'),
      refusals: fin.refusals,
      overflows,
      ...(startS !== undefined ? { startS } : {}),
      ...(longPoll !== undefined ? { longPollBytes: longPoll } : {}),
    };
  } finally {
    await feed.stop();
    await workers.close();
    for (const g of gw) await stopChild(g, 10_000);
  }
}

// ---------------------------------------------------------------- report

function report(results: Result[], groupDelay: number | null): void {
  const f = (v: number | null | undefined, d = 1) => (v === null || v === undefined ? '-' : v.toFixed(d));
  const rows = [
    [
      'scenario',
      'p50 s',
      'all done s',
      'not done',
      'messages',
      'lost',
      'dups',
      'resets',
      'kafka reads',
      'window resumes',
      'kafka resumes',
      '503 overloaded',
      '503 not ready',
      'accept overflows',
      'start s',
    ],
    ...results.map((r) => [
      r.scenario,
      f(r.p50S),
      f(r.allS),
      String(r.pending),
      String(r.messages),
      r.lost === null ? 'n/a' : String(r.lost),
      String(r.dups),
      String(r.resets),
      String(r.kafkaReads),
      String(r.resumedWindow),
      String(r.resumedKafka),
      String(r.refusedOverloaded),
      String(r.refusedNotReady),
      String(r.overflows),
      f(r.startS),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  console.log(
    `Reconnect storm: ${P.clients} clients, ${P.channels} channels, ${P.rate} msg/s, broker group.initial.rebalance.delay.ms=${groupDelay ?? '?'}`,
  );
  console.log(
    '(kill: from the new gateway accepting connections; drain: from SIGTERM; floor: from the drop, clients resubscribe without positions; start s: spawn to accepting)',
  );
  for (const r of rows) console.log(r.map((c, i) => c.padStart(widths[i]!)).join('  '));
  const floor = results.find((r) => r.scenario === 'floor');
  if (floor?.longPollBytes !== undefined)
    console.log(`idle long polls: ${P.longPolls} held, ${floor.longPollBytes ?? '-'} bytes of gateway RSS each`);
  const by = (s: Scenario) => results.find((r) => r.scenario === s);
  const resumedRuns = results.filter((r) => r.scenario !== 'floor');
  const sum = (k: 'dups' | 'resets' | 'kafkaReads') => resumedRuns.reduce((n, r) => n + r[k], 0);
  const round = (v: number | null | undefined) => (v === null || v === undefined ? null : Math.round(v * 100) / 100);
  console.log(
    JSON.stringify({
      bench: 'reconnect-storm',
      clients: P.clients,
      kill_all_resumed_s: round(by('kill')?.allS),
      drain_all_resumed_s: round(by('drain')?.allS),
      floor_all_reconnected_s: round(by('floor')?.allS),
      resumed: resumedRuns.reduce((n, r) => n + r.resumedWindow + r.resumedKafka, 0),
      lost: resumedRuns.reduce((n, r) => n + (r.lost ?? 0), 0),
      duplicates: sum('dups'),
      resets: sum('resets'),
      kafka_reads: sum('kafkaReads'),
      broker_group_delay_ms: groupDelay,
      long_poll_idle_bytes_per_client: floor?.longPollBytes ?? null,
    }),
  );
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const started = Date.now();
  log(`params ${JSON.stringify(P)}`);
  const fromEnv = process.env.KAFKA_BROKERS?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const local = fromEnv?.length
    ? null
    : await startLocalKafka({ groupInitialRebalanceDelayMs: GROUP_DELAY_KAFKA_DEFAULT_MS, log: (m) => log(`kafka: ${m}`) });
  const brokers = fromEnv?.length ? fromEnv : local!.brokers;
  if (local) Object.assign(process.env, local.clientEnv);
  let pub: PublisherClient | null = null;
  const results: Result[] = [];
  let failed = false;
  try {
    await waitForBroker(brokers);
    const groupDelay = await brokerGroupDelayMs(brokers);
    const runId = randomBytes(3).toString('hex');
    const ctx: Ctx = { brokers, runId, topics: { broadcast: `bench.storm.${runId}.broadcast`, users: `bench.storm.${runId}.users` } };
    pub = new PublisherClient({
      brokers,
      logger: pino({ level: 'warn' }, process.stderr),
      clientId: 'fanout-bench-storm',
      topics: ctx.topics,
    });
    await pub.connect();
    for (const s of P.scenarios) results.push(await runScenario(ctx, pub, s));
    report(results, groupDelay);
  } catch (err) {
    failed = true;
    log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    await pub?.disconnect().catch(() => {});
    await stopAll();
    await local?.stop();
  }
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return failed ? 1 : 0;
}

runBench(main, P.timeoutS);
