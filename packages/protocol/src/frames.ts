/**
 * WebSocket frames. Every frame is one JSON text message.
 *
 * Client to gateway: `{"op": "subscribe" | "unsubscribe" | "ping", "id"?: <request id>, ...}`.
 * Gateway to client: `{"t": "welcome" | "subscribed" | "unsubscribed" | "credits" | "pong" | "error" | "gap" | "reset" | "reconnect", ...}`
 * (and `close`, the end of an SSE stream),
 * each built by one function here (`welcomeFrame`, `subscriptionFrame`, ...); message frames (`msg`)
 * are the envelope of envelope.ts. No other module writes a frame by hand.
 *
 * docs/protocol.md documents each frame with an example.
 */
import { ERRORS, type ErrorCode } from './errors.js';
import { isValidChannel, parseNamespacePattern } from './channels.js';
import { parsePosition } from './positions.js';

/** A client-chosen request id, echoed in the answer: a number or a short string. */
export type RequestId = number | string;

export type ClientFrame =
  | { op: 'subscribe'; id?: RequestId; channels: string[]; positions?: Record<string, string> }
  | { op: 'unsubscribe'; id?: RequestId; channels: string[] }
  | { op: 'credit'; id?: RequestId; n: number }
  | { op: 'credit'; id?: RequestId; unlimited: true }
  | { op: 'ping'; id?: RequestId };

export interface FrameError {
  code: ErrorCode;
  message: string;
  id?: RequestId;
}

/** Channels named in one subscribe/unsubscribe frame, at most. */
export const MAX_CHANNELS_PER_FRAME = 100;

/** Most credits one credit frame may grant (and most a connection may hold). */
export const MAX_CREDIT_GRANT = 1_000_000;

function requestId(v: unknown): RequestId | undefined | null {
  if (v === undefined) return undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string' && v.length <= 64) return v;
  return null;
}

/**
 * Parses and validates a client frame. Never throws: a bad frame comes back as a FrameError with a
 * stable code, so the gateway can answer with an error frame and keep the connection.
 */
export function parseClientFrame(text: string): ClientFrame | FrameError {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { code: 'bad_frame', message: 'The frame is not valid JSON. ' + ERRORS.bad_frame.message };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { code: 'bad_frame', message: ERRORS.bad_frame.message };
  }
  const obj = raw as Record<string, unknown>;
  const id = requestId(obj.id);
  if (id === null) return { code: 'bad_frame', message: '"id" must be an integer or a string of at most 64 characters.' };
  const withId = <T extends object>(f: T): T => (id === undefined ? f : { ...f, id });
  switch (obj.op) {
    case 'subscribe':
    case 'unsubscribe': {
      const channels = obj.channels;
      if (!Array.isArray(channels) || channels.length === 0 || channels.length > MAX_CHANNELS_PER_FRAME) {
        return withId({
          code: 'bad_frame' as const,
          message: `"channels" must be an array of 1 to ${MAX_CHANNELS_PER_FRAME} channel names.`,
        });
      }
      for (const c of channels) {
        if (!isValidChannel(c) && parseNamespacePattern(c) === null) {
          return withId({
            code: 'invalid_channel' as const,
            message: `${JSON.stringify(String(c).slice(0, 80))} is not a channel. ${ERRORS.invalid_channel.message} A namespace wildcard is "<namespace>:*".`,
          });
        }
      }
      const unique = [...new Set(channels as string[])];
      if (obj.op === 'subscribe' && obj.positions !== undefined) {
        const pos = obj.positions;
        if (typeof pos !== 'object' || pos === null || Array.isArray(pos)) {
          return withId({
            code: 'invalid_position' as const,
            message: '"positions" must be an object mapping channel names to positions.',
          });
        }
        const out: Record<string, string> = {};
        for (const [ch, p] of Object.entries(pos as Record<string, unknown>)) {
          if (!unique.includes(ch) || parseNamespacePattern(ch) !== null) {
            return withId({
              code: 'invalid_position' as const,
              message: `"positions" names ${JSON.stringify(ch.slice(0, 80))}, which is not an exact channel of this subscribe frame.`,
            });
          }
          if (parsePosition(p) === null) {
            return withId({
              code: 'invalid_position' as const,
              message: `${JSON.stringify(String(p).slice(0, 80))} is not a position; positions are "<epoch>:<partition>:<offset>" as received in "pos".`,
            });
          }
          out[ch] = p as string;
        }
        return withId({ op: 'subscribe' as const, channels: unique, positions: out });
      }
      return withId({ op: obj.op, channels: unique });
    }
    case 'credit': {
      const keys = Object.keys(obj).filter((k) => k !== 'op' && k !== 'id');
      if (keys.length === 1 && obj.unlimited === true) return withId({ op: 'credit' as const, unlimited: true as const });
      const n = obj.n;
      if (keys.length !== 1 || typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_CREDIT_GRANT) {
        return withId({ code: 'invalid_credit' as const, message: ERRORS.invalid_credit.message });
      }
      return withId({ op: 'credit' as const, n });
    }
    case 'ping':
      return withId({ op: 'ping' as const });
    case undefined:
      return withId({ code: 'bad_frame' as const, message: 'The frame has no "op". ' + ERRORS.bad_frame.message });
    default:
      return withId({
        code: 'unknown_op' as const,
        message: `Unknown op ${JSON.stringify(String(obj.op).slice(0, 40))}; known ops are subscribe, unsubscribe, credit and ping.`,
      });
  }
}

