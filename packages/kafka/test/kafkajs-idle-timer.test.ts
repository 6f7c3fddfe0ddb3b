/**
 * kafkajs 2.2.4 re-arms a 1 ms timer forever on an idle broker connection
 * (src/kafkajs-idle-timer.ts). With the fix, an idle connected client arms almost no timers.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import '../src/kafkajs-idle-timer.js';
import { brokers } from '../../../test/helpers.js';

describe('kafkajs idle timer', () => {
  const kafka = new Kafka({ clientId: 'idle-timer-test', brokers: brokers(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  afterAll(() => admin.disconnect());

  it('an idle, connected client does not wake the event loop every millisecond', async () => {
    await admin.connect();
    await admin.listTopics(); // a request answered: the queue is idle again
    const real = globalThis.setTimeout;
    let short = 0;
    globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...rest: unknown[]) => {
      if ((ms ?? 0) <= 1) short++;
      return real(fn, ms, ...rest);
    }) as typeof setTimeout;
    try {
      await new Promise((r) => real(r, 500));
    } finally {
      globalThis.setTimeout = real;
    }
    // Without the fix: ~500 (one per millisecond per broker connection); with it, none.
    expect(short).toBeLessThan(10);
  });
});
