import type { Admin, Kafka } from 'kafkajs';
import { checkInteger, ConfigError, loadConfig, type Logger } from '@fanout/observability';
import { withRetry } from './client.js';

/** kafkajs' ConfigResourceTypes.TOPIC (the enum is not a named export of its CommonJS build). */
const TOPIC_RESOURCE = 2;

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  configEntries?: { name: string; value: string }[];
  /** An event topic (broadcast, users): its retention is FANOUT_TOPIC_RETENTION_MS. */
  events?: boolean;
}

/**
 * How durable the topics the project creates are, and how strictly existing ones are held to it
 * (FANOUT_TOPIC_*). The defaults suit a cluster of three or more brokers: with the publisher's
 * acks=all, an acknowledged event is on two replicas at least and survives the loss of a broker.
 * A single-broker development cluster runs with 1 and 1 (the local cluster says so in its env).
 */
export const TOPIC_DEFAULTS = {
  /** Replicas of every topic created (FANOUT_TOPIC_REPLICATION_FACTOR). */
  topicReplicationFactor: 3,
  /** min.insync.replicas of every topic created: acks=all waits for this many. */
  topicMinInsyncReplicas: 2,
  /** retention.ms of the event topics: how far back a resume or a stopped dispatcher can read (7 days). */
  topicRetentionMs: 604_800_000,
  /** Refuse to start when an existing topic is less durable than configured (else a warning). */
  topicStrict: false,
};

export interface TopicSettings {
  replicationFactor: number;
  minInsyncReplicas: number;
  retentionMs: number;
  strict: boolean;
}

export function topicSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): TopicSettings {
  const c = loadConfig(TOPIC_DEFAULTS, {}, env);
  checkInteger(
    c.topicReplicationFactor,
    'FANOUT_TOPIC_REPLICATION_FACTOR',
    1,
    32,
    '(3 for production, 1 for a single-broker development cluster)',
  );
  checkInteger(
    c.topicMinInsyncReplicas,
    'FANOUT_TOPIC_MIN_INSYNC_REPLICAS',
    1,
    c.topicReplicationFactor,
    '(at most FANOUT_TOPIC_REPLICATION_FACTOR; 2 of 3 for production)',
  );
  checkInteger(c.topicRetentionMs, 'FANOUT_TOPIC_RETENTION_MS', 60_000, Number.MAX_SAFE_INTEGER, '(ms)');
  return {
    replicationFactor: c.topicReplicationFactor,
    minInsyncReplicas: c.topicMinInsyncReplicas,
    retentionMs: c.topicRetentionMs,
    strict: c.topicStrict,
  };
}

/** The configuration a topic is created with: its own entries, then durability. */
function entriesFor(spec: TopicSpec, settings: TopicSettings): { name: string; value: string }[] {
  const own = spec.configEntries ?? [];
  const out = [...own, { name: 'min.insync.replicas', value: String(settings.minInsyncReplicas) }];
  if (spec.events && !own.some((e) => e.name === 'retention.ms')) out.push({ name: 'retention.ms', value: String(settings.retentionMs) });
  return out;
}

/** Thrown (with FANOUT_TOPIC_STRICT) when an existing topic is less durable than configured. */
export class TopicDurabilityError extends ConfigError {
  constructor(variable: string, message: string) {
    super(variable, message);
    this.name = 'TopicDurabilityError';
  }
}

/**
 * Creates the topics that do not exist yet, with their configured partition counts and
 * durability; existing topics are left as they are (a partition count that differs from the
 * configuration is logged: changing it would move keys between partitions) and checked against
 * the durability settings (checkTopics). Returns the actual partition count of each topic.
 */
export async function ensureTopics(
  kafka: Kafka,
  specs: TopicSpec[],
  logger: Logger,
  settings: TopicSettings = topicSettingsFromEnv(),
): Promise<Map<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length > 0) await createTopics(admin, missing, settings, logger);
    const counts = await checkTopicsWith(admin, specs, settings, logger);
    for (const s of specs) {
      const actual = counts.get(s.topic);
      if (actual !== undefined && actual !== s.numPartitions) {
        logger.warn(
          { topic: s.topic, configured: s.numPartitions, actual },
          'topic partition count differs from configuration; using the actual count',
        );
      }
    }
    return counts;
  } finally {
    await admin.disconnect();
  }
}

