/**
 * @fanout/client: the client SDK for fan-out gateways, for browsers and Node 20.
 *
 *   import { FanoutClient } from '@fanout/client';          // browser: import from '/fanout-client.js'
 *   const client = new FanoutClient({ url: 'http://localhost:9000', credits: 'auto' });
 *   client.on('message', (m) => console.log(m.channel, m.data));
 *   client.connect();
 *   await client.subscribe(['prices:AAPL']);
 *
 * See packages/client/README.md.
 */
export { FanoutClient } from './client.js';
export {
  FanoutClientError,
  type ClientStats,
  type ConnectionState,
  type CreditsOption,
  type FanoutClientEvents,
  type FanoutClientOptions,
  type FanoutMessage,
  type StateEvent,
  type WelcomeEvent,
  type SubscribedEvent,
  type UnsubscribedEvent,
  type ResetEvent,
  type GapEvent,
  type ErrorEvent,
  type ReconnectEvent,
  type DisconnectEvent,
  type AttemptEvent,
} from './types.js';
export { Backoff, backoffCeiling, backoffDelay, BACKOFF_DEFAULTS, type BackoffOptions } from './backoff.js';
export { parseRetryAfter, retryAfterFromBody, serverRetryAfterMs, retryAfterDelay, RETRY_AFTER_JITTER } from './retry-after.js';
export { PositionTracker, parsePosition, compareOffsets, cursorFromPositions, type ParsedPosition } from './positions.js';
export { lookupRoute, routeUrl, tokenSubject, RouterError, type Route } from './router.js';
export { CLOSE_CODES, isTerminalCloseCode, isSubscribable, MAX_CHANNELS_PER_FRAME, MAX_CREDIT_GRANT } from './protocol.js';
export type { TransportKind, WebSocketLike, WebSocketCtor, EventSourceLike, EventSourceCtor, FetchLike } from './transports.js';
export { TypedEmitter } from './emitter.js';
