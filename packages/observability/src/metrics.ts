import { Registry, collectDefaultMetrics } from 'prom-client';

/** Metric names start with this prefix (Prometheus naming: app prefix, base units, `_total`). */
export const METRIC_PREFIX = 'fanout_';

/**
 * A registry per service (not prom-client's global one, so tests can run several services in one
 * process), with the default process metrics under the `fanout_` prefix and constant labels
 * naming the service (and region, for gateways); Prometheus adds the instance. Never a user or
 * channel id as a label.
 */
export function createRegistry(labels: Record<string, string>): Registry {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  // The event-loop delay is sampled every 100 ms, not prom-client's default 10 ms: 100 wake-ups a
  // second of an otherwise idle service for a histogram scraped every 15 s (bench:connections).
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX, eventLoopMonitoringPrecision: 100 });
  return registry;
}
