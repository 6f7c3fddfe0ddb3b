import { BlockList, isIP } from 'node:net';
import {
  loadConfig,
  resolveBrokers,
  ConfigError,
  envName,
  checkClientAddressHeader,
  checkIntegers,
  checkPort,
} from '@fanout/observability';
import { kafkaClientSettings, type KafkaClientSettings } from '@fanout/kafka';

/**
 * Dispatcher settings; each maps to FANOUT_<UPPER_SNAKE> (e.g. retrySchedule -> FANOUT_RETRY_SCHEDULE).
 * docs/webhooks.md#configuration lists them with their units.
 */
export const DISPATCHER_DEFAULTS = {
  /** HTTP listen host of the endpoint API. */
  host: '127.0.0.1',
  /** HTTP listen port; 0 picks a free one. */
  port: 8070,
  /** Kafka bootstrap servers (KAFKA_BROKERS is also read). */
  brokers: [] as string[],
  /** API keys accepted by the endpoint API (comma-separated, each at least 8 characters). Empty refuses to start. */
  apiKeys: [] as string[],
  /** Node name, in logs and in the private consumer groups of the registry readers; empty: `dispatcher-<pid>`. */
  node: '',
  /** Event topics read (the publisher's). */
  topicBroadcast: 'fanout.broadcast',
  topicUsers: 'fanout.users',
  /** Partition counts used if the dispatcher has to create the event topics. */
  broadcastPartitions: 6,
  userPartitions: 12,
  /** The endpoint registry: a compacted topic keyed by endpoint id (one partition). */
  topicEndpoints: 'fanout.webhook-endpoints',
  /** Retry topics are `<prefix>.<step>`, one per step of the schedule. */
  topicRetryPrefix: 'fanout.webhook-retry',
  /** Dead letters: compacted (and deleted after FANOUT_DEAD_LETTER_RETENTION_MS), keyed by `<endpoint id>/<event id>`. */
  topicDeadLetters: 'fanout.webhook-dead-letters',
  /** Partition count of each retry topic and of the dead-letter topic when created. */
  retryPartitions: 6,
  /** Consumer group over the event topics; the retry topics are read by `<groupId>-retry`. */
  groupId: 'fanout-dispatcher',
  /** Where a new consumer group starts on the event topics: `latest` (only new events) or `earliest`. */
  startFrom: 'latest',
  /** Delay before each retry (durations: 500ms, 5s, 5m, 2h, 1d); one try first, then one per step, then the dead-letter topic. */
  retrySchedule: ['5s', '5m', '30m', '2h', '5h', '10h', '24h'] as string[],
  /** Each retry waits its step times (1 + up to this fraction), at random, so that retries of one outage spread out. */
  retryJitter: 0.1,
  /** An attempt that has no response headers after this long fails (timeout), in ms. */
  requestTimeoutMs: 10_000,
  /** At most this much of a response body is read (for the dead-letter diagnostics), in bytes. */
  maxResponseBytes: 4096,
  /** Concurrent requests per endpoint when the endpoint sets none. */
  defaultMaxConcurrency: 10,
  /** Requests per second per endpoint when the endpoint sets none; 0 is unlimited. */
  defaultRateLimitPerS: 0,
  /** Read-ahead budget: while this many deliveries wait in memory (all endpoints), the consumers take no more records. */
  maxQueuedDeliveries: 5000,
  /** Safety bound of one endpoint's waiting deliveries; beyond, they are deferred through the first retry topic (not counted as attempts). */
  maxEndpointQueue: 10_000,
  /**
   * Longest wait in memory, in ms: a delivery that waited longer, or that would wait longer at the
   * endpoint's recent pace, is deferred the same way, so a slow endpoint cannot hold up commits.
   */
  maxQueueWaitMs: 10_000,
  /** Uncommitted records per consumed partition held in memory; at this count the partition pauses until deliveries settle. */
  partitionWindow: 5000,
  /** Consecutive failed attempts that open an endpoint's circuit; 0 disables the breaker. */
  circuitFailureThreshold: 10,
  /** How long a circuit stays open before one probe request, in ms; doubles after each failed probe. */
  circuitOpenMs: 30_000,
  /** Upper bound of the open time, in ms. */
  circuitMaxOpenMs: 600_000,
  /** After a secret rotation, the old secret still signs for this long unless the call says otherwise, in ms (24 h). */
  secretOverlapMs: 86_400_000,
  /**
   * Targets allowed although loopback, link-local, private or reserved: addresses or CIDR ranges
   * (`127.0.0.0/8`, `::1/128`, `10.1.2.3`). Empty in production; tests and local development only.
   */
  allowedTargets: [] as string[],
  /** Refuse `http:` endpoint URLs (only `https:`). */
  requireHttps: false,
  /** Most endpoints in the registry. */
  maxEndpoints: 10_000,
  /** Most channel patterns per endpoint. */
  maxChannelsPerEndpoint: 100,
  /** Dead letters held in memory for the API (newest kept); the topic keeps them all. */
  deadLetterIndexMax: 10_000,
  /** Dead letters are deleted from their topic after this long, in ms (14 days); applied when the topic is created. */
  deadLetterRetentionMs: 14 * 86_400_000,
  /** How often settled offsets are committed, in ms. */
  commitIntervalMs: 500,
  /** Consumer group session timeout, in ms: how soon a crashed dispatcher's partitions move to another (broker minimum 6000). */
  sessionTimeoutMs: 10_000,
  /** Largest API request body, in bytes. */
  maxBodyBytes: 64 * 1024,
  /** Endpoint API requests per second per client address (0, the default: no limit; e.g. 50); over it 429 rate_limited. */
  ratePerAddress: 0,
  ratePerAddressBurst: 100,
  /** Behind a load balancer: the header with the client's address (its last entry); empty: the socket's address. */
  clientAddressHeader: '',
  /** On SIGTERM, how long in-flight deliveries may take before the dispatcher stops anyway, in ms. */
  shutdownGraceMs: 10_000,
};

