import {
  loadConfig,
  resolveBrokers,
  ConfigError,
  envName,
  checkClientAddressHeader,
  checkIntegers,
  checkPort,
  REGION_RE,
} from '@fanout/observability';
import { kafkaClientSettings, type KafkaClientSettings } from '@fanout/kafka';
import { EPOCH_RE } from '@fanout/protocol';
import { QueuePolicies } from './delivery/queue-policy.js';

/**
 * Gateway settings; each maps to FANOUT_<UPPER_SNAKE> (e.g. idleTimeoutS -> FANOUT_IDLE_TIMEOUT_S).
 * `--region` and `--node` on the command line override the environment.
 */
export const GATEWAY_DEFAULTS = {
  /** Region this gateway serves (e.g. `eu`). */
  region: 'local',
  /** Node name, unique in the region; default `gw-<region>-<pid>`. */
  node: '',
  /** Listen host and port (WebSocket, page, health, metrics); port 0 picks a free one. */
  host: '127.0.0.1',
  port: 9000,
  /** URL clients use to reach this node (reported to the router); default http://<host>:<port>. */
  publicUrl: '',
  /** Kafka bootstrap servers (KAFKA_BROKERS is also read). */
  brokers: [] as string[],
  topicBroadcast: 'fanout.broadcast',
  topicUsers: 'fanout.users',
  /** Partition counts used when this gateway creates the topics (the publisher's defaults). */
  broadcastPartitions: 6,
  userPartitions: 12,
  /** The region's consumer group for user channels; default `fanout-gw-<region>`. */
  userGroupId: '',
  /** Router base URL, named in wrong_gateway answers (optional). */
  routerUrl: '',
  /** How often the gateway re-reads its group's membership (for wrong_gateway hints), in ms. */
  groupRefreshMs: 1000,
  /** Stream epoch reported in positions; must match the publisher's. */
  streamEpoch: '1',
  /** Seconds without a frame (or pong) from the client before it is considered dead; uWS rounds to 4 s, minimum 8. */
  idleTimeoutS: 32,
  /** Largest client frame answered normally, in bytes; larger (up to maxPayloadBytes) get frame_too_large. */
  maxFrameBytes: 4096,
  /** Largest client frame accepted at all, in bytes; larger ones end the connection with close 1009 (up to 16x this, at least 1 MiB; beyond that uWS drops the socket: 1006). */
  maxPayloadBytes: 64 * 1024,
  /** Subscriptions one connection may hold. */
  maxSubscriptions: 1000,
  /** Bytes buffered in the socket (uWS) above which the gateway stops writing and queues. */
  socketBufferBytes: 256 * 1024,
  /** Per-connection queue bounds (messages and bytes) beyond which the connection is closed as a slow consumer. */
  queueMaxMessages: 10_000,
  queueMaxBytes: 4 * 1024 * 1024,
  /** Credits a connection starts with unless it asks with ?credits=: a message count or `unlimited`. */
  initialCredits: 'unlimited',
  /** Whether a client may ask for unlimited credits. When false, initialCredits must be a number. */
  allowUnlimitedCredits: true,
  /** Queue policy per namespace: `<ns>=conflate[:<field>]|drop|disconnect`, comma-separated. */
  queuePolicies: ['prices=conflate'] as string[],
  /** Queue policy for namespaces not listed in queuePolicies. */
  defaultQueuePolicy: 'drop',
  /** Gateway-wide budget for queued bytes (all connections); reaching it pauses Kafka consumption (256 MiB). */
  memoryBudgetBytes: 256 * 1024 * 1024,
  /** Consumption resumes below this fraction of the budget. */
  memoryLowWater: 0.8,
  /** Paused this long (ms) and still over the low-water mark: shed the largest queues first. */
  shedAfterMs: 1000,
  /** In-memory window per channel, for resume and the pull side: messages, bytes, age (ms). */
  windowMaxMessages: 1000,
  windowMaxBytes: 1024 * 1024,
  windowMaxAgeMs: 5 * 60 * 1000,
  /** All channel windows together, in bytes (64 MiB). */
  windowTotalBytes: 64 * 1024 * 1024,
  /** Most offsets of a partition one resume may read back from Kafka; older positions get a reset. */
  replayMaxOffsets: 100_000,
  /** Partitions read back from Kafka at a time (each read serves every resume waiting on its partition), and the longest one read may take (ms). */
  replayConcurrency: 4,
  replayTimeoutMs: 10_000,
  /** Resumes waiting for a Kafka read at once; beyond it a resume gets `reset` `replay_busy`. */
  replayMaxWaiting: 50_000,
  /** Warm-up: before reporting ready (and before serving a gained user partition), load each partition's recent past into the windows: at most this many records per partition (0: no warm-up), no older than windowMaxAgeMs. */
  warmMaxRecords: 20_000,
  /** Longest the start-up warm-up may delay readiness, in ms; past it the gateway is ready and the rest of the history is delivered like live records (nothing lost; the windows just start later). */
  warmTimeoutMs: 15_000,
  /** New WebSocket connections and SSE streams admitted per second (0: no limit); the excess gets 503 overloaded with Retry-After. */
  admissionRatePerS: 2000,
  /** Admissions that may happen at once after a quiet period. */
  admissionBurst: 200,
  /**
   * Header a trusted load balancer puts the client's address in (its last comma-separated entry,
   * e.g. x-forwarded-for); empty: the socket's address. Only set a header the proxy always sets.
   */
  clientAddressHeader: '',
  /**
   * New connections and requests per second per client address (0, the default: no limit; 100 with
   * a burst of 200 suits most deployments). Off by default because clients behind one NAT, and every
   * local benchmark and load test, share one address.
   */
  ratePerAddress: 0,
  /** Connections and requests an address may make at once after a quiet period. */
  ratePerAddressBurst: 200,
  /** Connections (WebSocket, SSE, held long polls) one client address may hold open at once (0, the default: no limit; e.g. 5000). */
  maxConnectionsPerAddress: 0,
  /** How often the gateway reads end offsets to report its consumer lag, in ms. */
  lagProbeMs: 5000,
  /** SSE comment heartbeat interval, in ms. */
  sseHeartbeatMs: 25_000,
  /** Protocol errors per connection in 10 s before it is closed (4500). */
  maxErrorsPer10s: 50,
  /** On SIGTERM: clients get a reconnect frame with a delay drawn from [0, drainJitterMs]. */
  drainJitterMs: 2000,
  /** On SIGTERM: time from the reconnect frames to closing the remaining sockets (4000), in ms. */
  drainDelayMs: 3000,
  /** On SIGTERM: longest wait, after leaving the region's group, for the other gateways to own its user partitions before the reconnect frames go out (ms; 0: do not wait). */
  drainHandoverMs: 5000,
  /** Hard limit for the whole shutdown, in ms; keep it under the pod's grace period. */
  shutdownGraceMs: 20_000,
  /** HS256 secret for connect tokens (at least 32 bytes); empty disables HS256. */
  tokenSecret: '',
  /** JWKS URL for RS256 connect tokens; empty disables RS256. */
  tokenJwksUrl: '',
  /** Required `iss` / `aud` of connect tokens, when set. */
  tokenIssuer: '',
  tokenAudience: '',
  /** Broadcast namespaces anyone may read without a token (comma-separated; `*` = all, `none` = none). Others need a token pattern. */
  publicNamespaces: ['*'] as string[],
  /** Serve the live ticks page at `/`. */
  servePage: true,
};

