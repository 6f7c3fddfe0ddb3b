/**
 * Frames from the gateway, read: the JSON text of a WebSocket message or an SSE event turned into
 * a typed record whose every field has been checked, so the client's reactions (client.ts) never
 * look at raw JSON. A field that is missing or of the wrong type takes the default the client acts
 * on; a frame type this client does not know (`pong`, `credits`, newer ones) reads as `other`.
 */
import type { WireFrame } from './protocol.js';
import { ABNORMAL_CLOSURE } from './transports.js';

export type IncomingFrame =
  | {
      t: 'msg';
      /** Undefined when the frame names no channel: it still used a credit. */
      ch: string | undefined;
      data: unknown;
      id: string;
      pos: string | undefined;
      ts: number;
    }
  | {
      t: 'welcome';
      node: string;
      region: string;
      /** Undefined unless a positive number of seconds. */
      heartbeatS: number | undefined;
      /** Undefined unless a number of at least 256. */
      maxFrameBytes: number | undefined;
      user: string | null;
      credits: number | 'unlimited';
    }
  | { t: 'subscribed'; id: number | undefined; channels: string[] }
  | { t: 'unsubscribed'; id: number | undefined; channels: string[] | undefined }
  | { t: 'error'; id: number | undefined; code: string; message: string }
  /** `delayMs`: the wait asked for, rounded; undefined unless a non-negative number. */
  | { t: 'reconnect'; reason: string; delayMs: number | undefined }
  /** `position`: the channel's newest position the gateway holds (`position`, or `pos`), or null. */
  | { t: 'reset'; ch: string; reason: string; position: string | null }
  | { t: 'gap'; ch: string; from: string; to: string; count: number }
  /** SSE: the gateway ends the stream with the close code a WebSocket would have seen. */
  | { t: 'close'; code: number; reason: string }
  | { t: 'other' };

/** Reads one frame; null when the text is not a JSON object (the client ignores it). */
export function readFrame(text: string): IncomingFrame | null {
  let f: WireFrame;
  try {
    f = JSON.parse(text) as WireFrame;
  } catch {
    return null;
  }
  if (typeof f !== 'object' || f === null) return null;
  const id = typeof f.id === 'number' ? f.id : undefined;
  switch (f.t) {
    case 'msg':
      return { t: 'msg', ch: str(f.ch), data: f.data, id: String(f.id ?? ''), pos: str(f.pos), ts: typeof f.ts === 'number' ? f.ts : 0 };
    case 'welcome':
      return {
        t: 'welcome',
        node: String(f.node ?? ''),
        region: String(f.region ?? ''),
        heartbeatS: typeof f.heartbeat_s === 'number' && f.heartbeat_s > 0 ? f.heartbeat_s : undefined,
        maxFrameBytes: typeof f.max_frame_bytes === 'number' && f.max_frame_bytes >= 256 ? f.max_frame_bytes : undefined,
        user: str(f.user) ?? null,
        credits: typeof f.credits === 'number' ? f.credits : 'unlimited',
      };
    case 'subscribed':
      return { t: 'subscribed', id, channels: strings(f.channels) ?? [] };
    case 'unsubscribed':
      return { t: 'unsubscribed', id, channels: strings(f.channels) };
    case 'error':
      return { t: 'error', id, code: str(f.code) ?? 'unknown', message: str(f.message) ?? '' };
    case 'reconnect': {
      const asked = Number(f.delay_ms);
      return {
        t: 'reconnect',
        reason: str(f.reason) ?? 'unspecified',
        delayMs: Number.isFinite(asked) && asked >= 0 ? Math.round(asked) : undefined,
      };
    }
    case 'reset':
      if (typeof f.ch !== 'string') return { t: 'other' };
      return { t: 'reset', ch: f.ch, reason: str(f.reason) ?? 'unspecified', position: str(f.position) ?? str(f.pos) ?? null };
    case 'gap':
      if (typeof f.ch !== 'string') return { t: 'other' };
      return { t: 'gap', ch: f.ch, from: String(f.from ?? ''), to: String(f.to ?? ''), count: Number(f.count ?? 0) };
    case 'close':
      return { t: 'close', code: typeof f.code === 'number' ? f.code : ABNORMAL_CLOSURE, reason: str(f.reason) ?? '' };
    default:
      return { t: 'other' };
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The strings of an array, or undefined when it is not one. */
function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.filter((c): c is string => typeof c === 'string') : undefined;
}
