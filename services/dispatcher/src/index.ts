export { startDispatcher, type RunningDispatcher } from './service.js';
export { dispatcherConfig, DISPATCHER_DEFAULTS, parseDuration, type DispatcherConfig, type DispatcherConfigInput } from './config.js';
export { UrlPolicy } from './endpoints/url-policy.js';
export { webhookBody, signatureHeaders, EVENT_TYPE } from './delivery/signer.js';
export type { Endpoint } from './endpoints/endpoint.js';
export type { DeliveryJob, DeadLetter } from './delivery/delivery-job.js';
