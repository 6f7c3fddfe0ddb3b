/**
 * The delivery engine: takes deliveries (from the event consumer, the retry consumer or a
 * redrive), runs them through their endpoint's lane (concurrency, token bucket, circuit breaker)
 * and settles each exactly once:
 *
 * - delivered: a 2xx within the timeout;
 * - retry_scheduled: the attempt failed and the next try is in its retry topic (acknowledged);
 * - deferred: not attempted (queue full, waited too long, the endpoint not keeping up, circuit
 *   open) and written to a retry topic without spending an attempt;
 * - dead_lettered: the last attempt failed (or a deferred delivery outlived the schedule, or the
 *   endpoint is disabled) and it is in the dead-letter topic (acknowledged);
 * - dropped: the endpoint was deleted.
 *
 * A delivery is settled only after the Kafka write that makes it durable was acknowledged, so the
 * consumers commit an offset only for what is delivered or durably scheduled. Nothing here blocks
 * on one endpoint: submit() returns at once and each lane works on its own.
 */
import type { Logger } from '@fanout/observability';
import type { EndpointRegistry } from '../endpoints/registry.js';
import { activeSecrets, type Endpoint } from '../endpoints/endpoint.js';
import type { RetrySchedule } from '../retries/retry-schedule.js';
import type { DeadLetterStore } from '../retries/dead-letter-store.js';
import type { DispatcherMetrics } from '../metrics.js';
import type { HttpSender } from './http-sender.js';
import { signatureHeaders, webhookBody } from './signer.js';
import { EndpointLane, type Queued, type Settle } from './endpoint-lane.js';
import type { DeadLetterReason, DeliveryJob } from './delivery-job.js';

export interface DeliveryEngineOptions {
  registry: EndpointRegistry;
  sender: HttpSender;
  schedule: RetrySchedule;
  deadLetters: DeadLetterStore;
  metrics: DispatcherMetrics;
  logger: Logger;
  defaultMaxConcurrency: number;
  defaultRateLimitPerS: number;
  maxEndpointQueue: number;
  maxQueuedDeliveries: number;
  maxQueueWaitMs: number;
  circuit: { threshold: number; openMs: number; maxOpenMs: number };
  /** A Kafka write that keeps failing this long stops the service (liveness fails); ms. */
  maxWriteRetryMs?: number;
  /** Called when a durable write could not be made (the process should be restarted). */
  onFatal(reason: string): void;
}

export class DeliveryEngine {
  private readonly lanes = new Map<string, EndpointLane>();
  private readonly log: Logger;
  private sweepTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Deliveries accepted and not settled yet. */
  pending = 0;
  inFlight = 0;

  constructor(private readonly o: DeliveryEngineOptions) {
    this.log = o.logger.child({ module: 'delivery' });
    o.registry.onChange((id, ep) => this.endpointChanged(id, ep));
    const every = Math.max(50, Math.min(500, Math.floor(o.maxQueueWaitMs / 2)));
    this.sweepTimer = setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
  }

  /** Deliveries waiting in lanes. */
  queued = 0;

  /**
   * True while the lanes hold the read-ahead budget: the consumers stop taking records until half
   * of it drained (backpressure while the endpoints keep up but the stream is faster). A lane that
   * does not keep up is trimmed by the sweep within about a second, so one slow endpoint does not
   * keep the reading stopped.
   */
  get overBudget(): boolean {
    return this.queued >= this.o.maxQueuedDeliveries;
  }

  get underHalfBudget(): boolean {
    return this.queued < this.o.maxQueuedDeliveries / 2;
  }

  get openCircuits(): number {
    const now = Date.now();
    let n = 0;
    for (const l of this.lanes.values()) if (l.breaker.state(now) !== 'closed') n++;
    return n;
  }

