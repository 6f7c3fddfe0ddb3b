import {
  loadConfig,
  resolveBrokers,
  ConfigError,
  checkClientAddressHeader,
  checkIntegers,
  checkPort,
  REGION_RE,
} from '@fanout/observability';
import { kafkaClientSettings, type KafkaClientSettings } from '@fanout/kafka';

/** Router settings; each maps to FANOUT_<UPPER_SNAKE> (e.g. regions -> FANOUT_REGIONS). */
export const ROUTER_DEFAULTS = {
  host: '127.0.0.1',
  /** HTTP port; 0 picks a free one. */
  port: 8090,
  /** Kafka bootstrap servers (KAFKA_BROKERS is also read). */
  brokers: [] as string[],
  /** Regions served, comma-separated (e.g. `eu,us`). */
  regions: ['local'] as string[],
  /** Consumer group of a region's gateways; `{region}` is replaced (must match the gateways' FANOUT_USER_GROUP_ID). */
  groupIdTemplate: 'fanout-gw-{region}',
  /** Users topic name. */
  topicUsers: 'fanout.users',
  /** How often each region's group membership is re-read from Kafka, in ms. */
  refreshMs: 500,
  /** How often each gateway's /v1/info is read for the status page, in ms. */
  infoRefreshMs: 2000,
  /** Requests per second per client address on /v1/route and the status page (0, the default: no limit; e.g. 200); over it 429 rate_limited. */
  ratePerAddress: 0,
  ratePerAddressBurst: 400,
  /** Behind a load balancer: the header it puts the client's address in (its last entry); empty: the socket's address. */
  clientAddressHeader: '',
};

export type RouterConfig = typeof ROUTER_DEFAULTS;

export function routerConfig(
  overrides: Partial<RouterConfig> & { kafka?: KafkaClientSettings } = {},
): Readonly<RouterConfig & { kafka: KafkaClientSettings }> {
  const { kafka: kafkaOverride, ...rest } = overrides;
  const c = loadConfig(ROUTER_DEFAULTS, rest);
  const brokers = resolveBrokers(c.brokers);
  if (c.regions.length === 0 || c.regions.some((r) => !REGION_RE.test(r)))
    throw new ConfigError('FANOUT_REGIONS', 'must list 1 or more regions of [a-z0-9-]{1,32}');
  if (!c.groupIdTemplate.includes('{region}')) throw new ConfigError('FANOUT_GROUP_ID_TEMPLATE', 'must contain {region}');
  checkPort(c.port);
  checkIntegers(c, [
    ['refreshMs', 50],
    ['infoRefreshMs', 100],
    ['ratePerAddress', 0],
    ['ratePerAddressBurst', 1],
  ]);
  checkClientAddressHeader(c.clientAddressHeader);
  return Object.freeze({ ...c, kafka: kafkaOverride ?? kafkaClientSettings(), brokers });
}
