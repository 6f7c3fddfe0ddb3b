/**
 * The product against Kafka as production runs it: three brokers (KRaft), a SASL_SSL listener
 * (SCRAM-SHA-512 over TLS with a private CA), topics with three replicas and min.insync.replicas 2.
 *
 * - every service connects over SASL_SSL and does its job: publish over HTTP, fan out to WebSocket
 *   clients, route a user, deliver a signed webhook, publish market ticks;
 * - a wrong password and an untrusted CA each stop a real service process at start with exit 78
 *   and one fatal line naming the variable to fix;
 * - the leader of the broadcast topic's partition is killed with SIGKILL while events flow:
 *   publishing goes on after the failover and every acknowledged event reaches every client
 *   exactly once, in order.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signConnectToken } from '@fanout/auth';
import { startDispatcher, type RunningDispatcher } from '@fanout/dispatcher';
import { startGateway, type RunningGateway } from '@fanout/gateway';
import {
  checkKafkaAccess,
  createKafka,
  kafkaClientSettings,
  startLocalKafka,
  type KafkaClientSettings,
  type LocalKafka,
} from '@fanout/kafka';
import { startMarketData, type RunningMarketData } from '@fanout/market-data';
import { createLogger } from '@fanout/observability';
import { PublisherClient, startPublisher, type PublishedEvent, type RunningPublisher } from '@fanout/publisher';
import { startRouter, type RunningRouter } from '@fanout/router';
import { Receiver } from '../services/dispatcher/test/receiver.js';
import { TestClient, waitFor } from './helpers.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SECRET = 'production-kafka-test-secret-0123456789';
const API_KEY = 'production-kafka-key-0123';
// Quiet: a killed broker makes every kafkajs client log its reconnects at error level.
const logger = createLogger('production-kafka-test').child({}, { level: process.env.FANOUT_TEST_LOG_LEVEL ?? 'fatal' });

let cluster: LocalKafka;
let settings: KafkaClientSettings;

function names(prefix: string) {
  const base = `t.${prefix}.${randomBytes(3).toString('hex')}`;
  return { topicBroadcast: `${base}.broadcast`, topicUsers: `${base}.users`, userGroupId: `${base}.gw-eu` };
}

beforeAll(async () => {
  cluster = await startLocalKafka({ brokers: 3, security: 'sasl_ssl', log: (m) => console.log(`[kafka-3] ${m}`) });
  settings = kafkaClientSettings(cluster.clientEnv);
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('three brokers over SASL_SSL', () => {
  it('the settings are production ones: SCRAM-SHA-512 over TLS, three replicas, two in sync', () => {
    expect(settings.security.describe).toMatchObject({ protocol: 'sasl_ssl', mechanism: 'scram-sha-512', username: 'fanout' });
    expect(settings.topics).toMatchObject({ replicationFactor: 3, minInsyncReplicas: 2 });
    expect(cluster.brokers).toHaveLength(3);
  });

  it('every service connects and does its job: publish, fan out, route, webhook, market data', async () => {
    const t = names('prod');
    const common = { brokers: cluster.brokers, kafka: settings, topicBroadcast: t.topicBroadcast, topicUsers: t.topicUsers };
    const stops: (() => Promise<unknown>)[] = [];
    try {
      const publisher: RunningPublisher = await startPublisher(
        { ...common, port: 0, apiKeys: [API_KEY], broadcastPartitions: 3, userPartitions: 3 },
        logger,
      );
      stops.push(() => publisher.shutdown());
      const gw: RunningGateway = await startGateway(
        {
          ...common,
          port: 0,
          region: 'eu',
          node: 'gw-secure',
          servePage: false,
          tokenSecret: SECRET,
          userGroupId: t.userGroupId,
          groupRefreshMs: 300,
        },
        logger,
      );
      stops.push(() => gw.shutdown());
      const router: RunningRouter = await startRouter(
        {
          brokers: cluster.brokers,
          kafka: settings,
          topicUsers: t.topicUsers,
          port: 0,
          regions: ['eu'],
          groupIdTemplate: t.userGroupId.replace(/eu$/, '{region}'),
          refreshMs: 200,
        },
        logger,
      );
      stops.push(() => router.shutdown());
      const receiver = await Receiver.start();
      stops.push(() => receiver.close());
      const dispatcher: RunningDispatcher = await startDispatcher(
        {
          ...common,
          port: 0,
          apiKeys: [API_KEY],
          groupId: `${t.topicBroadcast}.dispatcher`,
          topicEndpoints: `${t.topicBroadcast}.endpoints`,
          topicRetryPrefix: `${t.topicBroadcast}.retry`,
          topicDeadLetters: `${t.topicBroadcast}.dead`,
          broadcastPartitions: 3,
          userPartitions: 3,
          retryPartitions: 1,
          allowedTargets: ['127.0.0.0/8'],
          startFrom: 'latest',
          commitIntervalMs: 100,
        },
        logger,
      );
      stops.push(() => dispatcher.shutdown());
      const market: RunningMarketData = await startMarketData({ ...common, port: 0, symbols: ['SECURE'], rate: 20 }, logger);
      stops.push(() => market.shutdown());

      // Route: the router names the gateway for a user once the region's group is stable.
      const route = await waitFor(
        async () => {
          const r = await fetch(`${router.url}/v1/route?user=alice&region=eu`);
          return r.status === 200 ? ((await r.json()) as { ws_url: string; node: string }) : null;
        },
        'a route for alice',
        30_000,
      );
      expect(route.node).toBe('gw-secure');

      // Fan-out: a broadcast subscriber and alice on her own channel, at the routed URL.
      const token = await signConnectToken(SECRET, { sub: 'alice' });
      const alice = await TestClient.connect(`${route.ws_url}?token=${token}`);
      expect((await alice.subscribe('news:secure', 'user:alice', 'prices:SECURE')).t).toBe('subscribed');
      const endpoint = await fetch(`${dispatcher.url}/v1/endpoints`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ url: receiver.url, channels: ['news:*'] }),
      });
      expect(endpoint.status).toBe(201);

      // Publish over HTTP, through SASL_SSL.
      const publish = (channel: string, data: unknown) =>
        fetch(`${publisher.url}/v1/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel, data }),
        });
      // The dispatcher starts from the latest offsets: publish the event it must deliver once it
      // delivers at all, i.e. once a warm-up event on a channel nobody else reads has reached the receiver.
      await waitFor(
        async () => {
          expect((await publish('news:warmup', { warmup: true })).status).toBe(200);
          return waitFor(() => receiver.requests.some((r) => r.status === 200), 'a warm-up webhook', 1000).catch(() => false);
        },
        'the dispatcher to deliver',
        30_000,
      );
      const news = await publish('news:secure', { n: 1 });
      expect(news.status).toBe(200);
      expect((await publish('user:alice', { hello: 'alice' })).status).toBe(200);

      await waitFor(
        () => alice.messages('news:secure').length === 1 && alice.messages('user:alice').length === 1,
        'news and the user event at the gateway',
        20_000,
      );
      await waitFor(() => alice.messages('prices:SECURE').length >= 3, 'market ticks', 20_000);
      const hook = await waitFor(
        () => receiver.requests.find((r) => r.status === 200 && (JSON.parse(r.body) as { channel: string }).channel === 'news:secure'),
        'the webhook',
        30_000,
      );
      expect(JSON.parse(hook.body)).toMatchObject({ channel: 'news:secure', data: { n: 1 } });
      expect(hook.headers['webhook-signature']).toMatch(/^v1,/);
      alice.close();
    } finally {
      for (const stop of stops.reverse()) await stop().catch(() => {});
    }
  }, 150_000);
});

/** Runs a service's real main.ts with `env` and waits for it to exit; returns the code and its output. */
async function runMain(
  script: string,
  env: Record<string, string>,
  timeoutMs = 40_000,
): Promise<{ code: number | null; output: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, FANOUT_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  return { code, output, ms: Date.now() - started };
}

