/**
 * The tick producer: publishes random-walk ticks for a set of symbols to `prices:<SYMBOL>` at a
 * steady total rate, through the producer library.
 *
 * Pacing: a timer fires every `sliceMs` and publishes the ticks that came due since the start
 * (rate x elapsed - published so far), so timer jitter does not change the average rate. Symbols
 * take turns (round robin), so each gets rate / N ticks per second.
 *
 * Bounds: at most `maxInFlight` publishes await Kafka's acknowledgement; ticks due beyond that, or
 * more than a second's worth after a stall, are skipped (counted, never queued), so a slow or
 * unreachable Kafka cannot grow memory without limit.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { EventInput } from '@fanout/protocol';
import { Health, createLogger, type Logger, listenHttp } from '@fanout/observability';
import { PublisherClient } from '@fanout/publisher';
import { PriceModel, seededRng, type Tick } from './ticks.js';
import { marketDataConfig, PRICES_NAMESPACE, type MarketDataConfig } from './config.js';
import { marketDataServer } from './http.js';

/** What the producer needs from a publisher; `PublisherClient` fits. */
export interface TickPublisher {
  publish(input: EventInput): Promise<unknown>;
}

export interface TickProducerOptions {
  publisher: TickPublisher;
  logger: Logger;
  symbols: readonly string[];
  /** Ticks per second, in total across all symbols. */
  rate: number;
  sliceMs?: number;
  maxInFlight?: number;
  /** Milliseconds between rate log lines (0: none). */
  logIntervalMs?: number;
  /** Seed for the price model; 0 or absent picks a random one. */
  seed?: number;
  /** Called with every tick as it is published (tests, local echo). */
  onTick?(tick: Tick): void;
}

export interface TickProducerStats {
  /** Ticks handed to the publisher. */
  published: number;
  /** Ticks Kafka acknowledged. */
  acknowledged: number;
  /** Ticks whose write failed. */
  failed: number;
  /** Ticks that came due but were skipped (in-flight bound reached, or catching up after a stall). */
  skipped: number;
  inFlight: number;
}

export function channelFor(sym: string): string {
  return `${PRICES_NAMESPACE}:${sym}`;
}

export class TickProducer {
  private readonly model: PriceModel;
  private readonly symbols: string[];
  private readonly sliceMs: number;
  private readonly maxInFlight: number;
  private readonly logIntervalMs: number;
  /** Event ids are `<run>.<seq>.<symbol>`: unique across runs, stable within one (idempotency keys). */
  private readonly runId = randomBytes(4).toString('hex');
  private timer: NodeJS.Timeout | null = null;
  private logTimer: NodeJS.Timeout | null = null;
  private startedAt = 0;
  /** Ticks accounted for since the start (published + skipped): the pacing baseline. */
  private accounted = 0;
  private next = 0;
  private readonly settled = new Set<Promise<unknown>>();
  private failuresSinceLog = 0;
  private lastLog = { at: 0, published: 0, acknowledged: 0 };
  readonly stats: TickProducerStats = { published: 0, acknowledged: 0, failed: 0, skipped: 0, inFlight: 0 };

  constructor(private readonly opts: TickProducerOptions) {
    if (opts.symbols.length === 0) throw new Error('TickProducer needs at least one symbol');
    if (!(opts.rate > 0)) throw new Error('TickProducer rate must be above 0');
    this.symbols = [...opts.symbols];
    const seed = opts.seed || randomBytes(4).readUInt32LE(0);
    this.model = new PriceModel(this.symbols, seededRng(seed));
    this.sliceMs = opts.sliceMs ?? 20;
    this.maxInFlight = opts.maxInFlight ?? 5000;
    this.logIntervalMs = opts.logIntervalMs ?? 5000;
  }

  get running(): boolean {
    return this.timer !== null;
  }

  start(): void {
    if (this.timer) return;
    this.startedAt = performance.now();
    this.accounted = 0;
    this.lastLog = { at: this.startedAt, published: this.stats.published, acknowledged: this.stats.acknowledged };
    this.timer = setInterval(() => this.slice(), this.sliceMs);
    if (this.logIntervalMs > 0) this.logTimer = setInterval(() => this.logRate(), this.logIntervalMs);
    this.opts.logger.info({ symbols: this.symbols.length, rate: this.opts.rate, slice_ms: this.sliceMs }, 'publishing ticks');
    this.slice();
  }

  /** One timer slice: publish what came due, within the bounds. */
  private slice(): void {
    const elapsed = performance.now() - this.startedAt;
    let due = Math.floor((this.opts.rate * elapsed) / 1000) - this.accounted;
    if (due <= 0) return;
    // After a stall (event loop blocked, laptop asleep), do not fire a huge burst: skip anything
    // beyond a second's worth.
    const burst = Math.max(1, Math.ceil(this.opts.rate));
    if (due > burst) {
      this.skip(due - burst);
      due = burst;
    }
    for (let i = 0; i < due; i++) {
      if (this.stats.inFlight >= this.maxInFlight) {
        this.skip(due - i);
        return;
      }
      this.publishOne();
    }
  }

