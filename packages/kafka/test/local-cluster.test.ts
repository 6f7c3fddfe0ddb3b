/**
 * A local three-node KRaft cluster with a SASL_SSL client listener (startLocalKafka({ brokers: 3,
 * security: 'sasl_ssl' })), checked with plain kafkajs clients: every SASL mechanism it offers,
 * the failures a client must see (wrong password, untrusted CA), mutual TLS, three replicas, and
 * writes with acks=all that go on while one node is down and a node that comes back.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, KafkaJSSASLAuthenticationError, logLevel, type KafkaConfig, type SASLOptions } from 'kafkajs';
import { startLocalKafka, withRetry, type LocalKafka } from '@fanout/kafka';

let cluster: LocalKafka;
let ca: string;
let scram512: SASLOptions;

beforeAll(async () => {
  cluster = await startLocalKafka({ brokers: 3, security: 'sasl_ssl' });
  ca = readFileSync(cluster.tls!.caFile, 'utf8');
  scram512 = { mechanism: 'scram-sha-512', username: cluster.sasl!.username, password: cluster.sasl!.password };
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
}, 30_000);

function client(config: Partial<KafkaConfig>): Kafka {
  return new Kafka({
    brokers: cluster.brokers,
    clientId: 'local-cluster-test',
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    ...config,
  });
}

/** How many brokers the cluster lists to a client connecting with `config`. */
async function brokersSeen(config: Partial<KafkaConfig>): Promise<number> {
  const admin = client(config).admin();
  try {
    await admin.connect();
    return (await admin.describeCluster()).brokers.length;
  } finally {
    await admin.disconnect();
  }
}

/** The first `code` along an error's causes (kafkajs wraps the socket error). */
function errorCode(err: unknown): string | undefined {
  for (
    let e = err as { code?: unknown; cause?: unknown; originalError?: unknown } | undefined;
    e;
    e = (e.originalError ?? e.cause) as typeof e
  ) {
    if (typeof e.code === 'string') return e.code;
  }
  return undefined;
}

/** An unsigned JWT (alg "none"), which Kafka's unsecured OAUTHBEARER validator accepts. */
function unsecuredToken(sub: string): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${b64({ alg: 'none' })}.${b64({ sub, iat: now, exp: now + 600 })}.`;
}

async function waitUntil(what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('local Kafka cluster, 3 nodes, SASL_SSL', () => {
  it('tells a client everything it needs', () => {
    const dir = cluster.tls!.dir;
    expect(cluster.security).toBe('sasl_ssl');
    expect(cluster.nodes.map((n) => n.nodeId)).toEqual([1, 2, 3]);
    expect(cluster.clientEnv).toEqual({
      KAFKA_BROKERS: cluster.brokers.join(','),
      FANOUT_TOPIC_REPLICATION_FACTOR: '3',
      FANOUT_TOPIC_MIN_INSYNC_REPLICAS: '2',
      FANOUT_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
      FANOUT_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      FANOUT_KAFKA_SASL_USERNAME: 'fanout',
      FANOUT_KAFKA_SASL_PASSWORD_FILE: `${dir}/fanout.password`,
      FANOUT_KAFKA_TLS_CA_FILE: `${dir}/ca.pem`,
    });
    expect(readFileSync(cluster.sasl!.passwordFile, 'utf8')).toBe(cluster.sasl!.password);
    expect(cluster.sasl!.oauthBearer).toBe('unsecured');
  });

  it.each(['scram-sha-512', 'scram-sha-256', 'plain'] as const)('accepts %s over TLS', async (mechanism) => {
    expect(
      await brokersSeen({ ssl: { ca: [ca] }, sasl: { mechanism, username: 'fanout', password: cluster.sasl!.password } as SASLOptions }),
    ).toBe(3);
  });

  it('refuses a wrong password with a SASL authentication error', async () => {
    const err = await brokersSeen({ ssl: { ca: [ca] }, sasl: { ...scram512, password: 'not-the-password' } as SASLOptions }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KafkaJSSASLAuthenticationError);
  });

  it('is refused by a client that trusts another CA', async () => {
    const err = await brokersSeen({ ssl: { ca: [readFileSync(cluster.tls!.untrustedCaFile, 'utf8')] }, sasl: scram512 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(errorCode(err)).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
  });

  it('accepts an unsecured OAUTHBEARER token (local use only)', async () => {
    expect(
      await brokersSeen({
        ssl: { ca: [ca] },
        sasl: { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: unsecuredToken('fanout') }) },
      }),
    ).toBe(3);
  });

  it('accepts the client certificate for mutual TLS', async () => {
    const ssl = {
      ca: [ca],
      cert: readFileSync(cluster.tls!.clientCertFile, 'utf8'),
      key: readFileSync(cluster.tls!.clientKeyFile, 'utf8'),
    };
    expect(await brokersSeen({ ssl, sasl: scram512 })).toBe(3);
  });

  it('replicates to all 3 nodes, writes with acks=all while one is down, and takes it back', async () => {
    const kafka = client({ ssl: { ca: [ca] }, sasl: scram512, retry: { retries: 12, initialRetryTime: 200, maxRetryTime: 2000 } });
    const topic = `t.local-cluster.${Date.now()}`;
    const admin = kafka.admin();
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await Promise.all([admin.connect(), producer.connect()]);
    try {
      // A new topic reaches every broker's metadata a moment after CreateTopics answers; kafkajs'
      // waitForLeaders (on by default) gives up on the "does not host this topic-partition" of a
      // broker that has not caught up yet, so this waits for the replicas itself.
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 3 }], waitForLeaders: false });
      const metadata = () => withRetry(() => admin.fetchTopicMetadata({ topics: [topic] })).then((m) => m.topics[0]!.partitions[0]!);
      await waitUntil('a leader and 3 in-sync replicas', async () => (await metadata()).isr.length === 3, 10_000);
      const partition = await metadata();
      expect(partition.replicas).toHaveLength(3);
      await producer.send({ topic, acks: -1, messages: [{ value: 'before' }] });

      // The partition's leader goes, so the write below needs a failover, not just a healthy node.
      const victim = cluster.nodes.find((n) => n.nodeId === partition.leader)!;
      await victim.kill();
      expect(victim.alive()).toBe(false);
      await producer.send({ topic, acks: -1, messages: [{ value: 'while one node is down' }] });

      await victim.start();
      expect(victim.alive()).toBe(true);
      await waitUntil('3 brokers listed again', async () => (await admin.describeCluster()).brokers.length === 3, 30_000);
      await producer.send({ topic, acks: -1, messages: [{ value: 'after' }] });
      expect((await admin.fetchTopicOffsets(topic))[0]!.high).toBe('3');
    } finally {
      await Promise.all([producer.disconnect(), admin.disconnect()]);
    }
  }, 60_000);
});
