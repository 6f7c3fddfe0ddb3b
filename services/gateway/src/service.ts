/**
 * One gateway node: Kafka in, WebSocket out. Wires the parts named in docs/architecture.md.
 */
import type { us_listen_socket } from 'uWebSockets.js';

import { createKafka, ensureTopics, type IncomingEvent } from '@fanout/kafka';
import { createLogger, createRegistry, Health, type Logger } from '@fanout/observability';
import { ChannelPermissions, TokenVerifier } from '@fanout/auth';
import { gatewayConfig, type GatewayConfig } from './config.js';
import { loadNativeUws } from './native-uws.js';
import { Hub } from './delivery/hub.js';
import { Session } from './delivery/session.js';
import { QueuePolicies } from './delivery/queue-policy.js';
import { MemoryBudget } from './delivery/memory-budget.js';
import { OutgoingFactory } from './delivery/outgoing.js';
import { ChannelWindows } from './delivery/channel-window.js';
import { Resumer } from './delivery/resume.js';
import { attachLongPoll, LongPollers } from './transports/long-poll.js';
import { attachSse } from './transports/sse.js';
import { attachEtagPoll } from './transports/etag-poll.js';
import type { PullDeps } from './transports/http-common.js';
import { ReplayReader } from './kafka/replay-reader.js';
import { BroadcastConsumer } from './kafka/broadcast-consumer.js';
import { attachWebSocket } from './transports/websocket.js';
import { attachHttpRoutes } from './http/routes.js';
import { gatewayMetrics, closeReason } from './metrics.js';
import { drain } from './lifecycle/drain.js';

export interface RunningGateway {
  config: Readonly<GatewayConfig>;
  port: number;
  url: string;
  wsUrl: string;
  hub: Hub;
  health: Health;
  budget: MemoryBudget;
  /** Idempotent graceful drain; resolves when everything is closed. */
  shutdown(): Promise<void>;
}

