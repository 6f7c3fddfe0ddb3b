import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@fanout/observability';
import { checkTopics, createKafka, ensureTopics, TopicDurabilityError, type TopicSettings } from '../src/index.js';
import { brokers } from '../../../test/helpers.js';

function capturingLogger() {
  const lines: { msg: string; topic?: string; setting?: string; actual?: number }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, stream), lines };
}

const single: TopicSettings = { replicationFactor: 1, minInsyncReplicas: 1, retentionMs: 3_600_000, strict: false };

describe('topic durability (real broker)', () => {
  it('creates topics with the configured min.insync.replicas and event retention, and reads them back as durable enough', async () => {
    const { logger, lines } = capturingLogger();
    const kafka = createKafka({ brokers: brokers(), clientId: 'topics-test', logger });
    const topic = `t.durable.${randomUUID().slice(0, 8)}`;
    const counts = await ensureTopics(kafka, [{ topic, numPartitions: 2, events: true }], logger, single);
    expect(counts.get(topic)).toBe(2);
    const admin = kafka.admin();
    await admin.connect();
    const r = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: 2, name: topic, configNames: ['min.insync.replicas', 'retention.ms'] }],
    });
    await admin.disconnect();
    const value = (n: string) => r.resources[0]!.configEntries.find((e) => e.configName === n)?.configValue;
    expect(value('min.insync.replicas')).toBe('1');
    expect(value('retention.ms')).toBe('3600000');
    expect(lines).toEqual([]);
  });

  it('warns about an existing topic less durable than configured, and refuses to start with FANOUT_TOPIC_STRICT', async () => {
    const { logger, lines } = capturingLogger();
    const kafka = createKafka({ brokers: brokers(), clientId: 'topics-test', logger });
    const topic = `t.weak.${randomUUID().slice(0, 8)}`;
    await ensureTopics(kafka, [{ topic, numPartitions: 1, events: true }], logger, single);
    // Another deployment expects two in sync and a day of retention.
    const wanted: TopicSettings = { replicationFactor: 1, minInsyncReplicas: 2, retentionMs: 86_400_000, strict: false };
    await checkTopics(kafka, [{ topic, events: true }], logger, wanted);
    expect(lines.map((l) => l.setting).sort()).toEqual(['min.insync.replicas', 'retention.ms']);
    expect(lines[0]!.msg).toMatch(new RegExp(`topic ${topic.replace(/\./g, '\\.')} has`));
    const err = await checkTopics(kafka, [{ topic, events: true }], logger, { ...wanted, strict: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TopicDurabilityError);
    expect((err as TopicDurabilityError).variable).toBe('FANOUT_TOPIC_MIN_INSYNC_REPLICAS');
  });

  it('skips topics that do not exist yet (the router may start before the publisher creates them)', async () => {
    const { logger, lines } = capturingLogger();
    const kafka = createKafka({ brokers: brokers(), clientId: 'topics-test', logger });
    expect((await checkTopics(kafka, [{ topic: `t.absent.${randomUUID().slice(0, 8)}`, events: true }], logger, single)).size).toBe(0);
    expect(lines).toEqual([]);
  });

  it('names FANOUT_TOPIC_REPLICATION_FACTOR when the cluster has fewer brokers than replicas', async () => {
    const { logger } = capturingLogger();
    const kafka = createKafka({ brokers: brokers(), clientId: 'topics-test', logger });
    const err = await ensureTopics(kafka, [{ topic: `t.rf3.${randomUUID().slice(0, 8)}`, numPartitions: 1 }], logger, {
      replicationFactor: 3,
      minInsyncReplicas: 2,
      retentionMs: 86_400_000,
      strict: false,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe('FANOUT_TOPIC_REPLICATION_FACTOR');
    expect((err as Error).message).toMatch(/cluster of 1 broker/);
  });
});