  /** Takes a delivery; `settle` is called once, when it is delivered or durably rescheduled. */
  submit(job: DeliveryJob, settle: Settle, fresh = false): void {
    this.pending++;
    let done = false;
    const once: Settle = (outcome) => {
      if (done) return;
      done = true;
      this.pending--;
      this.o.metrics.deliveries.inc({ outcome });
      settle(outcome);
    };
    const ep = this.o.registry.get(job.endpointId);
    if (!ep) return once('dropped');
    if (ep.disabled) return void this.deadLetter(job, 'endpoint_disabled', once);
    const lane = this.lane(ep.id);
    if (lane.breaker.state() === 'open') return void this.defer(job, 'circuit_open', lane.breaker.remainingMs(), once);
    const now = Date.now();
    if (lane.length >= this.o.maxEndpointQueue) return void this.defer(job, 'queue_full', 0, once);
    // A lane that would make it wait longer than the queue may hold it: the endpoint is not keeping
    // up, so its records must not pin the partitions' windows (and so everyone else's progress).
    if (lane.estimatedWaitMs(now) > this.o.maxQueueWaitMs) return void this.defer(job, 'slow_endpoint', 0, once);
    lane.busy(now);
    lane.push({ job, settle: once, at: now, fresh });
    this.pump(lane);
  }

  private lane(id: string): EndpointLane {
    let lane = this.lanes.get(id);
    if (!lane) this.lanes.set(id, (lane = new EndpointLane(id, this.o.circuit, (d) => (this.queued += d))));
    return lane;
  }

  /** Starts as many waiting deliveries as the endpoint's limits allow. */
  private pump(lane: EndpointLane): void {
    if (lane.timer || this.stopped) return;
    const ep = this.o.registry.get(lane.endpointId);
    if (!ep || ep.disabled) return this.endpointChanged(lane.endpointId, ep ?? null);
    const concurrency = ep.maxConcurrency ?? this.o.defaultMaxConcurrency;
    lane.setRate(ep.rateLimitPerS ?? this.o.defaultRateLimitPerS);
    while (lane.length > 0 && lane.inFlight < concurrency) {
      const now = Date.now();
      if (!lane.breaker.canStart(now)) {
        if (lane.breaker.state(now) === 'open') this.deferAll(lane);
        break;
      }
      if (lane.bucket && !lane.bucket.tryTake()) {
        lane.timer = setTimeout(
          () => {
            lane.timer = null;
            this.pump(lane);
          },
          Math.max(1, lane.bucket.waitMs()),
        );
        break;
      }
      void this.attempt(lane, ep, lane.shift()!);
    }
    lane.settleIdle();
    // A lane with nothing to remember (no work, a closed circuit without failures) is let go.
    if (lane.idle && lane.breaker.clean) this.lanes.delete(lane.endpointId);
  }

  private async attempt(lane: EndpointLane, ep: Endpoint, item: Queued): Promise<void> {
    const { job } = item;
    lane.inFlight++;
    this.inFlight++;
    lane.breaker.started();
    const at = new Date();
    const body = webhookBody(job.event);
    const r = await this.o.sender.post(new URL(ep.url), signatureHeaders(activeSecrets(ep, at.getTime()), job.event.id, at, body), body);
    lane.inFlight--;
    this.inFlight--;
    lane.completed(Date.now());
    this.o.metrics.attempts.inc({ result: r.kind });
    this.o.metrics.attemptSeconds.observe({ result: r.kind }, r.seconds);
    if (r.ok) {
      lane.breaker.succeeded();
      if (item.fresh && job.attempt === 0)
        this.o.metrics.firstAttemptLagSeconds.observe(Math.max(0, Date.now() - job.event.publishedAt) / 1000);
      item.settle('delivered');
    } else {
      if (lane.breaker.failed()) {
        this.o.metrics.circuitsOpened.inc();
        this.log.warn(
          { endpoint_id: ep.id, open_ms: lane.breaker.remainingMs() },
          'endpoint circuit opened; deliveries deferred until a probe succeeds',
        );
        this.deferAll(lane);
      }
      const attempted: DeliveryJob = {
        ...job,
        attempt: job.attempt + 1,
        last: { at: at.getTime(), ...(r.status !== undefined ? { status: r.status } : {}), ...(r.error ? { error: r.error } : {}) },
      };
      void this.afterFailure(attempted, item.settle);
    }
    this.pump(lane);
  }

  private async afterFailure(job: DeliveryJob, settle: Settle): Promise<void> {
    if (job.attempt > this.o.schedule.steps) return this.deadLetter(job, 'exhausted', settle);
    if (await this.durably(() => this.o.schedule.schedule(job, job.attempt - 1))) settle('retry_scheduled');
  }

