import type { AddressInfo } from 'node:net';
import { checkTopics, openKafka } from '@fanout/kafka';
import { createLogger, createRegistry, Health, type Logger, listenHttp } from '@fanout/observability';
import { routerConfig, type RouterConfig } from './config.js';
import { RouteTable } from './routing/route-table.js';
import { GatewayInfoPoller } from './routing/gateway-info.js';
import { routerMetrics } from './metrics.js';
import { createRouterServer } from './http/server.js';

export interface RunningRouter {
  port: number;
  url: string;
  table: RouteTable;
  shutdown(): Promise<void>;
}

export async function startRouter(
  overrides: Parameters<typeof routerConfig>[0] = {},
  logger: Logger = createLogger('router'),
): Promise<RunningRouter> {
  const config = routerConfig(overrides);
  const health = new Health(['kafka']);
  const registry = createRegistry({ service: 'router' });
  const kafka = await openKafka({ brokers: config.brokers, clientId: 'fanout-router', logger, security: config.kafka.security });
  // The router creates nothing; it checks that the users topic is as durable as configured.
  await checkTopics(kafka, [{ topic: config.topicUsers, events: true }], logger, config.kafka.topics);
  const table = new RouteTable({
    kafka,
    regions: config.regions,
    groupIdTemplate: config.groupIdTemplate,
    topic: config.topicUsers,
    refreshMs: config.refreshMs,
    logger,
  });
  const info = new GatewayInfoPoller(table, config.infoRefreshMs);
  const metrics = routerMetrics(registry, table, info);
  const server = createRouterServer({
    table,
    info,
    health,
    registry,
    metrics,
    regions: config.regions,
    limits: { ratePerAddress: config.ratePerAddress, burst: config.ratePerAddressBurst, addressHeader: config.clientAddressHeader },
  });
  await listenHttp(server, config.port, config.host);
  const port = (server.address() as AddressInfo).port;
  await table.start();
  info.start();
  health.pass('kafka');
  logger.info({ port, regions: config.regions }, 'router ready');
  let stopping: Promise<void> | null = null;
  return {
    port,
    url: `http://${config.host}:${port}`,
    table,
    shutdown: () =>
      (stopping ??= (async () => {
        health.drain();
        info.stop();
        await new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        });
        await table.stop();
      })()),
  };
}
