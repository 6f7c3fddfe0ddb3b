/**
 * Frames to the gateway, as the JSON text the WebSocket sends: subscribe and unsubscribe requests
 * split to fit the gateway's limits, credit grants and pings.
 */
import { isPattern, MAX_CHANNELS_PER_FRAME } from './protocol.js';

/** A request frame, numbered, with what the client needs to match its answer. */
export interface RequestFrame {
  id: number;
  channels: string[];
  /** Subscribe: the channels sent with a position to resume from. */
  withPositions: string[];
  text: string;
}

/**
 * Subscribe frames for `channels`, in order, numbered from `firstId`: at most
 * MAX_CHANNELS_PER_FRAME channels and `maxFrameBytes` characters per frame (a channel whose frame
 * alone is longer goes alone; the gateway refuses it). A channel with a position (`positionOf`;
 * never a pattern) is resumed from it.
 */
export function subscribeFrames(
  channels: string[],
  positionOf: (channel: string) => string | undefined,
  maxFrameBytes: number,
  firstId: number,
): RequestFrame[] {
  const frameFor = (chunk: string[], id: number) => {
    const positions: Record<string, string> = {};
    for (const ch of chunk) {
      const p = isPattern(ch) ? undefined : positionOf(ch);
      if (p !== undefined) positions[ch] = p;
    }
    const withPositions = Object.keys(positions);
    return {
      withPositions,
      text: JSON.stringify({ op: 'subscribe', id, channels: chunk, ...(withPositions.length > 0 ? { positions } : {}) }),
    };
  };
  const frames: RequestFrame[] = [];
  const flush = (chunk: string[]) => {
    const id = firstId + frames.length;
    frames.push({ id, channels: chunk, ...frameFor(chunk, id) });
  };
  const probeId = firstId - 1 + 1_000_000; // as long as any id we will use: sizes are upper bounds
  let chunk: string[] = [];
  for (const ch of channels) {
    const next = [...chunk, ch];
    if (chunk.length > 0 && (next.length > MAX_CHANNELS_PER_FRAME || frameFor(next, probeId).text.length > maxFrameBytes)) {
      flush(chunk);
      chunk = [ch];
    } else {
      chunk = next;
    }
  }
  if (chunk.length > 0) flush(chunk);
  return frames;
}

/** Unsubscribe frames for `channels`, MAX_CHANNELS_PER_FRAME at a time, numbered from `firstId`. */
export function unsubscribeFrames(channels: string[], firstId: number): RequestFrame[] {
  const frames: RequestFrame[] = [];
  for (let i = 0; i < channels.length; i += MAX_CHANNELS_PER_FRAME) {
    const chunk = channels.slice(i, i + MAX_CHANNELS_PER_FRAME);
    const id = firstId + frames.length;
    frames.push({ id, channels: chunk, withPositions: [], text: JSON.stringify({ op: 'unsubscribe', id, channels: chunk }) });
  }
  return frames;
}

/** Grants `n` more messages (at most MAX_CREDIT_GRANT in one frame). */
export function creditFrame(n: number): string {
  return JSON.stringify({ op: 'credit', n });
}

export const PING_FRAME = JSON.stringify({ op: 'ping' });
