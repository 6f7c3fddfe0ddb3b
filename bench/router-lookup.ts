/**
 * `npm run bench:router`: route lookup latency. Starts a real broker (or uses KAFKA_BROKERS), one
 * gateway per region and the router, then sends N lookups for random user ids over keep-alive
 * HTTP with C in flight, and prints client-side latency percentiles and the router's own
 * server-side time (its fanout_router_lookup_seconds histogram, which excludes the network).
 *
 * Env: N (requests, default 20000), C (concurrency, default 16).
 */
import http from 'node:http';
import { getBroker } from '@fanout/kafka';
import { startGateway } from '@fanout/gateway';
import { startRouter } from '@fanout/router';

process.env.FANOUT_LOG_LEVEL ??= 'warn';
const N = Number(process.env.N ?? 20_000);
const C = Number(process.env.C ?? 16);
const id = Math.random().toString(36).slice(2, 8);
const topics = { topicBroadcast: `bench.${id}.broadcast`, topicUsers: `bench.${id}.users` };

const broker = await getBroker({ log: (m) => console.error(`[kafka] ${m}`) });
Object.assign(process.env, broker.env);
const gateways = await Promise.all(
  ['eu', 'us'].map((region) =>
    startGateway({
      brokers: broker.brokers,
      port: 0,
      region,
      node: `gw-${region}-0`,
      servePage: false,
      userGroupId: `bench-${id}-${region}`,
      ...topics,
    }),
  ),
);
const router = await startRouter({
  brokers: broker.brokers,
  port: 0,
  regions: ['eu', 'us'],
  groupIdTemplate: `bench-${id}-{region}`,
  topicUsers: topics.topicUsers,
  refreshMs: 200,
});
// Wait until both regions have an owner for every partition.
for (let i = 0; i < 200; i++) {
  const s = (await (await fetch(`${router.url}/v1/status`)).json()) as { regions: { unowned_partitions: number; state: string }[] };
  if (s.regions.every((r) => r.state === 'Stable' && r.unowned_partitions === 0)) break;
  await new Promise((r) => setTimeout(r, 100));
}

const agent = new http.Agent({ keepAlive: true, maxSockets: C });
const get = (path: string) =>
  new Promise<number>((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    http
      .get({ host: '127.0.0.1', port: router.port, path, agent }, (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`status ${res.statusCode}`)),
        );
      })
      .on('error', reject);
  });

// Warm-up, then the measured run.
for (let i = 0; i < 500; i++) await get(`/v1/route?user=w${i}&region=eu`);
const before = await (await fetch(`${router.url}/metrics`)).text();
const lat: number[] = [];
let next = 0;
const started = Date.now();
await Promise.all(
  Array.from({ length: C }, async () => {
    while (next < N) {
      const i = next++;
      lat.push(await get(`/v1/route?user=u${(i * 7919) % 1_000_000}&region=${i % 2 ? 'eu' : 'us'}`));
    }
  }),
);
const wall = (Date.now() - started) / 1000;
const after = await (await fetch(`${router.url}/metrics`)).text();

function histo(text: string): { count: number; sum: number; buckets: Map<string, number> } {
  const buckets = new Map<string, number>();
  for (const m of text.matchAll(/fanout_router_lookup_seconds_bucket\{le="([^"]+)"[^}]*\} (\d+)/g)) buckets.set(m[1]!, Number(m[2]));
  return {
    count: Number(/fanout_router_lookup_seconds_count\{[^}]*\} (\d+)/.exec(text)?.[1] ?? 0),
    sum: Number(/fanout_router_lookup_seconds_sum\{[^}]*\} ([\d.e-]+)/.exec(text)?.[1] ?? 0),
    buckets,
  };
}
const a = histo(after);
const b = histo(before);
const count = a.count - b.count;
const serverMeanUs = ((a.sum - b.sum) / count) * 1e6;
const under = (le: string) => ((a.buckets.get(le) ?? 0) - (b.buckets.get(le) ?? 0)) / count;

lat.sort((x, y) => x - y);
const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))]!;
console.log('');
console.log('| measure | value |');
console.log('|---|---|');
console.log(`| lookups | ${N} (concurrency ${C}, keep-alive) |`);
console.log(`| throughput | ${Math.round(N / wall)} lookups/s |`);
console.log(`| client p50 / p99 / max | ${pct(50).toFixed(3)} / ${pct(99).toFixed(3)} / ${lat[lat.length - 1]!.toFixed(3)} ms |`);
console.log(`| router server-side mean | ${serverMeanUs.toFixed(1)} µs |`);
console.log(
  `| router server-side <= 100 µs / <= 250 µs / <= 1 ms | ${(under('0.0001') * 100).toFixed(2)}% / ${(under('0.00025') * 100).toFixed(2)}% / ${(under('0.001') * 100).toFixed(2)}% |`,
);
console.log(
  JSON.stringify({
    bench: 'router',
    lookups: N,
    concurrency: C,
    lookups_per_s: Math.round(N / wall),
    client_p50_ms: +pct(50).toFixed(3),
    client_p99_ms: +pct(99).toFixed(3),
    server_mean_us: +serverMeanUs.toFixed(1),
    server_le_1ms: +under('0.001').toFixed(4),
  }),
);

agent.destroy();
await router.shutdown();
await Promise.all(gateways.map((g) => g.shutdown()));
await broker.stop();
process.exit(0);
