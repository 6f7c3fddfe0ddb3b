/**
 * `npm start`: the whole cluster on one machine, for development and demos.
 *
 * Kafka (KAFKA_BROKERS, or a local KRaft broker from Maven jars), the publisher, the router, the webhook dispatcher, two
 * regions with one gateway each, and the market-data producer, each as its own process. Prints the URLs; Ctrl-C
 * drains every service (SIGTERM) and stops Kafka.
 *
 * Ports: FANOUT_DEV_PUBLISHER_PORT (8080), FANOUT_DEV_ROUTER_PORT (8090), FANOUT_DEV_DISPATCHER_PORT (8070), FANOUT_DEV_GATEWAY_PORTS
 * (9001,9002), FANOUT_DEV_KAFKA_PORT (9092). Connect tokens are signed with FANOUT_DEV_TOKEN_SECRET.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { getBroker, BrokerUnavailableError, freePort } from '@fanout/kafka';
import { createServer } from 'node:net';
import { signConnectToken } from '@fanout/auth';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const API_KEY = process.env.FANOUT_DEV_API_KEY ?? 'dev-key-change-me';
const TOKEN_SECRET = process.env.FANOUT_DEV_TOKEN_SECRET ?? 'dev-token-secret-change-me-0123456789';
const log = (m: string) => console.log(`[dev] ${m}`);

async function portOrFree(preferred: number): Promise<number> {
  const free = await new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(preferred, '127.0.0.1', () => s.close(() => resolve(true)));
  });
  return free ? preferred : freePort();
}

const children: { name: string; proc: ChildProcess }[] = [];

function run(name: string, script: string, env: Record<string, string>, args: string[] = []): ChildProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...process.env, FANOUT_LOG_LEVEL: process.env.FANOUT_LOG_LEVEL ?? 'warn', KAFKAJS_NO_PARTITIONER_WARNING: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const prefix = `[${name}] `;
  const pipe = (stream: NodeJS.ReadableStream, out: NodeJS.WriteStream) => {
    let buf = '';
    stream.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        out.write(prefix + buf.slice(0, i) + '\n');
        buf = buf.slice(i + 1);
      }
    });
  };
  pipe(proc.stdout!, process.stdout);
  pipe(proc.stderr!, process.stderr);
  proc.on('exit', (code, signal) => {
    if (!stopping) {
      log(`${name} exited (code ${code}, signal ${signal}); stopping the cluster`);
      void stop(1);
    }
  });
  children.push({ name, proc });
  return proc;
}

async function waitReady(name: string, url: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (stopping) return;
    const ok = await fetch(url).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} did not become ready at ${url} within ${timeoutMs} ms`);
}

let stopping = false;
let stopKafka: () => Promise<void> = async () => {};

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  log('stopping: draining services');
  await Promise.all(
    children.map(
      ({ proc }) =>
        new Promise<void>((resolve) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
          const force = setTimeout(() => proc.kill('SIGKILL'), 25_000);
          proc.once('exit', () => {
            clearTimeout(force);
            resolve();
          });
          proc.kill('SIGTERM');
        }),
    ),
  );
  await stopKafka();
  log('stopped');
  process.exit(code);
}

async function main(): Promise<void> {
  process.once('SIGINT', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));
  const kafkaPort = await portOrFree(Number(process.env.FANOUT_DEV_KAFKA_PORT ?? 9092));
  const broker = await getBroker({ port: kafkaPort, log });
  stopKafka = broker.stop;
  const brokers = broker.brokers.join(',');
  log(`Kafka (${broker.source}) at ${brokers}`);

  const publisherPort = await portOrFree(Number(process.env.FANOUT_DEV_PUBLISHER_PORT ?? 8080));
  const [euPort, usPort] = await Promise.all(
    (process.env.FANOUT_DEV_GATEWAY_PORTS ?? '9001,9002').split(',').map((p) => portOrFree(Number(p))),
  );
  const routerPort = await portOrFree(Number(process.env.FANOUT_DEV_ROUTER_PORT ?? 8090));
  const routerUrl = `http://127.0.0.1:${routerPort}`;
  // What a client of this Kafka needs: for the local single broker, one replica per topic; for a
  // local SASL_SSL cluster, its security settings too (KAFKA_BROKERS from the environment: none).
  const common = { ...broker.env, FANOUT_BROKERS: brokers };
  const gatewayEnv = { ...common, FANOUT_TOKEN_SECRET: TOKEN_SECRET, FANOUT_ROUTER_URL: routerUrl };

  run('publisher', 'services/publisher/src/main.ts', { ...common, FANOUT_PORT: String(publisherPort), FANOUT_API_KEYS: API_KEY });
  await waitReady('publisher', `http://127.0.0.1:${publisherPort}/readyz`);
  run('router', 'services/router/src/main.ts', { ...common, FANOUT_PORT: String(routerPort), FANOUT_REGIONS: 'eu,us' });
  const dispatcherPort = await portOrFree(Number(process.env.FANOUT_DEV_DISPATCHER_PORT ?? 8070));
  run('dispatcher', 'services/dispatcher/src/main.ts', {
    ...common,
    FANOUT_PORT: String(dispatcherPort),
    FANOUT_API_KEYS: API_KEY,
    FANOUT_ALLOWED_TARGETS: '127.0.0.0/8,::1/128',
  });
  run('gateway-eu', 'services/gateway/src/main.ts', { ...gatewayEnv, FANOUT_PORT: String(euPort) }, [
    '--region',
    'eu',
    '--node',
    'gw-eu-0',
  ]);
  run('gateway-us', 'services/gateway/src/main.ts', { ...gatewayEnv, FANOUT_PORT: String(usPort) }, [
    '--region',
    'us',
    '--node',
    'gw-us-0',
  ]);
  await Promise.all([
    waitReady('gateway-eu', `http://127.0.0.1:${euPort}/readyz`),
    waitReady('gateway-us', `http://127.0.0.1:${usPort}/readyz`),
  ]);
  const marketDataPort = await portOrFree(Number(process.env.FANOUT_DEV_MARKET_DATA_PORT ?? 9100));
  run('market-data', 'services/market-data/src/main.ts', {
    ...common,
    FANOUT_PORT: String(marketDataPort),
    FANOUT_LOG_LEVEL: process.env.FANOUT_LOG_LEVEL ?? 'info',
  });

  console.log(`
  fanout is running (Ctrl-C stops everything)

  Live ticks page   http://127.0.0.1:${euPort}/   (region eu)
                    http://127.0.0.1:${usPort}/   (region us)
  WebSocket         ws://127.0.0.1:${euPort}/v1/ws   ws://127.0.0.1:${usPort}/v1/ws
  Publish API       http://127.0.0.1:${publisherPort}/v1/publish   (API key: ${API_KEY})
  Router            ${routerUrl}/   (status page)   ${routerUrl}/v1/route?user=42&region=eu
  Webhooks API      http://127.0.0.1:${dispatcherPort}/v1/endpoints   (API key: ${API_KEY}; loopback receivers allowed; docs/webhooks.md)
  Connect token     ${await signConnectToken(TOKEN_SECRET, { sub: '42', channels: ['*'], ttlS: 24 * 3600 })}
                    (user 42, 24 h; append ?token=... to the WebSocket or SSE URL to read user:42)
  Metrics           http://127.0.0.1:${publisherPort}/metrics  ${routerUrl}/metrics  http://127.0.0.1:${euPort}/metrics  http://127.0.0.1:${usPort}/metrics
  Kafka             ${brokers}

  Try:  curl -s -H 'authorization: Bearer ${API_KEY}' -H 'content-type: application/json' \\
          -d '{"channel":"news:global","data":{"headline":"hello"}}' http://127.0.0.1:${publisherPort}/v1/publish
`);
}

main().catch((err) => {
  if (err instanceof BrokerUnavailableError) console.error(`[dev] ${err.message}`);
  else console.error(err);
  void stop(1);
});
