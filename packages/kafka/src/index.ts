// kafkajs 2.2.4 re-arms a 1 ms timer forever on idle connections: fixed for every client made here.
import './kafkajs-idle-timer.js';
export * from './record-format.js';
export * from './partitioner.js';
export * from './client.js';
export * from './topics.js';
export * from './broker.js';
export {
  startLocalKafka,
  ensureKafkaJars,
  BrokerUnavailableError,
  KAFKA_VERSION,
  freePort,
  GROUP_DELAY_KAFKA_DEFAULT_MS,
  KAFKA_BROKER_SESSION_TIMEOUT_MS,
  clientEnvExports,
} from './local-kafka.js';
export type { LocalKafka, LocalKafkaNode, LocalKafkaOptions, LocalKafkaSecurity } from './local-kafka.js';
export type { LocalClusterTls, LocalClusterSasl } from './local-cluster-tls.js';
export * from './gateway-group.js';
export * from './turn-batcher.js';
export * from './security.js';
export * from './access.js';
