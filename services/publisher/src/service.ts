import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createLogger, createRegistry, Health, type Logger, listenHttp } from '@fanout/observability';
import { PublisherClient } from './producer/publisher-client.js';
import { publisherConfig, type PublisherConfig } from './config.js';
import { publisherMetrics } from './metrics.js';
import { createPublishServer } from './http/server.js';

export interface RunningPublisher {
  port: number;
  url: string;
  client: PublisherClient;
  /** Idempotent: stops accepting, waits for in-flight writes, disconnects from Kafka. */
  shutdown(): Promise<void>;
}

export async function startPublisher(
  overrides: Parameters<typeof publisherConfig>[0] = {},
  logger: Logger = createLogger('publisher'),
): Promise<RunningPublisher> {
  const config = publisherConfig(overrides);
  const health = new Health(['kafka']);
  const registry = createRegistry({ service: 'publisher' });
  const metrics = publisherMetrics(registry);
  const client = new PublisherClient({
    brokers: config.brokers,
    logger,
    topics: { broadcast: config.topicBroadcast, users: config.topicUsers },
    broadcastPartitions: config.broadcastPartitions,
    userPartitions: config.userPartitions,
    epoch: config.streamEpoch,
    maxEventBytes: config.maxEventBytes,
    security: config.kafka.security,
    topicSettings: config.kafka.topics,
  });
  await client.connect();
  health.pass('kafka');
  const server: Server = createPublishServer({ config, client, logger, health, registry, metrics });
  await listenHttp(server, config.port, config.host);
  const port = (server.address() as AddressInfo).port;
  logger.info({ port }, 'publisher listening');
  let stopping: Promise<void> | null = null;
  return {
    port,
    url: `http://${config.host}:${port}`,
    client,
    shutdown: () =>
      (stopping ??= (async () => {
        health.drain();
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        await Promise.race([closed, new Promise((r) => setTimeout(r, config.shutdownGraceMs))]);
        server.closeAllConnections();
        await client.disconnect();
      })()),
  };
}
