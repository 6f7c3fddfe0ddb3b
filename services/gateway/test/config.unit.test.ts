/**
 * The gateway's settings from the environment and the command line: defaults, and a start-up
 * error naming the variable for every bad value. The environment is stubbed per test (every
 * gateway variable cleared first), so the caller's shell does not leak in.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, envName } from '@fanout/observability';
import { kafkaClientSettings } from '@fanout/kafka';
import { GATEWAY_DEFAULTS, gatewayConfig } from '../src/config.js';

const kafka = kafkaClientSettings({});

beforeEach(() => {
  for (const key of Object.keys(GATEWAY_DEFAULTS)) vi.stubEnv(envName(key), undefined);
  vi.stubEnv('KAFKA_BROKERS', 'k1:9092');
});
afterEach(() => {
  vi.unstubAllEnvs();
});

function load(env: Record<string, string> = {}, argv: string[] = []) {
  for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
  return gatewayConfig({ kafka }, argv);
}

/** The variable named by the ConfigError that loading with `env` throws. */
function rejected(env: Record<string, string>, argv: string[] = []): string {
  try {
    load(env, argv);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).variable;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)} ${argv.join(' ')}`);
}

describe('gateway config', () => {
  it('uses the defaults and derives the node name and group id from the region', () => {
    const c = load();
    expect(c.region).toBe('local');
    expect(c.port).toBe(9000);
    expect(c.brokers).toEqual(['k1:9092']);
    expect(c.node).toBe(`gw-local-${process.pid}`);
    expect(c.userGroupId).toBe('fanout-gw-local');
    expect(c.queuePolicies).toEqual(['prices=conflate']);
    expect(c.publicNamespaces).toEqual(['*']);
    expect(c.kafka).toBe(kafka);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads the environment and lets the command line override region, node and port', () => {
    const c = load({ FANOUT_REGION: 'eu', FANOUT_BROKERS: 'a:1,b:2', FANOUT_QUEUE_MAX_MESSAGES: '50' }, [
      '--region',
      'us',
      '--node',
      'gw-7',
      '--port=0',
    ]);
    expect(c.region).toBe('us');
    expect(c.node).toBe('gw-7');
    expect(c.port).toBe(0);
    expect(c.userGroupId).toBe('fanout-gw-us');
    expect(c.brokers).toEqual(['a:1', 'b:2']);
    expect(c.queueMaxMessages).toBe(50);
  });

  it('reads `none` as no public namespace', () => {
    expect(load({ FANOUT_PUBLIC_NAMESPACES: 'none' }).publicNamespaces).toEqual([]);
  });

  it('names the flag when a command-line option has no value', () => {
    expect(rejected({}, ['--region'])).toBe('--region');
    expect(rejected({}, ['--node', '--port', '1'])).toBe('--node');
  });

  it('names FANOUT_BROKERS when no broker is configured', () => {
    vi.stubEnv('KAFKA_BROKERS', undefined);
    expect(rejected({})).toBe('FANOUT_BROKERS');
  });

  it.each([
    [{ FANOUT_PORT: 'x' }, 'FANOUT_PORT'],
    [{ FANOUT_SERVE_PAGE: 'maybe' }, 'FANOUT_SERVE_PAGE'],
    [{ FANOUT_REGION: 'EU' }, 'FANOUT_REGION'],
    [{ FANOUT_PORT: '65536' }, 'FANOUT_PORT'],
    [{ FANOUT_IDLE_TIMEOUT_S: '4' }, 'FANOUT_IDLE_TIMEOUT_S'],
    [{ FANOUT_MAX_FRAME_BYTES: '70000' }, 'FANOUT_MAX_FRAME_BYTES'],
    [{ FANOUT_DRAIN_DELAY_MS: '15000' }, 'FANOUT_DRAIN_DELAY_MS'],
    [{ FANOUT_STREAM_EPOCH: 'a:b' }, 'FANOUT_STREAM_EPOCH'],
    [{ FANOUT_TOKEN_SECRET: 'short' }, 'FANOUT_TOKEN_SECRET'],
    [{ FANOUT_TOKEN_JWKS_URL: 'ftp://keys' }, 'FANOUT_TOKEN_JWKS_URL'],
    [{ FANOUT_CLIENT_ADDRESS_HEADER: 'x forwarded' }, 'FANOUT_CLIENT_ADDRESS_HEADER'],
    [{ FANOUT_DRAIN_JITTER_MS: '3001' }, 'FANOUT_DRAIN_JITTER_MS'],
    [{ FANOUT_INITIAL_CREDITS: 'lots' }, 'FANOUT_INITIAL_CREDITS'],
    [{ FANOUT_INITIAL_CREDITS: '1000001' }, 'FANOUT_INITIAL_CREDITS'],
    [{ FANOUT_ALLOW_UNLIMITED_CREDITS: 'false' }, 'FANOUT_INITIAL_CREDITS'],
    [{ FANOUT_MEMORY_LOW_WATER: '1' }, 'FANOUT_MEMORY_LOW_WATER'],
    [{ FANOUT_MEMORY_LOW_WATER: '0' }, 'FANOUT_MEMORY_LOW_WATER'],
    [{ FANOUT_QUEUE_MAX_BYTES: '2048', FANOUT_MEMORY_BUDGET_BYTES: '1024' }, 'FANOUT_QUEUE_MAX_BYTES'],
    [{ FANOUT_DEFAULT_QUEUE_POLICY: 'keep' }, 'FANOUT_DEFAULT_QUEUE_POLICY'],
    [{ FANOUT_QUEUE_POLICIES: 'prices=keep' }, 'FANOUT_QUEUE_POLICIES'],
    [{ FANOUT_QUEUE_POLICIES: 'orders=drop:sym' }, 'FANOUT_QUEUE_POLICIES'],
  ])('rejects %o naming %s', (env, variable) => {
    expect(rejected(env)).toBe(variable);
  });

  it('accepts the edges of the checked ranges', () => {
    const c = load({
      FANOUT_IDLE_TIMEOUT_S: '0',
      FANOUT_INITIAL_CREDITS: '1000000',
      FANOUT_ALLOW_UNLIMITED_CREDITS: 'false',
      FANOUT_MEMORY_LOW_WATER: '0.99',
      FANOUT_MAX_FRAME_BYTES: '65536',
      FANOUT_DRAIN_JITTER_MS: '3000',
      FANOUT_TOKEN_SECRET: 'x'.repeat(32),
      FANOUT_QUEUE_POLICIES: 'ticks=conflate:sym,orders=disconnect',
    });
    expect(c.initialCredits).toBe('1000000');
    expect(c.idleTimeoutS).toBe(0);
    expect(load({ FANOUT_IDLE_TIMEOUT_S: '8' }).idleTimeoutS).toBe(8);
  });

  // Integer settings: [variable, lowest accepted, highest accepted or null for no upper bound].
  const RANGES: [string, number, number | null][] = [
    ['FANOUT_SOCKET_BUFFER_BYTES', 1024, null],
    ['FANOUT_QUEUE_MAX_MESSAGES', 1, null],
    ['FANOUT_MAX_SUBSCRIPTIONS', 1, null],
    ['FANOUT_MAX_ERRORS_PER10S', 1, null],
    ['FANOUT_WINDOW_MAX_AGE_MS', 1000, null],
    ['FANOUT_REPLAY_CONCURRENCY', 1, 64],
    ['FANOUT_REPLAY_TIMEOUT_MS', 100, null],
    ['FANOUT_WARM_MAX_RECORDS', 0, 10_000_000],
    ['FANOUT_ADMISSION_BURST', 1, null],
    ['FANOUT_RATE_PER_ADDRESS_BURST', 1, null],
    ['FANOUT_SSE_HEARTBEAT_MS', 100, null],
    ['FANOUT_BROADCAST_PARTITIONS', 1, 10_000],
    ['FANOUT_USER_PARTITIONS', 1, 10_000],
    ['FANOUT_GROUP_REFRESH_MS', 100, null],
    ['FANOUT_LAG_PROBE_MS', 100, null],
  ];

  it.each(RANGES)('takes %s as an integer from %i to %s', (variable, min, max) => {
    const message = (v: number) => {
      try {
        load({ [variable]: String(v) });
        return 'ok';
      } catch (err) {
        expect((err as ConfigError).variable).toBe(variable);
        return (err as Error).message;
      }
    };
    const range = `${variable}: must be an integer from ${min} to ${max ?? Number.MAX_SAFE_INTEGER}`;
    expect(message(min)).toBe('ok');
    expect(message(min + 0.5)).toBe(min + 0.5 === max ? 'ok' : range);
    if (min > 0) expect(message(min - 1)).toBe(range);
    if (max !== null) {
      expect(message(max)).toBe('ok');
      expect(message(max + 1)).toBe(range);
    }
  });
});
