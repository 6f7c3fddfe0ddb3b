/**
 * The market-data producer's small HTTP face, as on every service: `/metrics` (ticks published,
 * acknowledged, failed, skipped, in flight), `/healthz`, `/readyz`.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge } from 'prom-client';
import { createRegistry, serveOps, type Health } from '@fanout/observability';
import { sendError } from '@fanout/http-api';
import { FanoutError } from '@fanout/protocol';
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
  new Gauge({
    name: 'fanout_market_data_ticks_in_flight',
    help: 'Ticks awaiting acknowledgement.',
    registers: [registry],
    collect() {
      this.set(stats.inFlight);
    },
  });
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (serveOps(req, res, path, { health, registry })) return;
    sendError(res, new FanoutError('not_found', 'Routes: /metrics, /healthz, /readyz.'));
  });
}