export type DispatcherConfigInput = typeof DISPATCHER_DEFAULTS;

export interface DispatcherConfig extends DispatcherConfigInput {
  /** The schedule in milliseconds. */
  retryDelaysMs: number[];
  /** Ranges allowed despite the SSRF rules (from allowedTargets). */
  allowList: BlockList;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `5s`, `5m`, `2h`, `1d` (or a bare number of milliseconds) to milliseconds; null if malformed. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) return null;
  const v = Number(m[1]) * UNITS[m[2] ?? 'ms']!;
  return Number.isFinite(v) ? Math.round(v) : null;
}

/** Adds `10.0.0.0/8`, `::1/128` or a single address to a BlockList; throws on anything else. */
export function addTarget(list: BlockList, entry: string): void {
  const [addr, bits, extra] = entry.split('/');
  const type = isIP(addr ?? '');
  if (!type || extra !== undefined) throw new Error(`${JSON.stringify(entry)} is not an address or CIDR range`);
  const family = type === 4 ? 'ipv4' : 'ipv6';
  if (bits === undefined) return list.addAddress(addr!, family);
  const prefix = Number(bits);
  if (!/^\d{1,3}$/.test(bits) || prefix > (type === 4 ? 32 : 128)) throw new Error(`${JSON.stringify(entry)} has a bad prefix length`);
  list.addSubnet(addr!, prefix, family);
}

