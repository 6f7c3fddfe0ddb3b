/**
 * Gives a Kafka broker to tests, benchmarks and `npm start`, in this order:
 *
 * 1. `KAFKA_BROKERS` (comma-separated host:port) when set: use it, start nothing (the brokers
 *    and security options are then ignored: that cluster is whatever it is).
 * 2. testcontainers, when a Docker engine answers (`docker info` succeeds),
 *    FANOUT_KAFKA_NO_DOCKER is not set, and the default shape (one plaintext broker) is asked for.
 * 3. A local KRaft Kafka from Maven jars with Java 17 (local-kafka.ts): one node by default, or
 *    three, optionally with a SASL_SSL client listener.
 *
 * Whatever was started is stopped by `stop()`, and also when the process exits. `env` says what a
 * client needs to reach it (KAFKA_BROKERS and, for a local cluster, the FANOUT_* variables).
 */
import { spawnSync } from 'node:child_process';
import { Kafka, logLevel } from 'kafkajs';

/** kafkajs' ConfigResourceTypes.BROKER (the enum is not a named export of its CommonJS build). */
const BROKER_RESOURCE = 4;
import { startLocalKafka, BrokerUnavailableError, type LocalKafkaSecurity } from './local-kafka.js';
import { kafkajsSecurity } from './security.js';

export interface BrokerHandle {
  brokers: string[];
  source: 'env' | 'testcontainers' | 'local';
  /** The environment a client of this broker needs (a local cluster's clientEnv; else KAFKA_BROKERS and topic replication). */
  env: Record<string, string>;
  /** The local cluster's work dir (configs, certificates, password file), when one was started. */
  workDir?: string;
  stop(): Promise<void>;
}

export interface GetBrokerOptions {
  log?: (msg: string) => void;
  /** Port for a locally started broker (0 = any free port). */
  port?: number;
  /**
   * group.initial.rebalance.delay.ms of a locally started broker (default 0; Kafka's own default
   * is GROUP_DELAY_KAFKA_DEFAULT_MS). Ignored when KAFKA_BROKERS names a broker.
   */
  groupInitialRebalanceDelayMs?: number;
  /** Nodes of a locally started cluster: 1 (default) or 3. */
  brokers?: 1 | 3;
  /** Client listener of a locally started cluster: plaintext (default) or sasl_ssl. */
  security?: LocalKafkaSecurity;
}

function dockerAnswers(): boolean {
  if (/^(1|true)$/i.test(process.env.FANOUT_KAFKA_NO_DOCKER ?? '')) return false;
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore', timeout: 5000 });
  return r.status === 0;
}

async function startWithTestcontainers(): Promise<BrokerHandle> {
  // Loaded only where a Docker engine answers; the package is optional.
  const mod = (await import('@testcontainers/kafka' as string).catch(() => null)) as {
    KafkaContainer: new (image: string) => {
      withKraft(): { start(): Promise<{ getHost(): string; getMappedPort(p: number): number; stop(): Promise<unknown> }> };
    };
  } | null;
  if (!mod)
    throw new BrokerUnavailableError(
      'a Docker engine answers but @testcontainers/kafka is not installed (npm install @testcontainers/kafka)',
    );
  const container = await new mod.KafkaContainer('confluentinc/cp-kafka:7.9.0').withKraft().start();
  const brokers = [`${container.getHost()}:${container.getMappedPort(9093)}`];
  return {
    brokers,
    source: 'testcontainers',
    env: { KAFKA_BROKERS: brokers.join(','), FANOUT_TOPIC_REPLICATION_FACTOR: '1', FANOUT_TOPIC_MIN_INSYNC_REPLICAS: '1' },
    stop: async () => {
      await container.stop();
    },
  };
}

/**
 * The broker's group.initial.rebalance.delay.ms as it reports it (DescribeConfigs), so that a
 * benchmark records the setting it actually ran against; null when it cannot be read.
 */
export async function brokerGroupDelayMs(brokers: string[]): Promise<number | null> {
  const kafka = new Kafka({ brokers, clientId: 'fanout-describe', logLevel: logLevel.NOTHING, ...kafkajsSecurity() });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    const node = cluster.brokers[0];
    if (!node) return null;
    const r = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: BROKER_RESOURCE, name: String(node.nodeId), configNames: ['group.initial.rebalance.delay.ms'] }],
    });
    const v = r.resources[0]?.configEntries.find((e) => e.configName === 'group.initial.rebalance.delay.ms')?.configValue;
    return v === undefined ? null : Number(v);
  } catch {
    return null;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Waits until the broker answers a metadata request (a listening port is not enough), reaching it
 * with the FANOUT_KAFKA_* settings of the environment (a local cluster started here is waited for
 * inside startLocalKafka).
 */
export async function waitForBroker(brokers: string[], timeoutMs = 60_000): Promise<void> {
  // With the FANOUT_KAFKA_* settings of the environment: KAFKA_BROKERS may name a secured cluster.
  const kafka = new Kafka({ brokers, clientId: 'fanout-wait', logLevel: logLevel.NOTHING, retry: { retries: 0 }, ...kafkajsSecurity() });
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.describeCluster();
      await admin.disconnect();
      return;
    } catch (err) {
      lastErr = err;
      await admin.disconnect().catch(() => {});
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new BrokerUnavailableError(`Kafka at ${brokers.join(',')} did not answer within ${timeoutMs} ms: ${String(lastErr)}`);
}

export async function getBroker(opts: GetBrokerOptions = {}): Promise<BrokerHandle> {
  const fromEnv = process.env.KAFKA_BROKERS?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (fromEnv && fromEnv.length > 0) {
    if ((opts.brokers ?? 1) !== 1 || (opts.security ?? 'plaintext') !== 'plaintext') {
      opts.log?.(`KAFKA_BROKERS is set, so no local cluster is started and brokers/security are ignored`);
    }
    await waitForBroker(fromEnv);
    return { brokers: fromEnv, source: 'env', env: { KAFKA_BROKERS: fromEnv.join(',') }, stop: async () => {} };
  }
  // The container is one plaintext broker; any other shape is started locally.
  const defaultShape = (opts.brokers ?? 1) === 1 && (opts.security ?? 'plaintext') === 'plaintext';
  if (defaultShape && dockerAnswers()) {
    try {
      const h = await startWithTestcontainers();
      await waitForBroker(h.brokers);
      return h;
    } catch (err) {
      opts.log?.(`testcontainers did not give a broker (${(err as Error).message}); starting a local one instead`);
    }
  }
  // startLocalKafka returns once the cluster answers a metadata request listing every node (with
  // TLS and SASL when asked for), so there is nothing more to wait for here.
  const local = await startLocalKafka({
    port: opts.port ?? 0,
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.groupInitialRebalanceDelayMs !== undefined ? { groupInitialRebalanceDelayMs: opts.groupInitialRebalanceDelayMs } : {}),
    ...(opts.brokers !== undefined ? { brokers: opts.brokers } : {}),
    ...(opts.security !== undefined ? { security: opts.security } : {}),
  });
  return { brokers: local.brokers, source: 'local', env: local.clientEnv, workDir: local.workDir, stop: local.stop };
}
