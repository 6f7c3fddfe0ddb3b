/**
 * The parts of the wire protocol the client needs at run time, repeated here so the SDK has no
 * Node-only dependency in a browser bundle (`@fanout/protocol` also validates events with
 * node:crypto). test/protocol-parity.test.ts checks that they match `@fanout/protocol`.
 */
import type { ErrorCode, RequestId } from '@fanout/protocol';

export type { ErrorCode, RequestId };

const CHANNEL_RE = /^[a-z][a-z0-9-]{0,31}:[A-Za-z0-9._=@-]{1,200}$/;
const PATTERN_RE = /^[a-z][a-z0-9-]{0,31}:\*$/;

/** `<namespace>:<name>`, or a namespace wildcard `<namespace>:*`. */
export function isSubscribable(channel: unknown): channel is string {
  return typeof channel === 'string' && channel.length <= 233 && (CHANNEL_RE.test(channel) || PATTERN_RE.test(channel));
}

export function isPattern(channel: string): boolean {
  return PATTERN_RE.test(channel);
}

export function namespaceOf(channel: string): string {
  const i = channel.indexOf(':');
  return i < 0 ? channel : channel.slice(0, i);
}

/** Channels named in one subscribe/unsubscribe frame, at most. */
export const MAX_CHANNELS_PER_FRAME = 100;
/** Most credits one credit frame may grant. */
export const MAX_CREDIT_GRANT = 1_000_000;
/** The gateway's default limit for one client frame, until its welcome frame says otherwise. */
export const DEFAULT_MAX_FRAME_BYTES = 4096;

/** Close codes 4000-4499 ask for a reconnect; 4500-4999 mean "do not reconnect" (close-codes.ts). */
export const CLOSE_CODES = {
  SERVICE_RESTART: 4000,
  SLOW_CONSUMER: 4001,
  REBALANCE: 4002,
  TRY_AGAIN: 4003,
  PROTOCOL_VIOLATION: 4500,
  UNAUTHORIZED: 4501,
} as const;

export function isTerminalCloseCode(code: number): boolean {
  return code >= 4500 && code <= 4999;
}

/** Frames from the gateway, as the client reads them (every field may be missing on a bad frame). */
export interface WireFrame {
  t?: unknown;
  [key: string]: unknown;
}
