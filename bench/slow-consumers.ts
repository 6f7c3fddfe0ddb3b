/**
 * `npm run bench:slow-consumers`: does a slow client hurt the others? C WebSocket clients on one
 * channel (`bench:slow`, queue policy `drop`) receive R messages/s through Kafka, in four phases
 * of D seconds each, in one run:
 *
 * 1. **baseline**: every client reads;
 * 2. **stalled**: S of them (10% by default) stop reading their sockets entirely (TCP backpressure:
 *    the kernel's buffers fill, then the gateway's per-connection queue, bounded by
 *    FANOUT_QUEUE_MAX_MESSAGES / FANOUT_QUEUE_MAX_BYTES, then messages are dropped for them with a
 *    `gap`);
 * 3. **flood**: the stalled clients stay stalled, and two abusers run in a process of their own
 *    (bench/slow-consumers-flood.ts): one address opening WebSocket connections as fast as the
 *    gateway takes them, and one API key publishing as fast as the publisher answers (to another
 *    channel, through the same topic);
 * 4. **flood, abusers at nice 19**: the same abusers with the lowest CPU priority, so that they
 *    get only the CPU the gateway, broker and clients leave. On a real deployment the abusers'
 *    CPU is on their own machines; on a 2-core machine shared by everything, phase 3 measures
 *    mostly the cores the abusers' own processes take (the table's CPU columns show it).
 *
 * Measured for the fast clients (those that read): end-to-end latency p50/p99 per phase (publish
 * call to receipt, same clock), and messages lost (any seq published in the run that a fast client
 * did not get). For the gateway: RSS at the end of the baseline and its peak after, against the
 * bound the configuration promises, `rss_bound_bytes` = baseline RSS + S x (queue bytes cap +
 * socket buffer cap). Per phase, the cores each process used (CPU seconds / wall seconds; the
 * abusers report their own). Last line (the two last fields beyond the line):
 * `{"bench":"slow-consumers","connections":C,"stalled":S,"fast_p99_ms_baseline":…,"fast_p99_ms_with_stalled":…,"fast_p99_ms_with_flood":…,"gateway_rss_growth_bytes":…,"rss_bound_bytes":…,"fast_messages_lost":…,"fast_p99_ms_with_flood_abusers_niced":…,"cores_abusers_with_flood":…}`
 *
 *   npm run bench:slow-consumers                       # C=1000, 10% stalled, R=50/s, 15 s a phase
 *   npm run bench:slow-consumers -- --c 2000 --rate 100 --phase-s 20
 *   npm run bench:slow-consumers -- --address-rate 0 --key-rate 0   # without limits per abuser
 *
 * The gateway runs with FANOUT_RATE_PER_ADDRESS=20 (burst 40) and the publisher with
 * FANOUT_PUBLISH_RATE_PER_KEY=200 unless told otherwise; the connection flood comes from its own
 * address (127.0.0.2), the well-behaved clients from 127.0.0.1.
 *
 * Kafka: KAFKA_BROKERS if set, else a local broker (getBroker). Processes: the broker, the gateway
 * and the publisher service (their main.ts), this process (clients and the steady publisher), the
 * flood workers.
 */
import { spawn } from 'node:child_process';
import { availableParallelism, setPriority } from 'node:os';
import { randomBytes } from 'node:crypto';
import { createLogger } from '@fanout/observability';
import { freePort, getBroker, type BrokerHandle } from '@fanout/kafka';
import { PublisherClient } from '@fanout/publisher';
import { RawWs } from './raw-ws.js';
import {
  cpuSeconds,
  deleteTopics,
  log,
  machineJiffies,
  numParam,
  ROOT,
  rssBytes,
  runBench,
  sleep,
  spawnService,
  stopAll,
  waitReady,
} from './processes.js';
import { fmt, table } from './report.js';

const C = Math.floor(numParam(['--c', '--connections'], 'BENCH_C', 1000));
const STALLED = Math.floor(numParam('--stalled', 'BENCH_STALLED', Math.round(C / 10)));
const R = numParam('--rate', 'BENCH_RATE', 50);
const PHASE_S = numParam('--phase-s', 'BENCH_PHASE_S', 15);
/** The limits per abuser the gateway and publisher run with (0: off), as a production deployment would set them. */
const ADDRESS_RATE = numParam('--address-rate', 'BENCH_ADDRESS_RATE', 20);
const KEY_RATE = numParam('--key-rate', 'BENCH_KEY_RATE', 200);
const CHANNEL = 'bench:slow';
const GOOD_KEY = 'bench-good-key-0123';
const FLOOD_KEY = 'bench-flood-key-0123';
/** The gateway's per-connection caps (its defaults, set explicitly so the bound below is right). */
const QUEUE_MAX_BYTES = 4 * 1024 * 1024;
const SOCKET_BUFFER_BYTES = 256 * 1024;

