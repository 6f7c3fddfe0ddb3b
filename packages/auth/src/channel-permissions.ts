/**
 * What a connection may subscribe to.
 *
 * - `user:<id>` only when `<id>` is the token's `sub`, whatever else the token says: a user
 *   channel is readable by its user alone.
 * - A public broadcast namespace (configuration) by anyone, token or not.
 * - Any other channel only when a pattern in the token's channel claim matches it: `ns:name`
 *   (exact), `ns:*` (the whole namespace) or `*` (every broadcast channel).
 */
import { isUserChannel, namespaceOf, parseNamespacePattern, USER_NAMESPACE } from '@fanout/protocol';

export interface Principal {
  /** The user id (`sub`), or null for an anonymous connection. */
  userId: string | null;
  /** Channel patterns from the token's claim. */
  patterns: readonly string[];
}

export const ANONYMOUS: Principal = Object.freeze({ userId: null, patterns: [] });

export class ChannelPermissions {
  private readonly publicNamespaces: ReadonlySet<string>;

  /** `publicNamespaces`: broadcast namespaces anyone may read; `*` makes every one public. */
  constructor(publicNamespaces: readonly string[]) {
    this.publicNamespaces = new Set(publicNamespaces);
  }

  /** `channel` is a channel name or a namespace wildcard `ns:*`. */
  allows(p: Principal, channel: string): boolean {
    const wildcardNs = parseNamespacePattern(channel);
    if (wildcardNs === USER_NAMESPACE) return false; // nobody may read every user's channel
    if (wildcardNs === null && isUserChannel(channel)) {
      return p.userId !== null && channel === `${USER_NAMESPACE}:${p.userId}`;
    }
    const ns = wildcardNs ?? namespaceOf(channel);
    if (this.publicNamespaces.has('*') || this.publicNamespaces.has(ns)) return true;
    for (const pat of p.patterns) {
      if (pat === '*' || pat === channel || pat === `${ns}:*`) return true;
    }
    return false;
  }
}
