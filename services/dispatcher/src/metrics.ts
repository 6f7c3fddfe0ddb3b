import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What the gauges read when scraped (computed in collect(), never stored per endpoint). */
export interface DispatcherGauges {
  retryBacklog(): number;
  deadLetters(): number;
  openCircuits(): number;
  queued(): number;
  inFlight(): number;
  endpoints(): { enabled: number; disabled: number };
}

/**
 * Dispatcher metrics. Labels are small fixed sets (outcome, result, reason, route); never an
 * endpoint id, a URL or a channel.
 */
export function dispatcherMetrics(registry: Registry, gauges: DispatcherGauges) {
  const registers = [registry];
  return {
    deliveries: new Counter({
      name: 'fanout_webhook_deliveries_total',
      help: 'Deliveries (one event to one endpoint) by how they settled: delivered, retry_scheduled, deferred (to a retry topic without spending an attempt), dead_lettered, dropped (endpoint deleted).',
      labelNames: ['outcome'],
      registers,
    }),
    attempts: new Counter({
      name: 'fanout_webhook_attempts_total',
      help: 'HTTP attempts by result: success, http_error, timeout, network_error, forbidden_target.',
      labelNames: ['result'],
      registers,
    }),
    attemptSeconds: new Histogram({
      name: 'fanout_webhook_attempt_duration_seconds',
      help: 'Time from sending a webhook to its response headers (or failure).',
      labelNames: ['result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    firstAttemptLagSeconds: new Histogram({
      name: 'fanout_webhook_first_attempt_lag_seconds',
      help: "Time from an event's publication to the end of its first successful attempt, for deliveries that succeeded first time.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    deferrals: new Counter({
      name: 'fanout_webhook_deferrals_total',
      help: 'Deliveries moved to a retry topic without an attempt, by reason: queue_full, queue_wait, slow_endpoint, circuit_open.',
      labelNames: ['reason'],
      registers,
    }),
    deadLettered: new Counter({
      name: 'fanout_webhook_dead_lettered_total',
      help: 'Deliveries written to the dead-letter topic, by reason: exhausted (every attempt failed), expired (deferred past the schedule), endpoint_disabled.',
      labelNames: ['reason'],
      registers,
    }),
    redriven: new Counter({ name: 'fanout_webhook_redriven_total', help: 'Dead letters submitted again by a redrive call.', registers }),
    circuitsOpened: new Counter({ name: 'fanout_webhook_circuits_opened_total', help: "Times an endpoint's circuit opened.", registers }),
    rateLimited: new Counter({
      name: 'fanout_webhook_api_rate_limited_total',
      help: 'Endpoint API requests refused with 429 rate_limited: their client address was over FANOUT_RATE_PER_ADDRESS.',
      registers,
    }),
    skippedRecords: new Counter({
      name: 'fanout_webhook_skipped_records_total',
      help: 'Records skipped, by kind: event or retry (could not be read), forwarded_copy (a gateway copy of a misrouted user record; the original is delivered).',
      labelNames: ['kind'],
      registers,
    }),
    consumerPauses: new Counter({
      name: 'fanout_webhook_consumer_pauses_total',
      help: 'Times a consumed partition paused, by reason: window (FANOUT_PARTITION_WINDOW records unsettled), budget (FANOUT_MAX_QUEUED_DELIVERIES waiting: every endpoint busy).',
      labelNames: ['reason'],
      registers,
    }),
    requests: new Counter({
      name: 'fanout_dispatcher_requests_total',
      help: 'Endpoint API requests by route and status code.',
      labelNames: ['route', 'code'],
      registers,
    }),
    retryBacklog: new Gauge({
      name: 'fanout_webhook_retry_backlog',
      help: 'Records in the retry topics not yet committed by the retry consumer group (scheduled retries and deferrals), refreshed every few seconds.',
      registers,
      collect() {
        this.set(gauges.retryBacklog());
      },
    }),
    deadLetters: new Gauge({
      name: 'fanout_webhook_dead_letters',
      help: 'Dead letters in the dead-letter topic, as indexed by this instance (bounded by FANOUT_DEAD_LETTER_INDEX_MAX).',
      registers,
      collect() {
        this.set(gauges.deadLetters());
      },
    }),
    openCircuits: new Gauge({
      name: 'fanout_webhook_open_circuits',
      help: 'Endpoints whose circuit is open or half-open on this instance.',
      registers,
      collect() {
        this.set(gauges.openCircuits());
      },
    }),
    queued: new Gauge({
      name: 'fanout_webhook_queued_deliveries',
      help: "Deliveries waiting in memory for their endpoint's concurrency, rate or circuit.",
      registers,
      collect() {
        this.set(gauges.queued());
      },
    }),
    inFlight: new Gauge({
      name: 'fanout_webhook_requests_in_flight',
      help: 'Webhook requests sent and not yet answered.',
      registers,
      collect() {
        this.set(gauges.inFlight());
      },
    }),
    endpoints: new Gauge({
      name: 'fanout_webhook_endpoints',
      help: 'Endpoints in the registry by state: enabled, disabled.',
      labelNames: ['state'],
      registers,
      collect() {
        const e = gauges.endpoints();
        this.set({ state: 'enabled' }, e.enabled);
        this.set({ state: 'disabled' }, e.disabled);
      },
    }),
  };
}

export type DispatcherMetrics = ReturnType<typeof dispatcherMetrics>;
