import { Counter, Histogram, type Registry } from 'prom-client';

export function publisherMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: 'fanout_publisher_requests_total',
      help: 'HTTP requests by route and status code.',
      labelNames: ['route', 'code'],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'fanout_publisher_rate_limited_total',
      help: 'Publish requests refused with 429 rate_limited: their API key was over FANOUT_PUBLISH_RATE_PER_KEY events per second.',
      registers: [registry],
    }),
    events: new Counter({
      name: 'fanout_publisher_events_total',
      help: 'Events by outcome: published (acknowledged by Kafka), rejected (bad input), failed (Kafka error).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    writeSeconds: new Histogram({
      name: 'fanout_publisher_kafka_write_seconds',
      help: 'Time from receiving a publish request to Kafka acknowledging it.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
}
