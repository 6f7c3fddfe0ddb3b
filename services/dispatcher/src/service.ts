/**
 * The webhook dispatcher: the endpoint registry and dead letters (compacted topics every instance
 * reads whole), the event consumer (group `fanout-dispatcher` over the broadcast and users
 * topics), the retry consumer (group `fanout-dispatcher-retry` over one topic per retry step), the
 * delivery engine between them, and the endpoint API. docs/webhooks.md describes the whole.
 */
import type { AddressInfo } from 'node:net';
import { Partitioners, type KafkaMessage } from 'kafkajs';
import { openKafka, ensureTopics, fromRecord, isForwardedCopy, PRODUCER_RETRY } from '@fanout/kafka';
import { createLogger, createRegistry, Health, type Logger, listenHttp } from '@fanout/observability';
import { dispatcherConfig, type DispatcherConfig, type DispatcherConfigInput } from './config.js';
import { dispatcherMetrics } from './metrics.js';
import { EndpointRegistry } from './endpoints/registry.js';
import { UrlPolicy } from './endpoints/url-policy.js';
import { HttpSender } from './delivery/http-sender.js';
import { DeliveryEngine } from './delivery/delivery-engine.js';
import { decodeJob, HEADER_DUE } from './delivery/delivery-job.js';
import { BatchedWriter } from './kafka/batched-writer.js';
import { TrackedConsumer } from './kafka/tracked-consumer.js';
import { RetrySchedule } from './retries/retry-schedule.js';
import { DeadLetterStore } from './retries/dead-letter-store.js';
import { RetryBacklog } from './retries/retry-backlog.js';
import { EndpointsApi } from './http/endpoints-api.js';
import { createDispatcherServer } from './http/server.js';

export interface RunningDispatcher {
  port: number;
  url: string;
  config: Readonly<DispatcherConfig>;
  endpoints: EndpointRegistry;
  deadLetters: DeadLetterStore;
  engine: DeliveryEngine;
  health: Health;
  /** Idempotent: stops reading, lets deliveries in flight settle (up to the grace period), commits, leaves the groups. */
  shutdown(): Promise<void>;
}

const WEEK_MS = 7 * 86_400_000;
/** How long the consumers may take to join their groups at start-up, in ms. */
const JOIN_TIMEOUT_MS = 60_000;

function dueAt(m: KafkaMessage): number {
  const v = m.headers?.[HEADER_DUE];
  const one = Array.isArray(v) ? v[0] : v;
  const n = Number(one?.toString());
  return Number.isFinite(n) ? n : 0;
}