  private skip(n: number): void {
    this.stats.skipped += n;
    this.accounted += n;
  }

  private publishOne(): void {
    const sym = this.symbols[this.next]!;
    this.next = (this.next + 1) % this.symbols.length;
    const tick = this.model.next(sym);
    this.accounted++;
    this.stats.published++;
    this.stats.inFlight++;
    this.opts.onTick?.(tick);
    let p: Promise<unknown>;
    try {
      p = this.opts.publisher.publish({ channel: channelFor(sym), id: `${this.runId}.${tick.seq}.${sym}`, data: tick });
    } catch (err) {
      p = Promise.reject(err);
    }
    const tracked: Promise<unknown> = p
      .then(
        () => {
          this.stats.acknowledged++;
        },
        (err: unknown) => {
          this.stats.failed++;
          // One warning per log interval at most; the rate line carries the count.
          if (this.failuresSinceLog++ === 0) this.opts.logger.warn({ err }, 'tick publish failed');
        },
      )
      .finally(() => {
        this.stats.inFlight--;
        this.settled.delete(tracked);
      });
    this.settled.add(tracked);
  }

  private logRate(): void {
    const now = performance.now();
    const seconds = (now - this.lastLog.at) / 1000;
    const s = this.stats;
    this.opts.logger.info(
      {
        target_per_s: this.opts.rate,
        published_per_s: round1((s.published - this.lastLog.published) / seconds),
        acked_per_s: round1((s.acknowledged - this.lastLog.acknowledged) / seconds),
        in_flight: s.inFlight,
        failed: s.failed,
        skipped: s.skipped,
        failed_since_last: this.failuresSinceLog,
      },
      'tick rate',
    );
    this.lastLog = { at: now, published: s.published, acknowledged: s.acknowledged };
    this.failuresSinceLog = 0;
  }

  /**
   * Stops publishing and waits (up to `timeoutMs`) for the publishes in flight to settle.
   * Resolves true if they all did.
   */
  async stop(timeoutMs = 10_000): Promise<boolean> {
    if (this.timer) clearInterval(this.timer);
    if (this.logTimer) clearInterval(this.logTimer);
    const wasRunning = this.timer !== null;
    this.timer = null;
    this.logTimer = null;
    let timeout: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      Promise.allSettled([...this.settled]).then(() => true),
      new Promise<boolean>((r) => (timeout = setTimeout(() => r(false), timeoutMs))),
    ]);
    clearTimeout(timeout);
    if (wasRunning) {
      const seconds = (performance.now() - this.startedAt) / 1000;
      this.opts.logger.info({ ...this.stats, seconds: round1(seconds), drained }, 'stopped publishing ticks');
    }
    return drained;
  }
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

export interface RunningMarketData {
  config: Readonly<MarketDataConfig>;
  producer: TickProducer;
  publisher: PublisherClient;
  /** Port of /metrics, /healthz, /readyz. */
  port: number;
  /** Idempotent: stops the ticks, waits for acknowledgements (bounded), disconnects. */
  shutdown(): Promise<void>;
}

/**
 * Connects a producer-library client (creating the topics if missing) and starts publishing ticks.
 * Settings come from the environment (see config.ts), with `overrides` on top.
 */
export async function startMarketData(overrides: Parameters<typeof marketDataConfig>[0] = {}, logger?: Logger): Promise<RunningMarketData> {
  const config = marketDataConfig(overrides);
  const log = logger ?? createLogger('market-data');
  const publisher = new PublisherClient({
    brokers: config.brokers,
    logger: log,
    clientId: 'fanout-market-data',
    topics: { broadcast: config.topicBroadcast, users: config.topicUsers },
    security: config.kafka.security,
    topicSettings: config.kafka.topics,
  });
  await publisher.connect();
  const producer = new TickProducer({
    publisher,
    logger: log,
    symbols: config.symbols,
    rate: config.rate,
    sliceMs: config.sliceMs,
    maxInFlight: config.maxInFlight,
    logIntervalMs: config.logIntervalS * 1000,
    seed: config.seed,
  });
  producer.start();
  const health = new Health([]);
  const server = marketDataServer(producer.stats, health);
  try {
    await listenHttp(server, config.port, config.host);
  } catch (err) {
    await producer.stop();
    await publisher.disconnect().catch(() => {});
    throw new Error(`market data could not listen on ${config.host}:${config.port} (FANOUT_PORT): ${(err as Error).message}`);
  }
  let stopping: Promise<void> | null = null;
  const shutdown = () =>
    (stopping ??= (async () => {
      health.drain();
      server.close();
      server.closeAllConnections();
      await producer.stop();
      await publisher.disconnect().catch((err: unknown) => log.warn({ err }, 'kafka producer did not disconnect cleanly'));
    })());
  return { config, producer, publisher, port: (server.address() as AddressInfo).port, shutdown };
}
