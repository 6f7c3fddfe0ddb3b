import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerUnavailableError, clientEnvExports, ensureKafkaJars, startLocalKafka } from '@fanout/kafka';

describe('local Kafka without its tools', () => {
  const saved = { PATH: process.env.PATH, FANOUT_CACHE_DIR: process.env.FANOUT_CACHE_DIR };
  afterEach(() => {
    process.env.PATH = saved.PATH;
    if (saved.FANOUT_CACHE_DIR === undefined) delete process.env.FANOUT_CACHE_DIR;
    else process.env.FANOUT_CACHE_DIR = saved.FANOUT_CACHE_DIR;
  });

  it('says Java is missing and how to point at an existing broker', async () => {
    process.env.PATH = '/nonexistent';
    const err = await startLocalKafka().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerUnavailableError);
    expect((err as Error).message).toMatch(/Java is not installed/);
    expect((err as Error).message).toMatch(/KAFKA_BROKERS=/);
  });

  it('says Maven is missing when the jars are not cached yet', () => {
    process.env.FANOUT_CACHE_DIR = mkdtempSync(join(tmpdir(), 'fanout-cache-'));
    process.env.PATH = '/nonexistent';
    expect(() => ensureKafkaJars()).toThrow(/Maven \(mvn\) is not installed.*KAFKA_BROKERS=/s);
  });
});

describe('local Kafka options', () => {
  it('refuses a cluster shape it cannot start, before starting anything', async () => {
    await expect(startLocalKafka({ brokers: 2 as 1 })).rejects.toThrow(/brokers must be 1 or 3, got 2/);
    await expect(startLocalKafka({ security: 'ssl' as 'plaintext' })).rejects.toThrow(/security must be plaintext or sasl_ssl, got ssl/);
  });

  it('prints the client environment as shell exports, quoting only what needs it', () => {
    expect(clientEnvExports({ KAFKA_BROKERS: '127.0.0.1:9092,127.0.0.1:9093', FANOUT_KAFKA_TLS_CA_FILE: "/tmp/it's here/ca.pem" })).toBe(
      "export KAFKA_BROKERS=127.0.0.1:9092,127.0.0.1:9093\nexport FANOUT_KAFKA_TLS_CA_FILE='/tmp/it'\\''s here/ca.pem'",
    );
  });

  it('starts one plaintext node by default and removes its work dir on stop', async () => {
    const k = await startLocalKafka({ heap: '256m' });
    try {
      expect(k.security).toBe('plaintext');
      expect(k.tls).toBeUndefined();
      expect(k.nodes.map((n) => [n.nodeId, n.port, n.alive()])).toEqual([[1, Number(k.brokers[0]!.split(':')[1]), true]]);
      expect(k.clientEnv).toEqual({
        KAFKA_BROKERS: k.brokers[0],
        FANOUT_TOPIC_REPLICATION_FACTOR: '1',
        FANOUT_TOPIC_MIN_INSYNC_REPLICAS: '1',
      });
    } finally {
      await k.stop();
    }
    expect(k.nodes[0]!.alive()).toBe(false);
    expect(existsSync(k.workDir)).toBe(false);
  });
});