async function createTopics(admin: Admin, missing: TopicSpec[], settings: TopicSettings, logger: Logger): Promise<void> {
  // Retried: a broker that has just started may not host the new partitions' leaders yet
  // ("does not host this topic-partition") while createTopics waits for them.
  await withRetry(async () => {
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((s) => ({
          topic: s.topic,
          numPartitions: s.numPartitions,
          replicationFactor: settings.replicationFactor,
          configEntries: entriesFor(s, settings),
        })),
      });
      logger.info(
        {
          topics: missing.map((s) => `${s.topic}/${s.numPartitions}`),
          replication_factor: settings.replicationFactor,
          min_insync_replicas: settings.minInsyncReplicas,
        },
        'created topics',
      );
    } catch (err) {
      const errors = (err as { errors?: { type?: string; message?: string }[] }).errors ?? [];
      const invalid = errors.find((e) => e.type === 'INVALID_REPLICATION_FACTOR');
      if (invalid) {
        const brokers = (await admin.describeCluster().catch(() => null))?.brokers.length;
        throw new ConfigError(
          'FANOUT_TOPIC_REPLICATION_FACTOR',
          `Kafka cannot place ${settings.replicationFactor} replicas${brokers !== undefined ? ` on a cluster of ${brokers} broker(s)` : ''}; set FANOUT_TOPIC_REPLICATION_FACTOR (and FANOUT_TOPIC_MIN_INSYNC_REPLICAS) to what the cluster can hold: 3 and 2 in production, 1 and 1 on a single development broker`,
        );
      }
      // Another service (or an earlier attempt) created them: that is fine.
      if (errors.length === 0 || !errors.every((e) => e.type === 'TOPIC_ALREADY_EXISTS')) throw err;
    }
  }, 10);
}

/**
 * Checks that topics another service created (or an operator did) are as durable as configured:
 * replicas per partition, min.insync.replicas, and the event topics' retention. Each shortfall is
 * a warning naming the topic and the setting, or with FANOUT_TOPIC_STRICT a TopicDurabilityError.
 * Topics that do not exist yet are skipped (a service that creates them will check them). Returns
 * the partition count of each topic that exists.
 */
export async function checkTopics(
  kafka: Kafka,
  specs: Pick<TopicSpec, 'topic' | 'events' | 'configEntries'>[],
  logger: Logger,
  settings: TopicSettings = topicSettingsFromEnv(),
): Promise<Map<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const present = specs.filter((s) => existing.has(s.topic));
    return present.length > 0 ? await checkTopicsWith(admin, present, settings, logger) : new Map();
  } finally {
    await admin.disconnect();
  }
}

async function checkTopicsWith(
  admin: Admin,
  specs: Pick<TopicSpec, 'topic' | 'events' | 'configEntries'>[],
  settings: TopicSettings,
  logger: Logger,
): Promise<Map<string, number>> {
  const meta = await withRetry(() => admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) }));
  const described = await withRetry(() =>
    admin.describeConfigs({
      includeSynonyms: false,
      resources: specs.map((s) => ({ type: TOPIC_RESOURCE, name: s.topic, configNames: ['min.insync.replicas', 'retention.ms'] })),
    }),
  );
  const counts = new Map<string, number>();
  const shortfalls: { variable: string; topic: string; setting: string; configured: number; actual: number }[] = [];
  for (const t of meta.topics) {
    counts.set(t.name, t.partitions.length);
    const replicas = Math.min(...t.partitions.map((p) => p.replicas.length));
    if (replicas < settings.replicationFactor)
      shortfalls.push({
        variable: 'FANOUT_TOPIC_REPLICATION_FACTOR',
        topic: t.name,
        setting: 'replicas',
        configured: settings.replicationFactor,
        actual: replicas,
      });
    const entries = described.resources.find((r) => r.resourceName === t.name)?.configEntries ?? [];
    const value = (name: string) => Number(entries.find((e) => e.configName === name)?.configValue);
    const minIsr = value('min.insync.replicas');
    if (Number.isFinite(minIsr) && minIsr < settings.minInsyncReplicas) {
      shortfalls.push({
        variable: 'FANOUT_TOPIC_MIN_INSYNC_REPLICAS',
        topic: t.name,
        setting: 'min.insync.replicas',
        configured: settings.minInsyncReplicas,
        actual: minIsr,
      });
    }
    const spec = specs.find((s) => s.topic === t.name);
    const wantRetention = spec?.events ? settings.retentionMs : Number(spec?.configEntries?.find((e) => e.name === 'retention.ms')?.value);
    const retention = value('retention.ms');
    if (Number.isFinite(wantRetention) && Number.isFinite(retention) && retention !== -1 && retention < wantRetention) {
      shortfalls.push({
        variable: spec?.events ? 'FANOUT_TOPIC_RETENTION_MS' : 'retention.ms',
        topic: t.name,
        setting: 'retention.ms',
        configured: wantRetention,
        actual: retention,
      });
    }
  }
  for (const s of shortfalls) {
    const message = `topic ${s.topic} has ${s.setting}=${s.actual}, less durable than configured (${s.configured}); raise it on the cluster (kafka-topics --alter / kafka-configs --alter, or kafka-reassign-partitions for replicas), or lower ${s.variable}`;
    if (settings.strict) throw new TopicDurabilityError(s.variable, `${message} (FANOUT_TOPIC_STRICT=true refuses to start)`);
    logger.warn({ topic: s.topic, setting: s.setting, configured: s.configured, actual: s.actual, variable: s.variable }, message);
  }
  return counts;
}
