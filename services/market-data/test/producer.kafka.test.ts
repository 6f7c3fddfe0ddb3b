/**
 * The producer against the run's real broker: ~1 s of ticks at a set rate, read back with a plain
 * kafkajs consumer.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { pino } from 'pino';
import { brokers, uniqueTopics, waitFor } from '../../../test/helpers.js';
import { startMarketData } from '../src/producer.js';
import type { Tick } from '../src/ticks.js';

const logger = pino({ level: 'silent' });

describe('market-data producer (real Kafka)', () => {
  const topics = uniqueTopics('md');
  const kafka = new Kafka({ clientId: 'md-test', brokers: brokers(), logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `md-test-${topics.topicBroadcast}`, maxWaitTimeInMs: 100 });

  afterAll(async () => {
    await consumer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topics.topicBroadcast, topics.topicUsers] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('publishes ticks to prices:<SYMBOL> at about the set rate, with the record headers', async () => {
    const symbols = ['AAPL', 'MSFT', 'GOOG', 'BRK.B', 'F'];
    const rate = 200;
    const md = await startMarketData({ brokers: brokers(), ...topics, symbols, rate, logIntervalS: 60, seed: 1234, port: 0 }, logger);
    const t0 = performance.now();
    // About a second of ticks: until Kafka has acknowledged a second's worth.
    await waitFor(() => md.producer.stats.acknowledged >= rate, `${rate} acknowledged ticks`, 15_000);
    const metrics = await (await fetch(`http://127.0.0.1:${md.port}/metrics`)).text();
    expect(metrics).toMatch(/fanout_market_data_ticks_acknowledged_total\{[^}]*\} [1-9]/);
    expect((await fetch(`http://127.0.0.1:${md.port}/readyz`)).status).toBe(200);
    await md.shutdown();
    const seconds = (performance.now() - t0) / 1000;
    const { published, acknowledged, failed, skipped } = md.producer.stats;
    expect({ failed, skipped }).toEqual({ failed: 0, skipped: 0 });
    expect(acknowledged).toBe(published);
    expect(published).toBeGreaterThan(rate * seconds * 0.85);
    // Pacing never runs ahead of the clock by more than a slice (20 ms) of ticks.
    expect(published).toBeLessThanOrEqual(rate * (seconds + 0.05) + 1);

    const records: { partition: number; m: KafkaMessage }[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: topics.topicBroadcast, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ partition, message }) => void records.push({ partition, m: message }) });
    await waitFor(() => records.length >= published, `${published} records`, 30_000);
    expect(records).toHaveLength(published);

    const header = (m: KafkaMessage, name: string) => m.headers?.[name]?.toString();
    const bySymbol = new Map<string, Tick[]>();
    const times: number[] = [];
    for (const { m } of records) {
      const channel = m.key!.toString();
      const tick = JSON.parse(m.value!.toString()) as Tick;
      expect(channel).toBe(`prices:${tick.sym}`);
      expect(header(m, 'fanout-channel')).toBe(channel);
      expect(header(m, 'fanout-id')).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
      expect(header(m, 'content-type')).toBe('application/json');
      const ts = Number(header(m, 'fanout-ts'));
      expect(ts).toBe(Number(m.timestamp));
      times.push(ts);
      expect(tick.ask).toBeGreaterThan(tick.bid);
      expect(tick.bid).toBeGreaterThan(0);
      const list = bySymbol.get(tick.sym) ?? [];
      list.push(tick);
      bySymbol.set(tick.sym, list);
    }
    expect([...bySymbol.keys()].sort()).toEqual([...symbols].sort());
    // One channel is one partition, so each symbol's ticks come back in order: 1, 2, 3, ...
    for (const [sym, ticks] of bySymbol) {
      expect(
        ticks.map((t) => t.seq),
        sym,
      ).toEqual(ticks.map((_, i) => i + 1));
      expect(ticks.length).toBeGreaterThan(published / symbols.length - 2);
    }
    // Achieved rate from the publish timestamps themselves.
    const span = (Math.max(...times) - Math.min(...times)) / 1000;
    const achieved = (records.length - 1) / span;
    expect(achieved).toBeGreaterThan(rate * 0.8);
    expect(achieved).toBeLessThan(rate * 1.25);
    // Ids are unique.
    expect(new Set(records.map(({ m }) => header(m, 'fanout-id'))).size).toBe(records.length);
  });
});
