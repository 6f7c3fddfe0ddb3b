/**
 * Positions as the client sees them: `<epoch>:<partition>:<offset>` (the `pos` of a `msg` frame).
 *
 * The client remembers the last position per channel, resubscribes with it after a reconnect (the
 * gateway replays what was missed), and drops a message whose offset is not beyond the last one
 * seen on the same epoch and partition: replays are at-least-once, the app sees each message once.
 */
export interface ParsedPosition {
  epoch: string;
  partition: number;
  /**
   * Decimal digits without leading zeros (offsets may exceed 2^53, so they are compared as text),
   * or `-1`: "before the first record" (docs/protocol.md, Positions and resume).
   */
  offset: string;
}

/** The grammar of @fanout/protocol's positions.ts: offset `-1` or up to 16 digits. */
const POSITION_RE = /^([A-Za-z0-9_-]{1,64}):(\d{1,6}):(-1|\d{1,16})$/;

export function parsePosition(s: unknown): ParsedPosition | null {
  if (typeof s !== 'string') return null;
  const m = POSITION_RE.exec(s);
  if (!m) return null;
  return { epoch: m[1]!, partition: Number(m[2]), offset: m[3]!.replace(/^0+(?=\d)/, '') };
}

export function isValidPosition(s: unknown): s is string {
  return parsePosition(s) !== null;
}

/** Compares two offsets given as digit strings without leading zeros, or `-1` (before every other). */
export function compareOffsets(a: string, b: string): number {
  if (a === '-1' || b === '-1') return a === b ? 0 : a === '-1' ? -1 : 1;
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Last position per channel, with the duplicate test. */
export class PositionTracker {
  private readonly last = new Map<string, { raw: string; p: ParsedPosition }>();

  constructor(initial?: Record<string, string>) {
    if (initial) this.load(initial);
  }

  /**
   * Records `pos` for `channel` if the message is new, and says whether it is. A message is a
   * duplicate when the channel's last position has the same epoch and partition and an offset at
   * or beyond this one. An unreadable position is delivered and not recorded.
   */
  accept(channel: string, pos: unknown): boolean {
    const p = parsePosition(pos);
    if (p === null) return true;
    const prev = this.last.get(channel);
    if (prev && prev.p.epoch === p.epoch && prev.p.partition === p.partition && compareOffsets(p.offset, prev.p.offset) <= 0) return false;
    this.last.set(channel, { raw: pos as string, p });
    return true;
  }

  get(channel: string): string | undefined {
    return this.last.get(channel)?.raw;
  }

  set(channel: string, pos: string): boolean {
    const p = parsePosition(pos);
    if (p === null) return false;
    this.last.set(channel, { raw: pos, p });
    return true;
  }

  delete(channel: string): void {
    this.last.delete(channel);
  }

  has(channel: string): boolean {
    return this.last.has(channel);
  }

  /** Loads saved positions (e.g. from localStorage); entries that are not positions are skipped. */
  load(saved: Record<string, string>): void {
    for (const [ch, pos] of Object.entries(saved)) this.set(ch, pos);
  }

  snapshot(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [ch, v] of this.last) out[ch] = v.raw;
    return out;
  }
}

/**
 * A gateway SSE cursor for a stream of `channels`, built from positions: the position itself for a
 * one-channel stream, else `m.<base64url JSON {channel: position}>` (the gateway's cursor format).
 * Used when the client has positions but no cursor of its own from that exact stream (it fell back
 * from WebSocket, or the channel set changed). Returns null when there is nothing to resume.
 */
export function cursorFromPositions(channels: string[], positions: PositionTracker): string | null {
  const exact = channels.filter((c) => !c.endsWith(':*'));
  const known: Record<string, string> = {};
  for (const ch of exact) {
    const p = positions.get(ch);
    if (p !== undefined) known[ch] = p;
  }
  const keys = Object.keys(known);
  if (keys.length === 0) return null;
  if (channels.length === 1 && exact.length === 1) return known[exact[0]!]!;
  return 'm.' + base64url(JSON.stringify(known));
}

function base64url(ascii: string): string {
  // Channel names and positions are ASCII, so btoa takes the JSON as it is.
  return btoa(ascii).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