export function dispatcherConfig(
  overrides: Partial<DispatcherConfigInput> & { kafka?: KafkaClientSettings } = {},
): Readonly<DispatcherConfig & { kafka: KafkaClientSettings }> {
  const { kafka: kafkaOverride, ...rest } = overrides;
  const c = loadConfig(DISPATCHER_DEFAULTS, rest);
  const brokers = resolveBrokers(c.brokers);
  if (c.apiKeys.length === 0)
    throw new ConfigError('FANOUT_API_KEYS', 'no API keys configured; set FANOUT_API_KEYS to one or more comma-separated keys');
  if (c.apiKeys.some((k) => k.length < 8)) throw new ConfigError('FANOUT_API_KEYS', 'every API key must be at least 8 characters');
  checkPort(c.port);
  if (c.node !== '' && !/^[A-Za-z0-9._-]{1,64}$/.test(c.node)) throw new ConfigError('FANOUT_NODE', 'must be 1 to 64 of [A-Za-z0-9._-]');
  if (c.startFrom !== 'latest' && c.startFrom !== 'earliest') throw new ConfigError('FANOUT_START_FROM', 'must be latest or earliest');
  if (!/^[A-Za-z0-9._-]{1,200}$/.test(c.groupId)) throw new ConfigError('FANOUT_GROUP_ID', 'must be 1 to 200 of [A-Za-z0-9._-]');
  for (const key of ['topicBroadcast', 'topicUsers', 'topicEndpoints', 'topicRetryPrefix', 'topicDeadLetters'] as const) {
    if (!/^[A-Za-z0-9._-]{1,200}$/.test(c[key])) throw new ConfigError(envName(key), 'must be a topic name, 1 to 200 of [A-Za-z0-9._-]');
  }
  if (c.retrySchedule.length === 0 || c.retrySchedule.length > 20)
    throw new ConfigError('FANOUT_RETRY_SCHEDULE', 'must list 1 to 20 delays, e.g. 5s,5m,30m,2h,5h,10h,24h');
  const retryDelaysMs = c.retrySchedule.map((s) => {
    const ms = parseDuration(s);
    if (ms === null || ms < 1 || ms > 30 * 86_400_000)
      throw new ConfigError('FANOUT_RETRY_SCHEDULE', `${JSON.stringify(s)} is not a delay from 1ms to 30d (write 500ms, 5s, 5m, 2h or 1d)`);
    return ms;
  });
  if (c.retryJitter > 1) throw new ConfigError('FANOUT_RETRY_JITTER', 'must be a fraction from 0 to 1');
  checkIntegers(c, [
    ['broadcastPartitions', 1, 10_000],
    ['userPartitions', 1, 10_000],
    ['retryPartitions', 1, 10_000],
    ['requestTimeoutMs', 100, 300_000],
    ['maxResponseBytes', 0, 1024 * 1024],
    ['defaultMaxConcurrency', 1, 1000],
    ['defaultRateLimitPerS', 0, 100_000],
    ['maxEndpointQueue', 1, 1_000_000],
    ['maxQueuedDeliveries', 1, 10_000_000],
    ['maxQueueWaitMs', 100, 86_400_000],
    ['partitionWindow', 1, 1_000_000],
    ['circuitFailureThreshold', 0, 1_000_000],
    ['circuitOpenMs', 10, 86_400_000],
    ['circuitMaxOpenMs', 10, 7 * 86_400_000],
    ['secretOverlapMs', 0, 30 * 86_400_000],
    ['maxEndpoints', 1, 10_000_000],
    ['maxChannelsPerEndpoint', 1, 10_000],
    ['deadLetterIndexMax', 0, 10_000_000],
    ['deadLetterRetentionMs', 60_000, 365 * 86_400_000],
    ['commitIntervalMs', 10, 60_000],
    ['sessionTimeoutMs', 6000, 300_000],
    ['maxBodyBytes', 1024, 16 * 1024 * 1024],
    ['shutdownGraceMs', 0, 600_000],
    ['ratePerAddress', 0, 1_000_000],
    ['ratePerAddressBurst', 1, 1_000_000],
  ]);
  if (c.circuitMaxOpenMs < c.circuitOpenMs)
    throw new ConfigError('FANOUT_CIRCUIT_MAX_OPEN_MS', 'must not be shorter than FANOUT_CIRCUIT_OPEN_MS');
  checkClientAddressHeader(c.clientAddressHeader);
  const allowList = new BlockList();
  for (const entry of c.allowedTargets) {
    try {
      addTarget(allowList, entry);
    } catch (err) {
      throw new ConfigError(
        'FANOUT_ALLOWED_TARGETS',
        `${(err as Error).message}; list addresses or CIDR ranges such as 127.0.0.0/8,::1/128`,
      );
    }
  }
  const node = c.node || `dispatcher-${process.pid}`;
  return Object.freeze({ ...c, kafka: kafkaOverride ?? kafkaClientSettings(), brokers, node, retryDelaysMs, allowList });
}
