/**
 * kafkajs 2.2.4 re-arms a 1 ms timer forever on an idle broker connection
 * (src/kafkajs-idle-timer.ts). With the fix, an idle connected client arms almost no timers, and on
 * Node 24, where a negative timeout prints a TimeoutNegativeWarning, prints none.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
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

  // Node 24 warns on a negative setTimeout delay (Node 20 does not): the kafkajs loop's delay is
  // negative on an idle connection. The child processes print their warnings on stderr.
  const warnsOnNegative = /TimeoutNegativeWarning/.test(
    spawnSync(process.execPath, ['-e', 'setTimeout(() => {}, -1)'], { encoding: 'utf8' }).stderr,
  );
  const idleClient = (mode: 'fixed' | 'unfixed') =>
    new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'fixtures/idle-client.ts'), brokers().join(','), mode, '1000'],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, stderr }));
    });

  it('an idle client prints no TimeoutNegativeWarning; without the fix it does where Node warns on negative timeouts (Node 24)', async () => {
    const fixed = await idleClient('fixed');
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stderr).not.toMatch(/TimeoutNegativeWarning/);
    // Without the fix, the same client prints it where Node warns: the check above can see it.
    const unfixed = await idleClient('unfixed');
    expect(unfixed.code, unfixed.stderr).toBe(0);
    expect(/TimeoutNegativeWarning/.test(unfixed.stderr)).toBe(warnsOnNegative);
  });
});
