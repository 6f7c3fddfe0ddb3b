/**
 * `npm run bench:failover`: the partition leader of the broadcast topic killed with SIGKILL while
 * events flow, on a three-broker KRaft cluster over SASL_SSL (SCRAM-SHA-512, private CA) with
 * topics of three replicas and min.insync.replicas 2, as production runs it.
 *
 * Processes, all on 127.0.0.1: three Kafka brokers (`startLocalKafka({ brokers: 3, security:
 * 'sasl_ssl' })`), the publisher service and one gateway (their real main.ts, configured only by
 * the cluster's client env), and this process: C WebSocket clients (bench/raw-ws.ts) subscribed to
 * one channel, and an HTTP publisher sending R events/s to `POST /v1/publish`, each request on its
 * own (a refused or failed publish is counted, never retried).
 *
 * Timeline: `--before-s` of steady traffic; the leader of the channel's partition is SIGKILLed;
 * it is restarted `--restart-after-s` later; traffic goes on until `--after-s` after the kill;
 * then the clients get up to 30 s to receive everything acknowledged.
 *
 * Figures: publishes acknowledged / refused (with the status) / failed; the publish pause (the
 * longest wait between two acknowledgements, from the kill on); end-to-end latency (publish sent
 * to client received) p50/p99 before the kill, in the failover window (the kill to 5 s after
 * publishing resumed) and after; acknowledged events lost (any client without it), duplicates
 * (a position twice at a client), out of order. Last stdout line:
 * `{"bench":"failover","brokers":3,"security":"sasl_ssl","broker_session_timeout_ms":S,"clients":C,"rate":R,"acked":…,"refused":…,"failed":…,"lost":…,"duplicates":…,"out_of_order":…,"leader_moved_ms":…,"publish_pause_ms":…,"p99_steady_ms":…,"p99_failover_ms":…,"p99_after_ms":…}`
 *
 *   npm run bench:failover                                  # C=100, R=100/s, kill at 10 s, restart 15 s later, 30 s after the kill
 *   npm run bench:failover -- --clients 200 --rate 200
 *   npm run bench:failover -- --broker-session-timeout-ms 3000   # the quicker fencing the local test cluster uses
 *
 * The brokers run with Kafka's default broker.session.timeout.ms (9000) unless told otherwise: a
 * killed leader keeps its partitions until the controller fences it, so this sets the pause.
 */
import { randomBytes } from 'node:crypto';
import { createLogger } from '@fanout/observability';
import { createKafka, freePort, KAFKA_BROKER_SESSION_TIMEOUT_MS, startLocalKafka, type LocalKafka } from '@fanout/kafka';
import { RawWs } from './raw-ws.js';
import { log, numParam, runBench, sleep, spawnService, stopAll, waitReady } from './processes.js';

const C = numParam('--clients', 'BENCH_CLIENTS', 100);
const R = numParam('--rate', 'BENCH_RATE', 100);
const BEFORE_S = numParam('--before-s', 'BENCH_BEFORE_S', 10);
const AFTER_S = numParam('--after-s', 'BENCH_AFTER_S', 30);
const RESTART_AFTER_S = numParam('--restart-after-s', 'BENCH_RESTART_AFTER_S', 15);
/** How long a dead broker keeps leadership until the controller fences it; Kafka's default unless given. */
const SESSION_MS = numParam('--broker-session-timeout-ms', 'BENCH_BROKER_SESSION_TIMEOUT_MS', KAFKA_BROKER_SESSION_TIMEOUT_MS);
const CHANNEL = 'bench:failover';
const API_KEY = 'bench-failover-key-0123';

interface Publish {
  seq: number;
  sentAt: number;
  ackAt?: number;
  status?: number;
  id?: string;
}