export async function startDispatcher(
  overrides: Parameters<typeof dispatcherConfig>[0] = {},
  logger: Logger = createLogger('dispatcher'),
): Promise<RunningDispatcher> {
  const config = dispatcherConfig(overrides);
  const log = logger.child({ node: config.node });
  const health = new Health(['kafka', 'registry', 'consumers']);
  const promRegistry = createRegistry({ service: 'dispatcher' });
  const kafka = await openKafka({
    brokers: config.brokers,
    clientId: `fanout-dispatcher-${config.node}`,
    logger: log,
    security: config.kafka.security,
  });
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
  };

  // Everything the gauges read is created below; they are only read when scraped.
  let engine: DeliveryEngine | undefined;
  let deadLetters: DeadLetterStore | undefined;
  let endpoints: EndpointRegistry | undefined;
  let backlog: RetryBacklog | undefined;
  const metrics = dispatcherMetrics(promRegistry, {
    retryBacklog: () => backlog?.value ?? 0,
    deadLetters: () => deadLetters?.size ?? 0,
    openCircuits: () => engine?.openCircuits ?? 0,
    queued: () => engine?.queued ?? 0,
    inFlight: () => engine?.inFlight ?? 0,
    endpoints: () => {
      const all = endpoints?.list() ?? [];
      const disabled = all.filter((e) => e.disabled).length;
      return { enabled: all.length - disabled, disabled };
    },
  });

  try {
    const longest = Math.max(...config.retryDelaysMs);
    const retryTopics = config.retryDelaysMs.map((_, i) => `${config.topicRetryPrefix}.${i}`);
    await ensureTopics(
      kafka,
      [
        { topic: config.topicBroadcast, numPartitions: config.broadcastPartitions, events: true },
        { topic: config.topicUsers, numPartitions: config.userPartitions, events: true },
        { topic: config.topicEndpoints, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
        // A retry must outlive its wait: keep retry records well past the longest step.
        ...retryTopics.map((topic) => ({
          topic,
          numPartitions: config.retryPartitions,
          configEntries: [{ name: 'retention.ms', value: String(Math.max(WEEK_MS, 3 * longest)) }],
        })),
        {
          topic: config.topicDeadLetters,
          numPartitions: config.retryPartitions,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact,delete' },
            { name: 'retention.ms', value: String(config.deadLetterRetentionMs) },
          ],
        },
      ],
      log,
      config.kafka.topics,
    );
    // Keyed records (endpoint ids) with Kafka's default partitioner, like every other producer here.
    const producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: { ...PRODUCER_RETRY },
    });
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    health.pass('kafka');
    const writer = new BatchedWriter(producer);
    cleanups.push(() => writer.idle(2000));

    const onCrash = (what: string) => (err: Error) => health.break(`${what} reader crashed: ${err.message}`);
    endpoints = new EndpointRegistry({
      kafka,
      producer,
      topic: config.topicEndpoints,
      groupPrefix: `${config.groupId}-registry-${config.node}`,
      logger: log,
      onCrash: onCrash('registry'),
    });
    deadLetters = new DeadLetterStore({
      kafka,
      writer,
      topic: config.topicDeadLetters,
      groupPrefix: `${config.groupId}-dead-letters-${config.node}`,
      indexMax: config.deadLetterIndexMax,
      logger: log,
      onCrash: onCrash('dead-letter'),
    });
    cleanups.push(
      () => endpoints!.stop(),
      () => deadLetters!.stop(),
    );
    await Promise.all([endpoints.start(), deadLetters.start()]);
    health.pass('registry');

    const policy = new UrlPolicy({ allowList: config.allowList, requireHttps: config.requireHttps });
    const sender = new HttpSender({
      policy,
      timeoutMs: config.requestTimeoutMs,
      maxResponseBytes: config.maxResponseBytes,
      userAgent: 'fanout-dispatcher/0.1 (+https://www.standardwebhooks.com)',
    });
    cleanups.push(() => sender.close());
    const schedule = new RetrySchedule({
      writer,
      prefix: config.topicRetryPrefix,
      delaysMs: config.retryDelaysMs,
      jitter: config.retryJitter,
    });
    const eng = new DeliveryEngine({
      registry: endpoints,
      sender,
      schedule,
      deadLetters,
      metrics,
      logger: log,
      defaultMaxConcurrency: config.defaultMaxConcurrency,
      defaultRateLimitPerS: config.defaultRateLimitPerS,
      maxEndpointQueue: config.maxEndpointQueue,
      maxQueuedDeliveries: config.maxQueuedDeliveries,
      maxQueueWaitMs: config.maxQueueWaitMs,
      circuit: { threshold: config.circuitFailureThreshold, openMs: config.circuitOpenMs, maxOpenMs: config.circuitMaxOpenMs },
      onFatal: (reason) => health.break(reason),
    });
    engine = eng;
    cleanups.push(() => eng.stop());
    const reg = endpoints;

    const common = {
      kafka,
      sessionTimeoutMs: config.sessionTimeoutMs,
      commitIntervalMs: config.commitIntervalMs,
      window: config.partitionWindow,
      onCrash: (err: Error) => health.break(`consumer crashed: ${err.message}`),
      onPause: (reason: 'window' | 'budget') => metrics.consumerPauses.inc({ reason }),
      budget: { full: () => eng.overBudget, drained: () => eng.underHalfBudget },
    };
    const events = new TrackedConsumer({
      ...common,
      groupId: config.groupId,
      topics: [config.topicBroadcast, config.topicUsers],
      fromBeginning: config.startFrom === 'earliest',
      logger: log.child({ module: 'events' }),
      handle: ({ topic, partition, message, track }) => {
        // A gateway's copy of a user record that was on the wrong partition (docs/kafka.md): the
        // original is delivered here, wherever it sits; its copies (one per region) are not.
        if (isForwardedCopy(message)) return void metrics.skippedRecords.inc({ kind: 'forwarded_copy' });
        const event = fromRecord(message, partition, topic === config.topicUsers);
        if (event === null) return void metrics.skippedRecords.inc({ kind: 'event' });
        const matches = reg.match(event.channel);
        if (matches.length === 0) return;
        const now = Date.now();
        for (const ep of matches) eng.submit({ endpointId: ep.id, event, attempt: 0, createdAt: now }, track(), true);
      },
    });
    const retries = new TrackedConsumer({
      ...common,
      groupId: `${config.groupId}-retry`,
      topics: schedule.topics,
      // Retries written before this group first joined must not be skipped.
      fromBeginning: true,
      logger: log.child({ module: 'retries' }),
      dueAt,
      handle: ({ message, track }) => {
        const job = decodeJob(message.value);
        if (job === null || 'deadAt' in job) return void metrics.skippedRecords.inc({ kind: 'retry' });
        eng.submit(job, track());
      },
    });
    cleanups.push(
      () => events.stop(),
      () => retries.stop(),
    );
    await Promise.all([events.start(), retries.start()]);
    let joinTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([events.joined, retries.joined]),
      new Promise((_, reject) => {
        joinTimer = setTimeout(
          () => reject(new Error(`the consumers did not join their groups within ${JOIN_TIMEOUT_MS} ms`)),
          JOIN_TIMEOUT_MS,
        );
      }),
    ]).finally(() => clearTimeout(joinTimer));
    health.pass('consumers');

    const bl = new RetryBacklog({ kafka, groupId: `${config.groupId}-retry`, topics: schedule.topics, everyMs: 5000, logger: log });
    backlog = bl;
    await bl.start();
    cleanups.push(() => bl.stop());

    const api = new EndpointsApi({
      registry: endpoints,
      policy,
      deadLetters,
      engine: eng,
      metrics,
      logger: log,
      maxEndpoints: config.maxEndpoints,
      maxChannelsPerEndpoint: config.maxChannelsPerEndpoint,
      secretOverlapMs: config.secretOverlapMs,
    });
    const server = createDispatcherServer({
      api,
      apiKeys: config.apiKeys,
      maxBodyBytes: config.maxBodyBytes,
      health,
      registry: promRegistry,
      metrics,
      logger: log,
      limits: { ratePerAddress: config.ratePerAddress, burst: config.ratePerAddressBurst, addressHeader: config.clientAddressHeader },
    });
    await listenHttp(server, config.port, config.host);
    const port = (server.address() as AddressInfo).port;
    log.info({ port, endpoints: endpoints.size, retry_steps: config.retryDelaysMs.length }, 'dispatcher ready');

    let stopping: Promise<void> | null = null;
    return {
      port,
      url: `http://${config.host}:${port}`,
      config,
      endpoints,
      deadLetters,
      engine: eng,
      health,
      shutdown: () =>
        (stopping ??= (async () => {
          health.drain();
          events.pauseAll();
          retries.pauseAll();
          const closed = new Promise<void>((r) => server.close(() => r()));
          server.closeIdleConnections();
          const left = await eng.drain(config.shutdownGraceMs);
          if (left > 0)
            log.warn(
              { deliveries: left },
              'deliveries still unsettled at the end of the grace period; whoever reads their partitions next repeats them',
            );
          server.closeAllConnections();
          await closed;
          await cleanup();
        })()),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
