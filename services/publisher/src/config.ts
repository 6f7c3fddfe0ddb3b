import { loadConfig, resolveBrokers, ConfigError, checkInteger, checkIntegers, checkPort } from '@fanout/observability';
import { EPOCH_RE } from '@fanout/protocol';
import { kafkaClientSettings, type KafkaClientSettings } from '@fanout/kafka';
import { parseInboundSources, MAX_INBOUND_TOLERANCE_S } from './http/inbound-webhooks.js';

/** Publisher settings; each maps to FANOUT_<UPPER_SNAKE> (e.g. apiKeys -> FANOUT_API_KEYS). */
export const PUBLISHER_DEFAULTS = {
  /** HTTP listen host. */
  host: '127.0.0.1',
  /** HTTP listen port; 0 picks a free one. */
  port: 8080,
  /** Comma-separated Kafka bootstrap servers (KAFKA_BROKERS is also read). */
  brokers: [] as string[],
  /** API keys accepted by the publish API (comma-separated). Empty refuses to start. */
  apiKeys: [] as string[],
  /** Largest request body, in bytes (1 MiB). */
  maxBodyBytes: 1024 * 1024,
  /** Largest event data, in bytes of its JSON (64 KiB). */
  maxEventBytes: 64 * 1024,
  /** Most events in one batch request. */
  maxBatchEvents: 500,
  /** Partition count of the broadcast topic when the publisher creates it. */
  broadcastPartitions: 6,
  /** Partition count of the users topic when the publisher creates it. */
  userPartitions: 12,
  /** Broadcast topic name. */
  topicBroadcast: 'fanout.broadcast',
  /** Users topic name. */
  topicUsers: 'fanout.users',
  /** Stream epoch reported in positions; change it when the topics are recreated. */
  streamEpoch: '1',
  /** How long SIGTERM waits for in-flight requests, in milliseconds. */
  shutdownGraceMs: 10_000,
  /** Inbound webhook sources (POST /v1/inbound/<source>), JSON: {"<source>": {"channel": "<channel>", "secrets": ["whsec_..."]}}; empty: none. */
  inboundWebhooks: '',
  /** Largest difference between webhook-timestamp and this clock, in seconds (1 to 300). */
  inboundToleranceS: 300,
  /** A webhook-id seen again within this window is acknowledged and not published again, in ms (24 h; per publisher instance). */
  inboundDedupeWindowMs: 86_400_000,
  /** Most webhook ids remembered for the dedupe window (the oldest are forgotten first). */
  inboundDedupeMaxIds: 100_000,
  /**
   * How long a publish request waits for Kafka's acknowledgement before it is answered
   * `503 kafka_unavailable` with Retry-After, in ms (a broker down, a failover longer than this).
   * The write may still land afterwards: the client retries with the same event ids.
   */
  publishTimeoutMs: 10_000,
  /** Retry-After of a 503 (Kafka unavailable, not ready), in seconds. */
  retryAfterS: 1,
  /** Events per second one API key may publish over HTTP (0: no limit); over it 429 rate_limited with Retry-After. */
  publishRatePerKey: 5000,
  /** Events a key may publish at once after a quiet period. */
  publishBurstPerKey: 10_000,
};

export type PublisherConfig = typeof PUBLISHER_DEFAULTS;

export function publisherConfig(
  overrides: Partial<PublisherConfig> & { kafka?: KafkaClientSettings } = {},
): Readonly<PublisherConfig & { kafka: KafkaClientSettings }> {
  const { kafka: kafkaOverride, ...rest } = overrides;
  const c = loadConfig(PUBLISHER_DEFAULTS, rest);
  const brokers = resolveBrokers(c.brokers);
  if (c.apiKeys.length === 0)
    throw new ConfigError('FANOUT_API_KEYS', 'no API keys configured; set FANOUT_API_KEYS to one or more comma-separated keys');
  if (c.apiKeys.some((k) => k.length < 8)) throw new ConfigError('FANOUT_API_KEYS', 'every API key must be at least 8 characters');
  checkPort(c.port);
  checkIntegers(c, [
    ['broadcastPartitions', 1],
    ['userPartitions', 1],
  ]);
  if (!EPOCH_RE.test(c.streamEpoch)) throw new ConfigError('FANOUT_STREAM_EPOCH', 'must be 1 to 64 of [A-Za-z0-9_-]');
  try {
    parseInboundSources(c.inboundWebhooks);
  } catch (err) {
    throw new ConfigError('FANOUT_INBOUND_WEBHOOKS', (err as Error).message);
  }
  checkIntegers(c, [
    ['inboundToleranceS', 1, MAX_INBOUND_TOLERANCE_S],
    ['inboundDedupeMaxIds', 1],
    ['publishTimeoutMs', 100, 120_000],
    ['retryAfterS', 1, 300],
  ]);
  checkInteger(c.publishRatePerKey, 'FANOUT_PUBLISH_RATE_PER_KEY', 0, Number.MAX_SAFE_INTEGER, '(0: no limit)');
  checkInteger(
    c.publishBurstPerKey,
    'FANOUT_PUBLISH_BURST_PER_KEY',
    Math.max(1, c.maxBatchEvents),
    Number.MAX_SAFE_INTEGER,
    '(at least FANOUT_MAX_BATCH_EVENTS: a full batch must fit)',
  );
  return Object.freeze({ ...c, kafka: kafkaOverride ?? kafkaClientSettings(), brokers });
}
