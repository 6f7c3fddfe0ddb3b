export * from './channel-permissions.js';
export * from './token-verifier.js';
export * from './dev-token.js';
