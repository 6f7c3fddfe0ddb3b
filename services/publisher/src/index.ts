export { PublisherClient, type PublishedEvent, type PublisherClientOptions } from './producer/publisher-client.js';
export { startPublisher, type RunningPublisher } from './service.js';
export { publisherConfig, PUBLISHER_DEFAULTS, type PublisherConfig } from './config.js';