function fatalLine(output: string): { variable?: string; msg: string } | undefined {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; variable?: string; msg: string })
    .find((l) => l.level === 60);
}

describe('the other ways in', () => {
  it('OAUTHBEARER through a token provider module (the hook for a cloud signer), and mutual TLS with a client certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-oauth-'));
    try {
      // The local cluster validates OAUTHBEARER tokens with Kafka's unsecured validator: an unsigned JWT with a sub.
      const provider = join(dir, 'provider.mjs');
      writeFileSync(
        provider,
        `const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
export let calls = 0;
export default async () => { calls++; const now = Math.floor(Date.now() / 1000); return { value: b64({ alg: 'none' }) + '.' + b64({ sub: 'fanout', iat: now, exp: now + 3600 }) + '.' }; };
`,
      );
      const env = {
        ...cluster.clientEnv,
        FANOUT_KAFKA_SASL_MECHANISM: 'oauthbearer',
        FANOUT_KAFKA_SASL_USERNAME: '',
        FANOUT_KAFKA_SASL_PASSWORD_FILE: '',
        FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER: provider,
        FANOUT_KAFKA_TLS_CERT_FILE: cluster.tls!.clientCertFile,
        FANOUT_KAFKA_TLS_KEY_FILE: cluster.tls!.clientKeyFile,
      };
      const oauth = kafkaClientSettings(env);
      expect(oauth.security.describe).toMatchObject({ mechanism: 'oauthbearer', clientCertificate: true });
      expect((await checkKafkaAccess({ brokers: cluster.brokers, security: oauth.security, timeoutMs: 20_000 })).brokers).toBe(3);
      const t = names('oauth');
      const pub = new PublisherClient({
        brokers: cluster.brokers,
        logger,
        security: oauth.security,
        topicSettings: oauth.topics,
        topics: { broadcast: t.topicBroadcast, users: t.topicUsers },
        broadcastPartitions: 1,
        userPartitions: 1,
      });
      await pub.connect();
      expect((await pub.publish({ channel: 'news:oauth', data: { ok: true } })).offset).toBe(0);
      await pub.disconnect();
      expect(((await import(pathToFileURL(provider).href)) as { calls: number }).calls).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('refused at start, with the setting named', () => {
  it('a wrong password stops the publisher with exit 78, naming FANOUT_KAFKA_SASL_PASSWORD', async () => {
    const t = names('badpw');
    const r = await runMain('services/publisher/src/main.ts', {
      ...cluster.clientEnv,
      FANOUT_KAFKA_SASL_PASSWORD_FILE: '',
      FANOUT_KAFKA_SASL_PASSWORD: 'not-the-password',
      FANOUT_API_KEYS: API_KEY,
      FANOUT_PORT: '0',
      FANOUT_TOPIC_BROADCAST: t.topicBroadcast,
      FANOUT_TOPIC_USERS: t.topicUsers,
    });
    expect(r.code, r.output).toBe(78);
    const fatal = fatalLine(r.output);
    expect(fatal?.variable, r.output).toBe('FANOUT_KAFKA_SASL_PASSWORD');
    expect(fatal?.msg).toMatch(/refused SASL SCRAM-SHA-512 for user "fanout"/);
    expect(r.ms).toBeLessThan(30_000);
  }, 60_000);

  it('an untrusted CA stops the gateway with exit 78, naming FANOUT_KAFKA_TLS_CA_FILE', async () => {
    const t = names('badca');
    const r = await runMain('services/gateway/src/main.ts', {
      ...cluster.clientEnv,
      FANOUT_KAFKA_TLS_CA_FILE: cluster.tls!.untrustedCaFile,
      FANOUT_PORT: '0',
      FANOUT_TOKEN_SECRET: SECRET,
      FANOUT_TOPIC_BROADCAST: t.topicBroadcast,
      FANOUT_TOPIC_USERS: t.topicUsers,
    });
    expect(r.code, r.output).toBe(78);
    const fatal = fatalLine(r.output);
    expect(fatal?.variable, r.output).toBe('FANOUT_KAFKA_TLS_CA_FILE');
    expect(fatal?.msg).toMatch(/not trusted by the CA in FANOUT_KAFKA_TLS_CA_FILE/);
  }, 60_000);
});

describe('the broadcast leader killed under load', () => {
  it('publishing goes on after the failover; every acknowledged event reaches every client once, in order', async () => {
    const t = names('failover');
    const channel = 'ticks:failover';
    const pub = new PublisherClient({
      brokers: cluster.brokers,
      logger,
      security: settings.security,
      topicSettings: settings.topics,
      topics: { broadcast: t.topicBroadcast, users: t.topicUsers },
      broadcastPartitions: 1,
      userPartitions: 3,
    });
    await pub.connect();
    const gw = await startGateway(
      {
        brokers: cluster.brokers,
        kafka: settings,
        ...t,
        port: 0,
        region: 'eu',
        node: 'gw-failover',
        servePage: false,
        tokenSecret: SECRET,
        groupRefreshMs: 300,
      },
      logger,
    );
    const clients = await Promise.all([0, 1, 2].map(() => TestClient.connect(gw.wsUrl)));
    for (const c of clients) expect((await c.subscribe(channel)).t).toBe('subscribed');
    const kafka = createKafka({ brokers: cluster.brokers, clientId: 'failover-test', logger, security: settings.security });
    const admin = kafka.admin();
    await admin.connect();
    const acked: PublishedEvent[] = [];
    const ackTimes: number[] = [];
    let failed = 0;
    let stop = false;
    let n = 0;
    const inFlight = new Set<Promise<void>>();
    // ~100 events/s, each awaited on its own: a publish that Kafka does not acknowledge is counted, not retried.
    const load = (async () => {
      while (!stop) {
        const p = pub.publish({ channel, data: { n: n++ } }).then(
          (e) => {
            acked.push(e);
            ackTimes.push(Date.now());
          },
          () => void failed++,
        );
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    try {
      await waitFor(
        () => acked.length >= 200 && clients.every((c) => c.messages(channel).length >= 150),
        'traffic before the fault',
        20_000,
      );
      const meta = await admin.fetchTopicMetadata({ topics: [t.topicBroadcast] });
      const leader = meta.topics[0]!.partitions[0]!.leader;
      const victim = cluster.nodes.find((x) => x.nodeId === leader)!;
      const killedAt = Date.now();
      const ackedBefore = acked.length;
      await victim.kill('SIGKILL');
      await waitFor(
        () => acked.length >= ackedBefore + 300 && ackTimes[ackTimes.length - 1]! > killedAt,
        'publishing to resume after the failover',
        45_000,
      );
      stop = true;
      await load;
      await Promise.allSettled([...inFlight]);
      // The longest wait for an acknowledgement around the fault: the publish pause.
      let pause = 0;
      for (let i = 1; i < ackTimes.length; i++)
        if (ackTimes[i]! >= killedAt) pause = Math.max(pause, ackTimes[i]! - Math.max(ackTimes[i - 1]!, killedAt));
      console.log(
        `[failover] leader ${leader} killed; publish pause ${pause} ms; ${acked.length} acknowledged, ${failed} not acknowledged`,
      );

      const want = acked.map((e) => e.id);
      for (const c of clients) {
        await waitFor(
          () => {
            const ids = new Set(c.messages(channel).map((m) => m.id));
            return want.every((id) => ids.has(id));
          },
          'every acknowledged event at the client',
          30_000,
        );
        const got = c.messages(channel);
        const positions = got.map((m) => m.pos);
        expect(new Set(positions).size, 'no position twice').toBe(positions.length);
        const offsets = positions.map((p) => Number(p.split(':')[2]));
        expect(offsets, 'in order').toEqual([...offsets].sort((a, b) => a - b));
        const ids = new Set(got.map((m) => m.id));
        expect(
          want.filter((id) => !ids.has(id)),
          'acknowledged events lost',
        ).toEqual([]);
      }
      expect(pause).toBeLessThan(20_000);
    } finally {
      stop = true;
      await load.catch(() => {});
      for (const c of clients) c.close();
      await admin.disconnect().catch(() => {});
      await gw.shutdown();
      await pub.disconnect().catch(() => {});
      for (const node of cluster.nodes) if (!node.alive()) await node.start();
    }
  }, 180_000);
});
