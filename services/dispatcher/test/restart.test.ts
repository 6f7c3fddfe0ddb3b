import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '@fanout/kafka';
import { envName } from '@fanout/observability';
import type { PublisherClient } from '@fanout/publisher';
import { startDispatcher, type RunningDispatcher } from '@fanout/dispatcher';
import { brokers, waitFor } from '../../../test/helpers.js';
import { countRecords } from '../../../test/kafka-read.js';
import { Receiver } from './receiver.js';
import { api, dispatcherTopics, metric, publisher, testConfig } from './harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const topics = dispatcherTopics('wh-kill');
const EVENTS = 20;
let child: ChildProcess | null = null;
let second: RunningDispatcher | null = null;
let pub: PublisherClient | null = null;
let receiver: Receiver | null = null;

/** The dispatcher as its own process (npm start's way), configured through the environment. */
async function spawnDispatcher(config: Record<string, unknown>): Promise<{ proc: ChildProcess; url: string }> {
  const port = await freePort();
  const env: Record<string, string> = { ...process.env, FANOUT_LOG_LEVEL: 'warn', KAFKAJS_NO_PARTITIONER_WARNING: '1' } as Record<
    string,
    string
  >;
  for (const [k, v] of Object.entries({ ...config, port, node: 'dispatcher-a' }))
    env[envName(k)] = Array.isArray(v) ? v.join(',') : String(v);
  const proc = spawn(process.execPath, ['--import', 'tsx', 'services/dispatcher/src/main.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`the dispatcher exited with ${proc.exitCode}: ${stderr}`);
      return fetch(url + '/readyz').then(
        (r) => r.status === 200,
        () => false,
      );
    },
    'the spawned dispatcher to be ready',
    45_000,
  );
  return { proc, url };
}

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await second?.shutdown();
  await pub?.disconnect();
  await receiver?.close();
});

describe('restart', () => {
  it('killing the dispatcher mid-schedule and starting another loses no event', async () => {
    let failing = true;
    receiver = await Receiver.start(() => ({ status: failing ? 503 : 200 }));
    const config = testConfig(topics, { retrySchedule: ['1s', '1s', '1s', '1s', '1s', '1s'], retryJitter: 0, circuitFailureThreshold: 0 });
    const [a, p] = await Promise.all([spawnDispatcher(config), publisher(topics)]);
    child = a.proc;
    pub = p;
    const ep = await api(a.url, 'POST', '/v1/endpoints', { url: receiver.url, channels: ['kill:*'] });
    expect(ep.status).toBe(201);

    const ids = Array.from({ length: EVENTS }, (_, i) => `evt-kill-${i}`);
    await pub.publishBatch(ids.map((id, i) => ({ channel: `kill:${i % 5}`, data: { i }, id })));
    // Every event has failed at least once: its next try is a record in the first retry topic.
    await waitFor(() => ids.every((id) => receiver!.attemptsOf(id).length > 0), 'a first attempt of every event');
    await waitFor(async () => (await countRecords(brokers(), `${topics.topicRetryPrefix}.0`)) >= EVENTS, 'every retry to be in Kafka');
    child.kill('SIGKILL');
    await new Promise<void>((r) => (child!.exitCode !== null || child!.signalCode !== null ? r() : child!.once('exit', () => r())));
    failing = false;

    // Another instance (same groups, same topics) takes over once the dead member's session ends.
    second = await startDispatcher(config);
    expect(second.endpoints.get(ep.body.id)?.url).toBe(receiver.url);
    await waitFor(() => ids.every((id) => receiver!.delivered().has(id)), 'every event delivered by the second dispatcher', 40_000);
    expect(await metric(second.url, 'fanout_webhook_deliveries_total', { outcome: 'delivered' })).toBeGreaterThanOrEqual(EVENTS);
  });
});
