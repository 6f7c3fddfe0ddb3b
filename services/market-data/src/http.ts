/**
 * The market-data producer's small HTTP face, as on every service: `/metrics` (ticks published,
 * acknowledged, failed, skipped, in flight), `/healthz`, `/readyz`.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge } from 'prom-client';
import { createRegistry, type Health } from '@fanout/observability';
import type { TickProducerStats } from './producer.js';

export function marketDataServer(stats: TickProducerStats, health: Health): Server {
  const registry = createRegistry({ service: 'market-data' });
  const reported: Record<string, number> = {};
  const follow = (field: 'published' | 'acknowledged' | 'failed' | 'skipped', help: string) =>
    new Counter({
      name: `fanout_market_data_ticks_${field}_total`,
      help,
      registers: [registry],
      collect() {
        const d = stats[field] - (reported[field] ?? 0);
        if (d > 0) this.inc(d);
        reported[field] = stats[field];
      },
    });
  follow('published', 'Ticks handed to the producer library.');
  follow('acknowledged', 'Ticks Kafka acknowledged.');
  follow('failed', 'Ticks Kafka did not acknowledge.');
  follow('skipped', 'Ticks skipped (too many in flight, or catching up after a stall).');
  new Gauge({ name: 'fanout_market_data_ticks_in_flight', help: 'Ticks awaiting acknowledgement.', registers: [registry], collect() { this.set(stats.inFlight); } });
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === '/healthz') return json(200, { ok: true });
    if (path === '/readyz') return json(health.ready ? 200 : 503, health.report());
    if (path === '/metrics') {
      void registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      });
      return;
    }
    json(404, { error: { code: 'not_found', message: 'Routes: /metrics, /healthz, /readyz.', retriable: false } });
  });
}
