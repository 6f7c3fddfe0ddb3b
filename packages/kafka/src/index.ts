export * from './record-format.js';
export * from './partitioner.js';
export * from './client.js';
export * from './topics.js';
export * from './broker.js';
export { startLocalKafka, ensureKafkaJars, BrokerUnavailableError, KAFKA_VERSION, freePort, GROUP_DELAY_KAFKA_DEFAULT_MS } from './local-kafka.js';
export * from './gateway-group.js';
export * from './turn-batcher.js';
