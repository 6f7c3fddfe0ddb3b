/**
 * Channel names: `<namespace>:<name>`.
 *
 * - namespace: a lower-case letter then up to 31 of `[a-z0-9-]` (e.g. `prices`, `news`, `user`).
 * - name: 1 to 200 of `[A-Za-z0-9._=@-]` (e.g. `AAPL`, `global`, `42`).
 *
 * `user:<id>` channels are user channels (keyed by user id into the users topic); every other
 * namespace is a broadcast namespace. Subscriptions may also use `<namespace>:*`, which matches every
 * channel of that namespace (broadcast namespaces only).
 */
export const CHANNEL_MAX_LENGTH = 233; // 32 (namespace) + 1 (colon) + 200 (name)
const CHANNEL_RE = /^([a-z][a-z0-9-]{0,31}):([A-Za-z0-9._=@-]{1,200})$/;
const PATTERN_RE = /^([a-z][a-z0-9-]{0,31}):\*$/;

export const USER_NAMESPACE = 'user';

export interface ParsedChannel {
  namespace: string;
  name: string;
}

export function parseChannel(channel: unknown): ParsedChannel | null {
  if (typeof channel !== 'string' || channel.length > CHANNEL_MAX_LENGTH) return null;
  const m = CHANNEL_RE.exec(channel);
  return m ? { namespace: m[1]!, name: m[2]! } : null;
}

export function isValidChannel(channel: unknown): channel is string {
  return parseChannel(channel) !== null;
}

export function isUserChannel(channel: string): boolean {
  return channel.startsWith(USER_NAMESPACE + ':');
}

/** A namespace wildcard (`prices:*`) returns its namespace; anything else returns null. */
export function parseNamespacePattern(pattern: unknown): string | null {
  if (typeof pattern !== 'string' || pattern.length > 40) return null;
  const m = PATTERN_RE.exec(pattern);
  return m ? m[1]! : null;
}

export function namespaceOf(channel: string): string {
  const i = channel.indexOf(':');
  return i < 0 ? channel : channel.slice(0, i);
}
