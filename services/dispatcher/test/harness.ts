/**
 * What the dispatcher tests share: topic and group names unique to a test file, a fast
 * configuration (a retry schedule in milliseconds, loopback allowed), the endpoint API over real
 * HTTP, a publisher over the same topics, metrics reading, and a logger whose lines a test reads.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { PublisherClient } from '@fanout/publisher';
import type { DispatcherConfigInput } from '@fanout/dispatcher';
import { createLogger } from '@fanout/observability';
import { brokers } from '../../../test/helpers.js';

export const API_KEY = 'test-dispatcher-key-0123';

export function dispatcherTopics(prefix: string) {
  const id = randomBytes(3).toString('hex');
  const base = `t.${prefix}.${id}`;
  return {
    topicBroadcast: `${base}.broadcast`,
    topicUsers: `${base}.users`,
    topicEndpoints: `${base}.endpoints`,
    topicRetryPrefix: `${base}.retry`,
    topicDeadLetters: `${base}.dead-letters`,
    groupId: `${base}.dispatcher`,
  };
}

export type Topics = ReturnType<typeof dispatcherTopics>;

export function testConfig(topics: Topics, overrides: Partial<DispatcherConfigInput> = {}): Partial<DispatcherConfigInput> {
  return {
    brokers: brokers(),
    apiKeys: [API_KEY],
    port: 0,
    ...topics,
    broadcastPartitions: 3,
    userPartitions: 3,
    retryPartitions: 2,
    startFrom: 'earliest',
    retrySchedule: ['200ms', '300ms', '400ms'],
    retryJitter: 0.1,
    requestTimeoutMs: 2000,
    allowedTargets: ['127.0.0.0/8'],
    sessionTimeoutMs: 6000,
    commitIntervalMs: 100,
    shutdownGraceMs: 2000,
    ...overrides,
  };
}

export async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  key: string | null = API_KEY,
): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (key !== null) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export async function publisher(topics: Topics): Promise<PublisherClient> {
  const client = new PublisherClient({
    brokers: brokers(),
    logger: createLogger('test-publisher'),
    topics: { broadcast: topics.topicBroadcast, users: topics.topicUsers },
    broadcastPartitions: 3,
    userPartitions: 3,
  });
  await client.connect();
  return client;
}

/** Sum of a metric's samples whose labels include `labels`. */
export async function metric(base: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(base + '/metrics')).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** A pino logger (level info) whose JSON lines the test can read. */
export function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[]; raw: string[] } {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) {
        if (!l) continue;
        raw.push(l);
        lines.push(JSON.parse(l) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { logger: pino({ level: 'info', base: { service: 'dispatcher' } }, stream), lines, raw };
}