interface ClientState {
  ws: RawWs | null;
  subscribed: boolean;
  /** seq -> position, in arrival order. */
  seqs: number[];
  positions: Set<string>;
  lastOffset: number;
  duplicates: number;
  outOfOrder: number;
  latencies: { at: number; ms: number }[];
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function main(): Promise<number> {
  const cluster: LocalKafka = await startLocalKafka({
    brokers: 3,
    security: 'sasl_ssl',
    brokerSessionTimeoutMs: SESSION_MS,
    log: (m) => log(`kafka: ${m}`),
  });
  // Everything below (the services, this process's admin client) reaches Kafka the way production does.
  Object.assign(process.env, cluster.clientEnv);
  const run = randomBytes(3).toString('hex');
  const topics = {
    FANOUT_TOPIC_BROADCAST: `bench.${run}.broadcast`,
    FANOUT_TOPIC_USERS: `bench.${run}.users`,
    FANOUT_BROADCAST_PARTITIONS: '1',
    FANOUT_USER_PARTITIONS: '3',
  };
  const clients: ClientState[] = [];
  try {
    const pubPort = await freePort();
    const gwPort = await freePort();
    const publisher = spawnService('publisher', 'services/publisher/src/main.ts', {
      ...topics,
      FANOUT_PORT: String(pubPort),
      FANOUT_API_KEYS: API_KEY,
      FANOUT_LOG_LEVEL: 'warn',
    });
    await waitReady(publisher, `http://127.0.0.1:${pubPort}/readyz`, 90_000);
    const gateway = spawnService('gateway', 'services/gateway/src/main.ts', {
      ...topics,
      FANOUT_PORT: String(gwPort),
      FANOUT_REGION: 'bench',
      FANOUT_NODE: 'gw-failover',
      FANOUT_TOKEN_SECRET: 'bench-failover-secret-0123456789abcdef',
      FANOUT_SERVE_PAGE: 'false',
      FANOUT_LOG_LEVEL: 'error',
    });
    await waitReady(gateway, `http://127.0.0.1:${gwPort}/readyz`, 90_000);
    log(`cluster ${cluster.brokers.join(',')} (sasl_ssl), publisher :${pubPort}, gateway :${gwPort}`);

    // C clients, all on one channel.
    for (let i = 0; i < C; i++) {
      const st: ClientState = {
        ws: null,
        subscribed: false,
        seqs: [],
        positions: new Set(),
        lastOffset: -1,
        duplicates: 0,
        outOfOrder: 0,
        latencies: [],
      };
      clients.push(st);
      st.ws = new RawWs(new URL(`ws://127.0.0.1:${gwPort}/v1/ws`), {
        open: () => st.ws!.send(JSON.stringify({ op: 'subscribe', channels: [CHANNEL], id: 1 })),
        text: (payload) => {
          const f = JSON.parse(payload.toString()) as { t: string; pos?: string; data?: { seq: number; t: number } };
          if (f.t === 'subscribed') st.subscribed = true;
          if (f.t !== 'msg' || !f.pos || !f.data) return;
          const now = Date.now();
          if (st.positions.has(f.pos)) st.duplicates++;
          st.positions.add(f.pos);
          const offset = Number(f.pos.split(':')[2]);
          if (offset <= st.lastOffset) st.outOfOrder++;
          st.lastOffset = Math.max(st.lastOffset, offset);
          st.seqs.push(f.data.seq);
          st.latencies.push({ at: now, ms: now - f.data.t });
        },
        close: (code) => log(`client closed ${code}`),
        refused: (status, _r, body) => log(`client refused ${status} ${body.slice(0, 120)}`),
      });
    }
    const subscribedBy = Date.now() + 30_000;
    while (clients.some((c) => !c.subscribed) && Date.now() < subscribedBy) await sleep(50);
    if (clients.some((c) => !c.subscribed)) throw new Error('not every client subscribed');

    // The load: one POST per event, each on its own.
    const publishes: Publish[] = [];
    let stop = false;
    const inFlight = new Set<Promise<void>>();
    const startedAt = Date.now();
    const load = (async () => {
      let seq = 0;
      while (!stop) {
        const due = startedAt + (seq * 1000) / R;
        if (due > Date.now()) await sleep(due - Date.now());
        const p: Publish = { seq: seq++, sentAt: Date.now() };
        publishes.push(p);
        const req = fetch(`http://127.0.0.1:${pubPort}/v1/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel: CHANNEL, data: { seq: p.seq, t: p.sentAt } }),
          signal: AbortSignal.timeout(60_000),
        }).then(
          async (res) => {
            p.status = res.status;
            const body = (await res.json()) as { id?: string };
            if (res.status === 200) {
              p.ackAt = Date.now();
              p.id = body.id;
            }
          },
          () => void (p.status = 0),
        );
        inFlight.add(req);
        void req.finally(() => inFlight.delete(req));
      }
    })();

    await sleep(BEFORE_S * 1000);
    const quiet = createLogger('bench-failover').child({}, { level: 'fatal' });
    const leaderOf = async (brokers: string[]): Promise<number | null> => {
      const admin = createKafka({ brokers, clientId: 'bench-failover', logger: quiet }).admin();
      try {
        await admin.connect();
        return (await admin.fetchTopicMetadata({ topics: [topics.FANOUT_TOPIC_BROADCAST] })).topics[0]!.partitions[0]!.leader;
      } catch {
        return null;
      } finally {
        await admin.disconnect().catch(() => {});
      }
    };
    const leader = (await leaderOf(cluster.brokers))!;
    const victim = cluster.nodes.find((n) => n.nodeId === leader)!;
    const killedAt = Date.now();
    await victim.kill('SIGKILL');
    log(`killed broker ${leader} (leader of ${topics.FANOUT_TOPIC_BROADCAST}/0)`);
    // When Kafka itself moved the leadership (asked of a surviving broker), apart from when the clients noticed.
    const survivors = cluster.nodes.filter((n) => n !== victim).map((n) => `127.0.0.1:${n.port}`);
    let leaderMovedMs = NaN;
    while (Date.now() - killedAt < RESTART_AFTER_S * 1000) {
      const now = await leaderOf(survivors);
      if (now !== null && now !== leader && now !== -1) {
        leaderMovedMs = Date.now() - killedAt;
        log(`the leadership moved to broker ${now} ${leaderMovedMs} ms after the kill`);
        break;
      }
      await sleep(250);
    }
    await sleep(RESTART_AFTER_S * 1000 - (Date.now() - killedAt));
    await victim.start();
    log(`restarted broker ${leader} ${Date.now() - killedAt} ms after the kill`);
    await sleep(Math.max(0, AFTER_S * 1000 - (Date.now() - killedAt)));
    stop = true;
    await load;
    await Promise.allSettled([...inFlight]);

    const acked = publishes.filter((p) => p.ackAt !== undefined);
    const refused = publishes.filter((p) => p.status !== undefined && p.status !== 200 && p.status !== 0);
    const failed = publishes.filter((p) => p.status === 0 || p.status === undefined);
    const ackedSeqs = new Set(acked.map((p) => p.seq));
    const drainBy = Date.now() + 30_000;
    const missing = () => clients.reduce((n, c) => n + [...ackedSeqs].filter((s) => !c.seqs.includes(s)).length, 0);
    while (Date.now() < drainBy && clients.some((c) => c.seqs.length < ackedSeqs.size)) await sleep(200);
    const lost = missing();

    // Publish pause: the longest wait between acknowledgements from the kill on.
    const ackTimes = acked.map((p) => p.ackAt!).sort((a, b) => a - b);
    let pause = 0;
    let prev = killedAt;
    for (const t of ackTimes) {
      if (t < killedAt) continue;
      pause = Math.max(pause, t - prev);
      prev = t;
    }
    const resumedAt = ackTimes.find((t) => t >= killedAt && acked.some((p) => p.ackAt === t && p.sentAt >= killedAt)) ?? NaN;
    const windowEnd = (Number.isFinite(resumedAt) ? resumedAt : killedAt + pause) + 5000;
    const lat = clients.flatMap((c) => c.latencies);
    const steady = lat.filter((l) => l.at < killedAt).map((l) => l.ms);
    const during = lat.filter((l) => l.at >= killedAt && l.at < windowEnd).map((l) => l.ms);
    const after = lat.filter((l) => l.at >= windowEnd).map((l) => l.ms);
    const duplicates = clients.reduce((n, c) => n + c.duplicates, 0);
    const outOfOrder = clients.reduce((n, c) => n + c.outOfOrder, 0);
    const refusedBy = new Map<number, number>();
    for (const p of refused) refusedBy.set(p.status!, (refusedBy.get(p.status!) ?? 0) + 1);

    const rows: [string, string][] = [
      ['cluster', `3 brokers, SASL_SSL (SCRAM-SHA-512), replication 3, min.insync 2, broker.session.timeout.ms ${SESSION_MS}`],
      ['clients x rate', `${C} x ${R}/s on one channel (1 partition)`],
      ['killed', `broker ${leader} (partition leader) at +${BEFORE_S} s, restarted ${RESTART_AFTER_S} s later`],
      [
        'publishes',
        `${publishes.length} sent, ${acked.length} acknowledged, ${refused.length} refused (${[...refusedBy].map(([s, n]) => `${s}: ${n}`).join(', ') || 'none'}), ${failed.length} failed`,
      ],
      ['leadership moved (Kafka)', `${leaderMovedMs} ms after the kill`],
      ['publish pause', `${pause} ms (longest wait between acknowledgements from the kill on)`],
      ['first ack of a publish sent after the kill', Number.isFinite(resumedAt) ? `+${resumedAt - killedAt} ms` : 'none'],
      ['latency before the kill', `p50 ${percentile(steady, 50)} ms, p99 ${percentile(steady, 99)} ms (${steady.length} deliveries)`],
      ['latency kill .. resumed+5 s', `p50 ${percentile(during, 50)} ms, p99 ${percentile(during, 99)} ms (${during.length})`],
      ['latency after', `p50 ${percentile(after, 50)} ms, p99 ${percentile(after, 99)} ms (${after.length})`],
      ['acknowledged events lost', `${lost} (over ${C} clients)`],
      ['duplicates / out of order', `${duplicates} / ${outOfOrder}`],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
    console.log(
      JSON.stringify({
        bench: 'failover',
        brokers: 3,
        security: 'sasl_ssl',
        broker_session_timeout_ms: SESSION_MS,
        clients: C,
        rate: R,
        acked: acked.length,
        refused: refused.length,
        failed: failed.length,
        lost,
        duplicates,
        out_of_order: outOfOrder,
        leader_moved_ms: leaderMovedMs,
        publish_pause_ms: pause,
        p99_steady_ms: percentile(steady, 99),
        p99_failover_ms: percentile(during, 99),
        p99_after_ms: percentile(after, 99),
      }),
    );
    return lost === 0 && duplicates === 0 ? 0 : 1;
  } finally {
    for (const c of clients) c.ws?.destroy();
    await stopAll();
    await cluster.stop();
  }
}

runBench(main, 600);
