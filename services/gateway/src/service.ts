/**
 * One gateway node: Kafka in, WebSocket/SSE/polling out. Wires the parts named in
 * docs/architecture.md: the two Kafka streams (broadcast, users), the delivery path (hub,
 * connections, windows, resume, memory budget), the transports, and the lifecycle.
 */
import type { us_listen_socket } from 'uWebSockets.js';
import { openKafka, ensureTopics, GroupView } from '@fanout/kafka';
import { createLogger, createRegistry, Health, type Logger } from '@fanout/observability';
import { ChannelPermissions, TokenVerifier } from '@fanout/auth';
import { gatewayConfig, type GatewayConfig } from './config.js';
import { loadUws } from './native-uws.js';
import { Hub } from './delivery/hub.js';
import { Session } from './delivery/session.js';
import { QueuePolicies } from './delivery/queue-policy.js';
import { MemoryBudget, memoryBound } from './delivery/memory-budget.js';
import { OutgoingFactory } from './delivery/outgoing.js';
import { ChannelWindows } from './delivery/channel-window.js';
import { Resumer } from './delivery/resume.js';
import { Streams } from './delivery/streams.js';
import { attachLongPoll, LongPollers } from './transports/long-poll.js';
import { attachSse } from './transports/sse.js';
import { attachEtagPoll } from './transports/etag-poll.js';
import { attachWebSocket } from './transports/websocket.js';
import type { PullDeps } from './transports/http-common.js';
import { ReplayReader } from './kafka/replay-reader.js';
import { WarmUp, warmGainedPartitions } from './delivery/warm-up.js';
import { Admission, admissionGate } from './transports/admission.js';
import { AddressLimits } from './transports/address-limits.js';
import { BroadcastConsumer } from './kafka/broadcast-consumer.js';
import { UserConsumer } from './kafka/user-consumer.js';
import { classifyUserRecord, ForwardedCopies, Forwarder, MisroutedLog, type MisroutedReporter } from './kafka/misrouted.js';
import { LagProbe } from './kafka/lag-probe.js';
import { ownerHint } from './kafka/owner-hint.js';
import { attachHttpRoutes } from './http/routes.js';
import { gatewayMetrics, closeReason } from './metrics.js';
import { ingestCounts, onUserPartitionsLost, recordHandler } from './delivery/ingest.js';
import { drain } from './lifecycle/drain.js';
import { waitForHandover } from './lifecycle/handover.js';

export interface RunningGateway {
  config: Readonly<GatewayConfig>;
  port: number;
  url: string;
  wsUrl: string;
  hub: Hub;
  health: Health;
  budget: MemoryBudget;
  users: UserConsumer;
  /** Idempotent graceful drain; resolves when everything is closed. */
  shutdown(): Promise<void>;
}

