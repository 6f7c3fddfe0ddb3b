/**
 * The SDK's public types: the client's options, the events it emits, its counters, and the error
 * its promises reject with. The client itself is in client.ts.
 */
import type { BackoffOptions } from './backoff.js';
import type { EventSourceCtor, FetchLike, TransportKind, WebSocketCtor } from './transports.js';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';
export type CreditsOption = number | 'unlimited' | 'auto';

export interface FanoutClientOptions {
  /** Gateway base URL (`http(s)://` or `ws(s)://`, no `/v1/ws`). In a browser, defaults to the page's origin. Not needed with `routerUrl`. */
  url?: string;
  /** Connect token (JWT), or a function that returns one (called before every connection attempt). */
  token?: string | (() => string | Promise<string>);
  /**
   * Flow control: a number of messages the connection starts with (the app grants more with
   * `grant`), `'unlimited'`, or `'auto'` (start with `creditWindow` and grant as the app consumes).
   * Unset: the gateway's default.
   */
  credits?: CreditsOption;
  /** With `credits: 'auto'`: the window (default 1000); more is granted when half of it is used. */
  creditWindow?: number;
  /** Transports to use, in order of preference (default `['websocket', 'sse']`). */
  transports?: TransportKind[];
  /** A WebSocket class (default: the global one). In Node 20 pass the `ws` package's `WebSocket`. */
  WebSocket?: WebSocketCtor;
  /** An EventSource class for SSE. Without it SSE is read with `fetch` (which sees HTTP statuses and heartbeats). */
  EventSource?: EventSourceCtor;
  /** A fetch function (default: the global one). Used for SSE and the router. */
  fetch?: FetchLike;
  /** Router base URL, for user channels: the client connects where the router says. */
  routerUrl?: string;
  /** Region to ask the router about. */
  region?: string;
  /** User id to ask the router about (default: the token's `sub`). */
  user?: string;
  /** Reconnect backoff (defaults: base 500 ms, max 15 000 ms, reset after 5 000 ms up). */
  backoff?: BackoffOptions;
  /** Channels to subscribe to from the start. */
  channels?: string[];
  /** Positions to resume from (e.g. saved from `positions()` in localStorage). */
  positions?: Record<string, string>;
  /** WebSocket opens that fail in a row before trying SSE (default 3). */
  wsFailuresBeforeSse?: number;
  /** Time a transport may take to open, in ms (default 10 000). */
  connectTimeoutMs?: number;
  /** Silence on an SSE stream (which carries a comment every ~25 s) after which it is presumed dead, in ms (default 75 000). */
  sseIdleTimeoutMs?: number;
  /** Random source in [0, 1) for the jitter (tests). */
  random?: () => number;
}

/** A message as the app receives it. */
export interface FanoutMessage<T = unknown> {
  channel: string;
  data: T;
  /** The event id (the publisher's idempotency key). */
  id: string;
  /** The position `<epoch>:<partition>:<offset>`; treat it as an opaque cursor. */
  position: string;
  /** Publish time, ms since the epoch. */
  ts: number;
}

export interface StateEvent {
  state: ConnectionState;
  previous: ConnectionState;
  transport: TransportKind | null;
  /** Retries since the last stable connection (the backoff exponent). */
  attempt: number;
  /** When reconnecting: the wait before the next attempt, and when it ends (ms since the epoch). */
  delayMs?: number;
  retryAt?: number;
  /**
   * The close code and reason that led here, when there was one. After a refusal with Retry-After
   * the reason is the gateway's error code (`'overloaded'`, `'not_ready'`), or `'retry_after'`
   * when its body had none, and `retryAfterMs` is set.
   */
  code?: number;
  reason?: string;
  /** When reconnecting after a 503/429 refusal: the wait the gateway asked for, in ms (delayMs adds the client's jitter). */
  retryAfterMs?: number;
}

export interface WelcomeEvent {
  node: string;
  region: string;
  heartbeatS: number;
  maxFrameBytes: number;
  user: string | null;
  credits: number | 'unlimited';
  transport: TransportKind;
}

export interface SubscribedEvent {
  channels: string[];
  /** The channels among them that were subscribed with a position to resume from. */
  resumed: string[];
}

export interface UnsubscribedEvent {
  channels: string[];
}

/** The gateway cannot give what was missed on a channel: fetch its state over HTTP. Live messages follow. */
export interface ResetEvent {
  channel: string;
  reason: string;
  /** The newest position the gateway knows for the channel, or null. */
  position: string | null;
}

/** Messages `from`..`to` (inclusive) of a channel were dropped from this connection's queue. */
export interface GapEvent {
  channel: string;
  from: string;
  to: string;
  count: number;
}

/**
 * An error from the gateway (an error frame's stable code) or from the client: `unauthorized` and
 * `protocol_violation` (close codes 4501, 4500), `closed_by_server` (another 45xx code),
 * `router_unavailable`, `token_unavailable` (the token function threw), `sse_refused`.
 */
export interface ErrorEvent {
  code: string;
  message: string;
  /** True when the client stopped because of it (it will not reconnect by itself). */
  fatal: boolean;
  closeCode?: number;
  /** For a refused subscribe: the channels that were dropped. */
  channels?: string[];
}

/** The gateway asked the client to reconnect (drain, rebalance, slow consumer) after `delayMs`. */
export interface ReconnectEvent {
  reason: string;
  delayMs: number;
}

export interface DisconnectEvent {
  code: number;
  reason: string;
  transport: TransportKind;
  /** Whether the transport had opened (false: the attempt failed). */
  opened: boolean;
  willReconnect: boolean;
  /** The HTTP status of a refused handshake, where the transport can see it (SSE with fetch; WebSocket with the `ws` package). */
  httpStatus?: number;
  /** The wait a 503/429 refusal asked for (its body's `retry_after_ms`, else `Retry-After`), in ms. */
  retryAfterMs?: number;
}

export interface AttemptEvent {
  /** Attempts since the last open connection, this one included. */
  attempt: number;
  transport: TransportKind;
  /** The URL, with the token left out. */
  url: string;
}

export interface FanoutClientEvents {
  message: FanoutMessage;
  state: StateEvent;
  welcome: WelcomeEvent;
  subscribed: SubscribedEvent;
  unsubscribed: UnsubscribedEvent;
  reset: ResetEvent;
  gap: GapEvent;
  error: ErrorEvent;
  reconnect: ReconnectEvent;
  disconnect: DisconnectEvent;
  attempt: AttemptEvent;
}

export interface ClientStats {
  /** `msg` frames received. */
  received: number;
  /** Messages handed to the app. */
  delivered: number;
  /** Messages dropped as already delivered (same epoch and partition, offset not beyond the last). */
  duplicates: number;
  /** Messages for channels no longer subscribed (in flight when unsubscribing). */
  unwanted: number;
  /** Credits granted by the client (auto mode and `grant`). */
  granted: number;
}

/** An error thrown or used to reject a promise of the client. */
export class FanoutClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly channels?: string[],
  ) {
    super(message);
    this.name = 'FanoutClientError';
  }
}