export async function startGateway(overrides: Partial<GatewayConfig> = {}, logger?: Logger, argv: string[] = []): Promise<RunningGateway> {
  const config = gatewayConfig(overrides, argv);
  const log = logger ?? createLogger('gateway', { region: config.region, node: config.node });
  const uws = loadNativeUws();
  const health = new Health(['kafka', 'listen']);
  const registry = createRegistry({ service: 'gateway', region: config.region });
  const hub = new Hub();
  const policies = new QueuePolicies(config.queuePolicies, config.defaultQueuePolicy);
  // Set once the consumer exists; the budget pauses and resumes it.
  let broadcastRef: BroadcastConsumer | null = null;
  const budget = new MemoryBudget({
    maxBytes: config.memoryBudgetBytes,
    lowWater: config.memoryLowWater,
    shedAfterMs: config.shedAfterMs,
    pause: () => {
      log.warn({ used_bytes: budget.used, budget_bytes: config.memoryBudgetBytes }, 'memory budget reached: pausing Kafka consumption');
      broadcastRef?.pause();
    },
    resume: () => {
      log.info({ used_bytes: budget.used }, 'under the low-water mark: resuming Kafka consumption');
      broadcastRef?.resume();
    },
    connections: () => hub.connections,
  });
  // Checked after each flush round, when the queues hold only what could not be written.
  hub.afterFlush = () => budget.check();
  const metrics = gatewayMetrics(registry, hub, budget, () => broadcastRef?.pausedPartitions() ?? 0);
  const kafka = createKafka({ brokers: config.brokers, clientId: `fanout-${config.node}`, logger: log });

  await ensureTopics(kafka, [
    { topic: config.topicBroadcast, numPartitions: 6 },
    { topic: config.topicUsers, numPartitions: 12 },
  ], log);

  const factory = new OutgoingFactory(config.streamEpoch, policies);
  const windows = new ChannelWindows({ maxMessages: config.windowMaxMessages, maxBytes: config.windowMaxBytes, maxAgeMs: config.windowMaxAgeMs, maxTotalBytes: config.windowTotalBytes });
  const windowTimer = setInterval(() => windows.expireAll(), 5000);
  windowTimer.unref();
  const replay = new ReplayReader({ kafka, topic: config.topicBroadcast, node: config.node, logger: log, maxConcurrent: config.replayConcurrency, timeoutMs: config.replayTimeoutMs });
  const resumer = new Resumer({
    hub,
    windows,
    replay,
    factory,
    epoch: config.streamEpoch,
    partitions: () => broadcastRef?.partitionCount ?? 1,
    replayMaxOffsets: config.replayMaxOffsets,
    logger: log,
    onResume: (source) => metrics.resumes.inc({ source }),
  });
  const pollers = new LongPollers();
  const permissions = new ChannelPermissions(config.publicNamespaces);
  const tokens = new TokenVerifier({
    hs256Secret: config.tokenSecret,
    ...(config.tokenJwksUrl ? { jwksUrl: config.tokenJwksUrl } : {}),
    ...(config.tokenIssuer ? { issuer: config.tokenIssuer } : {}),
    ...(config.tokenAudience ? { audience: config.tokenAudience } : {}),
  });

  const session = new Session({
    hub,
    logger: log,
    node: config.node,
    region: config.region,
    heartbeatS: config.idleTimeoutS,
    maxFrameBytes: config.maxFrameBytes,
    maxSubscriptions: config.maxSubscriptions,
    maxErrorsPer10s: config.maxErrorsPer10s,
    permissions,
    tokens,
    userChannels: false,
    limits: { socketBufferBytes: config.socketBufferBytes, queueMaxMessages: config.queueMaxMessages, queueMaxBytes: config.queueMaxBytes },
    budget,
    initialCredits: config.initialCredits === 'unlimited' ? Infinity : Number(config.initialCredits),
    allowUnlimitedCredits: config.allowUnlimitedCredits,
    resumer,
    hooks: {
      onOpen: (c) => metrics.opened.inc({ transport: c.meta.transport }),
      onClose: (c, code) => metrics.closed.inc({ transport: c.meta.transport, reason: closeReason(code) }),
      onProtocolError: (code) => metrics.protocolErrors.inc({ code }),
    },
  });

  // The hot path: one envelope per message per gateway, the same bytes to every subscriber and to
  // the channel's window (resume, polling, history).
  const epoch = config.streamEpoch;
  const onEvent = (e: IncomingEvent, partition: number, offset: number) => {
    windows.noteOffset(partition, offset);
    const now = Date.now();
    const o = factory.make(e, partition, offset, now);
    windows.append(o);
    pollers.notify(o);
    if (!hub.wants(e.channel)) {
      metrics.consumed.inc({ stream: 'broadcast', wanted: 'false' });
      return;
    }
    metrics.consumed.inc({ stream: 'broadcast', wanted: 'true' });
    hub.dispatch(o);
    metrics.fanoutLatency.observe(Math.max(0, now - e.publishedAt) / 1000);
  };
  const broadcast = new BroadcastConsumer({
    kafka,
    topic: config.topicBroadcast,
    node: config.node,
    logger: log,
    onEvent,
    onStart: (partition, offset) => windows.setStart(partition, offset),
    onSkipped: () => metrics.skipped.inc(),
    onSkippedOffset: (partition, offset) => windows.noteOffset(partition, offset),
  });
  broadcastRef = broadcast;

  const app = uws.App();
  attachWebSocket(app, {
    path: '/v1/ws',
    idleTimeoutS: config.idleTimeoutS,
    maxPayloadBytes: config.maxPayloadBytes,
    maxFrameBytes: config.maxFrameBytes,
    limits: { socketBufferBytes: config.socketBufferBytes, queueMaxMessages: config.queueMaxMessages, queueMaxBytes: config.queueMaxBytes },
    accepting: () => !health.isDraining,
    session,
  });
  const pull: PullDeps = {
    windows,
    replay,
    factory,
    epoch: config.streamEpoch,
    partitions: () => broadcastRef?.partitionCount ?? 1,
    replayMaxOffsets: config.replayMaxOffsets,
    permissions,
    tokens,
    accepting: () => !health.isDraining,
  };
  const sse = attachSse(app, { ...pull, session, heartbeatMs: config.sseHeartbeatMs });
  attachLongPoll(app, pull, pollers);
  attachEtagPoll(app, pull);
  attachHttpRoutes(app, {
    health,
    registry,
    servePage: config.servePage,
    info: () => ({ node: config.node, region: config.region, ready: health.ready, connections: hub.connections.size, epoch }),
  });

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(config.host, config.port, (s) => (s ? resolve(s) : reject(new Error(`gateway could not listen on ${config.host}:${config.port}`))));
  });
  const port = uws.us_socket_local_port(listenSocket);
  health.pass('listen');

  await broadcast.start();
  await broadcast.joined;
  health.pass('kafka');
  const url = config.publicUrl || `http://${config.host}:${port}`;
  log.info({ port, url, region: config.region }, 'gateway ready');

  let stopping: Promise<void> | null = null;
  const shutdown = () =>
    (stopping ??= (async () => {
      const hardStop = setTimeout(() => {
        log.error({ grace_ms: config.shutdownGraceMs }, 'drain exceeded the grace period; exiting');
        process.exit(1);
      }, config.shutdownGraceMs);
      hardStop.unref();
      await drain({
        hub,
        health,
        logger: log,
        jitterMs: config.drainJitterMs,
        delayMs: config.drainDelayMs,
        closeResources: async () => {
          budget.stop();
          clearInterval(windowTimer);
          sse.stop();
          pollers.closeAll();
          uws.us_listen_socket_close(listenSocket);
          // Also closes idle keep-alive HTTP connections, which would otherwise hold the port.
          (app as unknown as { close?: () => void }).close?.();
          await broadcast.stop().catch((err) => log.warn({ err }, 'kafka consumer did not stop cleanly'));
        },
      });
      clearTimeout(hardStop);
    })());

  return { config, port, url, wsUrl: url.replace(/^http/, 'ws') + '/v1/ws', hub, health, budget, shutdown };
}