export type GatewayConfig = typeof GATEWAY_DEFAULTS;

function arg(name: string, argv: string[]): string | undefined {
  const i = argv.indexOf(`--${name}`);
  if (i >= 0) {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new ConfigError(`--${name}`, 'needs a value');
    return v;
  }
  const eq = argv.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

export function gatewayConfig(
  overrides: Partial<GatewayConfig> & { kafka?: KafkaClientSettings } = {},
  argv: string[] = [],
): Readonly<GatewayConfig & { kafka: KafkaClientSettings }> {
  const { kafka: kafkaOverride, ...rest } = overrides;
  const cli: Partial<GatewayConfig> = {};
  const region = arg('region', argv);
  const node = arg('node', argv);
  const port = arg('port', argv);
  if (region !== undefined) cli.region = region;
  if (node !== undefined) cli.node = node;
  if (port !== undefined) cli.port = Number(port);
  const c = loadConfig(GATEWAY_DEFAULTS, { ...cli, ...rest });
  const brokers = resolveBrokers(c.brokers);
  if (!REGION_RE.test(c.region)) throw new ConfigError('FANOUT_REGION', 'must be 1 to 32 of [a-z0-9-]');
  checkPort(c.port);
  if (c.idleTimeoutS !== 0 && c.idleTimeoutS < 8) throw new ConfigError('FANOUT_IDLE_TIMEOUT_S', 'must be 0 (off) or at least 8 seconds');
  if (c.maxFrameBytes > c.maxPayloadBytes) throw new ConfigError('FANOUT_MAX_FRAME_BYTES', 'must not exceed FANOUT_MAX_PAYLOAD_BYTES');
  if (c.drainDelayMs + c.drainHandoverMs >= c.shutdownGraceMs)
    throw new ConfigError('FANOUT_DRAIN_DELAY_MS', 'plus FANOUT_DRAIN_HANDOVER_MS must be shorter than FANOUT_SHUTDOWN_GRACE_MS');
  if (!EPOCH_RE.test(c.streamEpoch)) throw new ConfigError('FANOUT_STREAM_EPOCH', 'must be 1 to 64 of [A-Za-z0-9_-]');
  if (c.tokenSecret && Buffer.byteLength(c.tokenSecret) < 32) throw new ConfigError('FANOUT_TOKEN_SECRET', 'must be at least 32 bytes');
  if (c.tokenJwksUrl && !/^https?:\/\//.test(c.tokenJwksUrl)) throw new ConfigError('FANOUT_TOKEN_JWKS_URL', 'must be an http(s) URL');
  checkIntegers(c, [
    ['socketBufferBytes', 1024],
    ['queueMaxMessages', 1],
    ['queueMaxBytes', 1024],
    ['maxFrameBytes', 64],
    ['maxPayloadBytes', 64],
    ['maxSubscriptions', 1],
    ['maxErrorsPer10s', 1],
    ['memoryBudgetBytes', 1024],
    ['shedAfterMs', 0],
    ['windowMaxMessages', 1],
    ['windowMaxBytes', 1024],
    ['windowMaxAgeMs', 1000],
    ['windowTotalBytes', 1024],
    ['replayMaxOffsets', 0],
    ['replayConcurrency', 1, 64],
    ['replayTimeoutMs', 100],
    ['replayMaxWaiting', 1],
    ['warmMaxRecords', 0, 10_000_000],
    ['warmTimeoutMs', 0],
    ['admissionRatePerS', 0],
    ['ratePerAddress', 0],
    ['ratePerAddressBurst', 1],
    ['maxConnectionsPerAddress', 0],
  ]);
  checkClientAddressHeader(c.clientAddressHeader);
  checkIntegers(c, [
    ['admissionBurst', 1],
    ['sseHeartbeatMs', 100],
    ['broadcastPartitions', 1, 10_000],
    ['userPartitions', 1, 10_000],
    ['groupRefreshMs', 100],
    ['lagProbeMs', 100],
    ['drainJitterMs', 0],
    ['drainHandoverMs', 0],
  ]);
  if (c.drainJitterMs > c.drainDelayMs)
    throw new ConfigError(
      'FANOUT_DRAIN_JITTER_MS',
      'must not exceed FANOUT_DRAIN_DELAY_MS (clients would be closed before their announced delay)',
    );
  if ((c.initialCredits !== 'unlimited' && !/^\d{1,7}$/.test(c.initialCredits)) || Number(c.initialCredits) > 1_000_000)
    throw new ConfigError('FANOUT_INITIAL_CREDITS', 'must be a number of messages (0..1000000) or "unlimited"');
  if (c.initialCredits === 'unlimited' && !c.allowUnlimitedCredits)
    throw new ConfigError('FANOUT_INITIAL_CREDITS', 'must be a number when FANOUT_ALLOW_UNLIMITED_CREDITS is false');
  if (c.memoryLowWater <= 0 || c.memoryLowWater >= 1)
    throw new ConfigError('FANOUT_MEMORY_LOW_WATER', 'must be a fraction between 0 and 1');
  if (c.queueMaxBytes > c.memoryBudgetBytes)
    throw new ConfigError(
      'FANOUT_QUEUE_MAX_BYTES',
      'must not exceed FANOUT_MEMORY_BUDGET_BYTES (one slow client must not pause Kafka for everyone)',
    );
  if (!['conflate', 'drop', 'disconnect'].includes(c.defaultQueuePolicy))
    throw new ConfigError('FANOUT_DEFAULT_QUEUE_POLICY', 'must be conflate, drop or disconnect');
  try {
    new QueuePolicies(c.queuePolicies, c.defaultQueuePolicy);
  } catch (err) {
    throw new ConfigError('FANOUT_QUEUE_POLICIES', (err as Error).message);
  }
  const node2 = c.node || `gw-${c.region}-${process.pid}`;
  return Object.freeze({
    ...c,
    kafka: kafkaOverride ?? kafkaClientSettings(),
    brokers,
    node: node2,
    publicNamespaces: c.publicNamespaces.filter((n) => n !== 'none'),
    userGroupId: c.userGroupId || `fanout-gw-${c.region}`,
  });
}