interface Client {
  ws: RawWs;
  subscribed: boolean;
  stalled: boolean;
  seqs: Set<number>;
  lat: { at: number; ms: number }[];
}

function pct(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

/**
 * Runs one abuser process to its end; its last line holds its counts and its own CPU seconds.
 * `nice` 19 gives it only the CPU nothing else wants: on a real deployment the abuser's CPU is on
 * another machine, on this 2-core one it is taken from the gateway and the clients.
 */
async function flood(kind: 'connections' | 'publish', env: Record<string, string>, nice = 0): Promise<Record<string, number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/slow-consumers-flood.ts'], {
    cwd: ROOT,
    env: { ...process.env, FLOOD_KIND: kind, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (nice) setPriority(child.pid!, nice);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  // 'close', not 'exit': the exit can come before the pipe's last data.
  await new Promise((r) => child.once('close', r));
  try {
    return JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, number>;
  } catch {
    log(`${kind} flood: no report in its output (${JSON.stringify(out.slice(-200))})`);
    return {};
  }
}

/** Cores busy machine-wide between two /proc/stat readings. */
function machineCores(a: { busy: number; total: number }, b: { busy: number; total: number }): number {
  const n = Math.max(1, availableParallelism());
  return ((b.busy - a.busy) / Math.max(1, b.total - a.total)) * n;
}

async function main(): Promise<number> {
  const broker: BrokerHandle = await getBroker({ log: (m) => log(`kafka: ${m}`) });
  Object.assign(process.env, broker.env);
  const run = randomBytes(3).toString('hex');
  const topics = { FANOUT_TOPIC_BROADCAST: `bench.${run}.broadcast`, FANOUT_TOPIC_USERS: `bench.${run}.users` };
  const clients: Client[] = [];
  let publisher: PublisherClient | null = null;
  try {
    const gwPort = await freePort();
    const pubPort = await freePort();
    const gateway = spawnService('gateway', 'services/gateway/src/main.ts', {
      ...topics,
      FANOUT_PORT: String(gwPort),
      FANOUT_REGION: 'bench',
      FANOUT_SERVE_PAGE: 'false',
      FANOUT_LOG_LEVEL: 'warn',
      FANOUT_TOKEN_SECRET: 'bench-slow-secret-0123456789abcdef',
      FANOUT_QUEUE_MAX_BYTES: String(QUEUE_MAX_BYTES),
      FANOUT_SOCKET_BUFFER_BYTES: String(SOCKET_BUFFER_BYTES),
      FANOUT_DEFAULT_QUEUE_POLICY: 'drop',
      FANOUT_RATE_PER_ADDRESS: String(ADDRESS_RATE),
      FANOUT_RATE_PER_ADDRESS_BURST: String(2 * ADDRESS_RATE || 1),
      FANOUT_MAX_CONNECTIONS_PER_ADDRESS: String(ADDRESS_RATE ? Math.max(5000, 2 * C) : 0),
    });
    await waitReady(gateway, `http://127.0.0.1:${gwPort}/readyz`, 90_000);
    const pubProc = spawnService('publisher', 'services/publisher/src/main.ts', {
      ...topics,
      FANOUT_PORT: String(pubPort),
      FANOUT_API_KEYS: `${GOOD_KEY},${FLOOD_KEY}`,
      FANOUT_LOG_LEVEL: 'warn',
      FANOUT_PUBLISH_RATE_PER_KEY: String(KEY_RATE),
      FANOUT_PUBLISH_BURST_PER_KEY: String(Math.max(500, 2 * KEY_RATE)),
    });
    await waitReady(pubProc, `http://127.0.0.1:${pubPort}/readyz`, 90_000);
    publisher = new PublisherClient({
      brokers: broker.brokers,
      logger: createLogger('bench').child({}, { level: 'warn' }),
      topics: { broadcast: topics.FANOUT_TOPIC_BROADCAST, users: topics.FANOUT_TOPIC_USERS },
      createTopics: false,
    });
    await publisher.connect();

    // C clients, 100 at a time.
    const url = new URL(`ws://127.0.0.1:${gwPort}/v1/ws`);
    // A refused connect (the gateway admits a bounded rate: 503 overloaded) is tried again after
    // the delay it names, as the SDK does.
    const open = (c: Client, i: number) => {
      c.ws = new RawWs(url, {
        open: () => c.ws.send(JSON.stringify({ op: 'subscribe', channels: [CHANNEL], id: 1 })),
        text: (payload) => {
          const s = payload.toString();
          if (!c.subscribed && s.includes('"t":"subscribed"')) c.subscribed = true;
          const m = /"seq":(\d+),"t":(\d+)/.exec(s);
          if (!m) return;
          const now = Date.now();
          c.seqs.add(Number(m[1]));
          c.lat.push({ at: now, ms: now - Number(m[2]) });
        },
        close: (code) => log(`client ${i} closed ${code}`),
        refused: (status, retryAfterMs, body) => {
          // 503 over the gateway's admission rate, 429 over this address's: come back when told.
          if (status === 503 || status === 429) return void setTimeout(() => open(c, i), retryAfterMs ?? 500);
          log(`client ${i} refused ${status} ${body.slice(0, 100)}`);
        },
      });
    };
    for (let i = 0; i < C; i++) {
      const c: Client = { ws: null as unknown as RawWs, subscribed: false, stalled: false, seqs: new Set(), lat: [] };
      open(c, i);
      clients.push(c);
      if (i % 100 === 99) {
        const by = Date.now() + 30_000;
        while (clients.some((x) => !x.subscribed) && Date.now() < by) await sleep(20);
      }
    }
    const by = Date.now() + 30_000;
    while (clients.some((x) => !x.subscribed) && Date.now() < by) await sleep(20);
    if (clients.some((x) => !x.subscribed)) throw new Error(`${clients.filter((x) => !x.subscribed).length} clients did not subscribe`);
    log(`${C} clients subscribed; gateway pid ${gateway.pid}`);

    // The steady stream, for all three phases.
    let seq = 0;
    let stop = false;
    const firstSeq = 0;
    const pad = 'x'.repeat(60);
    const started = Date.now();
    const stream = (async () => {
      while (!stop) {
        const due = started + (seq * 1000) / R;
        if (due > Date.now()) await sleep(due - Date.now());
        void publisher!.publish({ channel: CHANNEL, data: { seq: seq++, t: Date.now(), pad } }).catch(() => {});
      }
    })();
    const rssSamples: { at: number; rss: number }[] = [];
    const sampler = setInterval(() => rssSamples.push({ at: Date.now(), rss: rssBytes(gateway.pid!) }), 250);

    // CPU seconds per process at each phase boundary: where the cores went in each phase.
    const snap = () => ({
      at: Date.now(),
      gateway: cpuSeconds(gateway.pid!) ?? 0,
      publisher: cpuSeconds(pubProc.pid!) ?? 0,
      bench: process.cpuUsage(),
      machine: machineJiffies(),
    });
    const floodEnv = (kind: 'connections' | 'publish'): Record<string, string> =>
      kind === 'connections'
        ? // The abuser has an address of its own (127.0.0.2): the well-behaved clients are on 127.0.0.1.
          {
            FLOOD_GATEWAY_WS: `ws://127.0.0.1:${gwPort}/v1/ws`,
            FLOOD_LOCAL_ADDRESS: '127.0.0.2',
            FLOOD_SECONDS: String(PHASE_S),
            FLOOD_PARALLEL: '50',
          }
        : {
            FLOOD_PUBLISHER: `http://127.0.0.1:${pubPort}`,
            FLOOD_API_KEY: FLOOD_KEY,
            FLOOD_SECONDS: String(PHASE_S),
            FLOOD_PARALLEL: '50',
          };
    const floods = (nice: number) =>
      Promise.all([flood('connections', floodEnv('connections'), nice), flood('publish', floodEnv('publish'), nice)]);

    const s0 = snap();
    await sleep(PHASE_S * 1000);
    const s1 = snap();
    const rssBase = rssBytes(gateway.pid!);
    for (const c of clients.slice(0, STALLED)) {
      c.stalled = true;
      c.ws.stallReading();
    }
    log(`phase 2: ${STALLED} clients stopped reading`);
    await sleep(PHASE_S * 1000);
    const s2 = snap();
    log('phase 3: floods');
    const [connFlood, pubFlood] = await floods(0);
    const s3 = snap();
    log('phase 4: floods, the abusers at nice 19');
    const [connFloodNiced, pubFloodNiced] = await floods(19);
    const s4 = snap();
    stop = true;
    await stream;
    const lastSeq = seq - 1;
    await sleep(3000);
    clearInterval(sampler);

    const fast = clients.filter((c) => !c.stalled);
    const lat = (from: number, to: number) => fast.flatMap((c) => c.lat.filter((l) => l.at >= from && l.at < to).map((l) => l.ms));
    const base = lat(s0.at, s1.at);
    const withStalled = lat(s1.at + 1000, s2.at);
    const withFlood = lat(s2.at + 500, s3.at);
    const withFloodNiced = lat(s3.at + 500, s4.at);
    let lost = 0;
    for (const c of fast) for (let s = firstSeq; s <= lastSeq; s++) if (!c.seqs.has(s)) lost++;
    const rssPeak = Math.max(...rssSamples.filter((s) => s.at >= s1.at).map((s) => s.rss));
    const growth = rssPeak - rssBase;
    const bound = rssBase + STALLED * (QUEUE_MAX_BYTES + SOCKET_BUFFER_BYTES);
    const closedFast = fast.filter((c) => !c.ws.isOpen).length;
    // Cores used in a phase by each process (CPU seconds / wall seconds); the rest of the machine's
    // busy time is the broker and anything else running.
    type Snap = ReturnType<typeof snap>;
    const cores = (a: Snap, b: Snap, abusers: Record<string, number>[] = []) => {
      const wall = (b.at - a.at) / 1000;
      const benchS = (b.bench.user - a.bench.user + b.bench.system - a.bench.system) / 1e6;
      const abuserS = abusers.reduce((t, f) => t + (f.cpu_s ?? 0), 0);
      const m = machineCores(a.machine, b.machine);
      const own = {
        gateway: (b.gateway - a.gateway) / wall,
        publisher: (b.publisher - a.publisher) / wall,
        clients: benchS / wall,
        abusers: abuserS / wall,
      };
      return { ...own, rest: Math.max(0, m - own.gateway - own.publisher - own.clients - own.abusers), machine: m };
    };
    const cpu = [cores(s0, s1), cores(s1, s2), cores(s2, s3, [connFlood, pubFlood]), cores(s3, s4, [connFloodNiced, pubFloodNiced])];

    const p99 = (v: number[]) => pct(v, 0.99);
    console.log(
      table([
        [
          'phase',
          'fast deliveries',
          'p50 ms',
          'p99 ms',
          'p99 / baseline',
          'cores: gateway',
          'publisher',
          'clients + steady publisher',
          'abusers',
          'broker + rest',
          'machine',
        ],
        ...(
          [
            ['baseline', base],
            [`${STALLED} stalled`, withStalled],
            ['stalled + floods', withFlood],
            ['stalled + floods (abusers at nice 19)', withFloodNiced],
          ] as const
        ).map(([name, v], i) => {
          const c = cpu[i]!;
          return [
            name,
            fmt(v.length),
            fmt(pct(v, 0.5)),
            fmt(p99(v)),
            fmt(p99(v) / p99(base), 2),
            fmt(c.gateway, 2),
            fmt(c.publisher, 2),
            fmt(c.clients, 2),
            fmt(c.abusers, 2),
            fmt(c.rest, 2),
            fmt(c.machine, 2),
          ];
        }),
      ]),
    );
    console.log(
      `gateway RSS: ${fmt(rssBase / 1048576, 1)} MiB at the end of the baseline, peak ${fmt(rssPeak / 1048576, 1)} MiB after (growth ${fmt(growth / 1048576, 1)} MiB; bound ${fmt(bound / 1048576, 1)} MiB = baseline + ${STALLED} x (${QUEUE_MAX_BYTES / 1048576} MiB queue + ${SOCKET_BUFFER_BYTES / 1024} KiB socket buffer))`,
    );
    console.log(`fast clients: ${fast.length}, messages lost ${lost} (seq ${firstSeq}..${lastSeq}), closed ${closedFast}`);
    console.log(`limits: FANOUT_RATE_PER_ADDRESS=${ADDRESS_RATE} (gateway), FANOUT_PUBLISH_RATE_PER_KEY=${KEY_RATE} (publisher)`);
    console.log(`connection flood (one address, 50 at a time, ${PHASE_S} s): ${JSON.stringify(connFlood)}`);
    console.log(`publish flood (one API key, 50 requests at a time, ${PHASE_S} s): ${JSON.stringify(pubFlood)}`);
    console.log(`connection flood at nice 19: ${JSON.stringify(connFloodNiced)}`);
    console.log(`publish flood at nice 19: ${JSON.stringify(pubFloodNiced)}`);
    console.log(
      JSON.stringify({
        bench: 'slow-consumers',
        connections: C,
        stalled: STALLED,
        fast_p99_ms_baseline: p99(base),
        fast_p99_ms_with_stalled: p99(withStalled),
        fast_p99_ms_with_flood: p99(withFlood),
        gateway_rss_growth_bytes: growth,
        rss_bound_bytes: bound,
        fast_messages_lost: lost,
        fast_p99_ms_with_flood_abusers_niced: p99(withFloodNiced),
        cores_abusers_with_flood: Number(cpu[2]!.abusers.toFixed(2)),
      }),
    );
    return 0;
  } finally {
    for (const c of clients) c.ws.destroy();
    await publisher?.disconnect().catch(() => {});
    await stopAll();
    if (broker.source !== 'env') await broker.stop();
    else await deleteTopics(broker.brokers, Object.values(topics));
  }
}

runBench(main, 900);
