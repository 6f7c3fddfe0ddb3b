import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RouteTable } from './routing/route-table.js';
import type { GatewayInfoPoller } from './routing/gateway-info.js';

/** Router metrics. Region and node labels are bounded by configuration and by the gateways running. */
export function routerMetrics(registry: Registry, table: RouteTable, info: GatewayInfoPoller) {
  const registers = [registry];
  const reported = new Map<string, number>();
  return {
    rateLimited: new Counter({
      name: 'fanout_router_rate_limited_total',
      help: 'Requests refused with 429 rate_limited: their client address was over FANOUT_RATE_PER_ADDRESS.',
      registers,
    }),
    lookups: new Counter({
      name: 'fanout_router_lookups_total',
      help: 'Route lookups by outcome: ok, no_owner, unknown_region, bad_request.',
      labelNames: ['outcome'],
      registers,
    }),
    lookupSeconds: new Histogram({
      name: 'fanout_router_lookup_seconds',
      help: 'Time to answer a route lookup, from request to response written.',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers,
    }),
    gateways: new Gauge({
      name: 'fanout_router_gateways',
      help: 'Live gateways per region (members of the region consumer group).',
      labelNames: ['region'],
      registers,
      collect() {
        for (const [region, v] of table.views) this.set({ region }, v.snapshot.members.length);
      },
    }),
    partitions: new Gauge({
      name: 'fanout_router_partitions',
      help: 'Users-topic partitions owned per gateway per region.',
      labelNames: ['region', 'node'],
      registers,
      collect() {
        this.reset();
        for (const [region, v] of table.views) for (const m of v.snapshot.members) this.set({ region, node: m.node }, m.partitions.length);
      },
    }),
    unowned: new Gauge({
      name: 'fanout_router_unowned_partitions',
      help: 'Users-topic partitions with no owner per region (alert on this staying above 0).',
      labelNames: ['region'],
      registers,
      collect() {
        for (const [region, v] of table.views) this.set({ region }, Math.max(0, table.partitions - v.snapshot.owners.size));
      },
    }),
    connections: new Gauge({
      name: 'fanout_router_gateway_connections',
      help: 'Client connections per gateway, as its /v1/info reported.',
      labelNames: ['region', 'node'],
      registers,
      collect() {
        this.reset();
        for (const [region, v] of table.views)
          for (const m of v.snapshot.members) this.set({ region, node: m.node }, info.info.get(m.url)?.connections ?? 0);
      },
    }),
    rebalances: new Counter({
      name: 'fanout_router_rebalances_total',
      help: 'Assignment changes seen per region.',
      labelNames: ['region'],
      registers,
      collect() {
        for (const [region, n] of table.rebalances) {
          const d = n - (reported.get(region) ?? 0);
          if (d > 0) this.inc({ region }, d);
          reported.set(region, n);
        }
      },
    }),
  };
}
