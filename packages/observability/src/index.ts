export * from './logger.js';
export * from './metrics.js';
export * from './health.js';
export * from './config.js';
export * from './run-service.js';
export * from './listen.js';
export * from './ops.js';