export function isFrameError(f: ClientFrame | FrameError): f is FrameError {
  return 'code' in f;
}

/** `credits` in frames and in `welcome`: a number of messages, or `unlimited` (Infinity). */
export type CreditsValue = number | 'unlimited';

/** A connection's credits as frames say them: `unlimited` for Infinity. */
export function creditsValue(credits: number): CreditsValue {
  return credits === Infinity ? 'unlimited' : credits;
}

/** The first frame of a connection once it is authenticated: who answers, its limits, and the connection's credits. */
export function welcomeFrame(w: {
  node: string;
  region: string;
  heartbeatS: number;
  maxFrameBytes: number;
  user: string | null;
  credits: number;
}): string {
  return JSON.stringify({
    t: 'welcome',
    node: w.node,
    region: w.region,
    heartbeat_s: w.heartbeatS,
    max_frame_bytes: w.maxFrameBytes,
    user: w.user,
    credits: creditsValue(w.credits),
  });
}

/** The answer to a `credit` frame that has an id: the credits the connection holds now. */
export function creditsFrame(id: RequestId, credits: number): string {
  return JSON.stringify({ t: 'credits', id, credits: creditsValue(credits) });
}

/** The answer to a `ping` frame (its id echoed, if any). */
export function pongFrame(id?: RequestId): string {
  return JSON.stringify({ t: 'pong', ...(id !== undefined ? { id } : {}) });
}

/** The answer to a `subscribe` or `unsubscribe` frame: the channels it named (its id echoed, if any). */
export function subscriptionFrame(t: 'subscribed' | 'unsubscribed', channels: string[], id?: RequestId): string {
  return JSON.stringify({ t, ...(id !== undefined ? { id } : {}), channels });
}

export function errorFrame(code: ErrorCode, message?: string, id?: RequestId): string {
  return JSON.stringify({ t: 'error', code, message: message ?? ERRORS[code].message, ...(id !== undefined ? { id } : {}) });
}

/**
 * Tells a client that `count` messages of `ch` were dropped from its queue (policy `drop`, or
 * memory shedding): the positions `from`..`to` (inclusive) are the first and last missed. The
 * client can fetch them over HTTP, or treat the channel's state as stale.
 */
export function gapFrame(channel: string, from: string, to: string, count: number): string {
  return JSON.stringify({ t: 'gap', ch: channel, from, to, count });
}

/**
 * Tells a client that the gateway cannot give it what it missed on `ch` (beyond the replay limit,
 * no longer in Kafka, an epoch or partition change): it must fetch the channel's state over HTTP.
 * Live messages follow. `position` is the newest position the gateway knows, or null.
 */
export function resetFrame(channel: string, reason: ResetReason, position: string | null): string {
  return JSON.stringify({ t: 'reset', ch: channel, reason, position });
}

export type ResetReason =
  'beyond_replay_limit' | 'beyond_retention' | 'epoch_changed' | 'partition_changed' | 'replay_failed' | 'replay_busy';

export function reconnectFrame(reason: 'shutdown' | 'rebalance' | 'slow_consumer', delayMs: number): string {
  return JSON.stringify({ t: 'reconnect', reason, delay_ms: delayMs });
}

/**
 * The last event of an SSE stream (which has no close frame of its own): the close code and
 * reason a WebSocket would have been closed with (close-codes.ts).
 */
export function closeFrame(code: number, reason: string): string {
  return JSON.stringify({ t: 'close', code, reason });
}

/** Server frames as a client sees them, for typed clients and tests. */
export type ServerFrame =
  | {
      t: 'welcome';
      node: string;
      region: string;
      heartbeat_s: number;
      max_frame_bytes: number;
      user: string | null;
      credits: CreditsValue;
    }
  | { t: 'credits'; id?: RequestId; credits: CreditsValue }
  | { t: 'gap'; ch: string; from: string; to: string; count: number }
  | { t: 'reset'; ch: string; reason: ResetReason; position: string | null }
  | { t: 'subscribed'; id?: RequestId; channels: string[] }
  | { t: 'unsubscribed'; id?: RequestId; channels: string[] }
  | { t: 'msg'; ch: string; id: string; pos: string; ts: number; data: unknown }
  | { t: 'error'; code: ErrorCode; message: string; id?: RequestId }
  | { t: 'reconnect'; reason: string; delay_ms: number }
  | { t: 'pong'; id?: RequestId }
  | { t: 'close'; code: number; reason: string };