  private deferAll(lane: EndpointLane): void {
    const remaining = lane.breaker.remainingMs();
    for (const q of lane.takeAll()) void this.defer(q.job, 'circuit_open', remaining, q.settle);
  }

  private async defer(
    job: DeliveryJob,
    reason: 'queue_full' | 'queue_wait' | 'slow_endpoint' | 'circuit_open',
    minDelayMs: number,
    settle: Settle,
  ): Promise<void> {
    if (Date.now() - job.createdAt > this.o.schedule.spanMs) return this.deadLetter(job, 'expired', settle);
    this.o.metrics.deferrals.inc({ reason });
    if (await this.durably(() => this.o.schedule.schedule(job, this.o.schedule.stepFor(minDelayMs)))) settle('deferred');
  }

  private async deadLetter(job: DeliveryJob, reason: DeadLetterReason, settle: Settle): Promise<void> {
    const ok = await this.durably(() => this.o.deadLetters.write({ ...job, deadAt: Date.now(), reason }));
    if (!ok) return;
    this.o.metrics.deadLettered.inc({ reason });
    // One line per final failure, with the endpoint id (never its URL's secrets or signing secret).
    this.log.warn(
      {
        endpoint_id: job.endpointId,
        event_id: job.event.id,
        channel: job.event.channel,
        attempts: job.attempt,
        reason,
        last_status: job.last?.status,
        last_error: job.last?.error,
      },
      'webhook delivery failed for good; dead-lettered',
    );
    settle('dead_lettered');
  }

  /**
   * Retries a Kafka write until it is acknowledged. While stopping it gives up: the delivery is then
   * not settled, its offset not committed, and whoever reads the partition next repeats it.
   */
  private async durably(write: () => Promise<unknown>): Promise<boolean> {
    const giveUpAt = Date.now() + (this.o.maxWriteRetryMs ?? 300_000);
    for (let i = 0; !this.stopped; i++) {
      try {
        await write();
        return true;
      } catch (err) {
        if (Date.now() > giveUpAt) {
          this.log.error({ err }, 'Kafka refused a retry or dead-letter write for too long; stopping');
          this.o.onFatal('kafka writes of retries failed for too long');
          return false;
        }
        this.log.error({ err, try: i + 1 }, 'retry or dead-letter write failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** i)));
      }
    }
    return false;
  }

  /**
   * Deliveries that waited too long in a lane are deferred, and so are those a lane cannot send
   * within the wait limit at its recent pace (the newest first): a slow endpoint keeps in memory
   * only what it can deliver soon, and never holds the read-ahead budget or the offsets for long.
   */
  private sweep(): void {
    const now = Date.now();
    const limit = now - this.o.maxQueueWaitMs;
    for (const lane of this.lanes.values()) {
      while (lane.length > 0 && lane.peek()!.at < limit) {
        const q = lane.shift()!;
        void this.defer(q.job, 'queue_wait', 0, q.settle);
      }
      const wait = lane.estimatedWaitMs(now);
      if (wait > this.o.maxQueueWaitMs) {
        const keep = Number.isFinite(wait) ? Math.floor((lane.length * this.o.maxQueueWaitMs) / wait) : 0;
        while (lane.length > keep) {
          const q = lane.pop()!;
          void this.defer(q.job, 'slow_endpoint', 0, q.settle);
        }
      }
    }
  }

  private endpointChanged(id: string, ep: Endpoint | null): void {
    const lane = this.lanes.get(id);
    if (!lane) return;
    if (!ep) {
      for (const q of lane.takeAll()) q.settle('dropped');
    } else if (ep.disabled) {
      for (const q of lane.takeAll()) void this.deadLetter(q.job, 'endpoint_disabled', q.settle);
    } else {
      this.pump(lane);
      return;
    }
    if (lane.timer) clearTimeout(lane.timer);
    lane.timer = null;
    if (lane.inFlight === 0) this.lanes.delete(id);
  }

  /** Waits until every accepted delivery has settled, or `timeoutMs`; returns how many did not. */
  async drain(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.pending > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.pending;
  }

  stop(): void {
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const lane of this.lanes.values()) if (lane.timer) clearTimeout(lane.timer);
  }
}
