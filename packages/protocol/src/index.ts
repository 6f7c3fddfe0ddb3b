export * from './channels.js';
export * from './positions.js';
export * from './errors.js';
export * from './close-codes.js';
export * from './frames.js';
export * from './envelope.js';
export * from './events.js';
export * from './json-valid.js';
