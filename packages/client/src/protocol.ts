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

/**
 * The close codes the gateway chooses: a copy of `CLOSE` in @fanout/protocol's close-codes.ts (the
 * registry), with the fields the client acts on. 4000-4499 ask for a reconnect; 4500-4999 mean
 * "do not reconnect", and their label is the code of the client's fatal `error` event.
 */
export const CLOSE_CODE_TABLE = {
  SERVICE_RESTART: { code: 4000, label: 'service_restart', reconnect: true },
  SLOW_CONSUMER: { code: 4001, label: 'slow_consumer', reconnect: true },
  REBALANCE: { code: 4002, label: 'rebalance', reconnect: true },
  TRY_AGAIN: { code: 4003, label: 'try_again', reconnect: true },
  PROTOCOL_VIOLATION: { code: 4500, label: 'protocol_violation', reconnect: false },
  UNAUTHORIZED: { code: 4501, label: 'unauthorized', reconnect: false },
} as const;

type CloseCodeTable = typeof CLOSE_CODE_TABLE;

/** The codes of CLOSE_CODE_TABLE by name (the SDK's public `CLOSE_CODES`). */
export const CLOSE_CODES = Object.fromEntries(Object.entries(CLOSE_CODE_TABLE).map(([name, c]) => [name, c.code])) as {
  readonly [K in keyof CloseCodeTable]: CloseCodeTable[K]['code'];
};

export function isTerminalCloseCode(code: number): boolean {
  return code >= 4500 && code <= 4999;
}

/**
 * The error code the client reports when a terminal close code stops it: the code's label
 * (`unauthorized`, `protocol_violation`), or `closed_by_server` for a 45xx code it does not know.
 */
export function closeCodeName(code: number): string {
  for (const c of Object.values(CLOSE_CODE_TABLE)) if (c.code === code && !c.reconnect) return c.label;
  return 'closed_by_server';
}

/** Frames from the gateway, as the client reads them (every field may be missing on a bad frame). */
export interface WireFrame {
  t?: unknown;
  [key: string]: unknown;
}
