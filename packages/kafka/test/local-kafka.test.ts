import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerUnavailableError, ensureKafkaJars, startLocalKafka } from '@fanout/kafka';

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