export async function startGateway(
  overrides: Parameters<typeof gatewayConfig>[0] = {},
  logger?: Logger,
  argv: string[] = [],
): Promise<RunningGateway> {
  const config = gatewayConfig(overrides, argv);
  const log = logger ?? createLogger('gateway', { region: config.region, node: config.node });
  const { uws, build: uwsBuild } = loadUws();
  log.info({ uws: uwsBuild.source, node: process.version }, 'uWebSockets.js native binary loaded');
  // `users`: a member of the region's group with the partitions it was given warmed. Connections are
  // accepted before (broadcast channels are served), /readyz waits for it: a rolling update then
  // stops the next gateway only once this one can take over its user partitions.
  const health = new Health(['kafka', 'listen', 'users']);
  const registry = createRegistry({ service: 'gateway', region: config.region });
  const hub = new Hub();
  const kafka = await openKafka({
    brokers: config.brokers,
    clientId: `fanout-${config.node}`,
    logger: log,
    security: config.kafka.security,
  });
  await ensureTopics(
    kafka,
    [
      { topic: config.topicBroadcast, numPartitions: config.broadcastPartitions, events: true },
      { topic: config.topicUsers, numPartitions: config.userPartitions, events: true },
    ],
    log,
    config.kafka.topics,
  );

  // The listen socket comes first: the public URL (with the real port) goes into group metadata.
  const app = uws.App();
  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(config.host, config.port, (s) =>
      s ? resolve(s) : reject(new Error(`gateway could not listen on ${config.host}:${config.port}`)),
    );
  });
  const port = uws.us_socket_local_port(listenSocket);
  const url = config.publicUrl || `http://${config.host}:${port}`;

  // The Kafka consumers (`broadcast`, `users`) are created last, once everything they deliver to
  // exists. What is created before them reaches them only from callbacks that run once they
  // consume (the budget pauses them, the lag probe and the metrics read them, the streams ask for
  // their partitions), never while this function builds the gateway.

  // The channel windows of both streams: a cache inside the memory budget (they yield to the queues).
  const windowLimits = {
    maxMessages: config.windowMaxMessages,
    maxBytes: config.windowMaxBytes,
    maxAgeMs: config.windowMaxAgeMs,
    maxTotalBytes: config.windowTotalBytes,
  };
  // Messages are built once per gateway (and read back from the windows) by one factory.
  const policies = new QueuePolicies(config.queuePolicies, config.defaultQueuePolicy);
  const factory = new OutgoingFactory(config.streamEpoch, policies);
  const windows = { broadcast: new ChannelWindows(windowLimits, factory), users: new ChannelWindows(windowLimits, factory) };
  const budget = new MemoryBudget({
    maxBytes: config.memoryBudgetBytes,
    caches: [windows.broadcast, windows.users],
    lowWater: config.memoryLowWater,
    shedAfterMs: config.shedAfterMs,
    pause: () => {
      log.warn({ used_bytes: budget.used, budget_bytes: config.memoryBudgetBytes }, 'memory budget reached: pausing Kafka consumption');
      broadcast.pause();
      users.pause();
    },
    resume: () => {
      log.info({ used_bytes: budget.used }, 'under the low-water mark: resuming Kafka consumption');
      broadcast.resume();
      users.resume();
    },
    connections: () => hub.connections,
  });
  // Checked after each flush round, when the queues hold only what could not be written.
  hub.afterFlush = () => budget.check();
  const lagProbe = new LagProbe({
    kafka,
    everyMs: config.lagProbeMs,
    logger: log,
    // Cut off from Kafka: not ready (no new clients), the connected ones are kept.
    onReachable: (reachable) => (reachable ? health.pass('kafka') : health.fail('kafka')),
    sources: {
      broadcast: {
        topic: config.topicBroadcast,
        partitions: () => Array.from({ length: broadcast.partitionCount }, (_, i) => i),
        lastOffset: (p) => streams.broadcast.windows.lastOffset(p),
      },
      users: {
        topic: config.topicUsers,
        partitions: () => users.ownedPartitions,
        lastOffset: (p) => streams.users.windows.lastOffset(p),
      },
    },
  });
  // The process at start-up (set once the consumers have joined), for the memory bound.
  let baseRss = process.memoryUsage.rss();
  const bound = () =>
    memoryBound({
      baseRss,
      budgetBytes: config.memoryBudgetBytes,
      connections: hub.connections.size,
      socketBufferBytes: config.socketBufferBytes,
    });
  const ingest = ingestCounts();
  const metrics = gatewayMetrics(
    registry,
    hub,
    budget,
    { windows, bound },
    () => broadcast.pausedPartitions() + users.pausedPartitions(),
    () => lagProbe.lag,
    () => pollers.count,
    () => lagProbe.reachable,
    ingest,
  );

  // One long-lived reader for every resume and warm-up that needs Kafka (reads shared per partition).
  const replay = new ReplayReader({
    kafka,
    topics: [
      { topic: config.topicBroadcast, usersTopic: false },
      {
        topic: config.topicUsers,
        usersTopic: true,
        // As on the live path: misrouted originals, unroutable records and other regions' copies are left out.
        decode: (m, partition) => {
          const r = classifyUserRecord(m, partition, users.partitionCount, config.region);
          return r.kind === 'event' ? { event: r.event, ...(r.origin ? { origin: r.origin } : {}) } : null;
        },
      },
    ],
    node: config.node,
    logger: log,
    maxConcurrent: config.replayConcurrency,
    maxWaiting: config.replayMaxWaiting,
    timeoutMs: config.replayTimeoutMs,
    onPass: (topic) => metrics.replayReads.inc({ stream: topic === config.topicUsers ? 'users' : 'broadcast' }),
  });
  // Users-topic records on another partition than their key's (kafka/misrouted.ts): forwarded to
  // it by the gateway that reads them; the copies are delivered once per region.
  const misroutedReport: MisroutedReporter = {
    onMisrouted: (action, reason, n) => metrics.misrouted.inc({ action, reason }, n),
    onCopy: (outcome) => metrics.forwardedCopies.inc({ outcome }),
  };
  const copies = new ForwardedCopies();
  const forwarder = new Forwarder({ kafka, topic: config.topicUsers, region: config.region, logger: log });
  const misrouted = { forwarder, copies, log: new MisroutedLog(log, misroutedReport), report: misroutedReport };
  const warm = { maxAgeMs: config.windowMaxAgeMs, maxRecords: config.warmMaxRecords };
  const streams = new Streams(
    {
      kind: 'broadcast',
      windows: windows.broadcast,
      warmup: new WarmUp(),
      replay: replay.topic(config.topicBroadcast),
      partitions: () => broadcast.partitionCount,
      owns: () => true,
    },
    {
      kind: 'users',
      windows: windows.users,
      warmup: new WarmUp(),
      // Repeated forwarded copies are left out of replays as they are on the live path.
      replay: copies.replay(replay.topic(config.topicUsers)),
      partitions: () => users.partitionCount,
      owns: (p) => users.owns(p),
    },
  );
  const windowTimer = setInterval(() => {
    streams.broadcast.windows.expireAll();
    streams.users.windows.expireAll();
  }, 5000);
  windowTimer.unref();

  // Who owns the other user partitions in this region (for wrong_gateway hints), from Kafka.
  const group = new GroupView({
    kafka,
    groupId: config.userGroupId,
    topic: config.topicUsers,
    refreshMs: config.groupRefreshMs,
    logger: log,
  });
  const ownerHintOf = ownerHint({ streams, group, node: config.node, region: config.region, routerUrl: config.routerUrl });

  const resumer = new Resumer({
    hub,
    streams,
    factory,
    epoch: config.streamEpoch,
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
    userChannels: true,
    ownsUserChannel: (channel) => streams.users.owns(streams.partitionOf(channel)),
    ownerHint: ownerHintOf,
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

  // The hot path's entry (delivery/ingest.ts): records to windows, long polls and subscribers.
  const ingestDeps = { streams, factory, hub, pollers, counts: ingest, observeLatency: (s: number) => metrics.fanoutLatency.observe(s) };
  const crashed = (stream: string, err: Error) => {
    log.fatal({ err, stream }, 'kafka consumer stopped for good; failing liveness and readiness');
    health.break(`${stream} consumer crashed: ${err.message}`);
  };
  const broadcast: BroadcastConsumer = new BroadcastConsumer({
    kafka,
    topic: config.topicBroadcast,
    node: config.node,
    logger: log,
    onEvent: recordHandler('broadcast', ingestDeps),
    warm,
    onStart: (partition, start, end) => {
      streams.broadcast.windows.setStart(partition, start);
      streams.broadcast.warmup.begin(partition, start, end);
    },
    onSkipped: () => metrics.skipped.inc(),
    onSkippedOffset: (partition, offset) => {
      streams.broadcast.windows.noteOffset(partition, offset);
      streams.broadcast.warmup.handled(partition, offset);
    },
    onReplaced: () => metrics.consumerReplaced.inc(),
  });
  const users: UserConsumer = new UserConsumer({
    kafka,
    topic: config.topicUsers,
    groupId: config.userGroupId,
    node: config.node,
    url,
    region: config.region,
    logger: log,
    onEvent: recordHandler('users', ingestDeps),
    onSkippedOffset: (partition, offset) => streams.users.windows.noteOffset(partition, offset),
    onSkipped: () => metrics.skipped.inc(),
    misrouted,
    onCrash: (err) => crashed('users', err),
    warm,
    // Until their start is known, a gained partition is warming: resumes and polls on it wait.
    onGaining: (gained) => {
      for (const p of gained) streams.users.warmup.begin(p, 0, Number.MAX_SAFE_INTEGER);
    },
    onGainAbandoned: (gained) => {
      for (const p of gained) streams.users.warmup.finish(p);
    },
    onAssignment: (gained, lost) => {
      metrics.rebalances.inc();
      for (const p of lost) copies.drop(p);
      // Forwarded copies are judged from the start of the warm-up on (older ones: per replay).
      for (const [p, { start }] of gained) copies.reset(p, start);
      onUserPartitionsLost(lost, {
        streams,
        hub,
        jitterMs: config.drainJitterMs,
        handedOver: (l) => waitForHandover(group, config.node, l, config.drainHandoverMs, log),
      });
      // The partitions gained stay paused until their windows hold their recent past.
      return warmGainedPartitions(streams.users, factory, gained, log);
    },
  });

  const gate = admissionGate({
    admission: new Admission({ ratePerS: config.admissionRatePerS, burst: config.admissionBurst }),
    accepting: () => health.readyExcept('users'),
    limits: new AddressLimits({
      ratePerS: config.ratePerAddress,
      burst: config.ratePerAddressBurst,
      maxConnections: config.maxConnectionsPerAddress,
      onRefused: (limit) => metrics.admissionRefused.inc({ reason: limit === 'rate' ? 'address_rate' : 'address_connections' }),
    }),
    addressHeader: config.clientAddressHeader,
    onRefused: (reason) => metrics.admissionRefused.inc({ reason }),
  });
  const pull: PullDeps = {
    streams,
    factory,
    epoch: config.streamEpoch,
    ownerHint: ownerHintOf,
    replayMaxOffsets: config.replayMaxOffsets,
    permissions,
    tokens,
    gate,
  };
  attachWebSocket(app, {
    path: '/v1/ws',
    idleTimeoutS: config.idleTimeoutS,
    maxPayloadBytes: config.maxPayloadBytes,
    maxFrameBytes: config.maxFrameBytes,
    limits: { socketBufferBytes: config.socketBufferBytes, queueMaxMessages: config.queueMaxMessages, queueMaxBytes: config.queueMaxBytes },
    gate,
    session,
  });
  const sse = attachSse(app, { ...pull, session, heartbeatMs: config.sseHeartbeatMs });
  attachLongPoll(app, pull, pollers);
  attachEtagPoll(app, pull);
  attachHttpRoutes(app, {
    health,
    registry,
    servePage: config.servePage,
    info: () => ({
      node: config.node,
      region: config.region,
      url,
      ready: health.ready,
      connections: hub.connections.size,
      epoch: config.streamEpoch,
      user_partitions: users.ownedPartitions,
    }),
  });
  health.pass('listen');

  await Promise.all([broadcast.start(), group.start(), replay.start()]);
  await Promise.all([broadcast.joined, replay.joined]);
  baseRss = Math.max(0, process.memoryUsage.rss() - windows.broadcast.bytes);
  // Ready once the windows hold the recent past (or the start-up limit says to stop waiting).
  const warmStarted = Date.now();
  const warmLimit = new Promise<boolean>((r) => setTimeout(() => r(false), config.warmTimeoutMs).unref());
  const warmedInTime = await Promise.race([streams.broadcast.warmup.allWarm().then(() => true), warmLimit]);
  if (!warmedInTime) {
    log.warn(
      { warm_timeout_ms: config.warmTimeoutMs, partitions_warming: streams.broadcast.warmup.partitionsWarming },
      'warm-up took longer than its limit: ready now; the rest of the history is delivered as live records',
    );
    streams.broadcast.warmup.finishAll();
  }
  log.info(
    {
      warm_ms: Date.now() - warmStarted,
      window_channels: streams.broadcast.windows.channelCount,
      window_bytes: streams.broadcast.windows.bytes,
    },
    'windows warmed',
  );
  health.pass('kafka');
  // Only now join the region's group for user channels: the router names this gateway as an owner
  // once it is in the group, so it joins when it can serve what it is given (until then the
  // partitions stay with the other gateways). Gained partitions warm before their resumes are served.
  await users.start();
  await users.joined;
  await Promise.race([streams.users.warmup.allWarm(), new Promise((r) => setTimeout(r, config.warmTimeoutMs).unref())]);
  health.pass('users');
  lagProbe.start();
  log.info({ port, url, region: config.region, user_partitions: users.ownedPartitions }, 'gateway ready');

  let stopping: Promise<void> | null = null;
  const shutdown = () =>
    (stopping ??= (async () => {
      const hardStop = setTimeout(() => {
        log.error({ grace_ms: config.shutdownGraceMs }, 'drain exceeded the grace period; exiting');
        process.exit(1);
      }, config.shutdownGraceMs);
      hardStop.unref();
      const gaveUp = users.ownedPartitions;
      await drain({
        hub,
        health,
        logger: log,
        jitterMs: config.drainJitterMs,
        delayMs: config.drainDelayMs,
        leaveGroups: () => users.stop().catch((err: unknown) => log.warn({ err }, 'user consumer did not stop cleanly')),
        handedOver: () => waitForHandover(group, config.node, gaveUp, config.drainHandoverMs, log),
        closeResources: async () => {
          budget.stop();
          await lagProbe.stop();
          clearInterval(windowTimer);
          sse.stop();
          pollers.closeAll();
          uws.us_listen_socket_close(listenSocket);
          // Also closes idle keep-alive HTTP connections, which would otherwise hold the port.
          (app as unknown as { close?: () => void }).close?.();
          await Promise.all([
            forwarder.stop(),
            broadcast.stop().catch((err: unknown) => log.warn({ err }, 'broadcast consumer did not stop cleanly')),
            replay.stop().catch((err: unknown) => log.warn({ err }, 'replay reader did not stop cleanly')),
            group.stop().catch(() => {}),
          ]);
        },
      });
      clearTimeout(hardStop);
    })());

  return { config, port, url, wsUrl: url.replace(/^http/, 'ws') + '/v1/ws', hub, health, budget, users, shutdown };
}
